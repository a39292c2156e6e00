//! Crash safety: the real binary is SIGKILLed while events stream in; after a restart every
//! acknowledged event is searchable exactly once.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mcp_audit::demo::Generator;
use mcp_audit::ingest::proto as convert;
use mcp_audit::proto::ingest_client::IngestClient;
use mcp_audit::proto::ShipRequest;
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(dir: &std::path::Path, grpc: u16, http: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mcp-audit"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args([
            "--grpc-listen",
            &format!("127.0.0.1:{grpc}"),
            "--http-listen",
            &format!("127.0.0.1:{http}"),
        ])
        .env("MCP_AUDIT_INDEX_COMMIT_INTERVAL_MS", "200")
        .env("MCP_AUDIT_INDEX_WRITER_THREADS", "1")
        .env("MCP_AUDIT_INDEX_WRITER_MEMORY_MB", "32")
        .env("MCP_AUDIT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mcp-audit")
}

async fn wait_ready(http: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/readyz")).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("collector did not become ready");
}

/// Every stored event id, by paging through the whole search result.
async fn all_ids(http: u16) -> Vec<String> {
    let client = reqwest::Client::new();
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
        let v: Value = client
            .get(format!("http://127.0.0.1:{http}/api/v1/search"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The first child is killed and waited for inside the loop once enough acks arrived; the test
// asserts that this happened.
#[allow(clippy::zombie_processes)]
async fn sigkill_mid_stream_loses_no_acknowledged_event_and_duplicates_none() {
    let dir = tempfile::tempdir().unwrap();
    let (grpc, http) = (free_port(), free_port());
    let mut child = spawn(dir.path(), grpc, http);
    wait_ready(http).await;

    let mut client = IngestClient::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<ShipRequest>(8);
    let mut responses = client
        .ship(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut g = Generator::new(3);
    let mut sent: Vec<Vec<String>> = Vec::new();
    let mut acked: HashSet<String> = HashSet::new();
    let now = time::OffsetDateTime::now_utc();
    // Producer: batches of 100, up to 8 in flight; the collector is killed after ~40 acks.
    let mut batch_no = 0;
    let mut killed = false;
    while batch_no < 400 {
        while sent.len() - acked_batches(&acked, &sent) < 8 && batch_no < 400 {
            let events: Vec<_> = (0..100)
                .map(|i| {
                    let mut e = g.benign(now, 600);
                    e.event_id = format!("crash-{batch_no}-{i}");
                    convert::encode(&e)
                })
                .collect();
            sent.push((0..100).map(|i| format!("crash-{batch_no}-{i}")).collect());
            if tx.send(ShipRequest { events }).await.is_err() {
                break;
            }
            batch_no += 1;
        }
        match tokio::time::timeout(Duration::from_secs(10), responses.next()).await {
            Ok(Some(Ok(resp))) => {
                acked.extend(resp.accepted);
                if !killed && acked.len() >= 4000 {
                    child.kill().unwrap(); // SIGKILL: no chance to flush anything
                    child.wait().unwrap();
                    killed = true;
                }
            }
            _ => break,
        }
    }
    assert!(killed, "the collector should have been killed mid-stream");
    assert!(acked.len() >= 4000);
    drop(tx);

    let mut child = spawn(dir.path(), grpc, http);
    wait_ready(http).await;
    let ids = all_ids(http).await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event is stored twice");
    let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let all_sent: HashSet<&String> = sent.iter().flatten().collect();
    assert!(
        ids.iter().all(|id| all_sent.contains(id)),
        "only events that were sent are stored"
    );

    // Retrying every batch after the crash (as a client would) stores nothing twice.
    let mut client = IngestClient::connect(format!("http://127.0.0.1:{grpc}"))
        .await
        .unwrap();
    let mut g = Generator::new(3);
    for (b, ids_of_batch) in sent.iter().enumerate().take(60) {
        let events = ids_of_batch
            .iter()
            .map(|id| {
                let mut e = g.benign(now, 600);
                e.event_id = id.clone();
                convert::encode(&e)
            })
            .collect();
        let resp = client
            .send(ShipRequest { events })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.accepted.len(), 100, "batch {b}");
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = all_ids(http).await;
    let unique_after: HashSet<&String> = after.iter().collect();
    assert_eq!(unique_after.len(), after.len(), "retries never duplicate");
    child.kill().unwrap();
    child.wait().unwrap();
}

fn acked_batches(acked: &HashSet<String>, sent: &[Vec<String>]) -> usize {
    sent.iter()
        .filter(|b| b.last().is_some_and(|id| acked.contains(id)))
        .count()
}
