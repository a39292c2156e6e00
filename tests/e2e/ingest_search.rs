//! Ingest → search round trips against a real collector on loopback.

use std::time::{Duration, Instant};

use crate::common::{self, full_event, Server};
use mcp_audit::event::{Event, Outcome};
use mcp_audit::proto::ShipRequest;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_round_trips_and_every_query_form_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let target = full_event("target-1");
    let mut other = full_event("other-1");
    other.user = "bob".into();
    other.source = "gw-2".into();
    other.tool = "delete_file".into();
    other.server = "filesystem".into();
    other.outcome = Outcome::Denied;
    other.duration_ms = 20;
    other.result_bytes = 900;
    other.arguments = serde_json::json!({"path": "/etc/passwd"});
    other.result = "permission denied by policy".into();
    other.error = "blocked path traversal".into();
    other.annotations.destructive = Some(true);
    other.labels.insert("env".into(), "staging".into());
    let resp = s.send(&[target.clone(), other.clone()]).await;
    assert_eq!(resp.accepted, vec!["target-1", "other-1"]);
    assert!(resp.rejected.is_empty());
    s.wait_for("", 2).await;

    // The stored hit carries every field as sent, plus what the collector adds.
    let (status, hit) = s.get("/api/v1/events/target-1", &[]).await;
    assert_eq!(status, 200);
    let sent: Value = serde_json::to_value(&target).unwrap();
    for (k, v) in sent.as_object().unwrap() {
        if k == "timestamp" {
            let a = time::OffsetDateTime::parse(
                hit[k].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            // The protobuf wire carries microseconds.
            assert_eq!(
                a.unix_timestamp_nanos() / 1000,
                target.timestamp.unix_timestamp_nanos() / 1000,
                "timestamp"
            );
        } else {
            assert_eq!(&hit[k], v, "field {k}");
        }
    }
    assert_eq!(hit["tenant"], "default");
    assert_eq!(hit["seq"], 1);
    assert_eq!(hit["hash"].as_str().unwrap().len(), 64);
    assert!(hit["received_at"].is_string());

    let only_target = [
        "user:alice",
        "tool:create_issue",
        "server:github",
        "source:gw-1",
        "method:\"tools/call\" AND user:alice",
        "client:claude-desktop AND user:alice",
        "conversation_id:conv-1 AND user:alice",
        "session_id:sess-1 AND user:alice",
        "outcome:ok",
        "consent:allowed_once AND user:alice",
        "transport:streamable_http AND user:alice",
        "event_id:target-1",
        "trace_id:4bf92f3577b34da6a3ce929d0e0e4736 AND user:alice",
        "span_id:00f067aa0ba902b7 AND user:alice",
        "remote_addr:\"10.1.2.3\" AND user:alice",
        "tool_description_hash:\"sha256:abc123\" AND user:alice",
        "duration_ms:>1000",
        "duration_ms:>=1500",
        "result_bytes:<100",
        "arguments.repo:acme",
        "labels.env:prod",
        "destructive:false",
        "flaky",
        "\"integration test\"",
        "user:alice AND tool:create_issue",
        "user:alice OR user:nobody",
        "NOT user:bob",
        "(user:alice OR user:carol) AND NOT outcome:denied",
    ];
    for q in only_target {
        assert_eq!(s.ids(q).await, vec!["target-1"], "query {q:?}");
    }
    let only_other = [
        "user:bob",
        "tool:delete_file",
        "outcome:denied",
        "duration_ms:<100",
        "result_bytes:[500 TO 1000]",
        "passwd",
        "traversal",
        "\"denied by policy\"",
        "labels.env:staging",
        "destructive:true",
        "NOT user:alice",
    ];
    for q in only_other {
        assert_eq!(s.ids(q).await, vec!["other-1"], "query {q:?}");
    }
    assert_eq!(s.search("").await["total"], 2);
    assert_eq!(s.search("user:nobody").await["total"], 0);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_rejected_one_by_one_and_the_rest_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let good = |id: &str| Event::new(id, "tools/call", "read_file");
    let mut c = s.client().await;
    let mut events: Vec<mcp_audit::proto::ToolCallEvent> = Vec::new();
    let mut want: Vec<(&str, &str)> = Vec::new();
    let mut push = |e: mcp_audit::proto::ToolCallEvent, reason: &'static str| {
        want.push((if reason.is_empty() { "" } else { reason }, ""));
        events.push(e);
    };
    let enc = mcp_audit::ingest::proto::encode;
    push(enc(&good("ok-1")), "");
    let mut e = enc(&good("no-tool"));
    e.tool.clear();
    push(e, "`tool` is required");
    let mut e = enc(&good("no-method"));
    e.method.clear();
    push(e, "`method` is required");
    let mut e = enc(&good("bad-args"));
    e.arguments_json = "{not json".into();
    push(e, "`arguments_json` is not valid JSON");
    let mut e = enc(&good("future"));
    e.timestamp_unix_micros =
        (time::OffsetDateTime::now_utc() + time::Duration::hours(2)).unix_timestamp() * 1_000_000;
    push(e, "in the future");
    let mut e = enc(&good("huge"));
    e.result = "x".repeat((1 << 20) + 10);
    push(e, "over the 1.0 MiB limit");
    let mut e = enc(&good("bad-enum"));
    e.outcome = 99;
    push(e, "`outcome` 99 is not a known value");
    let mut e = enc(&good("bad-version"));
    e.schema_version = 7;
    push(e, "`schema_version` 7");
    push(enc(&good("ok-2")), "");
    let resp = c.send(ShipRequest { events }).await.unwrap().into_inner();
    assert_eq!(resp.accepted, vec!["ok-1", "ok-2"]);
    assert_eq!(resp.rejected.len(), want.len() - 2);
    let reasons: Vec<&str> = want.iter().map(|w| w.0).collect();
    for r in &resp.rejected {
        let expected = reasons[r.index as usize];
        assert!(
            !expected.is_empty(),
            "index {} should have been accepted",
            r.index
        );
        assert!(
            r.reason.contains(expected),
            "event {} ({}): {:?} lacks {expected:?}",
            r.index,
            r.event_id,
            r.reason
        );
    }
    assert_eq!(resp.rejected[0].event_id, "no-tool");
    s.wait_for("", 2).await;
    assert_eq!(
        s.search("").await["total"],
        2,
        "only the valid events are stored"
    );

    // The same over HTTP NDJSON, with line numbers as indexes and JSON-level reasons.
    let body = [
        r#"{"event_id":"h-ok","method":"tools/call","tool":"x"}"#,
        "not json",
        r#"{"event_id":"h-enum","method":"tools/call","tool":"x","outcome":"great"}"#,
        "",
        r#"{"event_id":"h-ts","method":"tools/call","tool":"x","timestamp":"yesterday"}"#,
        r#"{"event_id":"h-unknown","method":"tools/call","tool":"x","colour":"red"}"#,
    ]
    .join("\n");
    let (status, v) = s.post("/api/v1/ingest", body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["accepted"], serde_json::json!(["h-ok"]));
    let rej = v["rejected"].as_array().unwrap();
    let by_index: Vec<(u64, &str)> = rej
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        by_index.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2, 4, 5]
    );
    assert!(by_index[0].1.contains("not valid JSON"));
    assert!(by_index[1].1.contains("`outcome` \"great\""));
    assert!(by_index[2].1.contains("`timestamp`"));
    assert!(by_index[3].1.contains("unknown field `colour`"));

    let (_, metrics) = s.get_text("/metrics").await;
    assert!(
        metrics.contains("mcp_audit_rejected_events_total{reason=\"missing_field\"} 2"),
        "{metrics}"
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_an_event_never_stores_it_twice_even_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let events: Vec<Event> = (0..10).map(|i| full_event(&format!("dup-{i}"))).collect();
    assert_eq!(s.send(&events).await.accepted.len(), 10);
    // Re-sent at once (before indexing) and later: acknowledged again, stored once.
    assert_eq!(s.send(&events).await.accepted.len(), 10);
    s.wait_for("", 10).await;
    assert_eq!(
        s.send(&events[..3]).await.accepted,
        vec!["dup-0", "dup-1", "dup-2"]
    );
    s.wait_indexed().await;
    assert_eq!(s.search("").await["total"], 10);
    s.stop().await.unwrap();

    let s = Server::start(dir.path()).await;
    assert_eq!(s.send(&events).await.accepted.len(), 10);
    s.wait_indexed().await;
    assert_eq!(s.search("").await["total"], 10);
    let (_, metrics) = s.get_text("/metrics").await;
    assert!(
        metrics.contains("mcp_audit_duplicate_events_total 10"),
        "{metrics}"
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_everything_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let first: Vec<Event> = (0..50).map(|i| full_event(&format!("a-{i}"))).collect();
    s.send(&first).await;
    s.stop().await.unwrap();

    let s = Server::start(dir.path()).await;
    s.wait_for("", 50).await;
    let second: Vec<Event> = (0..50).map(|i| full_event(&format!("b-{i}"))).collect();
    s.send(&second).await;
    let v = s.wait_for("", 100).await;
    let mut seqs: Vec<u64> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["seq"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=100).collect::<Vec<_>>(),
        "sequence numbers continue without gaps"
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_problem_json_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    for (query, param) in [
        (vec![("q", "user:(")], "q"),
        (vec![("limit", "0")], "limit"),
        (vec![("limit", "10001")], "limit"),
        (vec![("start", "yesterday")], "start"),
        (vec![("cursor", "garbage!")], "cursor"),
        (vec![("colour", "red")], "colour"),
    ] {
        let (status, v) = s.get("/api/v1/search", &query).await;
        assert_eq!(status, 400, "{query:?}: {v}");
        assert_eq!(v["param"], param, "{query:?}: {v}");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("`{param}`")),
            "{v}"
        );
    }
    let (status, v) = s.get("/api/v1/terms", &[("field", "password")]).await;
    assert_eq!(status, 400);
    assert_eq!(v["param"], "field");
    let (status, v) = s.get("/api/v1/histogram", &[("interval", "soon")]).await;
    assert_eq!(status, 400);
    assert_eq!(v["param"], "interval");
    let (status, _) = s.get("/api/v1/events/nope", &[]).await;
    assert_eq!(status, 404);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_histogram_terms_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let now = time::OffsetDateTime::now_utc();
    let events: Vec<Event> = (0..30)
        .map(|i| {
            let mut e = full_event(&format!("p-{i:02}"));
            // Spread over three days, so paging crosses daily indexes.
            e.timestamp = now - time::Duration::hours(i * 2);
            e.user = if i % 3 == 0 {
                "carol".into()
            } else {
                "dave".into()
            };
            e
        })
        .collect();
    s.send(&events).await;
    s.wait_for("", 30).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut q = vec![("start", "-7d"), ("limit", "7")];
        if !cursor.is_empty() {
            q.push(("cursor", cursor.as_str()));
        }
        let (status, v) = s.get("/api/v1/search", &q).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["total"], 30);
        seen.extend(
            v["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["event_id"].as_str().unwrap().to_string()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let want: Vec<String> = (0..30).map(|i| format!("p-{i:02}")).collect();
    assert_eq!(seen, want, "every hit exactly once, newest first");

    let (status, h) = s
        .get("/api/v1/histogram", &[("start", "-7d"), ("interval", "1d")])
        .await;
    assert_eq!(status, 200, "{h}");
    let sum: u64 = h["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 30);
    let (status, t) = s
        .get("/api/v1/terms", &[("field", "user"), ("start", "-7d")])
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        t["terms"],
        serde_json::json!([{"value": "dave", "count": 20}, {"value": "carol", "count": 10}])
    );
    assert_eq!(s.get_text("/healthz").await.0, 200);
    assert_eq!(s.get_text("/readyz").await.0, 200);
    let (_, m) = s.get_text("/metrics").await;
    for name in [
        "mcp_audit_ingested_events_total 30",
        "mcp_audit_wal_fsync_seconds_bucket",
        "mcp_audit_index_commit_seconds_count",
        "mcp_audit_search_seconds_count",
        "mcp_audit_wal_queue_batches",
    ] {
        assert!(m.contains(name), "metrics lack {name}");
    }
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.retention_days = 10;
    let s = Server::start_with(config.clone()).await;
    let now = time::OffsetDateTime::now_utc();
    let mut old = full_event("old-1");
    old.timestamp = now - time::Duration::days(5);
    let recent = full_event("recent-1");
    assert_eq!(s.send(&[old, recent]).await.accepted.len(), 2);
    s.wait_for("", 2).await;
    s.stop().await.unwrap();

    config.retention_days = 3;
    let s = Server::start_with(config).await;
    // Retention runs as the indexer starts.
    for _ in 0..200 {
        if s.ids("").await.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(s.ids("").await, vec!["recent-1"]);
    let (status, _) = s.get("/api/v1/events/old-1", &[]).await;
    assert_eq!(status, 404);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_in_the_stream_makes_what_came_before_searchable_without_waiting_for_the_interval()
{
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    // An interval far longer than the test waits: only the pause can commit.
    config.commit_interval = Duration::from_secs(60);
    let s = Server::start_with(config).await;
    let events: Vec<Event> = (0..20).map(|i| full_event(&format!("quiet-{i}"))).collect();
    assert_eq!(s.send(&events).await.accepted.len(), 20);
    let acked = Instant::now();
    let mut total = 0;
    while acked.elapsed() < Duration::from_secs(10) {
        total = s.search("").await["total"].as_u64().unwrap();
        if total == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total, 20, "not searchable 10 s after the ack");
    // About the pause (200 ms) and one commit; a generous bound for a loaded CI machine.
    assert!(
        acked.elapsed() < Duration::from_secs(5),
        "searchable only after {:?}",
        acked.elapsed()
    );
    s.stop().await.unwrap();
}
