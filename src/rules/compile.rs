//! From rule documents to runnable rules: Sigma selections and modifiers become query
//! expressions (the same AST the index and the live tail use, evaluated by the in-memory
//! matcher), conditions become boolean expressions over them, correlations become stateful
//! kinds with their parameters checked.
//!
//! Every error names where it is (line and column in the file) and the field or key at
//! fault, and says what to write instead. Nothing here panics on a rule file.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use base64::Engine as _;
use serde_saphyr::Spanned;

use super::condition::{self, Cond};
use super::file::{Pos, RuleDoc, Strings, YValue};
use super::stateful::{Micros, SpikeParams};
use super::{Kind, Rule, SeqStep, Severity};
use crate::event::fields::FieldType;
use crate::query::{field_ref, Cmp, CmpOp, Expr, FieldRef, Op, Pattern};

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    /// The file (or `builtin:<name>`).
    pub origin: String,
    pub pos: Pos,
    /// The rule (its id or title) when known.
    pub rule: Option<String>,
    /// The key or field at fault (`detection.selection.tool|contains`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.origin, self.pos)?;
        if let Some(r) = &self.rule {
            write!(f, ": rule {r}")?;
        }
        if let Some(k) = &self.field {
            write!(f, ": `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Errors of one document, with the context to report them.
struct Ctx<'a> {
    origin: &'a str,
    rule: Option<String>,
    errors: Vec<RuleError>,
}

impl Ctx<'_> {
    fn err(&mut self, pos: Pos, field: impl Into<Option<String>>, message: impl Into<String>) {
        self.errors.push(RuleError {
            origin: self.origin.to_string(),
            pos,
            rule: self.rule.clone(),
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Largest compiled regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles every document of one file. `builtin` marks the pack shipped in the binary.
pub fn compile_file(origin: &str, text: &str, builtin: bool) -> Result<Vec<Rule>, Vec<RuleError>> {
    let docs = super::file::parse(text).map_err(|e| {
        vec![RuleError {
            origin: origin.to_string(),
            pos: e.pos,
            rule: None,
            field: None,
            message: e.message,
        }]
    })?;
    if docs.is_empty() {
        return Err(vec![RuleError {
            origin: origin.to_string(),
            pos: Pos::default(),
            rule: None,
            field: None,
            message: "the file holds no rule".into(),
        }]);
    }
    // Correlations refer to other rules of the file by id or name.
    let mut detections: HashMap<String, usize> = HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        for n in [&d.id, &d.name].into_iter().flatten() {
            detections.insert(n.value.clone(), i);
        }
    }
    let mut errors = Vec::new();
    let mut compiled: Vec<Option<Rule>> = Vec::new();
    for d in &docs {
        let mut ctx = Ctx {
            origin,
            rule: Some(
                d.id.as_ref()
                    .map(|s| s.value.clone())
                    .unwrap_or_else(|| d.title.value.clone()),
            ),
            errors: Vec::new(),
        };
        let rule = compile_doc(d, &docs, &detections, &mut ctx, origin, text, builtin);
        errors.extend(ctx.errors);
        compiled.push(rule);
    }
    // A detection rule referenced by correlations reports on its own only if one of them
    // says `generate: true` (Sigma's default is that it does not).
    for (i, d) in docs.iter().enumerate() {
        let Some(c) = &d.correlation else { continue };
        let generate = d.generate.unwrap_or(false);
        for r in referenced_rules(&c.value) {
            if let (Some(&j), false) = (detections.get(&r), generate) {
                if j != i {
                    if let Some(Some(rule)) = compiled.get_mut(j) {
                        rule.generate = false;
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(compiled.into_iter().flatten().collect())
    } else {
        Err(errors)
    }
}

fn referenced_rules(correlation: &YValue) -> Vec<String> {
    match map_get(correlation, "rules") {
        Some(v) => match &v.value {
            YValue::Seq(items) => items.iter().filter_map(|i| i.value.scalar_text()).collect(),
            other => other.scalar_text().into_iter().collect(),
        },
        None => Vec::new(),
    }
}

fn map_get<'a>(v: &'a YValue, key: &str) -> Option<&'a Spanned<YValue>> {
    match v {
        YValue::Map(entries) => entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v),
        _ => None,
    }
}

fn compile_doc(
    d: &RuleDoc,
    docs: &[RuleDoc],
    detections: &HashMap<String, usize>,
    ctx: &mut Ctx<'_>,
    origin: &str,
    text: &str,
    builtin: bool,
) -> Option<Rule> {
    let id = match (&d.id, &d.name) {
        (Some(id), _) => id.value.clone(),
        (None, Some(name)) => name.value.clone(),
        (None, None) => {
            ctx.err(
                Pos::of(&d.title),
                Some("id".to_string()),
                "the rule needs an `id` (findings name their rule by it)",
            );
            return None;
        }
    };
    if id.trim().is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        ctx.err(
            d.id.as_ref().map(Pos::of).unwrap_or_default(),
            Some("id".to_string()),
            "the `id` must be 1 to 200 printable characters",
        );
    }
    let severity = match (&d.level, &d.severity) {
        (Some(a), Some(_)) => {
            ctx.err(
                Pos::of(a),
                Some("level".to_string()),
                "give `level` or `severity`, not both",
            );
            Severity::Medium
        }
        (Some(s), None) | (None, Some(s)) => match Severity::parse(&s.value) {
            Some(sev) => sev,
            None => {
                ctx.err(
                    Pos::of(s),
                    Some("level".to_string()),
                    format!(
                        "`{}` is not a severity; use one of informational, low, medium, high, critical",
                        s.value
                    ),
                );
                Severity::Medium
            }
        },
        (None, None) => Severity::Medium,
    };
    let group_by = resolve_fields(&d.group_by, "group_by", ctx);
    let exceptions = d
        .exceptions
        .as_ref()
        .and_then(|e| compile_exceptions(e, ctx));
    let detection = d
        .detection
        .as_ref()
        .and_then(|det| compile_detection(det, "detection", ctx));
    let kind = match &d.correlation {
        None => {
            if d.detection.is_none() {
                ctx.err(
                    Pos::of(&d.title),
                    Some("detection".to_string()),
                    "the rule has neither a `detection` nor a `correlation`",
                );
                return None;
            }
            Kind::Match
        }
        Some(c) => compile_correlation(c, detection.as_ref(), docs, detections, ctx)?,
    };
    let explanation = d.explanation.as_ref().map(|e| e.value.clone());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // What the rule is: its document's text (a change makes it a new rule with new state).
    text.hash(&mut h);
    id.hash(&mut h);
    Some(Rule {
        id,
        title: d.title.value.clone(),
        description: d.description.clone().unwrap_or_default(),
        severity,
        tags: d.tags.0.iter().map(|t| t.value.clone()).collect(),
        falsepositives: d.falsepositives.0.iter().map(|t| t.value.clone()).collect(),
        enabled: d.enabled.unwrap_or(true),
        builtin,
        origin: origin.to_string(),
        fingerprint: h.finish(),
        detection,
        exceptions,
        group_by,
        kind,
        explanation,
        generate: true,
    })
}

fn resolve_fields(names: &Strings, key: &str, ctx: &mut Ctx<'_>) -> Vec<(String, FieldRef)> {
    names
        .0
        .iter()
        .filter_map(|n| match resolve_field(&n.value) {
            Ok(f) => Some((n.value.clone(), f)),
            Err(e) => {
                ctx.err(Pos::of(n), Some(key.to_string()), e);
                None
            }
        })
        .collect()
}

/// A field as rules name it: registry names, `arguments.<path>`, `arguments`, `labels.<k>`,
/// and `redactions.kind` (Sigma style) for `redaction`.
pub fn resolve_field(name: &str) -> Result<FieldRef, String> {
    let name = match name {
        "redactions.kind" | "redactions" => "redaction",
        n => n,
    };
    field_ref(name).map_err(|e| e.reason().to_string())
}

/// `exceptions`: one selection map, or a list of them; any match suppresses the finding.
fn compile_exceptions(e: &Spanned<YValue>, ctx: &mut Ctx<'_>) -> Option<Expr> {
    match &e.value {
        YValue::Seq(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                out.push(compile_selection(item, &format!("exceptions[{i}]"), ctx)?);
            }
            Some(Expr::Or(out))
        }
        YValue::Map(_) => compile_selection(e, "exceptions", ctx),
        other => {
            ctx.err(
                Pos::of(e),
                Some("exceptions".to_string()),
                format!(
                    "expected a map of fields or a list of them, found {}",
                    other.kind()
                ),
            );
            None
        }
    }
}

/// A Sigma `detection`: named selections and a `condition`.
fn compile_detection(det: &Spanned<YValue>, key: &str, ctx: &mut Ctx<'_>) -> Option<Expr> {
    let YValue::Map(entries) = &det.value else {
        ctx.err(
            Pos::of(det),
            Some(key.to_string()),
            format!(
                "expected a map of selections and a `condition`, found {}",
                det.value.kind()
            ),
        );
        return None;
    };
    let mut names = Vec::new();
    let mut exprs = Vec::new();
    let mut conditions: Vec<(Pos, String)> = Vec::new();
    let mut ok = true;
    for (name, value) in entries {
        if name.value == "condition" {
            match &value.value {
                YValue::Str(s) => conditions.push((Pos::of(value), s.clone())),
                YValue::Seq(items) => {
                    for c in items {
                        match &c.value {
                            YValue::Str(s) => conditions.push((Pos::of(c), s.clone())),
                            other => {
                                ctx.err(
                                    Pos::of(c),
                                    Some(format!("{key}.condition")),
                                    format!("expected text, found {}", other.kind()),
                                );
                                ok = false;
                            }
                        }
                    }
                }
                other => {
                    ctx.err(
                        Pos::of(value),
                        Some(format!("{key}.condition")),
                        format!("expected text, found {}", other.kind()),
                    );
                    ok = false;
                }
            }
            continue;
        }
        if name.value == "timeframe" {
            ctx.err(Pos::of(name), Some(format!("{key}.timeframe")), "`timeframe` belongs to Sigma's old aggregations; write a correlation rule with `timespan` instead");
            ok = false;
            continue;
        }
        match compile_selection(value, &format!("{key}.{}", name.value), ctx) {
            Some(e) => {
                names.push(name.value.clone());
                exprs.push(e);
            }
            None => ok = false,
        }
    }
    if conditions.is_empty() {
        ctx.err(
            Pos::of(det),
            Some(format!("{key}.condition")),
            "the detection has no `condition`; add e.g. `condition: selection`",
        );
        return None;
    }
    if !ok {
        return None;
    }
    let mut alternatives = Vec::new();
    for (pos, text) in conditions {
        match condition::parse(&text, &names) {
            Ok(c) => alternatives.push(to_expr(&c, &exprs)),
            Err(e) => {
                ctx.err(pos, Some(format!("{key}.condition")), e);
                return None;
            }
        }
    }
    let expr = if alternatives.len() == 1 {
        alternatives.remove(0)
    } else {
        Expr::Or(alternatives)
    };
    Some(optimize(expr))
}

/// Rewrites an expression to cost less per event, with the same meaning: single-item groups
/// are unwrapped, nested `or`s flattened, and the regexes an `or` applies to the same field
/// merged into one alternation. Measured on the pack over a day of traffic: fewer, larger
/// regexes run faster together than many small ones (their lazy-DFA caches stay in the CPU's
/// caches), though each small one alone is faster.
pub(crate) fn optimize(e: Expr) -> Expr {
    match e {
        Expr::And(items) => {
            let mut items: Vec<Expr> = items.into_iter().map(optimize).collect();
            if items.len() == 1 {
                return items.remove(0);
            }
            items.sort_by_key(cost);
            Expr::And(items)
        }
        Expr::Or(items) => {
            let mut flat = Vec::new();
            for item in items.into_iter().map(optimize) {
                match item {
                    Expr::Or(inner) => flat.extend(inner),
                    other => flat.push(other),
                }
            }
            match merge_regexes(flat) {
                Expr::Or(mut items) => {
                    items.sort_by_key(cost);
                    Expr::Or(items)
                }
                one => one,
            }
        }
        Expr::Not(inner) => Expr::Not(Box::new(optimize(*inner))),
        other => other,
    }
}

/// A rough price of evaluating `e` on one event, to try the cheap parts of an `and` or `or`
/// first (matching has no side effects, so the order never changes an answer): a field
/// compared whole costs least, a regex over long text most. The pack's `remote` check, for
/// one, now comes before the regex over every argument that only matters with it.
fn cost(e: &Expr) -> u32 {
    match e {
        Expr::All => 0,
        Expr::Not(inner) => cost(inner),
        Expr::And(items) | Expr::Or(items) => items.iter().map(cost).sum(),
        Expr::Cmp(Cmp { field, op }) => {
            let place = match field {
                FieldRef::Field(def) => match def.ty {
                    FieldType::Text | FieldType::Json => 8,
                    _ => 1,
                },
                FieldRef::Label(_) => 1,
                FieldRef::Argument(_) => 3,
                FieldRef::AnyArgument => 4,
                FieldRef::Host(_) => 6,
                FieldRef::FreeText => 12,
            };
            let work = match op {
                Op::Exists | Op::Term(_) | Op::Phrase(_) | Op::Range { .. } => 1,
                Op::Equals { .. } | Op::Compare { .. } | Op::Cidr(_) => 1,
                Op::Contains { .. } | Op::StartsWith { .. } | Op::EndsWith { .. } => 2,
                Op::Wildcard { .. } => 3,
                Op::Regex(_) => 6,
            };
            place * work
        }
    }
}

/// The items of an `or`, with the regexes on one field joined into one (at the place of the
/// first). A join that does not compile within the size limit keeps them apart.
fn merge_regexes(items: Vec<Expr>) -> Expr {
    let mut out: Vec<Expr> = Vec::with_capacity(items.len());
    // ((field, non-ASCII only), patterns, index in `out` of the first). Patterns only for
    // non-ASCII text stay apart from the others, so ASCII text still skips them.
    type Group = ((FieldRef, bool), Vec<String>, usize);
    let mut groups: Vec<Group> = Vec::new();
    let mut merged_away = vec![false; items.len()];
    for item in items {
        if let Expr::Cmp(Cmp {
            field,
            op: Op::Regex(re),
        }) = &item
        {
            let key = (field.clone(), re.needs_non_ascii());
            if let Some(g) = groups.iter_mut().find(|g| g.0 == key) {
                g.1.push(re.as_str().to_string());
                merged_away[out.len()] = true;
            } else {
                groups.push((key, vec![re.as_str().to_string()], out.len()));
            }
        }
        out.push(item);
    }
    for ((field, non_ascii), patterns, at) in &groups {
        if patterns.len() < 2 {
            continue;
        }
        let joined = patterns
            .iter()
            .map(|p| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|");
        match regex::RegexBuilder::new(&joined)
            .size_limit(REGEX_SIZE_LIMIT * 4)
            .build()
        {
            Ok(re) => {
                out[*at] = Expr::Cmp(Cmp {
                    field: field.clone(),
                    op: Op::Regex(Pattern::new(re)),
                })
            }
            Err(_) => {
                // Keep every one of this field's regexes.
                for (i, item) in out.iter().enumerate() {
                    if matches!(item, Expr::Cmp(Cmp { field: f, op: Op::Regex(r) }) if f == field && r.needs_non_ascii() == *non_ascii)
                    {
                        merged_away[i] = false;
                    }
                }
            }
        }
    }
    let mut out: Vec<Expr> = out
        .into_iter()
        .zip(merged_away)
        .filter(|(_, away)| !away)
        .map(|(e, _)| e)
        .collect();
    if out.len() == 1 {
        return out.remove(0);
    }
    Expr::Or(out)
}

fn to_expr(c: &Cond, sels: &[Expr]) -> Expr {
    match c {
        Cond::Sel(i) => sels.get(*i).cloned().unwrap_or(Expr::Or(Vec::new())),
        Cond::Not(inner) => Expr::Not(Box::new(to_expr(inner, sels))),
        Cond::And(items) => Expr::And(items.iter().map(|i| to_expr(i, sels)).collect()),
        Cond::Or(items) => Expr::Or(items.iter().map(|i| to_expr(i, sels)).collect()),
    }
}

/// One selection: a map of field conditions (all must hold), a list of such maps (any), or
/// keywords (a string or a list of strings searched in the whole event).
fn compile_selection(v: &Spanned<YValue>, key: &str, ctx: &mut Ctx<'_>) -> Option<Expr> {
    match &v.value {
        YValue::Map(entries) => {
            let mut items = Vec::new();
            let mut ok = true;
            for (field, values) in entries {
                match compile_field(field, values, key, ctx) {
                    Some(e) => items.push(e),
                    None => ok = false,
                }
            }
            ok.then_some(Expr::And(items))
        }
        YValue::Seq(items) if items.iter().all(|i| matches!(i.value, YValue::Map(_))) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                out.push(compile_selection(item, &format!("{key}[{i}]"), ctx)?);
            }
            Some(Expr::Or(out))
        }
        YValue::Seq(items) => {
            // Keywords: substrings of anything in the event.
            let mut out = Vec::new();
            for item in items {
                match item.value.scalar_text() {
                    Some(s) => out.push(Expr::Cmp(Cmp {
                        field: FieldRef::FreeText,
                        op: Op::Contains {
                            value: s,
                            cased: false,
                        },
                    })),
                    None => {
                        ctx.err(
                            Pos::of(item),
                            Some(key.to_string()),
                            format!("a keyword list holds text, found {}", item.value.kind()),
                        );
                        return None;
                    }
                }
            }
            Some(Expr::Or(out))
        }
        YValue::Str(s) => Some(Expr::Cmp(Cmp {
            field: FieldRef::FreeText,
            op: Op::Contains {
                value: s.clone(),
                cased: false,
            },
        })),
        other => {
            ctx.err(
                Pos::of(v),
                Some(key.to_string()),
                format!(
                    "a selection is a map of fields, a list of maps or keywords; found {}",
                    other.kind()
                ),
            );
            None
        }
    }
}

/// Sigma's modifiers we take, after the field name: `field|contains|all: [a, b]`.
#[derive(Default, Debug)]
struct Mods {
    contains: bool,
    startswith: bool,
    endswith: bool,
    all: bool,
    re: bool,
    re_flags: (bool, bool, bool),
    cidr: bool,
    cmp: Option<CmpOp>,
    exists: bool,
    cased: bool,
    base64: bool,
    base64offset: bool,
    windash: bool,
    /// Match the host of URL values (see [`FieldRef::Host`]).
    host: bool,
}

fn compile_field(
    field: &Spanned<String>,
    values: &Spanned<YValue>,
    key: &str,
    ctx: &mut Ctx<'_>,
) -> Option<Expr> {
    let at = format!("{key}.{}", field.value);
    let mut parts = field.value.split('|');
    let name = parts.next().unwrap_or_default();
    let mut m = Mods::default();
    for modifier in parts {
        match modifier {
            "contains" => m.contains = true,
            "startswith" => m.startswith = true,
            "endswith" => m.endswith = true,
            "all" => m.all = true,
            "re" => m.re = true,
            "i" if m.re => m.re_flags.0 = true,
            "m" if m.re => m.re_flags.1 = true,
            "s" if m.re => m.re_flags.2 = true,
            "cidr" => m.cidr = true,
            "gt" => m.cmp = Some(CmpOp::Gt),
            "gte" => m.cmp = Some(CmpOp::Gte),
            "lt" => m.cmp = Some(CmpOp::Lt),
            "lte" => m.cmp = Some(CmpOp::Lte),
            "exists" => m.exists = true,
            "cased" => m.cased = true,
            "base64" => m.base64 = true,
            "base64offset" => m.base64offset = true,
            "windash" => m.windash = true,
            "host" => m.host = true,
            other => {
                ctx.err(
                    Pos::of(field),
                    Some(at.clone()),
                    format!(
                        "unknown modifier `{other}`; this engine takes contains, startswith, endswith, all, re (with i, m, s), cidr, gt, gte, lt, lte, exists, cased, base64, base64offset, windash, host"
                    ),
                );
                return None;
            }
        }
    }
    let string_ops = [m.contains, m.startswith, m.endswith]
        .iter()
        .filter(|b| **b)
        .count();
    let kinds = [string_ops > 0, m.re, m.cidr, m.cmp.is_some(), m.exists]
        .iter()
        .filter(|b| **b)
        .count();
    if string_ops > 1 || kinds > 1 {
        ctx.err(Pos::of(field), Some(at), "these modifiers cannot be combined; use one of contains/startswith/endswith, re, cidr, gt/gte/lt/lte or exists");
        return None;
    }
    if m.base64offset && !m.contains {
        ctx.err(
            Pos::of(field),
            Some(at),
            "`base64offset` needs `contains` (Sigma: `field|base64offset|contains`)",
        );
        return None;
    }
    let fref = if name.is_empty() {
        FieldRef::FreeText
    } else {
        match resolve_field(name) {
            Ok(f) => f,
            Err(e) => {
                ctx.err(Pos::of(field), Some(at), e);
                return None;
            }
        }
    };
    let fref = if m.host {
        FieldRef::Host(Box::new(fref))
    } else {
        fref
    };
    let cmp = |op: Op| {
        Expr::Cmp(Cmp {
            field: fref.clone(),
            op,
        })
    };
    if m.exists {
        return match &values.value {
            YValue::Bool(true) => Some(cmp(Op::Exists)),
            YValue::Bool(false) => Some(Expr::Not(Box::new(cmp(Op::Exists)))),
            other => {
                ctx.err(
                    Pos::of(values),
                    Some(at),
                    format!("`exists` takes true or false, found {}", other.kind()),
                );
                None
            }
        };
    }
    let items: Vec<&Spanned<YValue>> = match &values.value {
        YValue::Seq(items) => items.iter().collect(),
        _ => vec![values],
    };
    if items.is_empty() {
        ctx.err(
            Pos::of(values),
            Some(at),
            "an empty list matches nothing; give at least one value",
        );
        return None;
    }
    let mut ors = Vec::new();
    for v in items {
        let text = match &v.value {
            // Sigma: a null value means the field is absent (or empty).
            YValue::Null => {
                ors.push(Expr::Not(Box::new(cmp(Op::Exists))));
                continue;
            }
            YValue::Seq(_) | YValue::Map(_) => {
                ctx.err(
                    Pos::of(v),
                    Some(at.clone()),
                    format!(
                        "a field's value is text, a number or a list of them; found {}",
                        v.value.kind()
                    ),
                );
                return None;
            }
            other => other.scalar_text().unwrap_or_default(),
        };
        if let Some(op) = m.cmp {
            let n = match &v.value {
                YValue::Int(i) => *i as f64,
                YValue::Float(f) => *f,
                _ => match text.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() => n,
                    _ => {
                        ctx.err(
                            Pos::of(v),
                            Some(at.clone()),
                            format!("`{}` takes a number, found {text:?}", op.name()),
                        );
                        return None;
                    }
                },
            };
            ors.push(cmp(Op::Compare { op, value: n }));
            continue;
        }
        if m.cidr {
            match text.trim().parse::<ipnet::IpNet>().or_else(|_| {
                text.trim()
                    .parse::<std::net::IpAddr>()
                    .map(ipnet::IpNet::from)
            }) {
                Ok(net) => ors.push(cmp(Op::Cidr(vec![net]))),
                Err(_) => {
                    ctx.err(
                        Pos::of(v),
                        Some(at.clone()),
                        format!("{text:?} is not a network like 10.0.0.0/8 or fd00::/8"),
                    );
                    return None;
                }
            }
            continue;
        }
        if m.re {
            // Flags inline: the pattern carries its whole meaning.
            let flags: String = [
                (m.re_flags.0, 'i'),
                (m.re_flags.1, 'm'),
                (m.re_flags.2, 's'),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, f)| *f)
            .collect();
            let pattern = if flags.is_empty() {
                ascii_word_boundaries(&text)
            } else {
                format!("(?{flags}){}", ascii_word_boundaries(&text))
            };
            let mut b = regex::RegexBuilder::new(&pattern);
            b.size_limit(REGEX_SIZE_LIMIT);
            match b.build() {
                Ok(re) => ors.push(cmp(Op::Regex(Pattern::new(re)))),
                Err(e) => {
                    let first = e.to_string().lines().last().unwrap_or_default().to_string();
                    ctx.err(
                        Pos::of(v),
                        Some(at.clone()),
                        format!("the regex does not compile: {first}"),
                    );
                    return None;
                }
            }
            continue;
        }
        // Text: the value and its encodings, each an alternative.
        let mut variants = vec![text.clone()];
        if m.windash {
            variants = windash(&text);
        }
        if m.base64 {
            variants = variants
                .iter()
                .map(|v| base64::engine::general_purpose::STANDARD.encode(v))
                .collect();
        }
        if m.base64offset {
            variants = variants.iter().flat_map(|v| base64_offsets(v)).collect();
        }
        let alternatives: Vec<Expr> = variants
            .into_iter()
            .map(|value| cmp(text_op(value, &m)))
            .collect();
        ors.push(if alternatives.len() == 1 {
            alternatives
                .into_iter()
                .next()
                .unwrap_or(Expr::Or(Vec::new()))
        } else {
            Expr::Or(alternatives)
        });
    }
    Some(if ors.len() == 1 {
        ors.remove(0)
    } else if m.all {
        Expr::And(ors)
    } else {
        Expr::Or(ors)
    })
}

