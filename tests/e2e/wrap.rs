//! `mcp-audit wrap` (stdio) against a real collector on loopback, with a minimal MCP server
//! written inline in Python (no SDK) as the child: what the proxy does when the collector is
//! not there yet and the spool is full. The official SDK and the npm reference servers are
//! driven through `wrap` in tests/interop/test_wrap.py.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::test_config;
use mcp_audit::app::{run, Listeners};
use tokio::net::TcpListener;

/// Answers `tools/list` with one tool and `tools/call` with the arguments it got.
const SERVER: &str = r#"
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    if m["method"] == "tools/list":
        r = {"tools": [{"name": "echo", "description": "echo", "inputSchema": {"type": "object"},
                        "annotations": {"readOnlyHint": True}}]}
    else:
        r = {"content": [{"type": "text", "text": json.dumps(m["params"]["arguments"])}]}
    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}), flush=True)
"#;

fn call(id: u64, text: &str) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"{text}\"}}}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_overflow_is_counted_warned_and_reported_once_the_collector_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // The collector's port is chosen now and served later: until then nothing listens there.
    let grpc = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = grpc.local_addr().unwrap().port();
    drop(grpc);
    let spool = dir.path().join("spool");
    let mut wrap = Command::new(env!("CARGO_BIN_EXE_mcp-audit"))
        .args([
            "wrap",
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--spool",
            spool.to_str().unwrap(),
            "--spool-max-bytes",
            "1",
            "--server-name",
            "inline",
            "--",
            "python3",
            "-c",
            SERVER,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_wrap = wrap.stdin.take().unwrap();
    // wrap's stderr, line by line as it comes.
    let (said_tx, said) = std::sync::mpsc::channel::<String>();
    let stderr = wrap.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = said_tx.send(line);
        }
    });
    let mut from_wrap = BufReader::new(wrap.stdout.take().unwrap());
    let mut answer = String::new();
    let mut roundtrip = |line: &str, to_wrap: &mut std::process::ChildStdin| {
        to_wrap.write_all(line.as_bytes()).unwrap();
        answer.clear();
        from_wrap.read_line(&mut answer).unwrap();
        answer.clone()
    };
    let list = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"tools/list\"}\n";
    assert!(roundtrip(list, &mut to_wrap).contains("\"echo\""));
    for i in 1..=5 {
        let a = roundtrip(&call(i, &format!("lost {i}")), &mut to_wrap);
        assert!(a.contains(&format!("lost {i}")), "{a}");
    }

    // Once the proxy has had to drop events, the collector comes up on that port.
    let warning = said
        .recv_timeout(Duration::from_secs(30))
        .expect("no warning on stderr");
    assert!(
        warning.contains("warning:") && warning.contains("dropped"),
        "{warning}"
    );
    let data = dir.path().join("data");
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = format!("http://{}", http.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut task = tokio::spawn(run(
        test_config(&data),
        Listeners {
            grpc: listener,
            http,
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let total = |q: &'static str| {
        let client = client.clone();
        let url = format!("{http_addr}/api/v1/search");
        async move {
            let r = client
                .get(url)
                .query(&[("q", q), ("start", "-1d"), ("limit", "100")])
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    let v: serde_json::Value = r.json().await.unwrap();
                    (v["total"].as_u64().unwrap_or(0), v)
                }
                _ => (0, serde_json::Value::Null),
            }
        }
    };
    // Calls keep flowing; the proxy reconnects on its own (backoff of at most a few seconds
    // here) and reports what it had to drop.
    let mut reported = None;
    for i in 6..=400u64 {
        let a = roundtrip(&call(i, &format!("kept {i}")), &mut to_wrap);
        assert!(a.contains(&format!("kept {i}")), "{a}");
        assert!(
            !task.is_finished(),
            "the collector stopped: {:?}",
            (&mut task).await
        );
        let (n, v) = total("method:\"wrap/spool_overflow\"").await;
        if n > 0 {
            reported = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(v) = reported else {
        let (_, all) = total("").await;
        let _ = wrap.kill();
        let stderr: Vec<String> = said.try_iter().collect();
        panic!(
            "the overflow was never reported to the collector; wrap said: {stderr:?}; stored: {}",
            all["total"]
        );
    };
    let dropped: u64 = v["hits"][0]["labels"]["dropped_events"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // tools/list and the five calls made while the collector was away, maybe more: every
    // batch spilled in that time was dropped.
    assert!(dropped >= 6, "{v}");

    drop(to_wrap);
    let status = tokio::task::spawn_blocking(move || wrap.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "the child's exit code");
    // Calls made once the collector was back are stored (flushed at exit at the latest).
    let mut kept = 0;
    for _ in 0..200 {
        kept = total("server:inline AND arguments.text:kept").await.0;
        if kept > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        kept > 0,
        "no call made after the collector came back was stored"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
