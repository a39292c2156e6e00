//! The built-in MCP rule pack, compiled into the binary, and loading the rule set: the pack
//! plus the files of the rules dir.
//!
//! A file in the rules dir whose rule has the `id` of a built-in rule replaces it (to tune it,
//! or to disable it with `enabled: false`); `rules.disable` in the config disables built-in
//! rules by id without a file. Any error in any file fails the whole load, so a reload never
//! runs half a rule set: the running one stays.

use std::collections::HashMap;
use std::path::Path;

use super::{compile_file, Pos, Rule, RuleError};

/// The pack's files: (name, text).
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "path-traversal.yml",
        include_str!("pack/path-traversal.yml"),
    ),
    ("sql-injection.yml", include_str!("pack/sql-injection.yml")),
    (
        "shell-injection.yml",
        include_str!("pack/shell-injection.yml"),
    ),
    ("ssrf.yml", include_str!("pack/ssrf.yml")),
    (
        "prompt-injection.yml",
        include_str!("pack/prompt-injection.yml"),
    ),
    (
        "tool-poisoning.yml",
        include_str!("pack/tool-poisoning.yml"),
    ),
    (
        "credential-exposure.yml",
        include_str!("pack/credential-exposure.yml"),
    ),
    (
        "destructive-without-consent.yml",
        include_str!("pack/destructive-without-consent.yml"),
    ),
    ("bursts.yml", include_str!("pack/bursts.yml")),
    ("denied-flood.yml", include_str!("pack/denied-flood.yml")),
    ("first-seen.yml", include_str!("pack/first-seen.yml")),
    (
        "tool-description-changed.yml",
        include_str!("pack/tool-description-changed.yml"),
    ),
    (
        "tool-shadowing.yml",
        include_str!("pack/tool-shadowing.yml"),
    ),
    ("toxic-flow.yml", include_str!("pack/toxic-flow.yml")),
    (
        "session-hijack.yml",
        include_str!("pack/session-hijack.yml"),
    ),
    ("source-silent.yml", include_str!("pack/source-silent.yml")),
];

/// The built-in rules.
pub fn builtin() -> Result<Vec<Rule>, Vec<RuleError>> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (name, text) in BUILTIN {
        match compile_file(&format!("builtin:{name}"), text, true) {
            Ok(r) => rules.extend(r),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// Extra rule files (`*.yml`, `*.yaml`), read in name order.
    pub dir: Option<std::path::PathBuf>,
    /// Load the built-in pack.
    pub builtin: bool,
    /// Built-in rule ids to leave out.
    pub disable: Vec<String>,
}

fn error(origin: &str, message: String) -> RuleError {
    RuleError {
        origin: origin.to_string(),
        pos: Pos::default(),
        rule: None,
        field: None,
        message,
    }
}

/// The rule files of a directory, in name order (a missing directory has none).
pub fn files(dir: &Path) -> Result<Vec<std::path::PathBuf>, RuleError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(error(
                &dir.display().to_string(),
                format!(
                    "cannot read the rules dir: {}",
                    crate::error::describe_io(&e)
                ),
            ))
        }
    };
    let mut out: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    out.sort();
    Ok(out)
}

/// Loads the rule set: the pack (minus `disable`), overridden by id by the dir's files.
pub fn load(source: &Source) -> Result<Vec<Rule>, Vec<RuleError>> {
    let mut errors = Vec::new();
    let mut by_id: Vec<Rule> = Vec::new();
    if source.builtin {
        match builtin() {
            Ok(r) => by_id.extend(r),
            Err(e) => errors.extend(e),
        }
    }
    let known: Vec<String> = by_id.iter().map(|r| r.id.clone()).collect();
    for id in &source.disable {
        if !known.contains(id) {
            errors.push(error(
                "config",
                format!("`rules.disable` names `{id}`, which is not a built-in rule; the built-in rules are {}", known.join(", ")),
            ));
        }
    }
    by_id.retain(|r| !source.disable.contains(&r.id));
    let mut from_files: HashMap<String, String> = HashMap::new();
    if let Some(dir) = &source.dir {
        match files(dir) {
            Ok(paths) => {
                for path in paths {
                    let origin = path.display().to_string();
                    let text = match std::fs::read_to_string(&path) {
                        Ok(t) => t,
                        Err(e) => {
                            errors.push(error(
                                &origin,
                                format!("cannot read: {}", crate::error::describe_io(&e)),
                            ));
                            continue;
                        }
                    };
                    match compile_file(&origin, &text, false) {
                        Ok(rules) => {
                            for r in rules {
                                if let Some(other) = from_files.insert(r.id.clone(), origin.clone())
                                {
                                    errors.push(error(
                                        &origin,
                                        format!(
                                            "rule id `{}` is also in {other}; ids must be unique",
                                            r.id
                                        ),
                                    ));
                                    continue;
                                }
                                // Same id as a built-in rule: the file's version replaces it.
                                by_id.retain(|b| b.id != r.id);
                                by_id.push(r);
                            }
                        }
                        Err(e) => errors.extend(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(by_id)
    } else {
        Err(errors)
    }
}