/// The operator of a text value, as a regex where that is cheaper to run: a case-insensitive
/// `contains`/`startswith`/`endswith` and every wildcard become one (no lower-cased copy of
/// each value).
fn text_op(value: String, m: &Mods) -> Op {
    let op = sigma_text_op(value, m);
    let flags = |cased: bool| if cased { "(?s)" } else { "(?is)" };
    let pattern = match &op {
        Op::Contains {
            value,
            cased: false,
        } => Some(format!("{}{}", flags(false), regex::escape(value))),
        Op::StartsWith {
            value,
            cased: false,
        } => Some(format!("{}^{}", flags(false), regex::escape(value))),
        Op::EndsWith {
            value,
            cased: false,
        } => Some(format!("{}{}$", flags(false), regex::escape(value))),
        Op::Wildcard { pattern, cased } => {
            Some(format!("{}^{}$", flags(*cased), wildcard_regex(pattern)))
        }
        _ => None,
    };
    pattern
        .and_then(|p| {
            regex::RegexBuilder::new(&p)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .ok()
        })
        .map_or(op, |re| Op::Regex(Pattern::new(re)))
}

/// A Sigma wildcard pattern as a regex body: `*` any run, `?` one character, `\*` `\?` `\\`
/// the character itself (another `\` is a backslash).
fn wildcard_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push_str(&regex::escape(&n.to_string()));
                }
                _ => out.push_str(r"\\"),
            },
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

