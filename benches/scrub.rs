//! Scrubber throughput on generated, realistic ~1 KB MCP tool-call events (file reads, SQL
//! queries, HTTP fetches, GitHub API results, shell commands), on one thread.
//!
//! - `clean`: no event carries a secret (the common case: one keyword pass per string).
//! - `5pct_secrets`: 5% of events carry one planted credential of a random family.
//!
//! Throughput is the events' JSON size. The data is generated here, deterministically.
//! Group `scrub` measures wall-clock time (criterion's default). Group `scrub_cpu` measures
//! the bench thread's CPU time (from `/proc/thread-self/schedstat`), which is what one core
//! delivers when the machine is shared with other work that steals wall-clock time.

// The allocator of the `mcp-audit` binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mcp_audit::event::Event;
use mcp_audit::scrub::samples::{self, Rng};
use mcp_audit::scrub::{ScrubConfig, Scrubber};
use serde_json::json;

#[path = "support/cpu_time.rs"]
mod cpu_time;
use cpu_time::ThreadCpuTime;

const WORDS: &[&str] = &[
    "the",
    "request",
    "returned",
    "with",
    "status",
    "configuration",
    "deployment",
    "service",
    "cache",
    "latency",
    "user",
    "session",
    "handler",
    "error",
    "retry",
    "timeout",
    "queue",
    "worker",
    "index",
    "migration",
    "schema",
    "release",
    "feature",
    "flag",
    "metrics",
    "token",
    "budget",
    "auth",
    "flow",
    "customer",
    "invoice",
    "report",
    "pipeline",
    "build",
    "test",
    "passed",
    "failed",
    "merge",
    "branch",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s: Vec<&str> = (0..words).map(|_| *rng.pick(WORDS)).collect();
    if let Some(first) = s.first_mut() {
        *first = "The";
    }
    format!("{}.", s.join(" "))
}

fn base(rng: &mut Rng, tool: &str, server: &str) -> Event {
    let mut e = Event::new(
        samples::fill(rng, "{x:8}-{x:4}-4{x:3}-a{x:3}-{x:12}"),
        "tools/call",
        tool,
    );
    e.server = server.into();
    e.source = "gateway-eu-1".into();
    e.user = "alice@example.com".into();
    e.client = "claude-desktop".into();
    e.trace_id = samples::fill(rng, "{x:32}");
    e.span_id = samples::fill(rng, "{x:16}");
    e.remote_addr = "10.0.3.17:52144".into();
    e.duration_ms = rng.below(2000) as u64;
    e.labels.insert("env".into(), "prod".into());
    e.labels.insert("team".into(), "platform".into());
    e
}

fn file_read(rng: &mut Rng) -> Event {
    let mut e = base(rng, "read_file", "filesystem");
    let name = rng.pick(&["config", "handler", "main", "client", "schema"]);
    e.arguments = json!({"path": format!("/home/dev/project/src/{name}.rs")});
    let mut code = String::from("use std::collections::HashMap;\nuse crate::error::Error;\n\n");
    for i in 0..7 {
        code.push_str(&format!(
            "    // {}\n    let value_{i} = settings.get(\"{}\").unwrap_or({});\n",
            sentence(rng, 6),
            rng.pick(WORDS),
            rng.below(10_000)
        ));
    }
    e.result = code;
    e
}

fn sql_query(rng: &mut Rng) -> Event {
    let mut e = base(rng, "query", "postgres");
    e.arguments = json!({"sql": "SELECT id, email, plan, created_at FROM customers WHERE org_id = $1 ORDER BY created_at DESC LIMIT 5", "params": [rng.below(100_000)]});
    let rows: Vec<_> = (0..5)
        .map(|i| {
            json!({"id": 1000 + i, "email": format!("user{}@example.com", rng.below(9999)), "plan": rng.pick(&["free", "pro", "team"]), "created_at": format!("2024-0{}-1{}T10:2{}:00Z", 1 + rng.below(9), rng.below(10), rng.below(10))})
        })
        .collect();
    e.result = serde_json::to_string(&rows).unwrap_or_default();
    e
}

