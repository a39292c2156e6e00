//! `mcp-audit search`: queries the HTTP API and prints a table, or JSON with `--json`.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::client::{error_chain, TlsArgs, DEFAULT_HTTP};

#[derive(clap::Args)]
pub struct Args {
    /// HTTP API of the collector.
    #[arg(long, env = "MCP_AUDIT_HTTP_ENDPOINT", default_value = DEFAULT_HTTP)]
    endpoint: String,
    #[arg(long, env = "MCP_AUDIT_TOKEN")]
    token: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    /// How far back to look, e.g. 15m, 2h, 7d.
    #[arg(long, default_value = "24h")]
    since: String,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
    /// The query, e.g. `tool:delete_file AND user:alice`.
    query: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let q = args.query.join(" ");
    let url = format!("{}/api/v1/search", args.endpoint.trim_end_matches('/'));
    let client = args.tls.load()?.http_client()?;
    let mut req = client.get(&url).query(&[
        ("q", q.as_str()),
        ("start", &format!("-{}", args.since)),
        ("limit", &args.limit.to_string()),
    ]);
    if let Some(t) = &args.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the collector at {}: {}; is `mcp-audit serve` running{}?",
            args.endpoint,
            error_chain(&e),
            if args.endpoint.starts_with("https://") {
                " with TLS, and is its certificate trusted (`--ca-cert`)"
            } else {
                " (without TLS; use https:// if it serves TLS)"
            }
        )
    })?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .context("the collector's answer is not JSON")?;
    if !status.is_success() {
        anyhow::bail!(
            "{}",
            body.get("detail")
                .and_then(Value::as_str)
                .unwrap_or("search failed")
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let hits = body
        .get("hits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    println!(
        "{:<20} {:<10} {:<28} {:<14} {:>7}  ARGUMENTS",
        "TIME", "USER", "SERVER/TOOL", "OUTCOME", "MS"
    );
    for h in &hits {
        let s = |k: &str| printable(h.get(k).and_then(Value::as_str).unwrap_or(""));
        let time = s("timestamp")
            .chars()
            .take(19)
            .collect::<String>()
            .replace('T', " ");
        let tool = format!("{}/{}", s("server"), s("tool"));
        let args_text = h
            .get("arguments")
            .map(|a| a.to_string())
            .unwrap_or_default();
        let args_short: String = printable(&args_text).chars().take(60).collect();
        let ms = h.get("duration_ms").and_then(Value::as_u64).unwrap_or(0);
        println!(
            "{:<20} {:<10} {:<28} {:<14} {:>7}  {}",
            time,
            trunc(&s("user"), 10),
            trunc(&tool, 28),
            s("outcome"),
            ms,
            args_short
        );
    }
    let total = body.get("total").and_then(Value::as_u64).unwrap_or(0);
    let took = body.get("took_ms").and_then(Value::as_u64).unwrap_or(0);
    let plus = if body.get("total_relation").and_then(Value::as_str) == Some("gte") {
        "+"
    } else {
        ""
    };
    eprintln!(
        "{} of {}{plus} matching events ({took} ms)",
        hits.len(),
        thousands(total)
    );
    Ok(ExitCode::SUCCESS)
}

/// Stored text as it may safely reach a terminal: anyone who can ingest controls it, so
/// control characters (escape sequences) and bidirectional overrides are shown escaped,
/// never interpreted.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}');
        if c.is_control() || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_escaped() {
        let shown = printable("alice\x1b[2J\x1b]0;owned\x07\u{202e}txt.exe\tok");
        assert!(!shown.chars().any(|c| c.is_control()), "{shown}");
        assert!(shown.contains("\\u{1b}[2J"), "{shown}");
        assert!(shown.contains("\\u{202e}"), "{shown}");
        assert_eq!(printable("plain text é"), "plain text é");
    }
}
