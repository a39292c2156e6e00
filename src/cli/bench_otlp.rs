//! `mcp-audit bench --otlp`: OTLP ingest against native ingest, on the same collector in the
//! same run.
//!
//! Both sides send the same generated ~1 KB events: natively as `ToolCallEvent`s on `Ship`
//! streams (as plain `bench` does), and as OTLP spans on `TraceService/Export` calls, each
//! span carrying the event in MCP/GenAI attributes (arguments and result opted in) the way a
//! gateway would report it (CLIENT kind, `server.address` naming the server). The two
//! alternate in rounds so that both see the collector in the same state (WAL size, index
//! merges, page cache); each side's rate is its acknowledged (durable) events over its own
//! wall time. Connections, batch size and in-flight batches per connection are the same.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use prost::Message;
use time::OffsetDateTime;

use super::bench::{connection, Args};
use super::client::{bearer, channel};
use crate::demo::Generator;
use crate::event::{Event, Outcome};
use crate::ingest::otlp::pb::collector::trace::v1::trace_service_client::TraceServiceClient;
use crate::ingest::otlp::pb::collector::trace::v1::ExportTraceServiceRequest;
use crate::ingest::otlp::pb::common::v1::{any_value, AnyValue, KeyValue};
use crate::ingest::otlp::pb::resource::v1::Resource;
use crate::ingest::otlp::pb::trace::v1::span::SpanKind;
use crate::ingest::otlp::pb::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
use crate::ingest::proto as convert;
use crate::proto::ToolCallEvent;

/// Largest OTLP request the load generator sends or accepts back (as `ship`'s limit).
const MAX_MESSAGE: usize = 64 << 20;

fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// The span a gateway would export for `e` (ids and times are set per send).
fn span_of(e: &Event) -> Span {
    let mut attributes = vec![
        kv("mcp.method.name", e.method.clone()),
        kv("gen_ai.operation.name", "execute_tool"),
        kv("gen_ai.tool.name", e.tool.clone()),
        kv("server.address", e.server.clone()),
        kv("mcp.protocol.version", "2025-11-25"),
        kv("jsonrpc.request.id", "1"),
        kv("network.transport", "tcp"),
    ];
    for (key, value) in [
        ("user.id", &e.user),
        ("gen_ai.conversation.id", &e.conversation_id),
        ("mcp.session.id", &e.session_id),
        ("gen_ai.tool.call.result", &e.result),
    ] {
        if !value.is_empty() {
            attributes.push(kv(key, value.clone()));
        }
    }
    if !e.arguments.is_null() {
        attributes.push(kv("gen_ai.tool.call.arguments", e.arguments.to_string()));
    }
    let status = (e.outcome != Outcome::Ok).then(|| {
        attributes.push(kv("error.type", "tool_error"));
        Status {
            code: status::StatusCode::Error as i32,
            message: e.error.clone(),
        }
    });
    Span {
        name: format!("{} {}", e.method, e.tool),
        kind: SpanKind::Client as i32,
        attributes,
        status,
        ..Default::default()
    }
}

