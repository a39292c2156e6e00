//! Shared helpers for integration tests: a real collector on loopback (ephemeral ports, temp
//! data dir), real gRPC and HTTP clients.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_audit::app::{run, Listeners};
use mcp_audit::config::Config;
use mcp_audit::event::Event;
use mcp_audit::ingest::proto as convert;
use mcp_audit::proto::ingest_client::IngestClient;
use mcp_audit::proto::{ShipRequest, ShipResponse};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

pub struct Server {
    pub grpc: String,
    pub http: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    http_client: reqwest::Client,
}

/// A config for tests: temp data dir, fast commits, a small index writer.
pub fn test_config(data_dir: &Path) -> Config {
    Config {
        data_dir: data_dir.to_path_buf(),
        commit_interval: Duration::from_millis(100),
        writer_memory_bytes: 32 << 20,
        writer_threads: 1,
        ..Config::default()
    }
}

impl Server {
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_with(test_config(data_dir)).await
    }

    pub async fn start_with(config: Config) -> Self {
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = format!("http://{}", grpc.local_addr().unwrap());
        let http_addr = format!("http://{}", http.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(run(config, Listeners { grpc, http }, async move {
            let _ = rx.await;
        }));
        let s = Self {
            grpc: grpc_addr,
            http: http_addr,
            stop: Some(tx),
            task: Some(task),
            http_client: reqwest::Client::new(),
        };
        s.wait_ready().await;
        s
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self
                .http_client
                .get(format!("{}/readyz", self.http))
                .send()
                .await
            {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("collector did not become ready");
    }

    /// Graceful shutdown; returns the collector's result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }

    pub async fn client(&self) -> IngestClient<Channel> {
        IngestClient::connect(self.grpc.clone()).await.unwrap()
    }

    pub async fn send(&self, events: &[Event]) -> ShipResponse {
        let mut c = self.client().await;
        c.send(ShipRequest {
            events: events.iter().map(convert::encode).collect(),
        })
        .await
        .unwrap()
        .into_inner()
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http_client
            .get(format!("{}{}", self.http, path))
            .query(query)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self
            .http_client
            .get(format!("{}{}", self.http, path))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, body: String) -> (u16, Value) {
        let r = self
            .http_client
            .post(format!("{}{}", self.http, path))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Searches over the last 7 days and returns the API's answer.
    pub async fn search(&self, q: &str) -> Value {
        let (status, v) = self
            .get(
                "/api/v1/search",
                &[
                    ("q", q),
                    ("start", "-7d"),
                    ("limit", "10000"),
                    ("exact_total", "true"),
                ],
            )
            .await;
        assert_eq!(status, 200, "search {q:?} failed: {v}");
        v
    }

    /// Event ids matching `q`, newest first.
    pub async fn ids(&self, q: &str) -> Vec<String> {
        self.search(q).await["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["event_id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Waits until every acknowledged event is indexed (the index's WAL lag is zero), so a
    /// check for duplicates sees anything a retry might have stored again.
    pub async fn wait_indexed(&self) {
        for _ in 0..400 {
            let (_, m) = self.get_text("/metrics").await;
            if m.lines().any(|l| l == "mcp_audit_index_lag_events 0") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the index never caught up");
    }

    /// Waits until `q` matches at least `n` events (events are searchable about 1 s after ack).
    pub async fn wait_for(&self, q: &str, n: u64) -> Value {
        for _ in 0..200 {
            let v = self.search(q).await;
            if v["total"].as_u64().unwrap() >= n {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{q:?} never reached {n} hits");
    }
}

/// A call that reads `/etc/shadow` through `../` (the pack's path-traversal rule fires on it).
pub fn traversal(id: &str) -> Event {
    let mut e = full_event(id);
    e.server = "filesystem".into();
    e.tool = "read_file".into();
    e.arguments = serde_json::json!({"path": "../../../../etc/shadow"});
    e
}

/// A fully populated event.
pub fn full_event(id: &str) -> Event {
    let mut e = Event::new(id, "tools/call", "create_issue");
    e.timestamp = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    e.source = "gw-1".into();
    e.server = "github".into();
    e.user = "alice".into();
    e.client = "claude-desktop".into();
    e.conversation_id = "conv-1".into();
    e.session_id = "sess-1".into();
    e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736".into();
    e.span_id = "00f067aa0ba902b7".into();
    e.arguments = serde_json::json!({"repo": "acme/web", "title": "flaky integration test", "labels": ["ci"]});
    e.result = "created issue 42 in acme/web".into();
    e.result_bytes = 28;
    e.outcome = mcp_audit::event::Outcome::Ok;
    e.duration_ms = 1500;
    e.annotations.read_only = Some(false);
    e.annotations.destructive = Some(false);
    e.consent = mcp_audit::event::Consent::AllowedOnce;
    e.transport = mcp_audit::event::Transport::StreamableHttp;
    e.remote_addr = "10.1.2.3".into();
    e.tool_description_hash = "sha256:abc123".into();
    e.labels.insert("env".into(), "prod".into());
    e
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `mcp-audit` binary running `serve` on loopback, its stderr kept in a file.
pub struct Collector {
    pub child: std::process::Child,
    pub grpc: u16,
    pub http: u16,
    pub log: PathBuf,
    /// `http`, or `https` for a collector serving TLS.
    pub scheme: &'static str,
    http_client: reqwest::Client,
}

/// Runs the binary with `args`, returning (exit success, stdout, stderr).
pub fn mcp_audit(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-audit"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Collector {
    /// Starts the binary on `data_dir` with extra environment, waiting until it is ready.
    /// Panics with its log if it exits instead.
    pub async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        match Self::try_start(data_dir, env).await {
            Ok(c) => c,
            Err(log) => panic!("collector exited instead of starting:\n{log}"),
        }
    }

    /// Like [`Collector::start`], but a collector that exits is an `Err` with its log.
    pub async fn try_start(data_dir: &Path, env: &[(&str, &str)]) -> Result<Self, String> {
        Self::try_start_over(data_dir, env, "http", reqwest::Client::new()).await
    }

    /// Like [`Collector::try_start`] for a collector serving `scheme` (`https` with TLS env
    /// settings), asking it through `http_client` (which trusts its CA).
    pub async fn try_start_over(
        data_dir: &Path,
        env: &[(&str, &str)],
        scheme: &'static str,
        http_client: reqwest::Client,
    ) -> Result<Self, String> {
        let (grpc, http) = (free_port(), free_port());
        let log = data_dir.with_extension(format!("log-{http}"));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-audit"));
        cmd.args(["serve", "--data-dir"])
            .arg(data_dir)
            .args([
                "--grpc-listen",
                &format!("127.0.0.1:{grpc}"),
                "--http-listen",
                &format!("127.0.0.1:{http}"),
            ])
            .env("MCP_AUDIT_INDEX_COMMIT_INTERVAL_MS", "200")
            .env("MCP_AUDIT_INDEX_WRITER_THREADS", "1")
            .env("MCP_AUDIT_INDEX_WRITER_MEMORY_MB", "32")
            .env("MCP_AUDIT_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn mcp-audit");
        let mut c = Collector {
            child,
            grpc,
            http,
            log,
            scheme,
            http_client,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = c.child.try_wait() {
                return Err(c.log_text());
            }
            if let Ok(r) = c.http_client.get(c.url("/readyz")).send().await {
                if r.status().is_success() {
                    return Ok(c);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = c.child.kill();
        Err(format!("not ready after 60 s:\n{}", c.log_text()))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.http)
    }

    /// Makes this handle's own HTTP requests (`total`, `metric`, `all_ids`...) present
    /// `token`, for collectors that require credentials.
    pub fn use_token(&mut self, token: &str) {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        self.http_client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn client(&self) -> IngestClient<Channel> {
        IngestClient::connect(format!("http://127.0.0.1:{}", self.grpc))
            .await
            .unwrap()
    }

    pub async fn send(&self, events: &[Event]) -> ShipResponse {
        let mut c = self.client().await;
        c.send(ShipRequest {
            events: events.iter().map(convert::encode).collect(),
        })
        .await
        .unwrap()
        .into_inner()
    }

    /// Every stored event id over the last 7 days, paging through the whole result.
    pub async fn all_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![
                ("start".to_string(), "-7d".to_string()),
                ("limit".to_string(), "10000".to_string()),
            ];
            if let Some(c) = &cursor {
                q.push(("cursor".into(), c.clone()));
            }
            let v: Value = self
                .http_client
                .get(self.url("/api/v1/search"))
                .query(&q)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ids.extend(
                v["hits"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["event_id"].as_str().unwrap().to_string()),
            );
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return ids,
            }
        }
    }

    /// The number of events matching `q` over the last 7 days.
    pub async fn total(&self, q: &str) -> u64 {
        let v: Value = self
            .http_client
            .get(self.url("/api/v1/search"))
            .query(&[
                ("q", q),
                ("start", "-7d"),
                ("limit", "1"),
                ("exact_total", "true"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("search failed: {v}"))
    }

    /// Waits until `q` matches exactly `n` events.
    pub async fn wait_total(&self, q: &str, n: u64) {
        let mut last = 0;
        for _ in 0..400 {
            last = self.total(q).await;
            if last == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{q:?} matched {last} events, never {n}\n{}",
            self.log_text()
        );
    }

    /// `GET path?query`: the status and the JSON body (`Null` when it is not JSON).
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let r = self
            .http_client
            .get(self.url(path))
            .query(query)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// A metric's value from `/metrics` (the first sample whose line starts with `name`).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = self
            .http_client
            .get(self.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits until every acknowledged event is indexed (the index's WAL lag is zero).
    pub async fn wait_indexed(&self) {
        for _ in 0..400 {
            if self.metric("mcp_audit_index_lag_events").await == Some(0.0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the index never caught up\n{}", self.log_text());
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit; returns the log.
    pub fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "collector exited with {status}\n{}",
                    self.log_text()
                );
                return self.log_text();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("collector did not stop on SIGTERM\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A collector left running by a test that failed half-way would hold its ports and CPU.
impl Drop for Collector {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `n` realistic events of about 1 KB with ids `{prefix}-{i}`, stamped in the last hour.
pub fn generated(prefix: &str, n: usize, seed: u64) -> Vec<Event> {
    let mut g = mcp_audit::demo::Generator::new(seed);
    let now = time::OffsetDateTime::now_utc();
    (0..n)
        .map(|i| {
            let ts = now - time::Duration::seconds((i % 3600) as i64);
            let mut e = g.benign(ts, 1000);
            e.event_id = format!("{prefix}-{i}");
            e
        })
        .collect()
}
