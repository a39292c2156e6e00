//! `mcp-audit bench` (load generator) and `mcp-audit demo` (a generated day of realistic
//! traffic, attack scenarios included, streamed over gRPC).
//!
//! `bench` streams generated ~1 KB events over real gRPC `Ship` streams, measures ack latency
//! per batch (send → durable ack), waits until every event is searchable, then times
//! `user:X AND tool:Y` searches over the last 24 h, and samples the collector's RSS from
//! `/metrics` throughout. With `--write FILE` it writes the events as JSON Lines instead, to
//! measure `ship` on a file; with `--otlp` it compares OTLP ingest with native ingest
//! (`bench_otlp.rs`).

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::client::{connect, request, TlsArgs, DEFAULT_GRPC, DEFAULT_HTTP};
use crate::demo::Generator;
use crate::ingest::proto as convert;
use crate::proto::{ShipRequest, ToolCallEvent};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[arg(long, env = "MCP_AUDIT_ENDPOINT", default_value = DEFAULT_GRPC)]
    pub(super) endpoint: String,
    /// HTTP API, for the searchable check, the search timing and RSS sampling.
    #[arg(long, env = "MCP_AUDIT_HTTP_ENDPOINT", default_value = DEFAULT_HTTP)]
    pub(super) http_endpoint: String,
    #[arg(long, env = "MCP_AUDIT_TOKEN")]
    pub(super) token: Option<String>,
    #[command(flatten)]
    pub(super) tls: TlsArgs,
    /// Events to send.
    #[arg(long, default_value_t = 200_000)]
    pub(super) events: u64,
    /// gRPC connections, each with one Ship stream.
    #[arg(long, default_value_t = 4)]
    pub(super) connections: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 500)]
    pub(super) batch: usize,
    /// Batches in flight per stream.
    #[arg(long, default_value_t = 4)]
    pub(super) pipeline: usize,
    /// Target total rate in events/s (default: as fast as acks come back).
    #[arg(long)]
    pub(super) rate: Option<u64>,
    /// Searches to time after ingest (0 to skip).
    #[arg(long, default_value_t = 200)]
    searches: usize,
    /// Probe events to send during the load, one every 250 ms, each of which a built-in rule
    /// flags (a path traversal): reports the time from a probe's ack until its finding is
    /// served by `GET /api/v1/findings` (0 to skip).
    #[arg(long, default_value_t = 20)]
    findings: usize,
    /// Approximate JSON size of each event.
    #[arg(long, default_value_t = 1000)]
    pub(super) event_bytes: usize,
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Write the events as JSON Lines to FILE (no collector needed), each a distinct event
    /// with its own id, timestamps spread over the hour before now, to benchmark `ship`.
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,
    /// Measure webhooks instead: send N events that each open an alert (`--rate` per second,
    /// default 1000), and time each from its ack to its webhook at `--receiver-listen`.
    #[arg(long, value_name = "N")]
    alerts: Option<usize>,
    /// Measure OTLP ingest instead: the same events as OTLP spans on `TraceService/Export`,
    /// alternating with native `Ship` in `--rounds` rounds; prints both rates and their ratio.
    #[arg(long)]
    otlp: bool,
    /// Rounds of `--otlp` (each sends `--events` / (2 × rounds) events per side).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Where the webhook receiver of `--alerts` listens.
    #[arg(long, default_value = "127.0.0.1:9911")]
    receiver_listen: std::net::SocketAddr,
}

#[derive(clap::Args)]
pub struct DemoArgs {
    #[arg(long, env = "MCP_AUDIT_ENDPOINT", default_value = DEFAULT_GRPC)]
    endpoint: String,
    #[arg(long, env = "MCP_AUDIT_TOKEN")]
    token: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    /// About how many events to send: a day is generated to this size (the attack
    /// scenarios alone are about 1,300 events; fewer sends the day's first N).
    #[arg(long, default_value_t = 5000)]
    events: u64,
    /// Events per second.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub(super) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(super) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub(super) struct ConnResult {
    latencies: Vec<Duration>,
    pub(super) accepted: u64,
    rejected: u64,
}