/// The Sigma meaning of a text value: wildcards (`*`, `?`, escaped with `\`) make a wildcard
/// match; `contains`/`startswith`/`endswith` are wildcards around the value.
fn sigma_text_op(value: String, m: &Mods) -> Op {
    let cased = m.cased;
    // The wildcard around the value, and the plain operator when it holds no wildcard.
    let (before, after, plain): (&str, &str, fn(String, bool) -> Op) = if m.contains {
        ("*", "*", |value, cased| Op::Contains { value, cased })
    } else if m.startswith {
        ("", "*", |value, cased| Op::StartsWith { value, cased })
    } else if m.endswith {
        ("*", "", |value, cased| Op::EndsWith { value, cased })
    } else {
        ("", "", |value, cased| Op::Equals { value, cased })
    };
    if has_wildcard(&value) {
        Op::Wildcard {
            pattern: format!("{before}{value}{after}"),
            cased,
        }
    } else {
        plain(unescape(&value), cased)
    }
}

/// Whether a Sigma value holds an unescaped `*` or `?`.
fn has_wildcard(v: &str) -> bool {
    let mut escaped = false;
    for c in v.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '*' | '?' if !escaped => return true,
            _ => escaped = false,
        }
    }
    false
}

/// Sigma's escapes: `\*`, `\?` and `\\` are the characters; any other `\` is itself.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if matches!(n, '*' | '?' | '\\') {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// Sigma `windash`: the value with its dashes as `-`, `/`, en dash, em dash and horizontal bar.
fn windash(v: &str) -> Vec<String> {
    if !v.contains('-') {
        return vec![v.to_string()];
    }
    ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"]
        .iter()
        .map(|d| v.replace('-', d))
        .collect()
}

