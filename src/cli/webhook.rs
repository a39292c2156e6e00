//! `mcp-audit webhook verify` checks a delivered request's Standard Webhooks signature;
//! `mcp-audit webhook test NAME` sends a signed test notification to a configured destination.

use std::collections::VecDeque;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use time::OffsetDateTime;

use crate::alerts::webhook::{self, Outcome};
use crate::alerts::{Alert, AlertStatus};
use crate::config::{Config, Overrides};
use crate::rules::Severity;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check the signature of a delivered webhook request: the raw request (headers, a blank
    /// line, the body) from FILE or stdin. Exit 0 when valid, 1 when not.
    Verify {
        /// The destination's secret (`whsec_...`); repeat for rotated secrets.
        #[arg(long, required = true)]
        secret: Vec<String>,
        /// The raw request; `-` or nothing for stdin.
        file: Option<PathBuf>,
        /// Largest accepted distance of `webhook-timestamp` from now, in seconds.
        #[arg(long, default_value_t = 300)]
        tolerance_secs: i64,
        /// Skip the timestamp check (for requests captured earlier).
        #[arg(long)]
        no_time_check: bool,
    },
    /// Send a signed test notification to the configured destination NAME and print the answer.
    Test {
        name: String,
        /// TOML config file (as for `serve`).
        #[arg(long, env = "MCP_AUDIT_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub async fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Verify {
            secret,
            file,
            tolerance_secs,
            no_time_check,
        } => verify(&secret, file, (!no_time_check).then_some(tolerance_secs)),
        Command::Test { name, config } => test(&name, config).await,
    }
}

/// Header names (lower-cased) and values.
type Headers = Vec<(String, String)>;

/// Splits a raw request into its headers and its body.
fn split_request(raw: &[u8]) -> anyhow::Result<(Headers, &[u8])> {
    let (head, body) = [&b"\r\n\r\n"[..], b"\n\n"]
        .iter()
        .filter_map(|sep| {
            raw.windows(sep.len())
                .position(|w| w == *sep)
                .map(|i| (&raw[..i], &raw[i + sep.len()..]))
        })
        .min_by_key(|(h, _)| h.len())
        .context("no blank line between headers and body: give the raw request (headers, a blank line, the body)")?;
    let head = std::str::from_utf8(head).context("the headers are not UTF-8")?;
    let headers = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| !k.contains(' '))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((headers, body))
}

fn verify(
    secrets: &[String],
    file: Option<PathBuf>,
    tolerance: Option<i64>,
) -> anyhow::Result<ExitCode> {
    let keys = secrets
        .iter()
        .map(|s| webhook::parse_secret(s).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut raw = Vec::new();
    match file.as_deref() {
        None => std::io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read stdin")?,
        Some(p) if p.as_os_str() == "-" => std::io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read stdin")?,
        Some(p) => {
            raw = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            raw.len()
        }
    };
    let (headers, body) = split_request(&raw)?;
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .with_context(|| format!("the request has no `{name}` header"))
    };
    let (id, ts, sig) = (
        get("webhook-id")?,
        get("webhook-timestamp")?,
        get("webhook-signature")?,
    );
    match webhook::verify(
        &keys,
        id,
        ts,
        sig,
        body,
        OffsetDateTime::now_utc().unix_timestamp(),
        tolerance,
    ) {
        Ok(()) => {
            println!(
                "valid: webhook-id {id}, timestamp {ts}, {} body bytes",
                body.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("INVALID: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn test(name: &str, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config.as_deref(), std::env::vars(), &Overrides::default())?;
    let Some(w) = config.webhooks.iter().find(|w| w.name == name) else {
        let names: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
        anyhow::bail!(
            "no webhook named {name:?} in the config; configured: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
    };
    let now = OffsetDateTime::now_utc();
    let alert = Alert {
        id: uuid::Uuid::now_v7().simple().to_string(),
        tenant: "default".into(),
        rule: "mcp-audit-test".into(),
        title: "mcp-audit webhook test".into(),
        severity: Severity::Informational,
        tags: vec!["test".into()],
        group_key: String::new(),
        status: AlertStatus::Firing,
        first_seen: now,
        last_seen: now,
        updated_at: now,
        count: 1,
        suppressed_count: 0,
        unnotified: 0,
        silenced_count: 0,
        silenced_by: None,
        finding_ids: VecDeque::new(),
        event_ids: VecDeque::new(),
        explanations: VecDeque::from([
            "a test notification sent by `mcp-audit webhook test`".to_string()
        ]),
        notifications: 1,
        last_notified: Some(now),
        next_notify: None,
        acknowledged_by: None,
        acknowledged_at: None,
        resolved_at: None,
        resolved_by: None,
    };
    let external = if config.alerts.external_url.is_empty() {
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", config.http_listen)
    } else {
        config.alerts.external_url.clone()
    };
    let body = webhook::render(w, &alert, "test", &external, now);
    let client = webhook::client(w).map_err(anyhow::Error::msg)?;
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    match webhook::send(&client, w, &id, &body, now).await {
        Outcome::Delivered(status) => {
            println!("delivered: {} answered {status} (webhook-id {id})", w.name);
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Gone => {
            println!(
                "{} answered 410 Gone: the collector would disable this destination",
                w.name
            );
            Ok(ExitCode::FAILURE)
        }
        Outcome::Retry { error, .. } => {
            println!("not delivered to {}: {error}", w.name);
            Ok(ExitCode::FAILURE)
        }
    }
}
