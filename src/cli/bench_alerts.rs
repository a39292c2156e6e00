//! `mcp-audit bench --alerts N`: webhook delivery end to end. Runs a webhook receiver on
//! loopback, sends N events that each open an alert of their own (a path traversal by a
//! user of its own) at `--rate`, and measures, for each, the time from the event's durable
//! ack to the webhook request that carries it, the delivery rate and the collector's RSS.
//! The collector needs a `generic` webhook to the receiver (the command prints it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use time::OffsetDateTime;

use super::bench::{ms, percentile, sample_rss, Args};
use super::client::{connect, request};
use crate::demo::Generator;
use crate::ingest::proto as convert;
use crate::proto::ShipRequest;

/// Per event: when its ack came back and when its webhook arrived.
#[derive(Default, Clone, Copy)]
struct Times {
    acked: Option<Instant>,
    delivered: Option<Instant>,
}

pub async fn run(
    args: &Args,
    n: usize,
    listen: SocketAddr,
) -> anyhow::Result<std::process::ExitCode> {
    let run_id = format!("{:08x}", rand::random::<u32>());
    let times: Arc<Mutex<Vec<Times>>> = Arc::new(Mutex::new(vec![Times::default(); n]));
    let received = Arc::new(AtomicU64::new(0));
    let prefix = format!("bench-{run_id}-alert-");
    let app = {
        let (times, received, prefix) = (times.clone(), received.clone(), prefix.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (times, received, prefix) = (times.clone(), received.clone(), prefix.clone());
                async move {
                    let now = Instant::now();
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                        let ids = v["data"]["event_ids"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        for id in ids.iter().filter_map(|i| i.as_str()) {
                            if let Some(i) = id
                                .strip_prefix(&prefix)
                                .and_then(|k| k.parse::<usize>().ok())
                            {
                                let mut t = times.lock().unwrap_or_else(|e| e.into_inner());
                                if let Some(slot) = t.get_mut(i) {
                                    if slot.delivered.is_none() {
                                        slot.delivered = Some(now);
                                        received.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                        }
                    }
                    "ok"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for webhooks (--receiver-listen)"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    println!(
        "bench --alerts: {n} alerts at {}/s; the collector needs this webhook:",
        args.rate.unwrap_or(1000)
    );
    println!("  [[webhooks]]\n  name = \"bench\"\n  url = \"http://{listen}/hook\"\n  secret = \"whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA==\"\n  allow_private = true\n  rules = [\"mcp-path-traversal\"]");

    let base = args.http_endpoint.trim_end_matches('/').to_string();
    let tls = args.tls.load()?;
    let http = tls.http_client()?;
    let (sampler, peak) = sample_rss(&http, &base);

    let mut client = connect(&args.endpoint, &tls).await?;
    let rate = args.rate.unwrap_or(1000).max(1) as f64;
    let batch = args.batch.clamp(1, 100);
    let (tx, rx) = tokio::sync::mpsc::channel::<ShipRequest>(4);
    let mut responses = client
        .ship(request(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            args.token.as_deref(),
        )?)
        .await
        .context("cannot open a Ship stream")?
        .into_inner();
    let mut g = Generator::new(args.seed);
    let started = Instant::now();
    let sender = {
        let prefix = prefix.clone();
        let run_id = run_id.clone();
        tokio::spawn(async move {
            let mut sent = 0usize;
            while sent < n {
                let due = started + Duration::from_secs_f64(sent as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let size = batch.min(n - sent);
                let now = OffsetDateTime::now_utc();
                let events = (sent..sent + size)
                    .map(|i| {
                        let mut e = g.benign(now, 300);
                        e.event_id = format!("{prefix}{i}");
                        e.method = "tools/call".into();
                        e.user = format!("bench-{run_id}-{i}");
                        e.arguments = serde_json::json!({ "path": "../../../../etc/shadow" });
                        convert::encode(&e)
                    })
                    .collect();
                if tx.send(ShipRequest { events }).await.is_err() {
                    break;
                }
                sent += size;
            }
        })
    };
    let mut acked = 0usize;
    while acked < n {
        let resp = responses
            .next()
            .await
            .context("the collector closed the stream early")?
            .context("the collector failed a batch")?;
        let now = Instant::now();
        let mut t = times.lock().unwrap_or_else(|e| e.into_inner());
        for id in &resp.accepted {
            if let Some(i) = id
                .strip_prefix(&prefix)
                .and_then(|k| k.parse::<usize>().ok())
            {
                if let Some(slot) = t.get_mut(i) {
                    slot.acked = Some(now);
                }
            }
        }
        acked += resp.accepted.len() + resp.rejected.len();
        anyhow::ensure!(
            resp.rejected.is_empty(),
            "the collector rejected events: {:?}",
            resp.rejected
        );
    }
    let _ = sender.await;
    let sent_in = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (received.load(Ordering::Relaxed) as usize) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_in = started.elapsed();
    sampler.abort();
    let t = times.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut lat: Vec<Duration> = t
        .iter()
        .filter_map(|x| Some(x.delivered?.saturating_duration_since(x.acked?)))
        .collect();
    lat.sort();
    let got = received.load(Ordering::Relaxed);
    let last = t.iter().filter_map(|x| x.delivered).max();
    println!(
        "sent {n} alert-opening events in {:.2} s; {got} webhooks received, the last {:.2} s after the start ({:.0} alerts/s delivered)",
        sent_in.as_secs_f64(),
        last.map_or(all_in, |l| l - started).as_secs_f64(),
        got as f64 / last.map_or(all_in, |l| l - started).as_secs_f64()
    );
    if !lat.is_empty() {
        println!(
            "event ack -> webhook request: p50 {}  p99 {}  max {}",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(percentile(&lat, 1.0))
        );
    }
    println!(
        "collector RSS peak (sampled every 250 ms): {:.0} MiB",
        peak.load(Ordering::Relaxed) as f64 / (1 << 20) as f64
    );
    if (got as usize) < n {
        println!(
            "MISSING: {} alerts never arrived within 120 s",
            n - got as usize
        );
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}