/// Sigma `base64offset`: the three base64 renderings of `v` at each offset in a longer text,
/// without the characters that depend on the neighbours.
fn base64_offsets(v: &str) -> Vec<String> {
    let b = v.as_bytes();
    let enc = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let start = [0usize, 2, 3];
    (0..3)
        .map(|i| {
            let mut padded = vec![0u8; i];
            padded.extend_from_slice(b);
            let e = enc(&padded);
            let e = e.trim_end_matches('=');
            let end_cut = match (i + b.len()) % 3 {
                0 => 0,
                1 => 2,
                _ => 3,
            };
            let end = e
                .len()
                .saturating_sub(if end_cut == 0 { 0 } else { end_cut - 1 });
            e.get(start[i]..end.max(start[i])).unwrap_or("").to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// `\b` as an ASCII word boundary. The regex crate's fast engines cannot run a Unicode word
/// boundary and fall back to a slower one for the whole regex; on the text the pack scans
/// (tool results of several KB) that costs several times over. Written `\\b` stays as it is.
fn ascii_word_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    // Inside `[...]`, `\b` is a backspace and stays.
    let mut class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('b') if !class => out.push_str("(?-u:\\b)"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            },
            '[' => {
                class = true;
                out.push(c);
            }
            ']' => {
                class = false;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A duration as rules write it: `30s`, `5m`, `1h`, `2d`, `1w`.
fn duration(v: &Spanned<YValue>, key: &str, ctx: &mut Ctx<'_>) -> Option<Micros> {
    let text = v.value.scalar_text().unwrap_or_default();
    match crate::api::parse_duration(&text) {
        Some(d) if d.whole_seconds() > 0 => {
            Some(d.whole_microseconds().min(i64::MAX as i128) as i64)
        }
        _ => {
            ctx.err(
                Pos::of(v),
                Some(key.to_string()),
                format!("{text:?} is not a duration like 30s, 5m, 1h or 2d"),
            );
            None
        }
    }
}

fn number(v: &Spanned<YValue>, key: &str, ctx: &mut Ctx<'_>) -> Option<f64> {
    match &v.value {
        YValue::Int(i) => Some(*i as f64),
        YValue::Float(f) if f.is_finite() => Some(*f),
        other => {
            ctx.err(
                Pos::of(v),
                Some(key.to_string()),
                format!("expected a number, found {}", other.kind()),
            );
            None
        }
    }
}

fn whole(v: &Spanned<YValue>, key: &str, ctx: &mut Ctx<'_>) -> Option<u64> {
    match &v.value {
        YValue::Int(i) if *i >= 0 => Some(*i as u64),
        other => {
            ctx.err(
                Pos::of(v),
                Some(key.to_string()),
                format!("expected a whole number ≥ 0, found {}", other.kind()),
            );
            None
        }
    }
}

/// A correlation: Sigma's `event_count`, `value_count`, `temporal_ordered`, or one of ours
/// (`spike`, `new_term`, `change`, `absence`).
fn compile_correlation(
    c: &Spanned<YValue>,
    own: Option<&Expr>,
    docs: &[RuleDoc],
    detections: &HashMap<String, usize>,
    ctx: &mut Ctx<'_>,
) -> Option<Kind> {
    let YValue::Map(entries) = &c.value else {
        ctx.err(
            Pos::of(c),
            Some("correlation".to_string()),
            "expected a map with `type`, `group-by`, `timespan`...",
        );
        return None;
    };
    const KEYS: &[&str] = &[
        "type",
        "rules",
        "group-by",
        "timespan",
        "condition",
        "field",
        "warmup",
        "require_known",
        "factor",
        "min_count",
        "warmup_windows",
        "period",
        "steady_minutes",
        "carry",
        "aliases",
        "ordered",
    ];
    let mut get: HashMap<&str, &Spanned<YValue>> = HashMap::new();
    for (k, v) in entries {
        if !KEYS.contains(&k.value.as_str()) {
            ctx.err(
                Pos::of(k),
                Some(format!("correlation.{}", k.value)),
                format!("unknown key; a correlation takes {}", KEYS.join(", ")),
            );
            return None;
        }
        get.insert(k.value.as_str(), v);
    }
    let Some(ty) = get.get("type") else {
        ctx.err(Pos::of(c), Some("correlation.type".to_string()), "the correlation needs a `type`: event_count, value_count, temporal_ordered, spike, new_term, change or absence");
        return None;
    };
    let ty_name = ty.value.scalar_text().unwrap_or_default();
    // The events that feed the correlation: its own detection, or the rules it names.
    let inputs: Vec<Expr> = match get.get("rules") {
        None => Vec::new(),
        Some(r) => {
            let names: Vec<(Pos, String)> = match &r.value {
                YValue::Seq(items) => items
                    .iter()
                    .map(|i| (Pos::of(i), i.value.scalar_text().unwrap_or_default()))
                    .collect(),
                other => vec![(Pos::of(r), other.scalar_text().unwrap_or_default())],
            };
            let mut out = Vec::new();
            for (pos, n) in names {
                let Some(&i) = detections.get(&n) else {
                    ctx.err(
                        pos,
                        Some("correlation.rules".to_string()),
                        format!("no rule with id or name `{n}` in this file"),
                    );
                    return None;
                };
                let Some(det) = &docs[i].detection else {
                    ctx.err(
                        pos,
                        Some("correlation.rules".to_string()),
                        format!("`{n}` has no detection to feed a correlation"),
                    );
                    return None;
                };
                out.push(compile_detection(det, &format!("({n}).detection"), ctx)?);
            }
            out
        }
    };
    // Its own detection feeds it when it names no rules.
    let inputs = if inputs.is_empty() {
        own.cloned().into_iter().collect()
    } else {
        inputs
    };
    let group_by = match get.get("group-by") {
        Some(g) => {
            let names = match &g.value {
                YValue::Seq(items) => items.clone(),
                _ => vec![(*g).clone()],
            };
            let strings = Strings(
                names
                    .into_iter()
                    .map(|v| {
                        Spanned::new(
                            v.value.scalar_text().unwrap_or_default(),
                            v.referenced,
                            v.defined,
                        )
                    })
                    .collect(),
            );
            resolve_fields(&strings, "correlation.group-by", ctx)
        }
        None => Vec::new(),
    };
    let timespan = |ctx: &mut Ctx<'_>| -> Option<Micros> {
        match get.get("timespan") {
            Some(t) => duration(t, "correlation.timespan", ctx),
            None => {
                ctx.err(
                    Pos::of(c),
                    Some("correlation.timespan".to_string()),
                    "this correlation needs a `timespan`, e.g. `timespan: 5m`",
                );
                None
            }
        }
    };
    let condition = get.get("condition").copied();
    let threshold = |ctx: &mut Ctx<'_>| -> Option<(u64, Option<Spanned<YValue>>)> {
        let Some(cond) = condition else {
            ctx.err(
                Pos::of(c),
                Some("correlation.condition".to_string()),
                "this correlation needs a `condition`, e.g. `condition: {gte: 10}`",
            );
            return None;
        };
        let mut n = None;
        let mut field = None;
        if let YValue::Map(items) = &cond.value {
            for (k, v) in items {
                match k.value.as_str() {
                    "gte" => n = whole(v, "correlation.condition.gte", ctx),
                    "gt" => n = whole(v, "correlation.condition.gt", ctx).map(|x| x + 1),
                    "field" => field = Some(v.clone()),
                    other => {
                        ctx.err(Pos::of(k), Some(format!("correlation.condition.{other}")), "this engine fires on reaching a count: use `gte` or `gt` (and `field` for value_count)");
                        return None;
                    }
                }
            }
        }
        match n {
            Some(n) if n >= 1 => Some((n, field)),
            _ => {
                ctx.err(
                    Pos::of(cond),
                    Some("correlation.condition".to_string()),
                    "give `gte: N` (N ≥ 1) or `gt: N`",
                );
                None
            }
        }
    };
    let fields_of =
        |key: &str, v: Option<&&Spanned<YValue>>, ctx: &mut Ctx<'_>| -> Vec<(String, FieldRef)> {
            let Some(v) = v else {
                ctx.err(
                    Pos::of(c),
                    Some(format!("correlation.{key}")),
                    format!("this correlation needs `{key}`: the field(s) it follows"),
                );
                return Vec::new();
            };
            let names = match &v.value {
                YValue::Seq(items) => items.clone(),
                _ => vec![(*v).clone()],
            };
            let strings = Strings(
                names
                    .into_iter()
                    .map(|v| {
                        Spanned::new(
                            v.value.scalar_text().unwrap_or_default(),
                            v.referenced,
                            v.defined,
                        )
                    })
                    .collect(),
            );
            resolve_fields(&strings, &format!("correlation.{key}"), ctx)
        };
    let input = |inputs: Vec<Expr>| -> Option<Expr> {
        match inputs.len() {
            0 => None,
            1 => inputs.into_iter().next(),
            _ => Some(Expr::Or(inputs)),
        }
    };
    let kind = match ty_name.as_str() {
        "event_count" => {
            let window = timespan(ctx)?;
            let (n, _) = threshold(ctx)?;
            Kind::EventCount {
                input: input(inputs),
                group_by,
                threshold: n as usize,
                window,
            }
        }
        "value_count" => {
            let window = timespan(ctx)?;
            let (n, field) = threshold(ctx)?;
            let Some(field) = field else {
                ctx.err(Pos::of(c), Some("correlation.condition.field".to_string()), "value_count counts the distinct values of a field: add `field: <name>` to the condition");
                return None;
            };
            let name = field.value.scalar_text().unwrap_or_default();
            let f = match resolve_field(&name) {
                Ok(f) => f,
                Err(e) => {
                    ctx.err(
                        Pos::of(&field),
                        Some("correlation.condition.field".to_string()),
                        e,
                    );
                    return None;
                }
            };
            Kind::ValueCount {
                input: input(inputs),
                group_by,
                field: (name, f),
                threshold: n as usize,
                window,
            }
        }
        "spike" => {
            let window = timespan(ctx)?;
            let factor = match get.get("factor") {
                Some(v) => number(v, "correlation.factor", ctx)?,
                None => 5.0,
            };
            let min_count = match get.get("min_count") {
                Some(v) => whole(v, "correlation.min_count", ctx)?,
                None => 20,
            };
            let warmup = match get.get("warmup_windows") {
                Some(v) => whole(v, "correlation.warmup_windows", ctx)?,
                None => 30,
            };
            if factor < 1.0 {
                ctx.err(
                    Pos::of(c),
                    Some("correlation.factor".to_string()),
                    "the factor must be at least 1",
                );
                return None;
            }
            Kind::Spike {
                input: input(inputs),
                group_by,
                params: SpikeParams {
                    window,
                    factor,
                    min_count,
                    warmup,
                },
            }
        }
        "new_term" => {
            let fields = fields_of("field", get.get("field"), ctx);
            let warmup = match get.get("warmup") {
                Some(v) => duration(v, "correlation.warmup", ctx)?,
                None => 30 * 60 * 1_000_000,
            };
            let min_existing = match get.get("require_known") {
                Some(v) => whole(v, "correlation.require_known", ctx)? as usize,
                None => 0,
            };
            if fields.is_empty() {
                return None;
            }
            Kind::NewTerm {
                input: input(inputs),
                group_by,
                fields,
                warmup,
                min_existing,
            }
        }
        "change" => {
            let fields = fields_of("field", get.get("field"), ctx);
            if fields.is_empty() {
                return None;
            }
            if group_by.is_empty() {
                ctx.err(
                    Pos::of(c),
                    Some("correlation.group-by".to_string()),
                    "`change` needs a `group-by`: whose value changes (e.g. [server, tool])",
                );
                return None;
            }
            Kind::Change {
                input: input(inputs),
                group_by,
                fields,
            }
        }
        "absence" => {
            let period = match get.get("period") {
                Some(v) => duration(v, "correlation.period", ctx)?,
                None => {
                    ctx.err(
                        Pos::of(c),
                        Some("correlation.period".to_string()),
                        "`absence` needs a `period`: how long a source may be silent",
                    );
                    return None;
                }
            };
            let steady_minutes = match get.get("steady_minutes") {
                Some(v) => whole(v, "correlation.steady_minutes", ctx)?,
                None => 50,
            };
            if steady_minutes > 60 {
                ctx.err(
                    Pos::of(c),
                    Some("correlation.steady_minutes".to_string()),
                    "at most 60 (minutes of the hour before the silence)",
                );
                return None;
            }
            if group_by.is_empty() {
                ctx.err(
                    Pos::of(c),
                    Some("correlation.group-by".to_string()),
                    "`absence` needs a `group-by`: what goes silent (e.g. [source])",
                );
                return None;
            }
            Kind::Absence {
                input: input(inputs),
                group_by,
                period,
                steady_minutes: steady_minutes as u32,
            }
        }
        "temporal_ordered" | "temporal" => {
            if ty_name == "temporal" {
                ctx.err(
                    Pos::of(ty),
                    Some("correlation.type".to_string()),
                    "unordered `temporal` is not supported; use `temporal_ordered`",
                );
                return None;
            }
            let window = timespan(ctx)?;
            let names: Vec<String> = get
                .get("rules")
                .map(|r| {
                    referenced_rules(&YValue::Map(vec![(
                        Spanned::new("rules".to_string(), r.referenced, r.defined),
                        (*r).clone(),
                    )]))
                })
                .unwrap_or_default();
            if inputs.len() < 2 {
                ctx.err(
                    Pos::of(c),
                    Some("correlation.rules".to_string()),
                    "temporal_ordered needs at least two `rules`, in order",
                );
                return None;
            }
            let mut steps: Vec<SeqStep> = names
                .iter()
                .zip(inputs)
                .map(|(n, e)| SeqStep {
                    name: n.clone(),
                    detection: e,
                    capture: None,
                    carries: None,
                    same: Vec::new(),
                })
                .collect();
            if let Some(carry) = get.get("carry") {
                compile_carry(carry, &mut steps, ctx)?;
            }
            if group_by.is_empty() {
                ctx.err(
                    Pos::of(c),
                    Some("correlation.group-by".to_string()),
                    "temporal_ordered needs a `group-by` (e.g. [conversation_id])",
                );
                return None;
            }
            Kind::Sequence {
                group_by,
                steps,
                window,
            }
        }
        other => {
            ctx.err(Pos::of(ty), Some("correlation.type".to_string()), format!("`{other}` is not a correlation type; use event_count, value_count, temporal_ordered, spike, new_term, change or absence"));
            return None;
        }
    };
    if !matches!(kind, Kind::Sequence { .. }) && kind.input().is_none() {
        ctx.err(
            Pos::of(c),
            Some("correlation.rules".to_string()),
            "the correlation needs events: give it a `detection` of its own or `rules` to follow",
        );
        return None;
    }
    Some(kind)
}

/// `carry: {from: <step>, field: result, into: <step>, in: arguments}`: the `into` step only
/// counts when its `in` field carries text the `from` step's `field` held.
fn compile_carry(carry: &Spanned<YValue>, steps: &mut [SeqStep], ctx: &mut Ctx<'_>) -> Option<()> {
    let YValue::Map(entries) = &carry.value else {
        ctx.err(
            Pos::of(carry),
            Some("correlation.carry".to_string()),
            "expected {from, field, into, in}",
        );
        return None;
    };
    let mut want: HashMap<&str, (Pos, String)> = HashMap::new();
    let mut same = Vec::new();
    for (k, v) in entries {
        if k.value == "unless_same" {
            let names = match &v.value {
                YValue::Seq(items) => items.clone(),
                _ => vec![v.clone()],
            };
            for n in names {
                let name = n.value.scalar_text().unwrap_or_default();
                match resolve_field(&name) {
                    Ok(f) => same.push(f),
                    Err(e) => {
                        ctx.err(
                            Pos::of(&n),
                            Some("correlation.carry.unless_same".to_string()),
                            e,
                        );
                        return None;
                    }
                }
            }
            continue;
        }
        if !["from", "field", "into", "in"].contains(&k.value.as_str()) {
            ctx.err(
                Pos::of(k),
                Some(format!("correlation.carry.{}", k.value)),
                "unknown key; carry takes from, field, into, in, unless_same",
            );
            return None;
        }
        want.insert(
            k.value.as_str(),
            (Pos::of(v), v.value.scalar_text().unwrap_or_default()),
        );
    }
    let mut get = |k: &str| -> Option<(Pos, String)> {
        let v = want.get(k).cloned();
        if v.is_none() {
            ctx.err(
                Pos::of(carry),
                Some(format!("correlation.carry.{k}")),
                format!("carry needs `{k}`"),
            );
        }
        v
    };
    let (from_pos, from) = get("from")?;
    let (field_pos, field) = get("field")?;
    let (into_pos, into) = get("into")?;
    let (in_pos, inside) = get("in")?;
    let step = |name: &str, pos: Pos, ctx: &mut Ctx<'_>| -> Option<usize> {
        let i = steps.iter().position(|s| s.name == name);
        if i.is_none() {
            ctx.err(
                pos,
                Some("correlation.carry".to_string()),
                format!("`{name}` is not one of the correlation's rules"),
            );
        }
        i
    };
    let f = step(&from, from_pos, ctx)?;
    let t = step(&into, into_pos, ctx)?;
    if f >= t {
        ctx.err(
            into_pos,
            Some("correlation.carry.into".to_string()),
            "`into` must be a later step than `from`",
        );
        return None;
    }
    let field_ref = resolve_field(&field)
        .map_err(|e| ctx.err(field_pos, Some("correlation.carry.field".to_string()), e))
        .ok()?;
    let in_ref = resolve_field(&inside)
        .map_err(|e| ctx.err(in_pos, Some("correlation.carry.in".to_string()), e))
        .ok()?;
    steps[f].capture = Some(field_ref);
    steps[f].same = same.clone();
    steps[t].carries = Some((f, in_ref));
    steps[t].same = same;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheap_parts_of_a_condition_are_tried_first() {
        let text = r#"
title: order
id: order-test
detection:
  payload:
    arguments|re: 'x{3}'
  remote:
    transport: sse
  call:
    method: tools/call
  condition: payload and (payload or remote) and call and remote
"#;
        let rules = compile_file("t.yml", text, false).expect("compiles");
        let Some(Expr::And(items)) = &rules[0].detection else {
            panic!("an and: {:?}", rules[0].detection)
        };
        let costs: Vec<u32> = items.iter().map(cost).collect();
        assert!(costs.windows(2).all(|w| w[0] <= w[1]), "{costs:?}");
        // The field comparisons come before the regex over every argument.
        for (i, item) in items.iter().enumerate() {
            let equals = matches!(
                item,
                Expr::Cmp(Cmp {
                    op: Op::Equals { .. },
                    ..
                })
            );
            assert_eq!(equals, i < 2, "{items:?}");
        }
    }

    #[test]
    fn wildcards_and_escapes() {
        assert!(has_wildcard("a*b"));
        assert!(!has_wildcard("a\\*b"));
        assert_eq!(unescape("a\\*b\\\\c\\d"), "a*b\\c\\d");
        let m = Mods {
            contains: true,
            ..Mods::default()
        };
        assert!(matches!(sigma_text_op("x".into(), &m), Op::Contains { .. }));
        assert!(
            matches!(sigma_text_op("x*y".into(), &m), Op::Wildcard { ref pattern, .. } if pattern == "*x*y*")
        );
        // Run as regexes, with the same meaning.
        let Op::Regex(re) = text_op("a.b*c?d\\*".into(), &Mods::default()) else {
            panic!("a wildcard runs as a regex")
        };
        assert!(re.is_match("A.Bxyzc1d*"));
        assert!(!re.is_match("aXbxc1d*"));
        assert!(!re.is_match("a.bc1dx"));
        let Op::Regex(re) = text_op("Evil(".into(), &m) else {
            panic!("contains runs as a regex")
        };
        assert!(re.is_match("so EVIL(1)"));
        let cased = Mods {
            contains: true,
            cased: true,
            ..Mods::default()
        };
        assert!(matches!(
            text_op("Evil".into(), &cased),
            Op::Contains { cased: true, .. }
        ));
    }

    #[test]
    fn word_boundaries_become_ascii_outside_classes() {
        assert_eq!(ascii_word_boundaries(r"\bx[\b]\\b"), r"(?-u:\b)x[\b]\\b");
        let re = regex::Regex::new(&ascii_word_boundaries(r"(?i)\bignore\b")).unwrap();
        assert!(re.is_match("please IGNORE this"));
        assert!(!re.is_match("unignored"));
    }

    #[test]
    fn base64_offsets_are_found_in_longer_encodings() {
        use base64::Engine as _;
        let needle = "ignore previous instructions";
        let offsets = base64_offsets(needle);
        assert_eq!(offsets.len(), 3);
        for prefix in ["", "a", "ab", "abc", "hello there "] {
            let e = base64::engine::general_purpose::STANDARD
                .encode(format!("{prefix}{needle} and more"));
            assert!(
                offsets.iter().any(|o| e.contains(o.as_str())),
                "{prefix:?}: {e} {offsets:?}"
            );
        }
    }
}