fn http_fetch(rng: &mut Rng) -> Event {
    let mut e = base(rng, "fetch", "fetch");
    let page = rng.pick(&[
        "guide/getting-started",
        "api/reference",
        "blog/2024/05/release-notes",
    ]);
    e.arguments = json!({"url": format!("https://docs.example.com/{page}"), "method": "GET", "headers": {"Accept": "text/html", "User-Agent": "mcp-fetch/1.2"}});
    let mut body = String::from("# Documentation\n\n");
    for _ in 0..4 {
        body.push_str(&sentence(rng, 16));
        body.push_str(" See https://docs.example.com/guide for details.\n\n");
    }
    e.result = body;
    e
}

fn github_api(rng: &mut Rng) -> Event {
    let mut e = base(rng, "list_commits", "github");
    e.arguments = json!({"owner": "acme", "repo": "widgets", "per_page": 2});
    let commits: Vec<_> = (0..2)
        .map(|_| {
            let sha = samples::fill(rng, "{x:40}");
            json!({
                "sha": sha,
                "node_id": samples::fill(rng, "C_kwDO{a:20}"),
                "commit": {"author": {"name": "Dev", "date": "2024-05-01T10:00:00Z"}, "message": sentence(rng, 8)},
                "html_url": format!("https://github.com/acme/widgets/commit/{sha}"),
            })
        })
        .collect();
    e.result = serde_json::to_string(&commits).unwrap_or_default();
    e
}

fn shell(rng: &mut Rng) -> Event {
    let mut e = base(rng, "run_command", "shell");
    e.arguments = json!({"command": "ls -la /var/log/app", "timeout_ms": 30000});
    let mut out = String::from("total 1840\n");
    for i in 0..9 {
        out.push_str(&format!(
            "-rw-r--r-- 1 app app {:>7} May  {} 10:{:02} app-{i}.log\n",
            rng.below(900_000),
            1 + rng.below(28),
            rng.below(60)
        ));
    }
    e.result = out;
    e
}

/// `n` events; `percent` of them carry one planted secret in the result or the arguments.
fn events(n: usize, percent: usize, seed: u64) -> Vec<Event> {
    let mut rng = Rng::new(seed);
    let planted = samples::all(seed);
    let makers: [fn(&mut Rng) -> Event; 5] = [file_read, sql_query, http_fetch, github_api, shell];
    (0..n)
        .map(|_| {
            let mut e = (rng.pick(&makers))(&mut rng);
            if rng.below(100) < percent {
                let s = rng.pick(&planted);
                if rng.below(2) == 0 {
                    e.result.push_str(&format!("\n{}\n", s.text));
                } else {
                    e.arguments["note"] = json!(s.text);
                }
            }
            e
        })
        .collect()
}

fn bytes(events: &[Event]) -> u64 {
    events
        .iter()
        .map(|e| serde_json::to_vec(e).map_or(0, |v| v.len() as u64))
        .sum()
}

fn bench<M: criterion::measurement::Measurement>(c: &mut Criterion<M>, group: &str) {
    let scrubber = match Scrubber::new(&ScrubConfig::default(), [7u8; 32]) {
        Ok(s) => s,
        Err(e) => panic!("scrubber: {e}"),
    };
    let mut group = c.benchmark_group(group);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    for (name, percent) in [("clean", 0), ("5pct_secrets", 5)] {
        let data = events(2000, percent, 42);
        group.throughput(Throughput::Bytes(bytes(&data)));
        group.bench_function(name, |b| {
            b.iter_batched(
                || data.clone(),
                |mut evs| {
                    for e in &mut evs {
                        black_box(scrubber.scrub(e));
                    }
                    evs
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn wall(c: &mut Criterion) {
    bench(c, "scrub");
}

fn cpu(c: &mut Criterion<ThreadCpuTime>) {
    bench(c, "scrub_cpu");
}

criterion_group!(wall_clock, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = cpu
}
criterion_main!(wall_clock, cpu_time);
