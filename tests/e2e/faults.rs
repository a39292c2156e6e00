//! Faults are visible and end in recovery, through the real binary: when the index writer
//! cannot get a file handle, `/readyz` and `/metrics` say so and name the cause, acknowledged
//! events wait in the WAL, and once handles are free again the index reopens and replays them.

use std::time::Duration;

use crate::common::{generated, Collector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_handles_is_visible_and_the_index_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, &[]).await;
    // One kept-alive HTTP connection to watch readiness through, opened before the flood.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let ready = || async {
        let r = http.get(c.url("/readyz")).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(ready().await.0, 200);
    let mut grpc = c.client().await;
    let first = generated("first", 100, 5);
    c.send(&first).await;
    c.wait_total("", 100).await;

    // Hold the collector to the handles it has now plus room for a commit (tantivy writes
    // several files at once), and take that room with idle connections: the next file the
    // index writer opens fails with EMFILE.
    let pid = c.child.id();
    let used = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = (used + 32).to_string();
    let status = std::process::Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let flood: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", c.http)).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Events are still acknowledged: they are durable in the WAL.
    let second = generated("second", 2000, 6);
    for chunk in second.chunks(500) {
        let resp = grpc
            .send(mcp_audit::proto::ShipRequest {
                events: chunk.iter().map(mcp_audit::ingest::proto::encode).collect(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.accepted.len(), 500);
    }
    let mut seen = None;
    for _ in 0..200 {
        let (code, body) = ready().await;
        if code == 503 {
            seen = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = seen.expect("/readyz never said the index is failing");
    assert!(body.contains("index failing"), "{body}");
    assert!(body.contains("EMFILE"), "names the cause: {body}");
    let metrics = http
        .get(c.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mcp_audit_component_up{component=\"index\"} 0"),
        "{metrics}"
    );

    // Handles come back: the index reopens, replays from its checkpoint, and is ready again.
    drop(flood);
    let mut recovered = false;
    for _ in 0..400 {
        if ready().await.0 == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !recovered {
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| {
                std::fs::read_link(e.unwrap().path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect();
        panic!("did not recover; open files: {fds:?}\n{}", c.log_text());
    }
    c.wait_total("", 2100).await;
    c.wait_indexed().await;
    assert_eq!(c.all_ids().await.len(), 2100, "nothing twice, nothing lost");
    c.stop();
}
