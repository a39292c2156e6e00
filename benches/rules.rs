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

/// CPU seconds of the whole process so far (every thread, tantivy's included), in ticks.
fn process_cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// What storing a finding costs the collector: the findings index's writes and commits, on
/// every thread tantivy uses (so process CPU, not the bench thread's). `bench`'s traffic makes
/// a finding per ten events, so this is a share of the pack's end-to-end cost that `rules_cpu`
/// does not see. A commit costs milliseconds whatever it holds, so the cost per finding
/// depends on how many each commit carries: 1,000 is what commits paced 250 ms apart carried
/// under `bench`; 5,000 what one commit a second (`index.commit_interval_ms`) carries.
/// Prints µs of process CPU per finding.
fn findings_store(c: &mut Criterion) {
    use mcp_audit::index::findings::Findings;
    use mcp_audit::rules::{Finding, Severity};
    const N: usize = 20_000;
    let start = time::macros::datetime!(2026-11-02 00:00 UTC);
    let findings: Vec<Finding> = (0..N)
        .map(|i| {
            let user = ["alice", "bob", "carol", "dave"][i % 4];
            Finding {
                // Ids are hashes: spread like the engine's.
                id: format!(
                    "{:024x}",
                    (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c)
                ),
                tenant: "default".into(),
                rule: "mcp-destructive-without-consent".into(),
                title: "Destructive tool called without explicit consent".into(),
                severity: Severity::Medium,
                tags: vec!["owasp.mcp02".into(), "owasp.llm06".into()],
                group_key: format!("user={user} server=jira tool=create_ticket"),
                event_ids: vec![format!("demo-bench-{}", i * 10)],
                explanation: format!(
                    "{user} ran destructive jira/create_ticket without consenting to it"
                ),
                time: start + time::Duration::milliseconds(i as i64 * 3),
                pos: i as u64 * 10,
            }
        })
        .collect();
    let mut g = c.benchmark_group("findings_store");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    let mut report = Vec::new();
    for per_commit in [1_000, 5_000] {
        let ticks = std::cell::Cell::new((0u64, 0u64));
        g.bench_function(format!("commit_every_{per_commit}"), |b| {
            b.iter_batched(
                || tempfile::tempdir().expect("a temp dir"),
                |dir| {
                    let before = process_cpu_ticks();
                    let store = Findings::open(dir.path()).expect("the store opens");
                    for chunk in findings.chunks(per_commit) {
                        store.stage(chunk.iter().cloned());
                        store
                            .commit(chunk[chunk.len() - 1].pos + 1)
                            .expect("committed");
                    }
                    drop(store);
                    let (t, n) = ticks.get();
                    ticks.set((t + process_cpu_ticks().saturating_sub(before), n + 1));
                    dir
                },
                BatchSize::PerIteration,
            )
        });
        report.push((per_commit, ticks.get()));
    }
    g.finish();
    // `/proc/self/stat` counts in ticks of 1/100 s (USER_HZ).
    for (per_commit, (t, n)) in report {
        if n > 0 {
            println!(
                "findings_store commit_every_{per_commit}: {:.1} µs of process CPU per finding ({n} runs of {N})",
                t as f64 / 100.0 / n as f64 / N as f64 * 1e6
            );
        }
    }
}

fn wall(c: &mut Criterion) {
    bench(c, "rules");
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    bench(c, "rules_cpu");
}

criterion_group!(wall_clock, wall, findings_store);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu, decode
}
criterion_main!(wall_clock, cpu_time);
