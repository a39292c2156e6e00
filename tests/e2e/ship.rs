//! `mcp-audit ship`, the real binary, against a real collector on loopback: bad lines named by
//! `file:line`, a follower whose input stays open, re-shipping stores nothing twice, a
//! collector restart while following, and memory that does not grow with the input.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, test_config, Server};
use mcp_audit::app::{run, Listeners};
use mcp_audit::config::Config;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn ship(grpc: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-audit"));
    c.args(["ship", "--endpoint", grpc])
        .env_remove("MCP_AUDIT_TOKEN")
        .env_remove("MCP_AUDIT_ENDPOINT");
    c
}

/// Runs a `ship` to its end off the runtime (the collector shares the runtime).
async fn ship_file(grpc: &str, file: &Path) -> Output {
    let mut c = ship(grpc);
    c.arg(file);
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn event(id: Option<&str>, run: &str) -> Value {
    let mut e = json!({
        "timestamp": (time::OffsetDateTime::now_utc() - time::Duration::minutes(1))
            .format(&time::format_description::well_known::Rfc3339).unwrap(),
        "method": "tools/call",
        "server": "filesystem",
        "tool": "read_file",
        "user": "alice",
        "arguments": {"path": "/srv/app/README.md"},
        "labels": {"run": run},
    });
    if let Some(id) = id {
        e["event_id"] = json!(id);
    }
    e
}

fn run_id() -> String {
    format!("r{:08x}", rand::random::<u32>())
}

/// Once a marker sent after `ship` finished is searchable, so is everything `ship` had
/// acknowledged before it (the index consumes the log in order): counts are final.
async fn settle(s: &Server) {
    let id = format!("marker-{}", run_id());
    let mut marker = common::full_event(&id);
    marker.labels.insert("run".into(), "marker".into());
    assert_eq!(s.send(&[marker]).await.accepted, vec![id.clone()]);
    s.wait_for(&format!("event_id:{id}"), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_are_named_and_good_events_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let run = run_id();
    let mut future = event(Some("in-the-future"), &run);
    future["timestamp"] = json!("2999-01-01T00:00:00Z");
    let lines = [
        event(Some(&format!("{run}-1")), &run).to_string(),
        event(None, &run).to_string(),
        "this is not json".to_string(),
        "   ".to_string(),
        event(Some(&format!("{run}-3")), &run).to_string(),
        future.to_string(),
        r#"{"tool":"x","method":"tools/call","colour":"red"}"#.to_string(),
        "[1, 2]".to_string(),
        event(Some(&format!("{run}-4")), &run).to_string(),
    ];
    let path = dir.path().join("calls.jsonl");
    // The last line has no newline: it still counts.
    std::fs::write(&path, lines.join("\n")).unwrap();

    let out = ship_file(&s.grpc, &path).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let mut rejected: Vec<u64> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("rejected {}:", path.display())))
        .map(|rest| rest.split(':').next().unwrap().parse().unwrap())
        .collect();
    rejected.sort();
    assert_eq!(rejected, vec![3, 6, 7, 8], "{stderr}");
    assert!(stderr.contains(":6: `timestamp`"), "{stderr}");
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
    assert!(
        stderr.contains("shipped 4 of 8 events (4 rejected)"),
        "{stderr}"
    );

    settle(&s).await;
    let mut ids = s.ids(&format!("labels.run:{run}")).await;
    ids.sort();
    assert_eq!(ids.len(), 4, "{ids:?}");
    for n in [1, 3, 4] {
        assert!(ids.contains(&format!("{run}-{n}")), "{ids:?}");
    }
    // The line without an id got one from `ship`: a UUIDv7.
    let assigned: Vec<&String> = ids.iter().filter(|i| !i.starts_with(&run)).collect();
    assert_eq!(assigned.len(), 1);
    assert_eq!(
        uuid::Uuid::parse_str(assigned[0])
            .unwrap()
            .get_version_num(),
        7
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_a_file_twice_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let run = run_id();
    let path = dir.path().join("calls.jsonl");
    let text: String = (0..1200)
        .map(|i| format!("{}\n", event(Some(&format!("{run}-{i}")), &run)))
        .collect();
    std::fs::write(&path, text).unwrap();
    for _ in 0..2 {
        let out = ship_file(&s.grpc, &path).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // Already stored ids are acknowledged again.
        assert!(
            stderr.contains("shipped 1200 of 1200 events (0 rejected)"),
            "{stderr}"
        );
    }
    settle(&s).await;
    let v = s.search(&format!("labels.run:{run}")).await;
    assert_eq!(v["total"], 1200);
    s.stop().await.unwrap();
}

/// A `ship` reading a pipe that stays open, like `tail -F log | mcp-audit ship -`.
struct Follower {
    child: Child,
    stdin: ChildStdin,
}

impl Follower {
    fn start(grpc: &str) -> Self {
        let mut child = ship(grpc)
            .arg("-")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        Self { child, stdin }
    }

    fn write(&mut self, line: &Value) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "ship exited while its input was open"
        );
    }

    /// Closes the input and returns what `ship` printed.
    async fn finish(self) -> (bool, String) {
        let Self { child, stdin } = self;
        drop(stdin);
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_ships_each_line_while_its_input_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let run = run_id();
    let mut f = Follower::start(&s.grpc);
    for i in 0..4 {
        let id = format!("{run}-{i}");
        let written = Instant::now();
        f.write(&event(Some(&id), &run));
        s.wait_for(&format!("event_id:{id}"), 1).await;
        let took = written.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "line {i} took {took:?} to become searchable"
        );
        f.assert_running();
    }
    let (ok, stderr) = f.finish().await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("shipped 4 of 4 events (0 rejected)"),
        "{stderr}"
    );
    s.stop().await.unwrap();
}

