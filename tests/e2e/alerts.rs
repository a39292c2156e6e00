//! Alerting through the real binary and a real HTTP receiver (axum on loopback): grouping
//! and suppressed counts, acknowledge and resolve, silences, Standard Webhooks signatures
//! checked by `mcp-audit webhook verify` (key rotation included), retries after failures
//! and 429 Retry-After, 410 disabling a destination, a kill -9 in the middle of retries,
//! and the three body formats.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{full_event, mcp_audit, Collector};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_SECRET: &str = "whsec_c2VjcmV0LWJlaW5nLXJvdGF0ZWQtb3V0LTEyMzQ=";

#[derive(Clone, Debug)]
struct Got {
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Got {
    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    /// The request as `webhook verify` reads it.
    fn raw(&self) -> Vec<u8> {
        let mut out = b"POST /hook HTTP/1.1\r\n".to_vec();
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Status and `Retry-After` to answer, in order, per path.
type Script = std::collections::HashMap<String, Vec<(u16, Option<&'static str>)>>;

/// A receiver that records every request and answers with the next scripted status (200
/// when the script is empty).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Got)>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    async fn start() -> (Receiver, u16) {
        let r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/{path}",
            axum::routing::post(
                move |axum::extract::Path(path): axum::extract::Path<String>,
                      headers: HeaderMap,
                      body: Bytes| {
                    let state = state.clone();
                    async move {
                        let got = Got {
                            headers: headers
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                                })
                                .collect(),
                            body,
                        };
                        state.got.lock().unwrap().push((path.clone(), got));
                        let next = {
                            let mut s = state.script.lock().unwrap();
                            s.get_mut(&path)
                                .and_then(|q| (!q.is_empty()).then(|| q.remove(0)))
                        };
                        let (status, retry_after) = next.unwrap_or((200, None));
                        let mut h = HeaderMap::new();
                        if let Some(ra) = retry_after {
                            h.insert("retry-after", ra.parse().unwrap());
                        }
                        (StatusCode::from_u16(status).unwrap(), h, "ok").into_response()
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, port)
    }

    fn script(&self, path: &str, answers: Vec<(u16, Option<&'static str>)>) {
        self.script
            .lock()
            .unwrap()
            .insert(path.to_string(), answers);
    }

    fn requests(&self, path: &str) -> Vec<Got> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, g)| g.clone())
            .collect()
    }

