//! Slow, stalled and hostile HTTP clients against a real collector: headers trickled a byte
//! at a time, half a header, idle keep-alive connections and stalled request bodies are all
//! closed within the configured timeouts, while ordinary requests and a live tail go on.

use std::time::{Duration, Instant};

use crate::common::{self, full_event, Server};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_TIMEOUT: Duration = Duration::from_millis(600);
const IDLE_TIMEOUT: Duration = Duration::from_millis(800);
/// Scheduling slack on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

async fn start(dir: &std::path::Path) -> Server {
    let mut config = common::test_config(dir);
    config.http_header_timeout = HEADER_TIMEOUT;
    config.http_idle_timeout = IDLE_TIMEOUT;
    Server::start_with(config).await
}

async fn connect(s: &Server) -> TcpStream {
    TcpStream::connect(s.http.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection; returns what it sent and when it closed.
/// Panics if it is still open after `limit`.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Instant) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => panic!("connection still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, Instant::now()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickled_a_byte_at_a_time_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    // 50 clients that each send a header byte every 20 ms and would never finish it.
    let started = Instant::now();
    let clients: Vec<_> = (0..50)
        .map(|i| {
            let addr = s.http.trim_start_matches("http://").to_string();
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.unwrap();
                let opened = Instant::now();
                let (mut rd, mut wr) = stream.into_split();
                let trickle = async move {
                    let head = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-pad-{i}: ");
                    for b in head.bytes().chain(std::iter::repeat(b'a')).take(10_000) {
                        if wr.write_all(&[b]).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                let watch = async move {
                    let mut buf = [0u8; 1024];
                    loop {
                        match rd.read(&mut buf).await {
                            Ok(0) | Err(_) => return Instant::now(),
                            Ok(_) => {}
                        }
                    }
                };
                tokio::pin!(trickle);
                let closed = tokio::select! {
                    t = watch => t,
                    () = &mut trickle => panic!("the server read 10,000 header bytes at 20 ms each"),
                };
                closed - opened
            })
        })
        .collect();
    // Meanwhile the server answers others.
    let (status, _) = s.get_text("/healthz").await;
    assert_eq!(status, 200);
    for c in clients {
        let open = tokio::time::timeout(HEADER_TIMEOUT + SLACK, c)
            .await
            .expect("a trickling client was not cut off")
            .unwrap();
        assert!(
            open >= HEADER_TIMEOUT - Duration::from_millis(50),
            "closed after {open:?}, before the header timeout"
        );
        assert!(open <= HEADER_TIMEOUT + SLACK, "open for {open:?}");
    }
    assert!(started.elapsed() < HEADER_TIMEOUT + SLACK + SLACK);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_header_and_idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;

    let mut half = connect(&s).await;
    let opened = Instant::now();
    half.write_all(b"GET /healthz HTTP/1.1\r\nho")
        .await
        .unwrap();
    let (_, closed) = until_closed(&mut half, HEADER_TIMEOUT + SLACK).await;
    assert!(closed - opened >= HEADER_TIMEOUT - Duration::from_millis(50));

    // A complete request, answered, then nothing: the connection is idle keep-alive.
    let mut idle = connect(&s).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    let answered = Instant::now();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let (rest, closed) = until_closed(&mut idle, HEADER_TIMEOUT + SLACK).await;
    assert!(rest.is_empty());
    assert!(closed - answered >= HEADER_TIMEOUT - Duration::from_millis(50));

    // Keep-alive itself still works: a second request on time is answered on the same
    // connection.
    let mut kept = connect(&s).await;
    for _ in 0..2 {
        kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let n = kept.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    let mut c = connect(&s).await;
    let sent = Instant::now();
    c.write_all(
        b"POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{\"event_id\"",
    )
    .await
    .unwrap();
    let (answer, closed) = until_closed(&mut c, IDLE_TIMEOUT + SLACK).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("`http.idle_timeout_ms`"), "{answer}");
    assert!(closed - sent >= IDLE_TIMEOUT - Duration::from_millis(50));
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_tail_outlives_every_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path()).await;
    let r = reqwest::get(format!("{}/api/v1/tail?q=user:alice", s.http))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    // Quiet for longer than both timeouts together, then an event.
    tokio::time::sleep(HEADER_TIMEOUT + IDLE_TIMEOUT + Duration::from_millis(400)).await;
    let resp = s.send(&[full_event("tail-1")]).await;
    assert_eq!(resp.accepted, vec!["tail-1"]);
    let mut seen = String::new();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("tail-1") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "tail ended or stayed silent: {seen:?}");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.http_max_connections = 3;
    config.http_header_timeout = Duration::from_secs(30);
    let s = Server::start_with(config).await;
    // The readiness probe's pooled connection may hold a slot; this test's own client holds
    // the others, so only a closed connection frees one.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(&s).await);
    }
    let mut waiting = connect(&s).await;
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "answered beyond the connection cap");
    held.clear();
    let (answer, _) = until_closed(&mut waiting, SLACK).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    s.stop().await.unwrap();
}

/// CPU seconds a process has used (Linux `/proc`).
#[cfg(target_os = "linux")]
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_accept_loop_backs_off_and_recovers() {
    use std::process::{Command, Stdio};

    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (grpc, http) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    // A collector limited to 96 file descriptors, so a few hundred clients exhaust them.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 96 && exec \"$0\" serve --data-dir \"$1\" --grpc-listen 127.0.0.1:{grpc} --http-listen 127.0.0.1:{http}"
        ))
        .arg(env!("CARGO_BIN_EXE_mcp-audit"))
        .arg(dir.path())
        .env("MCP_AUDIT_LOG", "error")
        .env("MCP_AUDIT_INDEX_WRITER_THREADS", "1")
        .env("MCP_AUDIT_INDEX_WRITER_MEMORY_MB", "32")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{http}");
    let ready = async {
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .expect("collector ready");
    // More clients than descriptors; fewer than descriptors and listen backlog together,
    // so every connect completes at once.
    let mut held = Vec::new();
    for _ in 0..160 {
        held.push(
            TcpStream::connect(format!("127.0.0.1:{http}"))
                .await
                .unwrap(),
        );
    }
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", child.id()))
            .unwrap()
            .count()
    };
    let exhausted = async {
        while fds() < 90 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), exhausted)
        .await
        .expect("the collector ran out of file descriptors");
    // Out of descriptors, accept fails with EMFILE at once, every time: a loop that retried
    // without pause would burn a whole core.
    let before = cpu_seconds(child.id());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_seconds(child.id()) - before;
    assert!(used < 0.5, "the collector used {used:.2} s of CPU in 2 s");
    drop(held);
    let healthy = async {
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), healthy)
        .await
        .expect("serving again once descriptors were free");
    child.kill().unwrap();
    child.wait().unwrap();
}
