//! Authentication, roles, quotas and tenant isolation through the real binary: tokens made
//! by `mcp-audit token`, gRPC and HTTP callers on loopback, a JWKS server (axum) for OAuth
//! access tokens signed with test keys (tests/fixtures/jwt, made for these tests only).

use std::time::{Duration, Instant};

use crate::common::{full_event, mcp_audit, Collector};
use futures::StreamExt;
use mcp_audit::event::Event;
use mcp_audit::ingest::proto as convert;
use mcp_audit::proto::{ingest_client::IngestClient, ShipRequest, ShipResponse};
use serde_json::Value;
use tonic::Request;

fn token(dir: &std::path::Path, tenant: &str, role: &str, extra: &[&str]) -> String {
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "token",
        "create",
        "--tenant",
        tenant,
        "--role",
        role,
        "--data-dir",
        d,
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = mcp_audit(&args);
    assert_eq!(code, Some(0), "{err}");
    let t = out.trim().to_string();
    assert!(t.starts_with("mcat_") && !t.contains('\n'), "{out}");
    t
}

async fn ship(c: &Collector, token: &str, events: &[Event]) -> Result<ShipResponse, tonic::Status> {
    let mut client = IngestClient::connect(format!("http://127.0.0.1:{}", c.grpc))
        .await
        .unwrap();
    let mut req = Request::new(ShipRequest {
        events: events.iter().map(convert::encode).collect(),
    });
    if !token.is_empty() {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    client.send(req).await.map(|r| r.into_inner())
}

async fn call(
    c: &Collector,
    method: reqwest::Method,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new().request(method, c.url(path));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn get(c: &Collector, path: &str, token: &str) -> (u16, Value) {
    let (s, _, v) = call(c, reqwest::Method::GET, path, token, &[], None).await;
    (s, v)
}

/// Waits until `token` is accepted (a token made while the collector runs counts within a
/// second or two).
/// How long a test waits for something the collector does in the background (token file
/// reloads every second, the `_system` trail is indexed like any tenant): generous, because CI
/// runs the suites side by side on two cores.
const PATIENCE: Duration = Duration::from_secs(30);

async fn wait_accepted(c: &Collector, path: &str, token: &str) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if get(c, path, token).await.0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("token never accepted on {path}\n{}", c.log_text());
}

fn ids(v: &Value) -> Vec<String> {
    v["hits"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|h| h["event_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_revocation_and_the_system_trail() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let admin = token(&data, "acme", "admin", &["--name", "ops"]);
    // Polling for tokens made while it runs fails on purpose: no lockout here.
    let mut c = Collector::start(
        &data,
        &[("MCP_AUDIT_AUTH_MAX_FAILURES_PER_MINUTE", "10000")],
    )
    .await;
    c.use_token(&admin);
    assert!(c
        .log_text()
        .contains("every request needs a collector token"));

    // No credential, a wrong one: 401 with a challenge, as problem JSON.
    let (status, h, v) = call(&c, reqwest::Method::GET, "/api/v1/search", "", &[], None).await;
    assert_eq!(status, 401, "{v}");
    assert_eq!(h["www-authenticate"], "Bearer realm=\"mcp-audit\"");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("mcp-audit token create"),
        "{v}"
    );
    let forged = format!("{}x", &admin[..admin.len() - 1]);
    assert_eq!(get(&c, "/api/v1/search", &forged).await.0, 401);
    let err = ship(&c, "", &[full_event("anon")]).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
    // Public routes stay public.
    assert_eq!(get(&c, "/readyz", "").await.0, 200);
    assert_eq!(get(&c, "/api/v1/openapi.json", "").await.0, 200);

    // Tokens made while it runs are seen without a restart.
    let ingest = token(&data, "acme", "ingest", &[]);
    let read = token(&data, "acme", "read", &[]);
    wait_accepted(&c, "/api/v1/search", &read).await;

    // ingest ships only; read reads only; admin manages.
    let r = ship(&c, &ingest, &[full_event("a-1"), full_event("a-2")])
        .await
        .unwrap();
    assert_eq!(r.accepted.len(), 2, "{:?}", r.rejected);
    let (status, v) = get(&c, "/api/v1/search", &ingest).await;
    assert_eq!(status, 403, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("needs the `read` role"),
        "{v}"
    );
    let err = ship(&c, &read, &[full_event("r-1")]).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    let (status, _, v) = call(
        &c,
        reqwest::Method::POST,
        "/api/v1/rules/reload",
        &read,
        &[],
        None,
    )
    .await;
    assert_eq!(status, 403, "{v}");
    let (status, _, v) = call(
        &c,
        reqwest::Method::POST,
        "/api/v1/rules/reload",
        &admin,
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    c.wait_total("", 2).await;
    let (status, v) = get(&c, "/api/v1/search?start=-1h", &read).await;
    assert_eq!(status, 200);
    let mut got = ids(&v);
    got.sort();
    assert_eq!(got, ["a-1", "a-2"]);

    // The CLI ships with --token.
    let file = dir.path().join("e.jsonl");
    std::fs::write(
        &file,
        format!("{}\n", serde_json::to_string(&full_event("cli-1")).unwrap()),
    )
    .unwrap();
    let endpoint = format!("http://127.0.0.1:{}", c.grpc);
    let (code, _, err) = mcp_audit(&[
        "ship",
        "--endpoint",
        &endpoint,
        "--token",
        &ingest,
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    c.wait_total("", 3).await;

    // Revoked: refused within a couple of seconds, without a restart.
    let id = read.split('_').nth(1).unwrap().to_string();
    let (code, _, err) = mcp_audit(&["token", "revoke", &id, "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let mut refused = false;
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if get(&c, "/api/v1/search", &read).await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "a revoked token was still accepted");
    let (code, out, _) = mcp_audit(&[
        "token",
        "list",
        "--json",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.lines()
            .any(|l| l.contains(&id) && l.contains("\"revoked\"")),
        "{out}"
    );
    assert!(
        // The secret is everything after the id (it may itself hold `_`).
        !out.contains(read.splitn(3, '_').nth(2).unwrap()),
        "list shows a secret"
    );

    // An expired token is refused.
    let short = token(&data, "acme", "read", &["--expires", "1s"]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(get(&c, "/api/v1/search", &short).await.0, 401);

    // The collector's own trail: refusals and the rule reload, searchable by an admin only.
    let system = [("x-mcp-audit-tenant", "_system")];
    let (status, _, v) = call(
        &c,
        reqwest::Method::GET,
        "/api/v1/search",
        &read,
        &system,
        None,
    )
    .await;
    assert_eq!(status, 401, "{v}");
    let ingest2 = token(&data, "acme", "read", &[]);
    wait_accepted(&c, "/api/v1/search", &ingest2).await;
    let (status, _, v) = call(
        &c,
        reqwest::Method::GET,
        "/api/v1/search",
        &ingest2,
        &system,
        None,
    )
    .await;
    assert_eq!(status, 403, "a read token read `_system`: {v}");
    let mut trail = Value::Null;
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let (status, _, v) = call(
            &c,
            reqwest::Method::GET,
            "/api/v1/search?q=method:%22audit/rules%22&start=-1h",
            &admin,
            &system,
            None,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        if v["total"].as_u64() == Some(1) {
            trail = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let hit = &trail["hits"][0];
    assert_eq!(hit["tool"], "reload", "{trail}");
    assert!(hit["user"].as_str().unwrap().starts_with("token:"), "{hit}");
    assert_eq!(hit["tenant"], "_system");
    let deadline = Instant::now() + PATIENCE;
    let v = loop {
        let (status, _, v) = call(
            &c,
            reqwest::Method::GET,
            "/api/v1/search?q=method:%22audit/auth%22%20AND%20outcome:denied&start=-1h",
            &admin,
            &system,
            None,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        if v["total"].as_u64().unwrap_or(0) >= 3 || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(v["total"].as_u64().unwrap_or(0) >= 3, "{v}");
    let text = v.to_string();
    assert!(
        !text.contains(&forged),
        "a refused secret reached the trail"
    );
    // Another tenant's name in the header is refused even for an admin.
    let (status, _, _) = call(
        &c,
        reqwest::Method::GET,
        "/api/v1/search",
        &admin,
        &[("x-mcp-audit-tenant", "globex")],
        None,
    )
    .await;
    assert_eq!(status, 403);
    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_lock_an_address_out_and_quotas_answer_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ingest = token(&data, "acme", "ingest", &[]);
    let read = token(&data, "acme", "read", &[]);
    let c = Collector::start(
        &data,
        &[
            ("MCP_AUDIT_AUTH_MAX_FAILURES_PER_MINUTE", "3"),
            ("MCP_AUDIT_AUTH_LOCKOUT_SECS", "30"),
            ("MCP_AUDIT_AUTH_INGEST_EVENTS_PER_SEC", "5"),
            ("MCP_AUDIT_AUTH_INGEST_BURST", "10"),
            ("MCP_AUDIT_AUTH_API_REQUESTS_PER_SEC", "1"),
            ("MCP_AUDIT_AUTH_API_BURST", "3"),
        ],
    )
    .await;

    // Ingest quota: a burst of 10, then RESOURCE_EXHAUSTED with retry-after; the refused
    // batch is stored when sent again later.
    let batch: Vec<Event> = (0..10).map(|i| full_event(&format!("q-{i}"))).collect();
    assert_eq!(ship(&c, &ingest, &batch).await.unwrap().accepted.len(), 10);
    let more: Vec<Event> = (10..15).map(|i| full_event(&format!("q-{i}"))).collect();
    let err = ship(&c, &ingest, &more).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    assert!(
        err.message().contains("auth.ingest_events_per_sec"),
        "{err}"
    );
    let after: u64 = err
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&after), "{after}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ship(&c, &ingest, &more).await.unwrap().accepted.len(), 5);

    // API quota: a burst of 3, then 429 with Retry-After.
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..4 {
        let (s, h, _) = call(&c, reqwest::Method::GET, "/api/v1/fields", &read, &[], None).await;
        statuses.push(s);
        if s == 429 {
            retry = h
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(retry.as_deref(), Some("1"));

    // Three failures are allowed, the fourth locks the address out: even a good token is
    // refused, with the time to wait.
    for _ in 0..4 {
        assert_eq!(
            get(&c, "/api/v1/fields", "mcat_000000000000_nope").await.0,
            401
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, h, v) = call(&c, reqwest::Method::GET, "/api/v1/fields", &read, &[], None).await;
    assert_eq!(status, 429, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("too many failed attempts"),
        "{v}"
    );
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((20..=30).contains(&wait), "{wait}");
    let err = ship(&c, &ingest, &[full_event("late")]).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err}");
    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_listener_without_credentials_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-audit"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--grpc-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not loopback, and no credential is configured")
            && err.contains("mcp-audit token create"),
        "{err}"
    );
    // With a token it starts.
    token(dir.path(), "acme", "ingest", &[]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-audit"))
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--grpc-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut ready = false;
    for _ in 0..400 {
        line.clear();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            break;
        }
        if line.contains("collector ready") {
            ready = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "did not start with a token configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_answers_are_not_cached_and_the_dashboard_runs_under_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(dir.path(), &[]).await;
    let r = reqwest::get(c.url("/api/v1/fields")).await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, c.url("/api/v1/search"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = reqwest::get(c.url("/")).await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    c.stop();
}

/// Two tenants with overlapping event ids, users and rules firing for both: nothing of one
/// is ever visible to the other, through any endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoint_returns_another_tenants_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ship_a = token(&data, "acme", "ingest", &[]);
    let ship_b = token(&data, "globex", "ingest", &[]);
    let read_a = token(&data, "acme", "read", &[]);
    let read_b = token(&data, "globex", "read", &[]);
    let admin_a = token(&data, "acme", "admin", &[]);
    let mut c = Collector::start(
        &data,
        &[
            ("MCP_AUDIT_ALERTS_GROUP_WAIT_SECS", "0"),
            ("MCP_AUDIT_AUTH_MAX_FAILURES_PER_MINUTE", "10000"),
        ],
    )
    .await;

    // A's live tail, open before anything is shipped.
    let tail = reqwest::Client::new()
        .get(c.url("/api/v1/tail"))
        .bearer_auth(&read_a)
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 200);
    let mut tail = tail.bytes_stream();

    let event = |id: &str, user: &str, secret_word: &str| {
        let mut e = full_event(id);
        e.user = user.into();
        e.tool = "fetch".into();
        e.arguments = serde_json::json!({ "url": "http://169.254.169.254/latest/meta-data/", "note": secret_word });
        e
    };
    // The same id in both tenants, and ids only B has.
    let a = vec![event("shared-1", "alice", "apple")];
    let b = vec![
        event("shared-1", "bob", "banana"),
        event("b-only-1", "bob", "banana"),
        event("b-only-2", "bob", "banana"),
    ];
    assert_eq!(ship(&c, &ship_b, &b).await.unwrap().accepted.len(), 3);
    assert_eq!(ship(&c, &ship_a, &a).await.unwrap().accepted.len(), 1);
    let mut last = full_event("a-last");
    last.user = "alice".into();
    assert_eq!(ship(&c, &ship_a, &[last]).await.unwrap().accepted.len(), 1);
    c.use_token(&read_a);
    c.wait_total("", 2).await;

    // The tail of A saw A's events and none of B's.
    let mut seen = String::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = tail.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("a-last") {
                break;
            }
        }
    })
    .await
    .unwrap();
    assert!(
        seen.contains("shared-1") && !seen.contains("banana") && !seen.contains("b-only"),
        "{seen}"
    );

    // Search, free text, by id, histogram, terms.
    let (_, v) = get(&c, "/api/v1/search?start=-1h&limit=100", &read_a).await;
    let mut got = ids(&v);
    got.sort();
    assert_eq!(got, ["a-last", "shared-1"]);
    assert_eq!(v["hits"][1]["arguments"]["note"], "apple", "{v}");
    let (_, v) = get(&c, "/api/v1/search?q=banana&start=-1h", &read_a).await;
    assert_eq!(v["total"], 0, "{v}");
    let (status, v) = get(&c, "/api/v1/events/b-only-1", &read_a).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = get(&c, "/api/v1/events/shared-1", &read_a).await;
    assert_eq!(status, 200);
    assert_eq!(v["user"], "alice", "{v}");
    let (_, v) = get(&c, "/api/v1/terms?field=user&start=-1h", &read_a).await;
    assert!(!v.to_string().contains("bob"), "{v}");
    let (_, v) = get(&c, "/api/v1/histogram?start=-1h&interval=1h", &read_a).await;
    let count: u64 = v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, 2, "{v}");

    // A cursor from B's search, reused by A, pages only A's events.
    let (_, vb) = get(&c, "/api/v1/search?start=-1h&limit=1", &read_b).await;
    let cursor = vb["next_cursor"].as_str().unwrap().to_string();
    let (status, v) = get(
        &c,
        &format!("/api/v1/search?start=-1h&limit=100&cursor={cursor}"),
        &read_a,
    )
    .await;
    assert!(status == 400 || status == 200, "{status} {v}");
    if status == 200 {
        for id in ids(&v) {
            assert!(
                id == "shared-1" || id == "a-last",
                "B's event through a cursor: {v}"
            );
        }
        assert!(!v.to_string().contains("banana"), "{v}");
    }

    // Findings and alerts: the SSRF rule fired in both tenants; each sees only its own.
    let mut findings_a = Value::Null;
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let (_, v) = get(&c, "/api/v1/findings?since=-1h", &read_a).await;
        if v["findings"].as_array().is_some_and(|f| !f.is_empty()) {
            findings_a = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = findings_a["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no finding for A\n{}", c.log_text()));
    for f in list {
        for id in f["event_ids"].as_array().unwrap() {
            assert!(id == "shared-1", "A sees a finding citing {id}: {f}");
        }
        let (status, v) = get(
            &c,
            &format!("/api/v1/findings/{}", f["id"].as_str().unwrap()),
            &read_b,
        )
        .await;
        assert_eq!(status, 404, "B read A's finding: {v}");
    }
    let (_, fb) = get(&c, "/api/v1/findings?since=-1h", &read_b).await;
    assert!(!fb["findings"].as_array().unwrap().is_empty(), "{fb}");
    assert!(!fb.to_string().contains("alice"), "{fb}");
    let mut alerts_a = Value::Null;
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let (_, v) = get(&c, "/api/v1/alerts", &read_a).await;
        if v["alerts"].as_array().is_some_and(|a| !a.is_empty()) {
            alerts_a = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alerts_a.is_null(), "no alert for A");
    assert!(!alerts_a.to_string().contains("bob"), "{alerts_a}");
    let (_, alerts_b) = get(&c, "/api/v1/alerts", &read_b).await;
    for alert in alerts_a["alerts"].as_array().unwrap() {
        let id = alert["id"].as_str().unwrap();
        assert!(!alerts_b.to_string().contains(id), "B lists A's alert");
        let (status, _) = get(&c, &format!("/api/v1/alerts/{id}"), &read_b).await;
        assert_eq!(status, 404);
    }
    // An admin of A cannot act on B's alerts either.
    for alert in alerts_b["alerts"].as_array().unwrap() {
        let id = alert["id"].as_str().unwrap();
        let (status, _, _) = call(
            &c,
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            &admin_a,
            &[],
            Some("{}".into()),
        )
        .await;
        assert_eq!(status, 404, "A's admin acked B's alert");
    }

    // An event cannot choose its tenant: a `tenant` field in NDJSON is not honoured.
    let mut sneaky = serde_json::to_value(full_event("sneaky")).unwrap();
    sneaky["tenant"] = "globex".into();
    let (status, _, v) = call(
        &c,
        reqwest::Method::POST,
        "/api/v1/ingest",
        &ship_a,
        &[("content-type", "application/x-ndjson")],
        Some(format!("{sneaky}\n")),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, v) = get(&c, "/api/v1/events/sneaky", &read_b).await;
    assert_ne!(v["event_id"], "sneaky", "an event chose its tenant: {v}");
    c.stop();
}

mod jwt {
    use super::*;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use std::sync::{Arc, Mutex};

    const ISSUER: &str = "https://idp.test/";
    const PEM_A: &str = include_str!("../fixtures/jwt/ed25519-a.pem");
    const PEM_B: &str = include_str!("../fixtures/jwt/ed25519-b.pem");
    const X_A: &str = include_str!("../fixtures/jwt/ed25519-a.x");
    const X_B: &str = include_str!("../fixtures/jwt/ed25519-b.x");

    fn jwk(kid: &str, x: &str) -> Value {
        serde_json::json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid, "x": x.trim() })
    }

    fn sign(kid: &str, pem: &str, claims: Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid.into());
        encode(
            &h,
            &claims,
            &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn claims(tenant: &str, scope: &str, exp_in: i64) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        serde_json::json!({ "iss": ISSUER, "aud": "mcp-audit", "sub": "svc-gateway", "tenant": tenant, "scope": scope, "iat": now, "exp": now + exp_in })
    }

    /// A JWKS endpoint on loopback whose key set the test can change.
    async fn jwks_server(keys: Arc<Mutex<Value>>) -> u16 {
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let keys = keys.clone();
                async move { axum::Json(keys.lock().unwrap().clone()) }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        port
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn access_tokens_from_an_identity_provider() {
        let keys = Arc::new(Mutex::new(serde_json::json!({ "keys": [jwk("a", X_A)] })));
        let port = jwks_server(keys.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/jwks");
        let c = Collector::start(
            dir.path(),
            &[
                ("MCP_AUDIT_AUTH_JWT_JWKS_URL", url.as_str()),
                ("MCP_AUDIT_AUTH_JWT_ISSUER", ISSUER),
                ("MCP_AUDIT_AUTH_JWT_AUDIENCE", "mcp-audit"),
                ("MCP_AUDIT_AUTH_JWT_JWKS_REFRESH_MIN_SECS", "0"),
                ("MCP_AUDIT_AUTH_MAX_FAILURES_PER_MINUTE", "10000"),
            ],
        )
        .await;

        // RFC 9728 metadata, and a 401 that points at it.
        let (status, v) = get(&c, "/.well-known/oauth-protected-resource", "").await;
        assert_eq!(status, 200, "{v}");
        let resource = format!("http://127.0.0.1:{}", c.http);
        assert_eq!(v["resource"], resource.as_str());
        assert_eq!(v["authorization_servers"][0], ISSUER);
        assert!(v["scopes_supported"].to_string().contains("mcp-audit:read"));
        let (status, h, _) = call(&c, reqwest::Method::GET, "/api/v1/search", "", &[], None).await;
        assert_eq!(status, 401);
        assert_eq!(
            h["www-authenticate"].to_str().unwrap(),
            format!("Bearer resource_metadata=\"{resource}/.well-known/oauth-protected-resource\"")
        );

        // Ingest and read with access tokens; the tenant comes from the claim.
        let ingest = sign("a", PEM_A, claims("acme", "openid mcp-audit:ingest", 300));
        let r = ship(&c, &ingest, &[full_event("j-1")]).await.unwrap();
        assert_eq!(r.accepted, ["j-1"]);
        let read = sign("a", PEM_A, claims("acme", "mcp-audit:read", 300));
        assert_eq!(get(&c, "/api/v1/search", &ingest).await.0, 403);
        let mut found = false;
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            let (status, v) = get(&c, "/api/v1/search?start=-1h", &read).await;
            assert_eq!(status, 200, "{v}");
            if ids(&v) == ["j-1"] {
                found = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(found);
        let other = sign("a", PEM_A, claims("globex", "mcp-audit:read", 300));
        let (_, v) = get(&c, "/api/v1/search?start=-1h", &other).await;
        assert_eq!(v["total"], 0, "{v}");
        let mut scp = claims("acme", "", 300);
        scp["scp"] = serde_json::json!(["mcp-audit:read"]);
        assert_eq!(
            get(&c, "/api/v1/fields", &sign("a", PEM_A, scp)).await.0,
            200
        );

        // Refused: each for its own reason.
        let mut wrong_iss = claims("acme", "mcp-audit:read", 300);
        wrong_iss["iss"] = "https://evil.test/".into();
        let mut wrong_aud = claims("acme", "mcp-audit:read", 300);
        wrong_aud["aud"] = "someone-else".into();
        let mut no_tenant = claims("acme", "mcp-audit:read", 300);
        no_tenant.as_object_mut().unwrap().remove("tenant");
        let hs = {
            let mut h = Header::new(Algorithm::HS256);
            h.kid = Some("a".into());
            encode(
                &h,
                &claims("acme", "mcp-audit:read", 300),
                &EncodingKey::from_secret(X_A.trim().as_bytes()),
            )
            .unwrap()
        };
        for (what, t, reason) in [
            ("issuer", sign("a", PEM_A, wrong_iss), "Issuer"),
            ("audience", sign("a", PEM_A, wrong_aud), "Audience"),
            (
                "expired",
                sign("a", PEM_A, claims("acme", "mcp-audit:read", -300)),
                "Expired",
            ),
            (
                "no scope",
                sign("a", PEM_A, claims("acme", "profile", 300)),
                "none of the scopes",
            ),
            ("no tenant", sign("a", PEM_A, no_tenant), "claim `tenant`"),
            (
                "reserved tenant",
                sign("a", PEM_A, claims("_system", "mcp-audit:admin", 300)),
                "reserved",
            ),
            (
                "wrong key",
                sign("a", PEM_B, claims("acme", "mcp-audit:read", 300)),
                "Signature",
            ),
            ("shared secret", hs, "not accepted"),
            (
                "unknown kid",
                sign("b", PEM_B, claims("acme", "mcp-audit:read", 300)),
                "no key with kid",
            ),
        ] {
            let (status, v) = get(&c, "/api/v1/fields", &t).await;
            assert_eq!(status, 401, "{what}: {v}");
            let detail = v["detail"].as_str().unwrap();
            assert!(
                detail.to_lowercase().contains(&reason.to_lowercase()),
                "{what}: {detail}"
            );
        }

        // The provider rotates to key b: a token with the new kid is accepted once the key
        // set is fetched again.
        *keys.lock().unwrap() = serde_json::json!({ "keys": [jwk("a", X_A), jwk("b", X_B)] });
        let rotated = sign("b", PEM_B, claims("acme", "mcp-audit:read", 300));
        let (status, v) = get(&c, "/api/v1/fields", &rotated).await;
        assert_eq!(status, 200, "{v}");
        c.stop();
    }
}
