//! Every HTTP error is an RFC 9457 problem (`application/problem+json` with `type`, `title`,
//! `status`, `detail`, and `param` when a parameter is at fault), against a real collector.

use crate::common::{self, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `request` as is on a fresh connection; returns the status, headers (lowercase) and
/// body of the answer.
async fn raw(server: &Server, request: &[u8]) -> (u16, String, Vec<u8>) {
    let addr = server.http.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        // `connection: close` in every request below: the server closes after answering.
        let _ = s.read_to_end(&mut out).await;
    });
    read.await.expect("the collector answered and closed");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, _) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head[9..12].parse().unwrap();
    let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (status, head.to_lowercase(), out[at..].to_vec())
}

/// Checks that an answer is a problem with this status; returns its JSON.
fn problem(status: u16, want: u16, head: &str, body: &[u8]) -> Value {
    assert_eq!(status, want, "{head}\n{}", String::from_utf8_lossy(body));
    assert!(
        head.contains("content-type: application/problem+json"),
        "not a problem: {head}"
    );
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["type"], "about:blank", "{v}");
    assert_eq!(v["status"], want, "{v}");
    assert!(v["title"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
    assert!(v["detail"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
    v
}

async fn get(server: &Server, target: &str) -> (u16, String, Vec<u8>) {
    let req = format!("GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    raw(server, req.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_outside_1970_to_9999_are_400_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    for (target, param) in [
        // Used to panic the handler (a bucket before year 0 cannot be written as RFC 3339)
        // and drop the connection.
        ("/api/v1/histogram?start=-1000000d", "start"),
        ("/api/v1/histogram?start=-1000000d&interval=1d", "start"),
        ("/api/v1/search?start=1969-12-31T23:59:59Z", "start"),
        ("/api/v1/terms?field=tool&start=-100000w", "start"),
        (
            "/api/v1/search?start=-1d&end=9999-12-31T23:59:59-01:00",
            "end",
        ),
    ] {
        let (status, head, body) = get(&s, target).await;
        let v = problem(status, 400, &head, &body);
        assert_eq!(v["param"], param, "{target}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains("outside 1970"),
            "{v}"
        );
    }
    // The edges of the range are fine.
    let (status, _, body) = get(
        &s,
        "/api/v1/histogram?start=1970-01-01T00:00:00Z&end=1970-01-02T00:00:00Z&interval=1h",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = get(
        &s,
        "/api/v1/search?start=9999-12-31T00:00:00Z&end=9999-12-31T23:59:59Z",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_strings_are_read_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    for (target, param, detail) in [
        ("/api/v1/search?q=a&limit=5&q=b", "q", "given 2 times"),
        (
            "/api/v1/histogram?interval=1h&interval=1d",
            "interval",
            "given 2 times",
        ),
        ("/api/v1/tail?q=tool:a&q=tool:b", "q", "given 2 times"),
        ("/api/v1/search?q=%FF", "q", "not valid UTF-8"),
        (
            "/api/v1/search?limit=1&colour=red",
            "colour",
            "unknown parameter",
        ),
        ("/api/v1/search?q=&limit=", "limit", "empty"),
        ("/api/v1/histogram?interval=", "interval", "empty"),
    ] {
        let (status, head, body) = get(&s, target).await;
        let v = problem(status, 400, &head, &body);
        assert_eq!(v["param"], param, "{target}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(detail), "{v}");
    }
    let (status, _, body) = get(&s, "/api/v1/search?q=user%3Aalice+AND+NOT+tool%3Ax").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_and_encoding_errors_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    for target in [
        "/api/v1/nope",
        "/api/v2/search",
        "/nope.css",
        "/api/v1/events/",
    ] {
        let (status, head, body) = get(&s, target).await;
        let v = problem(status, 404, &head, &body);
        assert!(
            v["detail"].as_str().unwrap().contains("openapi.json"),
            "{v}"
        );
    }
    // A POST to an unknown path is a 404 too, not a 405 from the dashboard's catch-all.
    let (status, head, body) = raw(
        &s,
        b"POST /api/v1/nope HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )
    .await;
    problem(status, 404, &head, &body);
    let (status, head, body) = raw(
        &s,
        b"POST /api/v1/search HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )
    .await;
    let v = problem(status, 405, &head, &body);
    assert!(head.contains("allow: get,head"), "{head}");
    assert!(v["detail"].as_str().unwrap().contains("GET"), "{v}");
    let (status, head, body) = get(&s, "/api/v1/events/%FF%FE").await;
    let v = problem(status, 400, &head, &body);
    assert_eq!(v["param"], "event_id");
    // A request target over 16 KiB, but under hyper's own limit.
    let long = format!("/api/v1/search?q={}", "a".repeat(20_000));
    let (status, head, body) = get(&s, &long).await;
    problem(status, 414, &head, &body);
    // The dashboard is still served.
    let (status, head, _) = get(&s, "/").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_body_errors_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.http_max_body_bytes = 1 << 20;
    let s = Server::start_with(config).await;

    let body: &[u8] = b"{\"event_id\":\"a\"}\n\n{\"event_id\":\"\xff\xfe\"}\n";
    let mut req = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let (status, head, body) = raw(&s, &req).await;
    let v = problem(status, 400, &head, &body);
    assert_eq!(v["param"], "body");
    assert!(
        v["detail"].as_str().unwrap().contains("line 3 (index 2)"),
        "{v}"
    );

    // Declared too large: refused before the body is sent.
    let (status, head, body) = raw(
        &s,
        format!(
            "POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            (1 << 20) + 1
        )
        .as_bytes(),
    )
    .await;
    let v = problem(status, 413, &head, &body);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("`http.max_body_bytes`"),
        "{v}"
    );
    // Chunked, so only counting finds it too large.
    let mut req =
        b"POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..17 {
        req.extend_from_slice(format!("{:x}\r\n", 64 << 10).as_bytes());
        req.extend(std::iter::repeat_n(b'\n', 64 << 10));
        req.extend_from_slice(b"\r\n");
    }
    let (status, head, body) = raw(&s, &req).await;
    problem(status, 413, &head, &body);

    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/ingest", s.http);
    // Right under the limit is fine.
    let r = client
        .post(&url)
        .body(vec![b' '; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_and_covers_what_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (status, head, body) = get(&s, "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: application/json"), "{head}");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    // Every documented GET without required parameters answers with a documented status.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        let required = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["required"] == true));
        if required || path == "/api/v1/tail" {
            continue;
        }
        let (status, _, _) = get(&s, path).await;
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "GET {path} answered {status}, which the document does not list"
        );
    }
    s.stop().await.unwrap();
}
