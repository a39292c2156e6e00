//! Erasure through the real binary: `POST /api/v1/admin/erase` removes one user's events from
//! search, get-by-id and terms, and from the WAL's bytes; the other user's events stay;
//! `mcp-audit verify` still passes, signed checkpoints included; the erasure holds across a
//! restart and a rebuild of the index from the WAL.

use std::path::Path;

use crate::common::{generated, mcp_audit, Collector};
use mcp_audit::event::Event;
use serde_json::Value;

const ENV: [(&str, &str); 1] = [("MCP_AUDIT_CHAIN_CHECKPOINT_EVERY_EVENTS", "10")];

fn events(user: &str, n: usize, seed: u64) -> Vec<Event> {
    generated(&format!("erase-me-{user}"), n, seed)
        .into_iter()
        .map(|mut e| {
            e.user = user.to_string();
            e
        })
        .collect()
}

async fn post(c: &Collector, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(c.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{v}");
    }
    (status, v)
}

async fn get(c: &Collector, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(c.url(path))
        .query(query)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn users(c: &Collector) -> Vec<(String, u64)> {
    let (status, v) = get(
        c,
        "/api/v1/terms",
        &[("field", "user"), ("start", "-7d"), ("size", "10")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let mut out: Vec<(String, u64)> = v["terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["value"].as_str().unwrap().to_string(),
                t["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Whether any WAL file holds `needle`.
fn wal_holds(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir.join("wal")).unwrap().any(|e| {
        let bytes = std::fs::read(e.unwrap().path()).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

fn verify(dir: &Path) -> (Option<i32>, String) {
    let (code, out, err) = mcp_audit(&["verify", "--data-dir", dir.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_user_is_gone_for_good_and_the_chain_still_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, &ENV).await;
    let alice = events("alice", 30, 1);
    let bob = events("bob", 30, 2);
    // Interleaved, so the erased events sit between kept ones in the chain.
    for (a, b) in alice.chunks(10).zip(bob.chunks(10)) {
        assert_eq!(c.send(a).await.accepted.len(), 10);
        assert_eq!(c.send(b).await.accepted.len(), 10);
    }
    c.wait_total("", 60).await;
    assert_eq!(
        users(&c).await,
        vec![("alice".into(), 30), ("bob".into(), 30)]
    );
    let alice_id = alice[3].event_id.clone();
    assert_eq!(
        get(&c, &format!("/api/v1/events/{alice_id}"), &[]).await.0,
        200
    );
    assert!(wal_holds(&dir, &alice_id));

    // Refused bodies are 400 problems naming the key.
    for (body, param) in [
        ("{}", "user"),
        (r#"{"user":""}"#, "user"),
        (r#"{"user":"alice","extra":"x"}"#, "extra"),
        (r#"{"user":"alice","start":"soon"}"#, "start"),
    ] {
        let (status, v) = post(&c, "/api/v1/admin/erase", body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["param"], param, "{body}: {v}");
    }
    assert_eq!(
        c.total("user:alice").await,
        30,
        "a refused erasure erases nothing"
    );

    let (status, v) = post(
        &c,
        "/api/v1/admin/erase",
        r#"{"user":"alice","reason":"erasure request #1"}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["erased"], 30, "{v}");
    assert_eq!(v["wal_markers"], 30, "{v}");
    assert_eq!(v["user"], "alice");
    assert_eq!(v["tenant"], "default");
    let erasure_id = v["id"].as_str().unwrap().to_string();

    // Gone from search, get-by-id and terms, at once; bob's events stay.
    assert_eq!(c.total("user:alice").await, 0);
    assert_eq!(c.total("").await, 30);
    assert_eq!(c.total("user:bob").await, 30);
    assert_eq!(
        get(&c, &format!("/api/v1/events/{alice_id}"), &[]).await.0,
        404
    );
    assert_eq!(users(&c).await, vec![("bob".into(), 30)]);
    // And from the WAL's bytes; the marker names the erasure.
    for e in &alice {
        assert!(
            !wal_holds(&dir, &e.event_id),
            "{} is still in the WAL",
            e.event_id
        );
    }
    assert!(wal_holds(&dir, &bob[0].event_id));
    assert!(wal_holds(&dir, &erasure_id));
    // Recorded: who, when, how many, which user.
    let records = std::fs::read_to_string(dir.join("chain").join("erasures.jsonl")).unwrap();
    let record: Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    assert_eq!(record["id"], erasure_id.as_str());
    assert_eq!(record["user"], "alice");
    assert_eq!(record["reason"], "erasure request #1");
    assert_eq!(record["events"].as_array().unwrap().len(), 30);
    // Open local mode: the credential is `open`.
    assert_eq!(record["by"], "open");
    assert!(c.log_text().contains("erasure: a user's events removed"));
    // ...and in the collector's own trail, which admins search as tenant `_system`.
    let mut trail = Value::Null;
    for _ in 0..100 {
        let v: Value = reqwest::Client::new()
            .get(c.url("/api/v1/search"))
            .header("x-mcp-audit-tenant", "_system")
            .query(&[("q", "method:\"audit/erasure\""), ("start", "-1h")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["total"] == 1 {
            trail = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let hit = &trail["hits"][0];
    assert_eq!(hit["arguments"]["erased"], 30, "{trail}");
    assert_eq!(hit["arguments"]["user"], "alice", "{trail}");
    assert_eq!(hit["user"], "open", "{trail}");

    // Events of the user that arrive later are new events, kept.
    let later = events("alice-later", 5, 3)
        .into_iter()
        .map(|mut e| {
            e.user = "alice".into();
            e
        })
        .collect::<Vec<_>>();
    assert_eq!(c.send(&later).await.accepted.len(), 5);
    c.wait_total("user:alice", 5).await;
    c.stop();

    let (code, out) = verify(&dir);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("tenant default: 65 events, seq 1..=65"),
        "{out}"
    );
    assert!(
        out.contains("30 erased events, kept as hashes by 1 signed erasure records"),
        "{out}"
    );
    assert!(
        out.contains("match the stored chain; newest at seq 65"),
        "{out}"
    );

    // A restart keeps it; so does rebuilding the index from the WAL.
    let c = Collector::start(&dir, &ENV).await;
    assert_eq!(c.total("user:alice").await, 5);
    assert_eq!(c.total("").await, 35);
    c.stop();
    std::fs::remove_dir_all(dir.join("index")).unwrap();
    let c = Collector::start(&dir, &ENV).await;
    c.wait_total("", 35).await;
    assert_eq!(c.total("user:alice").await, 5);
    assert_eq!(
        get(&c, &format!("/api/v1/events/{alice_id}"), &[]).await.0,
        404
    );
    assert_eq!(
        users(&c).await,
        vec![("alice".into(), 5), ("bob".into(), 30)]
    );
    c.stop();
    let (code, out) = verify(&dir);
    assert_eq!(code, Some(0), "{out}");

    // A marker that no signed record lists is a deletion, as is a forged record.
    let records_path = dir.join("chain").join("erasures.jsonl");
    std::fs::write(&records_path, "").unwrap();
    let (code, out) = verify(&dir);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("is an erasure marker in the WAL")
            && out.contains("that no validly signed erasure record lists"),
        "{out}"
    );
    std::fs::write(
        &records_path,
        records.replace("erasure request #1", "nothing to see"),
    )
    .unwrap();
    let (code, out) = verify(&dir);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the record was changed or forged"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_can_be_limited_to_a_time_range() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, &ENV).await;
    let now = time::OffsetDateTime::now_utc();
    let mut alice = events("carol", 20, 4);
    for (i, e) in alice.iter_mut().enumerate() {
        // Ten in the last ten minutes, ten two hours ago.
        e.timestamp = if i < 10 {
            now - time::Duration::minutes(i as i64 + 1)
        } else {
            now - time::Duration::hours(2) - time::Duration::minutes(i as i64)
        };
    }
    assert_eq!(c.send(&alice).await.accepted.len(), 20);
    c.wait_total("user:carol", 20).await;
    let start = (now - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, v) = post(
        &c,
        "/api/v1/admin/erase",
        &format!(r#"{{"user":"carol","start":"{start}"}}"#),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["erased"], 10, "{v}");
    assert_eq!(c.total("user:carol").await, 10);
    // Nobody of that name: nothing erased, still recorded.
    let (status, v) = post(&c, "/api/v1/admin/erase", r#"{"user":"nobody"}"#).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["erased"], 0, "{v}");
    c.stop();
    let (code, out) = verify(&dir);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("10 erased events"), "{out}");
}