    async fn wait(&self, path: &str, n: usize, within: Duration) -> Vec<Got> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.requests(path);
            if got.len() >= n || Instant::now() > deadline {
                assert!(got.len() >= n, "{path}: {} requests, wanted {n}", got.len());
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn config(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join("alerts.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[alerts]
group_wait_secs = 0
group_interval_secs = 1
first_retry_ms = 300
{extra}

[[webhooks]]
name = "generic"
url = "http://127.0.0.1:{port}/generic"
secret = "{SECRET}"
previous_secrets = ["{OLD_SECRET}"]
allow_private = true
rules = ["mcp-path-traversal"]

[[webhooks]]
name = "am"
url = "http://127.0.0.1:{port}/am"
format = "alertmanager"
secret = "{SECRET}"
allow_private = true
rules = ["mcp-path-traversal"]

[[webhooks]]
name = "slack"
url = "http://127.0.0.1:{port}/slack"
format = "slack"
secret = "{SECRET}"
allow_private = true
rules = ["mcp-path-traversal"]

[[webhooks]]
name = "flaky"
url = "http://127.0.0.1:{port}/flaky"
secret = "{SECRET}"
allow_private = true
rules = ["mcp-sql-injection"]

[[webhooks]]
name = "gone"
url = "http://127.0.0.1:{port}/gone"
secret = "{SECRET}"
allow_private = true
rules = ["mcp-sql-injection"]
"#
        ),
    )
    .unwrap();
    path
}

fn traversal(id: &str, user: &str) -> mcp_audit::event::Event {
    let mut e = crate::common::traversal(id);
    e.user = user.into();
    e
}

fn sqli(id: &str) -> mcp_audit::event::Event {
    let mut e = full_event(id);
    e.server = "postgres".into();
    e.tool = "query".into();
    e.arguments = serde_json::json!({"sql": "SELECT * FROM users WHERE name = '' OR '1'='1' --"});
    e
}

async fn api(c: &Collector, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = match method {
        "GET" => client.get(c.url(path)),
        "POST" => client.post(c.url(path)),
        _ => client.delete(c.url(path)),
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn verify(raw: &[u8], secrets: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("req");
    std::fs::write(&f, raw).unwrap();
    let mut args = vec!["webhook", "verify"];
    for s in secrets {
        args.extend(["--secret", s]);
    }
    let path = f.to_str().unwrap().to_string();
    args.push(&path);
    let (code, out, err) = mcp_audit(&args);
    (code, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_group_notify_signed_in_three_formats_ack_resolve_and_silence() {
    let (rx, port) = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, "");
    let c = Collector::start(
        &dir.path().join("data"),
        &[("MCP_AUDIT_CONFIG", cfg.to_str().unwrap())],
    )
    .await;

    // One finding: a notification to each of the three formats, at once (group_wait 0).
    c.send(&[traversal("t-1", "mallory")]).await;
    let g = rx.wait("generic", 1, Duration::from_secs(10)).await;
    let first = g[0].json();
    assert_eq!(first["version"], "1");
    assert_eq!(first["type"], "alert.firing");
    let data = &first["data"];
    assert_eq!(data["rule"], "mcp-path-traversal");
    assert_eq!(data["count"], 1);
    assert_eq!(data["suppressed_count"], 0);
    assert_eq!(data["event_ids"], serde_json::json!(["t-1"]));
    assert!(data["link"]
        .as_str()
        .unwrap()
        .contains(data["id"].as_str().unwrap()));
    assert!(
        data["explanations"][0]
            .as_str()
            .unwrap()
            .contains("mallory"),
        "{data}"
    );
    let alert_id = data["id"].as_str().unwrap().to_string();

    // Signed per Standard Webhooks: both the current and the rotated-out key verify it,
    // a wrong key or a changed body does not.
    let sig = g[0].header("webhook-signature");
    assert_eq!(sig.split(' ').count(), 2, "one v1 signature per key: {sig}");
    assert!(g[0].header("webhook-id").starts_with("msg_"));
    assert_eq!(verify(&g[0].raw(), &[SECRET]).0, Some(0));
    assert_eq!(verify(&g[0].raw(), &[OLD_SECRET]).0, Some(0));
    let (code, out) = verify(&g[0].raw(), &["whsec_d3JvbmctYnV0LWxvbmctZW5vdWdoLWtleQ=="]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("INVALID"), "{out}");
    let mut tampered = g[0].clone();
    tampered.body = Bytes::from(
        String::from_utf8(g[0].body.to_vec())
            .unwrap()
            .replace("mallory", "alice"),
    );
    assert_eq!(verify(&tampered.raw(), &[SECRET]).0, Some(1));

    // `webhook test` sends a signed test notification to a configured destination.
    let (code, out, err) = mcp_audit(&[
        "webhook",
        "test",
        "generic",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("delivered"), "{out}");
    let g = rx.wait("generic", 2, Duration::from_secs(5)).await;
    assert_eq!(g[1].json()["type"], "alert.test");
    assert_eq!(verify(&g[1].raw(), &[SECRET]).0, Some(0));
    rx.got
        .lock()
        .unwrap()
        .retain(|(p, r)| !(p == "generic" && r.json()["type"] == "alert.test"));

    // Alertmanager v4 and Slack shapes.
    let am = rx.wait("am", 1, Duration::from_secs(5)).await[0].json();
    assert_eq!(am["version"], "4");
    assert_eq!(am["status"], "firing");
    assert_eq!(am["receiver"], "am");
    for key in [
        "groupKey",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "truncatedAlerts",
    ] {
        assert!(am.get(key).is_some(), "alertmanager body lacks {key}: {am}");
    }
    let a0 = &am["alerts"][0];
    assert_eq!(a0["labels"]["alertname"], "mcp-path-traversal");
    assert_eq!(a0["labels"]["user"], "mallory");
    assert_eq!(a0["endsAt"], "0001-01-01T00:00:00Z");
    for key in [
        "status",
        "annotations",
        "startsAt",
        "generatorURL",
        "fingerprint",
    ] {
        assert!(
            a0.get(key).is_some(),
            "alertmanager alert lacks {key}: {a0}"
        );
    }
    let slack = rx.wait("slack", 1, Duration::from_secs(5)).await[0].json();
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .contains("mcp-path-traversal"),
        "{slack}"
    );
    assert!(slack["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["type"] == "section"));

    // Repeats within group_interval are one notification, carrying the suppressed count.
    c.send(&[
        traversal("t-2", "mallory"),
        traversal("t-3", "mallory"),
        traversal("t-4", "mallory"),
    ])
    .await;
    let g = rx.wait("generic", 2, Duration::from_secs(10)).await;
    let second = &g[1].json()["data"];
    assert_eq!(second["id"], alert_id.as_str(), "the same alert");
    assert_eq!(second["count"], 4);
    assert_eq!(second["suppressed_count"], 2, "{second}");
    assert_ne!(g[0].header("webhook-id"), g[1].header("webhook-id"));

    // The API shows it; acknowledging stops notifications while findings still count.
    let (s, v) = api(&c, "GET", "/api/v1/alerts", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["alerts"][0]["status"], "firing");
    let (s, v) = api(
        &c,
        "POST",
        &format!("/api/v1/alerts/{alert_id}/ack"),
        Some(serde_json::json!({"by": "dana"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "acknowledged");
    assert_eq!(v["acknowledged_by"], "dana");
    let (s, v) = api(
        &c,
        "POST",
        &format!("/api/v1/alerts/{alert_id}/resolve"),
        Some(serde_json::json!([])),
    )
    .await;
    assert_eq!(s, 400, "a body that is not an object: {v}");
    c.send(&[traversal("t-5", "mallory")]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        rx.requests("generic").len(),
        2,
        "an acknowledged alert does not notify"
    );
    let (_, v) = api(&c, "GET", &format!("/api/v1/alerts/{alert_id}"), None).await;
    assert_eq!(v["alert"]["count"], 5, "{v}");
    assert!(!v["findings"].as_array().unwrap().is_empty(), "{v}");
    assert!(
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered"),
        "{v}"
    );

    // Resolving tells the destinations.
    let (s, v) = api(
        &c,
        "POST",
        &format!("/api/v1/alerts/{alert_id}/resolve"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "resolved");
    let g = rx.wait("generic", 3, Duration::from_secs(5)).await;
    assert_eq!(g[2].json()["type"], "alert.resolved");
    assert_eq!(
        rx.wait("am", 3, Duration::from_secs(5)).await[2].json()["status"],
        "resolved"
    );

    // A silence: findings are stored and counted, nothing is sent.
    let (s, v) = api(&c, "POST", "/api/v1/silences", Some(serde_json::json!({
        "matchers": [{"name": "rule", "value": "mcp-path-traversal"}, {"name": "user", "value": "mallory"}],
        "duration": "1h", "created_by": "dana", "comment": "pen test"
    }))).await;
    assert_eq!(s, 200, "{v}");
    let silence = v["id"].as_str().unwrap().to_string();
    c.send(&[traversal("t-6", "mallory")]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.requests("generic").len(), 3, "silenced");
    let (_, v) = api(&c, "GET", "/api/v1/alerts", None).await;
    let open: Vec<&Value> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "firing")
        .collect();
    assert_eq!(open.len(), 1, "{v}");
    assert_eq!(open[0]["silenced_count"], 1);
    assert_eq!(open[0]["silenced_by"], silence.as_str());
    // Another user is not silenced.
    c.send(&[traversal("t-7", "trudy")]).await;
    let g = rx.wait("generic", 4, Duration::from_secs(5)).await;
    assert!(g[3].json()["data"]["group_key"]
        .as_str()
        .unwrap()
        .contains("trudy"));
    // Bad silences are refused, naming the field.
    let (s, v) = api(
        &c,
        "POST",
        "/api/v1/silences",
        Some(serde_json::json!({"matchers": [], "duration": "1h"})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("matchers"), "{v}");
    let (s, v) = api(&c, "DELETE", &format!("/api/v1/silences/{silence}"), None).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = api(&c, "GET", "/api/v1/silences", None).await;
    assert_eq!(v["silences"][0]["active"], false, "{v}");
    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_honour_429_a_410_disables_and_a_kill_mid_retries_still_delivers() {
    let (rx, port) = Receiver::start().await;
    rx.script("flaky", vec![(500, None), (503, None), (429, Some("2"))]);
    rx.script("gone", vec![(410, None)]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, "");
    let data = dir.path().join("data");
    let env = [("MCP_AUDIT_CONFIG", cfg.to_str().unwrap())];
    let c = Collector::start(&data, &env).await;
    c.send(&[sqli("s-1")]).await;
    // 500, 503 (after ~0.3 s, ~0.6 s), 429 asking for 2 s, then delivered.
    let got = rx.wait("flaky", 4, Duration::from_secs(20)).await;
    let ids: Vec<String> = got.iter().map(|g| g.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the same webhook-id on every retry: {ids:?}"
    );
    let stamp = |g: &Got| g.header("webhook-timestamp").parse::<i64>().unwrap();
    assert!(stamp(&got[3]) - stamp(&got[2]) >= 2, "Retry-After honoured");
    assert_eq!(verify(&got[3].raw(), &[SECRET]).0, Some(0));

    // 410: disabled, visible in the API and /metrics; nothing more is sent to it.
    rx.wait("gone", 1, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, v) = api(&c, "GET", "/api/v1/webhooks", None).await;
        let gone = v["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "gone")
            .unwrap()
            .clone();
        if gone["disabled"] == true {
            assert!(
                gone["disabled_reason"].as_str().unwrap().contains("410"),
                "{gone}"
            );
            let flaky = v["webhooks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["name"] == "flaky")
                .unwrap()
                .clone();
            assert_eq!(flaky["delivered"], 1, "{flaky}");
            break;
        }
        assert!(Instant::now() < deadline, "never disabled: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = reqwest::get(c.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("webhook_disabled{destination=\"gone\"} 1"),
        "{metrics}"
    );
    c.send(&[sqli("s-2")]).await; // same group: within group_interval, then notified
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        rx.requests("gone").len(),
        1,
        "a disabled destination gets nothing more"
    );
    // Enabled again, it receives what waited for it.
    let (s, v) = api(&c, "POST", "/api/v1/webhooks/gone/enable", None).await;
    assert_eq!(s, 200, "{v}");
    rx.wait("gone", 2, Duration::from_secs(5)).await;
    let (s, v) = api(&c, "POST", "/api/v1/webhooks/nope/enable", None).await;
    assert_eq!(s, 404, "{v}");

    // A receiver that keeps failing, a kill -9 between attempts: after the restart the
    // pending notification is delivered, with the same id, once it answers again.
    rx.script("flaky", vec![(503, None); 1000]);
    let mut e = sqli("s-3");
    e.user = "eve".into();
    c.send(&[e]).await;
    let before = rx.wait("flaky", 6, Duration::from_secs(10)).await.len();
    let pending_id = rx.requests("flaky").last().unwrap().header("webhook-id");
    c.kill();
    rx.script("flaky", vec![]);
    let c = Collector::start(&data, &env).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = rx.requests("flaky");
        let ok = got[before..]
            .iter()
            .any(|g| g.header("webhook-id") == pending_id);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pending notification was not resent after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Exactly the missing ones: no notification other than the pending one is new.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let new_ids: std::collections::HashSet<String> = rx.requests("flaky")[before..]
        .iter()
        .map(|g| g.header("webhook-id"))
        .collect();
    assert_eq!(new_ids.len(), 1, "{new_ids:?}");
    c.stop();
}

#[test]
fn private_targets_need_allow_private_and_bad_webhooks_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("[[webhooks]]\nname = \"x\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"{SECRET}\"\n")).unwrap();
    let (code, out, err) = mcp_audit(&["webhook", "test", "x", "--config", cfg.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(err.contains("allow_private"), "{err}");
    std::fs::write(
        &cfg,
        "[[webhooks]]\nname = \"x\"\nurl = \"https://hooks.example.com/a\"\nsecret = \"nope\"\n",
    )
    .unwrap();
    let (code, _, err) = mcp_audit(&["webhook", "test", "x", "--config", cfg.to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(err.contains("whsec_"), "{err}");
    assert!(err.contains("webhook #1"), "{err}");
}
