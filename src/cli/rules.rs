//! `mcp-audit rules check FILE...` and `mcp-audit rules test FILE... --events EVENTS.jsonl`:
//! rule files checked and tried offline, without a collector.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::event::{StoredEvent, GENESIS_HASH};
use crate::rules::{compile_file, Engine, Rule};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check rule files; every problem is reported with its line, column and field.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run rule files over events (JSON Lines, as `ship` reads them) and print what fires and why.
    Test {
        /// Rule files (YAML); `builtin` for the built-in pack.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The events, in order; `-` for stdin.
        #[arg(long)]
        events: PathBuf,
        /// Print findings as JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check { files } => check(&files),
        Command::Test {
            files,
            events,
            json,
        } => test(&files, &events, json),
    }
}

fn load(file: &PathBuf) -> Result<Vec<Rule>, Vec<String>> {
    if file.as_os_str() == "builtin" {
        return crate::rules::pack::builtin()
            .map_err(|e| e.iter().map(ToString::to_string).collect());
    }
    let origin = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![format!(
            "{origin}: cannot read: {}",
            crate::error::describe_io(&e)
        )]
    })?;
    compile_file(&origin, &text, false).map_err(|e| e.iter().map(ToString::to_string).collect())
}

fn check(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut bad = 0;
    for f in files {
        match load(f) {
            Ok(rules) => {
                let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
                println!(
                    "{}: ok, {} rules: {}",
                    f.display(),
                    rules.len(),
                    ids.join(", ")
                );
            }
            Err(errors) => {
                bad += errors.len();
                for e in errors {
                    println!("{e}");
                }
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} problems");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn test(files: &[PathBuf], events: &PathBuf, json: bool) -> anyhow::Result<ExitCode> {
    let mut rules = Vec::new();
    for f in files {
        match load(f) {
            Ok(r) => rules.extend(r),
            Err(errors) => {
                for e in errors {
                    eprintln!("{e}");
                }
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let reader: Box<dyn BufRead> = if events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(events)
                .with_context(|| format!("cannot open {}", events.display()))?,
        ))
    };
    // Events are scrubbed as the collector would, so rules on redactions see them.
    let scrubber =
        crate::scrub::Scrubber::new(&crate::scrub::ScrubConfig::default(), rand::random())?;
    let mut engine = Engine::new(rules, crate::rules::DEFAULT_KEY_CAP);
    let now = time::OffsetDateTime::now_utc();
    let mut fired = 0usize;
    let mut n = 0u64;
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", events.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut event = match crate::ingest::json::decode_line(&line) {
            Ok(e) => e,
            Err(invalid) => {
                eprintln!(
                    "{}:{}: skipped: {}",
                    events.display(),
                    i + 1,
                    invalid.reason
                );
                continue;
            }
        };
        if event.event_id.is_empty() {
            event.event_id = format!("line-{}", i + 1);
        }
        let redactions = scrubber.scrub(&mut event);
        n += 1;
        let stored = StoredEvent {
            event,
            tenant: crate::ingest::DEFAULT_TENANT.to_string(),
            received_at: now,
            seq: n,
            hash: hex::encode(GENESIS_HASH),
            redactions,
        };
        for f in engine.evaluate(&stored, n) {
            fired += 1;
            if json {
                println!("{}", serde_json::to_string(&f)?);
            } else {
                println!(
                    "{}:{}: {} [{}] {}\n    events: {}",
                    events.display(),
                    i + 1,
                    f.rule,
                    f.severity.as_str(),
                    f.explanation,
                    f.event_ids.join(", ")
                );
            }
        }
    }
    eprintln!("{fired} findings over {n} events");
    Ok(ExitCode::SUCCESS)
}