/// Searches the last 24 h: the total (exactly counted when `exact`) and the server's took_ms.
async fn search_total(
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    q: &str,
    exact: bool,
) -> anyhow::Result<(u64, u64)> {
    let mut req = http.get(format!("{base}/api/v1/search")).query(&[
        ("q", q),
        ("limit", if exact { "10" } else { "100" }),
        ("start", "-24h"),
    ]);
    if exact {
        req = req.query(&[("exact_total", "true")]);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let v: serde_json::Value = req.send().await?.error_for_status()?.json().await?;
    Ok((
        v["total"].as_u64().unwrap_or(0),
        v["took_ms"].as_u64().unwrap_or(0),
    ))
}

/// Samples the collector's RSS every 250 ms until the task is aborted; the peak seen so far.
pub(super) fn sample_rss(
    http: &reqwest::Client,
    base: &str,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
    let peak = Arc::new(AtomicU64::new(0));
    let (http, base, seen) = (http.clone(), base.to_string(), peak.clone());
    let task = tokio::spawn(async move {
        loop {
            if let Some(r) = rss_bytes(&http, &base).await {
                seen.fetch_max(r, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    (task, peak)
}

pub(super) async fn rss_bytes(http: &reqwest::Client, base: &str) -> Option<u64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("mcp_audit_process_resident_memory_bytes "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.write {
        return write_events(path, &args);
    }
    if let Some(n) = args.alerts {
        return super::bench_alerts::run(&args, n, args.receiver_listen).await;
    }
    if args.otlp {
        return super::bench_otlp::run(&args, args.rounds).await;
    }
    let base = args.http_endpoint.trim_end_matches('/').to_string();
    let http = args.tls.load()?.http_client()?;
    let run_id = format!("{:08x}", rand::random::<u32>());
    let (before, _) = search_total(&http, &base, args.token.as_deref(), "", true)
        .await
        .with_context(|| format!("cannot reach the HTTP API at {base}"))?;

    // A pool of realistic events; each send only changes id and timestamp, so the load
    // generator spends its CPU on the wire, not on making text.
    let mut g = Generator::new(args.seed);
    let now = OffsetDateTime::now_utc();
    let pool: Arc<Vec<ToolCallEvent>> = Arc::new(
        (0..1024)
            .map(|_| convert::encode(&g.benign(now, args.event_bytes)))
            .collect(),
    );
    let wire: usize = pool.iter().map(prost::Message::encoded_len).sum::<usize>() / pool.len();
    println!("bench: {} events of ~{} bytes (protobuf; ~{} bytes JSON), {} connections, batch {}, pipeline {}, rate {}", args.events, wire, args.event_bytes, args.connections, args.batch, args.pipeline, args.rate.map(|r| format!("{r}/s")).unwrap_or_else(|| "max".into()));

    let (sampler, peak_rss) = sample_rss(&http, &base);

    let probes = (args.findings > 0).then(|| {
        let (args, http, base, run_id) = (args.clone(), http.clone(), base.clone(), run_id.clone());
        tokio::spawn(async move { finding_probes(&args, &http, &base, &run_id).await })
    });

    let started = Instant::now();
    let per_conn = args.events / args.connections.max(1) as u64;
    let mut tasks = Vec::new();
    for c in 0..args.connections.max(1) {
        let n = if c == 0 {
            per_conn + args.events % args.connections.max(1) as u64
        } else {
            per_conn
        };
        let (args, pool, run_id) = (args.clone(), pool.clone(), run_id.clone());
        tasks.push(tokio::spawn(async move {
            connection(c, n, &args, &pool, &run_id).await
        }));
    }
    let mut latencies = Vec::new();
    let (mut accepted, mut rejected) = (0u64, 0u64);
    for t in tasks {
        let r = t.await.context("a connection task failed")??;
        latencies.extend(r.latencies);
        accepted += r.accepted;
        rejected += r.rejected;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "ingest: {accepted} acked, {rejected} rejected in {:.2} s = {:.0} events/s",
        elapsed.as_secs_f64(),
        accepted as f64 / elapsed.as_secs_f64()
    );
    println!(
        "ack latency per batch: p50 {}  p99 {}  max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0))
    );

    let want = before + accepted;
    let wait_start = Instant::now();
    loop {
        let (total, _) = search_total(&http, &base, args.token.as_deref(), "", true).await?;
        if total >= want {
            println!(
                "searchable: all {accepted} events {:.2} s after the last ack (total {total})",
                wait_start.elapsed().as_secs_f64()
            );
            break;
        }
        if wait_start.elapsed() > Duration::from_secs(300) {
            println!(
                "searchable: only {} of {accepted} after 300 s",
                total.saturating_sub(before)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    if let Some(probes) = probes {
        let mut lat = probes.await.context("the finding probe task failed")??;
        lat.sort();
        println!(
            "finding served after its event's ack (path-traversal probes during the load): p50 {}  p99 {}  max {} ({} probes)",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(percentile(&lat, 1.0)),
            lat.len()
        );
    }

    if args.searches > 0 {
        let users = [
            "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
        ];
        let tools = [
            "read_file",
            "list_issues",
            "query",
            "post_message",
            "fetch",
            "create_ticket",
        ];
        let mut client_lat = Vec::with_capacity(args.searches);
        let mut server_lat = Vec::with_capacity(args.searches);
        for i in 0..args.searches {
            let q = format!(
                "user:{} AND tool:{}",
                users[i % users.len()],
                tools[(i / users.len()) % tools.len()]
            );
            let t = Instant::now();
            let (_, took) = search_total(&http, &base, args.token.as_deref(), &q, false).await?;
            client_lat.push(t.elapsed());
            server_lat.push(Duration::from_millis(took));
        }
        client_lat.sort();
        server_lat.sort();
        let (docs, _) = search_total(&http, &base, args.token.as_deref(), "", true).await?;
        println!(
            "search `user:X AND tool:Y` over 24 h ({docs} events): p50 {}  p99 {}  max {} (client-side); server took_ms p99 {}",
            ms(percentile(&client_lat, 0.5)),
            ms(percentile(&client_lat, 0.99)),
            ms(percentile(&client_lat, 1.0)),
            ms(percentile(&server_lat, 0.99))
        );
    }
    if args.searches > 0 {
        // Aggregations over the same 24 h: a 5-minute histogram and the top users.
        for (name, path, query) in [
            (
                "histogram 24 h / 5 m",
                "/api/v1/histogram",
                vec![("start", "-24h"), ("interval", "5m")],
            ),
            (
                "terms `user` 24 h",
                "/api/v1/terms",
                vec![("start", "-24h"), ("field", "user")],
            ),
        ] {
            let mut lat = Vec::new();
            for _ in 0..(args.searches / 4).max(5) {
                let t = Instant::now();
                let mut req = http.get(format!("{base}{path}")).query(&query);
                if let Some(tok) = &args.token {
                    req = req.bearer_auth(tok);
                }
                req.send().await?.error_for_status()?;
                lat.push(t.elapsed());
            }
            lat.sort();
            println!(
                "{name}: p50 {}  p99 {}  max {}",
                ms(percentile(&lat, 0.5)),
                ms(percentile(&lat, 0.99)),
                ms(percentile(&lat, 1.0))
            );
        }
    }
    if let Some(r) = rss_bytes(&http, &base).await {
        peak_rss.fetch_max(r, Ordering::Relaxed);
    }
    sampler.abort();
    println!(
        "collector RSS peak (sampled every 250 ms): {:.0} MiB",
        peak_rss.load(Ordering::Relaxed) as f64 / (1 << 20) as f64
    );
    Ok(ExitCode::SUCCESS)
}

/// Sends `args.findings` events that the built-in path-traversal rule flags, one every
/// 250 ms on a connection of their own, and for each the time from its ack until
/// `GET /api/v1/findings?event_id=` serves its finding.
async fn finding_probes(
    args: &Args,
    http: &reqwest::Client,
    base: &str,
    run_id: &str,
) -> anyhow::Result<Vec<Duration>> {
    let mut client = connect(&args.endpoint, &args.tls.load()?).await?;
    let mut g = Generator::new(args.seed ^ 0x5eed);
    let mut latencies = Vec::with_capacity(args.findings);
    for i in 0..args.findings {
        let mut e = g.benign(OffsetDateTime::now_utc(), 300);
        e.event_id = format!("bench-{run_id}-probe-{i}");
        e.method = "tools/call".into();
        e.user = format!("probe-{run_id}-{i}");
        e.arguments = serde_json::json!({ "path": "../../../../etc/shadow" });
        let batch = ShipRequest {
            events: vec![convert::encode(&e)],
        };
        let mut responses = client
            .ship(request(tokio_stream::iter([batch]), args.token.as_deref())?)
            .await
            .context("cannot open a Ship stream for a probe")?
            .into_inner();
        let resp = responses
            .next()
            .await
            .context("the collector closed the probe stream")?
            .context("the collector failed the probe")?;
        anyhow::ensure!(
            resp.accepted.len() == 1,
            "the collector did not accept the probe event: {:?}",
            resp.rejected
        );
        let acked = Instant::now();
        loop {
            let mut req = http
                .get(format!("{base}/api/v1/findings"))
                .query(&[("event_id", e.event_id.as_str()), ("since", "-1h")]);
            if let Some(t) = &args.token {
                req = req.bearer_auth(t);
            }
            let v: serde_json::Value = req.send().await?.error_for_status()?.json().await?;
            if v["findings"].as_array().is_some_and(|f| !f.is_empty()) {
                latencies.push(acked.elapsed());
                break;
            }
            anyhow::ensure!(
                acked.elapsed() < Duration::from_secs(60),
                "no finding for probe {} 60 s after its ack: are the rules enabled with the built-in pack?",
                e.event_id
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(latencies)
}

/// `bench --write FILE`: the generated events as JSON Lines.
fn write_events(path: &Path, args: &Args) -> anyhow::Result<ExitCode> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut g = Generator::new(args.seed);
    let now = OffsetDateTime::now_utc();
    // Within the last hour: searchable in the default 24 h range, and inside retention.
    let step = 3_600.0 / args.events.max(1) as f64;
    let mut bytes = 0u64;
    for i in 0..args.events {
        let ts = now - time::Duration::seconds_f64(3_600.0 - step * i as f64);
        let line = serde_json::to_vec(&g.benign(ts, args.event_bytes))?;
        bytes += line.len() as u64 + 1;
        out.write_all(&line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "wrote {} events, {:.0} bytes each on average, to {}",
        args.events,
        bytes as f64 / args.events.max(1) as f64,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn connection(
    c: usize,
    n: u64,
    args: &Args,
    pool: &[ToolCallEvent],
    run_id: &str,
) -> anyhow::Result<ConnResult> {
    let mut client = connect(&args.endpoint, &args.tls.load()?).await?;
    let (tx, rx) = mpsc::channel::<ShipRequest>(args.pipeline.max(1));
    let mut responses = client
        .ship(request(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            args.token.as_deref(),
        )?)
        .await
        .context("cannot open a Ship stream")?
        .into_inner();
    let per_conn_rate = args.rate.map(|r| r as f64 / args.connections.max(1) as f64);
    let mut sent_at: VecDeque<Instant> = VecDeque::new();
    let mut result = ConnResult {
        latencies: Vec::new(),
        accepted: 0,
        rejected: 0,
    };
    let mut sent = 0u64;
    let started = Instant::now();
    while sent < n || !sent_at.is_empty() {
        let can_send = sent < n && sent_at.len() < args.pipeline.max(1);
        let pace = match (can_send, per_conn_rate) {
            (true, Some(r)) => {
                let due = started + Duration::from_secs_f64(sent as f64 / r);
                due.saturating_duration_since(Instant::now())
            }
            _ => Duration::ZERO,
        };
        tokio::select! {
            biased;
            resp = responses.next(), if !sent_at.is_empty() => {
                let resp = resp.context("the collector closed the stream early")?.context("the collector failed a batch")?;
                if let Some(t) = sent_at.pop_front() {
                    result.latencies.push(t.elapsed());
                }
                result.accepted += resp.accepted.len() as u64;
                result.rejected += resp.rejected.len() as u64;
            }
            _ = tokio::time::sleep(pace), if can_send => {
                let size = (args.batch as u64).min(n - sent);
                let ts = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64;
                let events = (0..size)
                    .map(|i| {
                        let k = sent + i;
                        let mut e = pool[(k as usize + c * 7) % pool.len()].clone();
                        e.event_id = format!("bench-{run_id}-{c}-{k}");
                        e.timestamp_unix_micros = ts;
                        e
                    })
                    .collect();
                sent_at.push_back(Instant::now());
                tx.send(ShipRequest { events }).await.context("the Ship stream closed")?;
                sent += size;
            }
        }
    }
    drop(tx);
    Ok(result)
}

/// `mcp-audit demo`: a generated day of MCP traffic, attacks and near misses included,
/// streamed in time order at a steady rate. The day ends now and is sized to about
/// `--events` events; its events keep their own timestamps (over the last 24 hours), so
/// rates, sessions and silences look to rules as they would live.
pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let mut client = connect(&args.endpoint, &args.tls.load()?).await?;
    let now = OffsetDateTime::now_utc();
    let wanted = usize::try_from(args.events).unwrap_or(usize::MAX);
    let events = crate::demo::demo_day(
        args.seed,
        now - time::Duration::hours(24),
        time::Duration::hours(23),
        crate::demo::conversations_for(wanted),
    );
    let total = events.len().min(wanted);
    let mut sent = 0usize;
    let mut accepted = 0u64;
    let tick = Duration::from_millis(200);
    let per_tick = (args.rate as f64 * tick.as_secs_f64()).ceil().max(1.0) as usize;
    let mut interval = tokio::time::interval(tick);
    for chunk in events[..total].chunks(per_tick) {
        interval.tick().await;
        sent += chunk.len();
        let resp = client
            .send(request(
                ShipRequest {
                    events: chunk.iter().map(convert::encode).collect(),
                },
                args.token.as_deref(),
            )?)
            .await
            .context("the collector refused a demo batch")?
            .into_inner();
        accepted += resp.accepted.len() as u64;
        for r in resp.rejected {
            eprintln!("rejected #{}: {}", r.index, r.reason);
        }
    }
    eprintln!("demo: sent {sent} events ({accepted} accepted)");
    Ok(ExitCode::SUCCESS)
}
