//! `mcp-audit ship`: JSON Lines → gRPC, in batches, retrying transient failures with the same
//! event ids (safe: the collector never stores an event id twice).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::client::{connect, request, transient, DEFAULT_GRPC};
use crate::ingest::{json, proto as convert};
use crate::proto::{ShipRequest, ToolCallEvent};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "MCP_AUDIT_ENDPOINT", default_value = DEFAULT_GRPC)]
    endpoint: String,
    #[arg(long, env = "MCP_AUDIT_TOKEN")]
    token: Option<String>,
    /// Events per batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Batches in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Attempts per batch before giving up on a transient error.
    #[arg(long, default_value_t = 8)]
    retries: u32,
    /// JSON Lines files; `-` or nothing for stdin.
    files: Vec<PathBuf>,
}

/// One line that became an event to send.
struct Line {
    /// Where it came from, for messages: `file:line`.
    origin: String,
    event: ToolCallEvent,
}

struct Outcome {
    accepted: usize,
    rejected: Vec<(String, String)>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut lines = Vec::new();
    let mut rejected = Vec::new();
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files
            .iter()
            .map(|f| (f.as_os_str() != "-").then(|| f.clone()))
            .collect()
    };
    for input in inputs {
        let (name, reader): (String, Box<dyn BufRead>) = match &input {
            None => ("stdin".into(), Box::new(std::io::stdin().lock())),
            Some(p) => (
                p.display().to_string(),
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(p)
                        .with_context(|| format!("cannot open {}", p.display()))?,
                )),
            ),
        };
        for (i, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {name}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let origin = format!("{name}:{}", i + 1);
            match json::decode_line(&line) {
                Ok(mut ev) => {
                    // Assign ids here, not on the server, so a retried batch keeps them and
                    // cannot be stored twice.
                    if ev.event_id.is_empty() {
                        ev.event_id = uuid::Uuid::now_v7().to_string();
                    }
                    lines.push(Line {
                        origin,
                        event: convert::encode(&ev),
                    });
                }
                Err(invalid) => rejected.push((origin, invalid.reason)),
            }
        }
    }
    let total = lines.len();
    let read = total + rejected.len();
    let bar = ProgressBar::new(total as u64);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} events {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let client = connect(&args.endpoint).await?;
    let batches: Vec<Vec<Line>> = {
        let mut out = Vec::new();
        let mut it = lines.into_iter().peekable();
        while it.peek().is_some() {
            out.push(it.by_ref().take(args.batch.max(1)).collect());
        }
        out
    };
    let token = args.token.clone();
    let mut results = futures::stream::iter(batches.into_iter().map(|batch| {
        let mut client = client.clone();
        let token = token.clone();
        let bar = bar.clone();
        let retries = args.retries;
        async move {
            let origins: Vec<String> = batch.iter().map(|l| l.origin.clone()).collect();
            let msg = ShipRequest {
                events: batch.into_iter().map(|l| l.event).collect(),
            };
            let mut attempt = 0;
            loop {
                attempt += 1;
                match client.send(request(msg.clone(), token.as_deref())?).await {
                    Ok(resp) => {
                        let resp = resp.into_inner();
                        bar.inc(origins.len() as u64);
                        let rejected = resp
                            .rejected
                            .into_iter()
                            .map(|r| {
                                (
                                    origins
                                        .get(r.index as usize)
                                        .cloned()
                                        .unwrap_or_else(|| format!("#{}", r.index)),
                                    r.reason,
                                )
                            })
                            .collect();
                        return Ok::<_, anyhow::Error>(Outcome {
                            accepted: resp.accepted.len(),
                            rejected,
                        });
                    }
                    Err(status) if transient(&status) && attempt < retries => {
                        let wait = Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
                            + Duration::from_millis(rand::random::<u64>() % 100);
                        bar.println(format!(
                            "retrying a batch of {} after: {} (attempt {attempt}/{retries})",
                            origins.len(),
                            status.message()
                        ));
                        tokio::time::sleep(wait).await;
                    }
                    Err(status) => anyhow::bail!(
                        "the collector refused a batch starting at {}: {:?}: {}",
                        origins.first().map(String::as_str).unwrap_or("?"),
                        status.code(),
                        status.message()
                    ),
                }
            }
        }
    }))
    .buffered(args.concurrency.max(1));
    let mut accepted = 0;
    while let Some(r) = results.next().await {
        let r = r?;
        accepted += r.accepted;
        rejected.extend(r.rejected);
    }
    bar.finish_and_clear();
    rejected.sort();
    for (origin, reason) in &rejected {
        eprintln!("rejected {origin}: {reason}");
    }
    eprintln!(
        "shipped {accepted} of {read} events ({} rejected)",
        rejected.len()
    );
    Ok(if rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