pub(super) async fn run(args: &Args, rounds: usize) -> anyhow::Result<ExitCode> {
    let rounds = rounds.max(1);
    let connections = args.connections.max(1);
    let mut g = Generator::new(args.seed);
    let now = OffsetDateTime::now_utc();
    let events: Vec<Event> = (0..1024).map(|_| g.benign(now, args.event_bytes)).collect();
    let native: Vec<ToolCallEvent> = events.iter().map(convert::encode).collect();
    let spans: Vec<Span> = events.iter().map(span_of).collect();
    let native_bytes = native.iter().map(Message::encoded_len).sum::<usize>() / native.len();
    let span_bytes = spans.iter().map(Message::encoded_len).sum::<usize>() / spans.len();
    let attr_bytes = spans
        .iter()
        .map(|s| s.attributes.iter().map(Message::encoded_len).sum::<usize>())
        .sum::<usize>()
        / spans.len();
    let per_phase = (args.events / (2 * rounds as u64)).max(1);
    println!(
        "bench --otlp: {rounds} rounds of {per_phase} native events then {per_phase} OTLP spans; ~{native_bytes} bytes per native event, ~{span_bytes} bytes per span (~{attr_bytes} bytes of attributes); {connections} connections, batch {}, pipeline {}",
        args.batch, args.pipeline
    );
    let run_id = rand::random::<u32>();
    let (mut native_n, mut native_t) = (0u64, Duration::ZERO);
    let (mut otlp_n, mut otlp_t) = (0u64, Duration::ZERO);
    for round in 0..rounds {
        let (n, t) = native_phase(args, &native, run_id, round, per_phase).await?;
        native_n += n;
        native_t += t;
        let (m, u) = otlp_phase(args, &spans, run_id, round, per_phase).await?;
        otlp_n += m;
        otlp_t += u;
        println!(
            "round {}: native {:.0} events/s, OTLP {:.0} spans/s",
            round + 1,
            n as f64 / t.as_secs_f64(),
            m as f64 / u.as_secs_f64()
        );
    }
    let native_rate = native_n as f64 / native_t.as_secs_f64();
    let otlp_rate = otlp_n as f64 / otlp_t.as_secs_f64();
    println!(
        "native Ship: {native_n} events acked in {:.2} s = {native_rate:.0} events/s",
        native_t.as_secs_f64()
    );
    println!(
        "OTLP/gRPC Export: {otlp_n} spans acked in {:.2} s = {otlp_rate:.0} spans/s",
        otlp_t.as_secs_f64()
    );
    println!(
        "OTLP / native = {:.2}",
        if native_rate > 0.0 {
            otlp_rate / native_rate
        } else {
            0.0
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// One round's native phase: `n` events over `Ship` streams; (acked, wall time).
async fn native_phase(
    args: &Args,
    pool: &[ToolCallEvent],
    run_id: u32,
    round: usize,
    n: u64,
) -> anyhow::Result<(u64, Duration)> {
    let connections = args.connections.max(1);
    let tag = format!("{run_id:08x}-n{round}");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let share = n / connections as u64 + u64::from(c == 0) * (n % connections as u64);
        let (args, pool, tag) = (args.clone(), pool.to_vec(), tag.clone());
        tasks.push(tokio::spawn(async move {
            connection(c, share, &args, &pool, &tag).await
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.context("a connection task failed")??.accepted;
    }
    Ok((acked, started.elapsed()))
}

/// One round's OTLP phase: `n` spans over `Export` calls; (acked, wall time).
async fn otlp_phase(
    args: &Args,
    pool: &[Span],
    run_id: u32,
    round: usize,
    n: u64,
) -> anyhow::Result<(u64, Duration)> {
    let connections = args.connections.max(1);
    let tls = args.tls.load()?;
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(
            TraceServiceClient::new(channel(&args.endpoint, &tls).await?)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        );
    }
    let auth = bearer(args.token.as_deref())?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, client) in clients.into_iter().enumerate() {
        let share = n / connections as u64 + u64::from(c == 0) * (n % connections as u64);
        let (args, pool, auth) = (args.clone(), pool.to_vec(), auth.clone());
        tasks.push(tokio::spawn(async move {
            // Ids unique per run, round, connection and span: every span is a new event.
            let mut trace_id = [0u8; 16];
            trace_id[..4].copy_from_slice(&run_id.to_be_bytes());
            trace_id[4..8].copy_from_slice(&(round as u32).to_be_bytes());
            trace_id[8..12].copy_from_slice(&(c as u32).to_be_bytes());
            trace_id[15] = 1;
            let mut in_flight = FuturesUnordered::new();
            let (mut sent, mut acked) = (0u64, 0u64);
            while sent < share || !in_flight.is_empty() {
                if sent < share && in_flight.len() < args.pipeline.max(1) {
                    let size = (args.batch as u64).min(share - sent);
                    let end = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
                    let spans = (0..size)
                        .map(|i| {
                            let k = sent + i;
                            let mut s = pool[(k as usize + c * 7) % pool.len()].clone();
                            s.trace_id = trace_id.to_vec();
                            s.span_id = (k + 1).to_be_bytes().to_vec();
                            s.start_time_unix_nano = end - 25_000_000;
                            s.end_time_unix_nano = end;
                            s
                        })
                        .collect();
                    let export = ExportTraceServiceRequest {
                        resource_spans: vec![ResourceSpans {
                            resource: Some(Resource {
                                attributes: vec![kv("service.name", "bench-gateway")],
                                ..Default::default()
                            }),
                            scope_spans: vec![ScopeSpans {
                                spans,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                    };
                    let mut req = tonic::Request::new(export);
                    if let Some(v) = &auth {
                        req.metadata_mut().insert("authorization", v.clone());
                    }
                    let mut client = client.clone();
                    in_flight.push(async move { (size, client.export(req).await) });
                    sent += size;
                    continue;
                }
                if let Some((size, answer)) = in_flight.next().await {
                    let answer = answer.context("the collector failed an OTLP export")?;
                    let rejected = answer
                        .into_inner()
                        .partial_success
                        .map_or(0, |p| p.rejected_spans.max(0) as u64);
                    acked += size.saturating_sub(rejected);
                }
            }
            anyhow::Ok(acked)
        }));
    }
    let mut acked = 0;
    for t in tasks {
        acked += t.await.context("an OTLP connection task failed")??;
    }
    Ok((acked, started.elapsed()))
}