/// A collector on fixed addresses, so it can be restarted where a client expects it.
struct Collector {
    http: String,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Collector {
    async fn start(config: Config, grpc: &str, http: &str) -> Self {
        let listeners = Listeners {
            grpc: TcpListener::bind(grpc).await.unwrap(),
            http: TcpListener::bind(http).await.unwrap(),
        };
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run(config, listeners, async move {
            let _ = rx.await;
        }));
        Self {
            http: format!("http://{http}"),
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }

    /// Waits until `q` matches an event; panics after 20 s.
    async fn wait_for(&self, q: &str) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let answer = client
                .get(format!("{}/api/v1/search", self.http))
                .query(&[("q", q), ("start", "-7d"), ("limit", "1")])
                .send()
                .await;
            if let Ok(r) = answer {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if v["total"].as_u64().unwrap_or(0) >= 1 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{q:?} never matched");
    }
}

fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_survives_a_collector_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, http) = (free_addr(), free_addr());
    let endpoint = format!("http://{grpc}");
    let run = run_id();
    let c = Collector::start(test_config(dir.path()), &grpc, &http).await;
    let mut f = Follower::start(&endpoint);
    f.write(&event(Some(&format!("{run}-0")), &run));
    c.wait_for(&format!("event_id:{run}-0")).await;

    c.stop().await;
    // Written while the collector is down: `ship` keeps it and retries.
    f.write(&event(Some(&format!("{run}-1")), &run));
    f.assert_running();
    let c = Collector::start(test_config(dir.path()), &grpc, &http).await;
    c.wait_for(&format!("event_id:{run}-1")).await;
    f.assert_running();

    let (ok, stderr) = f.finish().await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("reconnecting in"), "{stderr}");
    assert!(
        stderr.contains("shipped 2 of 2 events (0 rejected)"),
        "{stderr}"
    );
    c.stop().await;
}

/// Peak resident memory of a running process, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_on_an_input_far_larger_than_it() {
    let dir = tempfile::tempdir().unwrap();
    // Events over the collector's size limit are rejected without being stored, so this
    // (debug) collector does little work per event and the test stays short; `ship` reads,
    // parses, batches and sends every line all the same.
    let mut config = test_config(dir.path());
    config.max_event_bytes = 1024;
    let s = Server::start_with(config).await;
    let path = dir.path().join("big.jsonl");
    let lines = 160_000u64;
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let pad = "x".repeat(1500);
        let run = run_id();
        for i in 0..lines {
            let mut e = event(Some(&format!("{run}-{i}")), &run);
            e["result"] = json!(pad);
            writeln!(out, "{e}").unwrap();
        }
        out.flush().unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();

    let mut child = ship(&s.grpc)
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    // Drained as it comes (one line per rejected event), keeping the summary.
    let summary = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.starts_with("rejected "))
            .collect::<Vec<_>>()
    });
    let peak = tokio::task::spawn_blocking(move || {
        let mut peak = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            peak = peak_rss(pid).unwrap_or(0).max(peak);
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        (peak, child.wait().unwrap())
    });
    let (peak, status) = peak.await.unwrap();
    let summary = summary.join().unwrap();
    assert_eq!(status.code(), Some(1), "{summary:?}");
    assert!(
        summary
            .iter()
            .any(|l| l == &format!("shipped 0 of {lines} events ({lines} rejected)")),
        "{summary:?}"
    );
    assert!(peak > 0);
    eprintln!(
        "ship read {} MiB with a peak RSS of {} MiB",
        size >> 20,
        peak >> 20
    );
    assert!(
        peak < size / 2,
        "ship's peak RSS {} MiB is not well under the input's {} MiB",
        peak >> 20,
        size >> 20
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_stops_ship_naming_where_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.max_batch_events = 10;
    let s = Server::start_with(config).await;
    let run = run_id();
    let path = dir.path().join("calls.jsonl");
    // One batch of 20, over the collector's limit of 10.
    let text: String = (0..20)
        .map(|i| format!("{}\n", event(Some(&format!("{run}-{i}")), &run)))
        .collect();
    std::fs::write(&path, text).unwrap();
    let mut c = ship(&s.grpc);
    c.args(["--batch", "20"]).arg(&path);
    let out = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the collector refused the batch from {}:1: InvalidArgument: batch has 20 events",
            path.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("shipped 0 of 20 events (0 rejected)"),
        "{stderr}"
    );
    s.stop().await.unwrap();
}
