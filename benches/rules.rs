//! The built-in rule pack's cost per event, on one thread: a benign day of generated MCP
//! conversations with every attack scenario in it (`mcp_audit::demo`), scrubbed as ingest
//! would, evaluated by a fresh engine with the whole pack. Throughput is events.
//!
//! Group `rules` measures wall-clock time; `rules_cpu` the bench thread's CPU time (what one
//! core delivers on a shared machine). The budget: ≤ 2 µs per event.
//! `wal_decode_cpu` is what the rules consumer (and the indexer) pay per event read back from
//! the WAL when they fall behind: decoding the stored record.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::cell::RefCell;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mcp_audit::event::StoredEvent;
use mcp_audit::rules::{pack, Engine, DEFAULT_KEY_CAP};
use mcp_audit::scrub::{ScrubConfig, Scrubber};

#[path = "support/cpu_time.rs"]
mod cpu_time;
use cpu_time::ThreadCpuTime;

fn events() -> Vec<StoredEvent> {
    let start = time::macros::datetime!(2026-11-02 00:00 UTC);
    let day = mcp_audit::demo::demo_day(
        1,
        start,
        time::Duration::hours(24),
        mcp_audit::demo::DAY_CONVERSATIONS,
    );
    let scrubber = Scrubber::new(&ScrubConfig::default(), [7u8; 32]).expect("scrubber");
    day.into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            let redactions = scrubber.scrub(&mut e);
            StoredEvent {
                event: e,
                tenant: "default".into(),
                received_at: start,
                seq: i as u64 + 1,
                hash: String::new(),
                redactions,
            }
        })
        .collect()
}

fn bench<M: criterion::measurement::Measurement + 'static>(c: &mut Criterion<M>, name: &str) {
    let events = events();
    let rules = pack::builtin().expect("the pack compiles");
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);
    // One engine for every run, its state forgotten before each: a collector's engine lives
    // as long as the process, so its regexes' automata are warm (a cloned rule starts them
    // cold, which a fresh engine per run would pay every day of events).
    let spare = RefCell::new(Some(Engine::new(rules, DEFAULT_KEY_CAP)));
    g.bench_function("builtin_pack_demo_day", |b| {
        b.iter_batched(
            || {
                let mut engine = spare.borrow_mut().take().expect("the engine is back");
                engine.reset();
                engine
            },
            |mut engine| {
                let mut findings = 0usize;
                for (pos, e) in events.iter().enumerate() {
                    findings += engine.evaluate(black_box(e), pos as u64).len();
                }
                spare.replace(Some(engine));
                findings
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// What the rules consumer pays before evaluating when it reads an event back from the WAL:
/// decoding the stored record (the same day's events, as records of ~1.4 KB).
fn decode(c: &mut Criterion<ThreadCpuTime>) {
    let records: Vec<Vec<u8>> = events()
        .into_iter()
        .map(|mut e| {
            e.hash = "00".repeat(32);
            e.record().expect("a record")
        })
        .collect();
    let mut g = c.benchmark_group("wal_decode_cpu");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.sample_size(20);
    g.bench_function("stored_records_demo_day", |b| {
        b.iter(|| {
            records
                .iter()
                .map(|r| StoredEvent::from_record(black_box(r)).map_or(0, |e| e.seq))
                .sum::<u64>()
        })
    });
    g.finish();
}

fn wall(c: &mut Criterion) {
    bench(c, "rules");
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    bench(c, "rules_cpu");
}

criterion_group!(wall_clock, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu, decode
}
criterion_main!(wall_clock, cpu_time);
