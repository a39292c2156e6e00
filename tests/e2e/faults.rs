//! Faults are visible and end in recovery, through the real binary: when the index writer
//! cannot get a file handle, `/readyz` and `/metrics` say so and name the cause, acknowledged
//! events wait in the WAL, and once handles are free again the index reopens and replays them.
//! When the findings store cannot commit, the rules say so, stop evaluating (the WAL keeps the
//! events) and, once it can, store every finding exactly once.

use std::time::Duration;

use crate::common::{generated, traversal, Collector};

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

/// Findings of the path-traversal rule, as `GET /api/v1/findings` counts them.
async fn traversal_findings(c: &Collector) -> (u64, Vec<String>) {
    let (_, v) = c
        .get(
            "/api/v1/findings",
            &[
                ("rule", "mcp-path-traversal"),
                ("since", "-7d"),
                ("limit", "500"),
            ],
        )
        .await;
    let mut events: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["event_ids"][0].as_str().unwrap().to_string())
        .collect();
    events.sort();
    (v["total"].as_u64().unwrap(), events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_findings_store_is_visible_and_loses_no_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let c = Collector::start(&data, &[]).await;
    let http = reqwest::Client::new();
    let ready = || async {
        let r = http.get(c.url("/readyz")).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let lag = || async {
        c.metric("mcp_audit_rules_lag_events")
            .await
            .expect("the rules' lag is in /metrics")
    };
    let batch = |name: &str, n: usize| -> Vec<_> {
        (0..n)
            .map(|i| traversal(&format!("t-{name}{i:02}")))
            .collect()
    };
    c.send(&batch("a", 10)).await;
    for _ in 0..200 {
        if traversal_findings(&c).await.0 == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(traversal_findings(&c).await.0, 10);

    // The findings store cannot commit: its meta.json cannot be replaced (a directory stands
    // in its place).
    let meta = data.join("findings").join("meta.json");
    std::fs::rename(&meta, meta.with_extension("aside")).unwrap();
    std::fs::create_dir_all(meta.join("blocker")).unwrap();
    c.send(&batch("b", 10)).await;
    let mut seen = None;
    for _ in 0..200 {
        let (code, body) = ready().await;
        if code == 503 && body.contains("rules failing") {
            seen = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = seen.unwrap_or_else(|| panic!("/readyz never said so\n{}", c.log_text()));
    assert!(body.contains("cannot store findings"), "{body}");
    // What is staged is still served meanwhile.
    assert_eq!(traversal_findings(&c).await.0, 20);
    // The rules evaluate nothing more (staged findings would pile up in memory): the events
    // wait in the WAL, and the lag says so.
    c.send(&batch("c", 30)).await;
    let mut lagging = 0.0;
    for _ in 0..100 {
        lagging = lag().await;
        if lagging >= 30.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        lagging, 30.0,
        "the rules kept evaluating while the store failed"
    );
    assert_eq!(traversal_findings(&c).await.0, 20);

    // The store can commit again: every finding is there once, those of the events sent
    // meanwhile too.
    std::fs::remove_dir_all(&meta).unwrap();
    std::fs::rename(meta.with_extension("aside"), &meta).unwrap();
    let mut found = (0, Vec::new());
    for _ in 0..400 {
        found = traversal_findings(&c).await;
        if ready().await.0 == 200 && found.0 >= 50 && lag().await == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut expected: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|b| (0..10).map(move |i| format!("t-{b}{i:02}")))
        .chain((0..30).map(|i| format!("t-c{i:02}")))
        .collect();
    expected.sort();
    assert_eq!(found.0, 50, "{}", c.log_text());
    assert_eq!(
        found.1, expected,
        "one finding per event, none lost, none twice"
    );
    assert_eq!(ready().await.0, 200);
    c.stop();
    // And a restart stores none of them again.
    let c = Collector::start(&data, &[]).await;
    c.wait_total("", 50).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(traversal_findings(&c).await.0, 50);
    c.stop();
}
