//! Index throughput and query latency.
//!
//! - `index/add_commit`: events/s to add ~1 KB events and commit every 10,000 (the indexing
//!   thread's loop), into a fresh folder each iteration.
//! - `query/*`: latency over the last 24 hours of an index of generated events (two day
//!   indexes): `user:X AND tool:Y`, everything (first page), a histogram and a terms.
//!
//! Sizes: `INDEX_BENCH_EVENTS` (default 200,000) events per indexing iteration and
//! `INDEX_BENCH_QUERY_EVENTS` (default 200,000) in the queried index.

// The allocator of the `mcp-audit` binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mcp_audit::event::{Event, Outcome, StoredEvent};
use mcp_audit::index::{HistogramRequest, IndexConfig, Indexes, SearchRequest, TermsRequest};
use serde_json::json;
use time::OffsetDateTime;

const USERS: u64 = 50;
const TOOLS: u64 = 40;
const WORDS: &[&str] = &[
    "alpha", "branch", "commit", "deploy", "error", "fetch", "github", "issue", "json", "kernel",
    "lambda", "merge", "network", "object", "packet", "query", "review", "secret", "token",
    "update", "vector", "window", "yaml", "zone", "build", "cache", "docker", "file", "graph",
    "host",
];

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| WORDS[self.below(WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `n` events of about 1 KB of JSON each, spread evenly over the 24 hours before `now`, in
/// timestamp order.
fn events(n: u64, now: OffsetDateTime) -> Vec<StoredEvent> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let span = 86_400_000_000i64 - 1;
    (0..n)
        .map(|i| {
            let mut e = Event::new(format!("evt-{i:012}"), "tools/call", "");
            e.timestamp = now - time::Duration::microseconds(span - span / n as i64 * i as i64);
            e.tool = format!("tool{}", rng.below(TOOLS));
            e.user = format!("user{}", rng.below(USERS));
            e.server = format!("server{}", rng.below(8));
            e.source = "gateway-1".into();
            e.client = "claude-desktop".into();
            e.conversation_id = format!("conv-{}", rng.below(5000));
            e.trace_id = format!("{:032x}", rng.next());
            e.span_id = format!("{:016x}", rng.next());
            e.arguments = json!({
                "path": format!("/home/{}/src/{}.rs", e.user, rng.words(2).replace(' ', "/")),
                "query": rng.words(25),
                "options": {"recursive": rng.below(2) == 0, "limit": rng.below(1000)},
            });
            e.result = rng.words(55);
            e.result_bytes = rng.below(100_000);
            e.duration_ms = rng.below(5000);
            if rng.below(20) == 0 {
                e.outcome = Outcome::Error;
                e.error = format!("permission denied: {}", rng.words(4));
            }
            e.labels.insert(
                "env".into(),
                ["prod", "staging", "dev"][rng.below(3) as usize].into(),
            );
            StoredEvent {
                event: e,
                tenant: "acme".into(),
                received_at: now,
                seq: i + 1,
                hash: format!("{:064x}", u128::from(rng.next())),
                redactions: vec![],
            }
        })
        .collect()
}

fn config(dir: &std::path::Path) -> IndexConfig {
    IndexConfig {
        dir: dir.to_path_buf(),
        retention_days: 30,
        writer_memory_bytes: 256 << 20,
        writer_threads: 2,
        layout: mcp_audit::index::layout::Layout::default(),
    }
}

fn index_all(ix: &Indexes, events: &[StoredEvent]) {
    for (pos, e) in events.iter().enumerate() {
        ix.add(pos as u64, e).expect("add");
        if (pos + 1) % 10_000 == 0 {
            ix.commit(pos as u64 + 1).expect("commit");
        }
    }
    ix.commit(events.len() as u64).expect("commit");
}

fn env_count(name: &str) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

fn bench_indexing(c: &mut Criterion) {
    let n = env_count("INDEX_BENCH_EVENTS");
    let now = OffsetDateTime::now_utc();
    let events = events(n, now);
    let bytes: usize = events
        .iter()
        .map(|e| serde_json::to_vec(e).map_or(0, |v| v.len()))
        .sum();
    eprintln!(
        "index bench: {n} events, {} bytes of JSON on average",
        bytes / n as usize
    );
    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Elements(n));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("add_commit", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("tempdir"),
            |dir| {
                let ix = Indexes::open(config(dir.path())).expect("open");
                index_all(&ix, &events);
                (ix, dir) // dropped outside the measurement
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn bench_queries(c: &mut Criterion) {
    let n = env_count("INDEX_BENCH_QUERY_EVENTS");
    let now = OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().expect("tempdir");
    let ix = Indexes::open(config(dir.path())).expect("open");
    let started = std::time::Instant::now();
    index_all(&ix, &events(n, now));
    eprintln!(
        "query bench: indexed {n} events in {:.1?}",
        started.elapsed()
    );

    let search = |q: &str| SearchRequest {
        tenant: "acme".into(),
        query: q.into(),
        start: now - time::Duration::DAY,
        end: now + time::Duration::SECOND,
        limit: 100,
        cursor: None,
        event_ids: None,
        track_total: None,
        deadline: None,
    };
    let probe = ix
        .search(&search("user:user7 AND tool:tool3"))
        .expect("search");
    eprintln!(
        "query bench: `user:user7 AND tool:tool3` matches {} events",
        probe.total
    );

    let mut group = c.benchmark_group("query");
    group.bench_function("user_and_tool_24h", |b| {
        let req = search("user:user7 AND tool:tool3");
        b.iter(|| black_box(ix.search(&req).expect("search")))
    });
    group.bench_function("everything_24h_first_page", |b| {
        let req = search("");
        b.iter(|| black_box(ix.search(&req).expect("search")))
    });
    group.bench_function("free_text_24h", |b| {
        let req = search("\"permission denied\" kernel");
        b.iter(|| black_box(ix.search(&req).expect("search")))
    });
    group.bench_function("histogram_24h_5m", |b| {
        let req = HistogramRequest {
            tenant: "acme".into(),
            query: "outcome:error".into(),
            start: now - time::Duration::DAY,
            end: now,
            interval: Duration::from_secs(300),
        };
        b.iter(|| black_box(ix.histogram(&req).expect("histogram")))
    });
    group.bench_function("terms_tool_24h", |b| {
        let req = TermsRequest {
            tenant: "acme".into(),
            field: "tool".into(),
            query: String::new(),
            start: now - time::Duration::DAY,
            end: now,
            size: 10,
        };
        b.iter(|| black_box(ix.terms(&req).expect("terms")))
    });
    group.finish();
}

criterion_group!(benches, bench_queries, bench_indexing);
criterion_main!(benches);
