//! Shared helpers for integration tests: a real collector on loopback (ephemeral ports, temp
//! data dir), real gRPC and HTTP clients.
#![allow(dead_code, clippy::unwrap_used)]

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
    pub data_dir: PathBuf,
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
        let data_dir = config.data_dir.clone();
        let task = tokio::spawn(run(config, Listeners { grpc, http }, async move {
            let _ = rx.await;
        }));
        let s = Self {
            grpc: grpc_addr,
            http: http_addr,
            data_dir,
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
                &[("q", q), ("start", "-7d"), ("limit", "10000")],
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
