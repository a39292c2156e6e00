//! One query language everywhere: a `q` selects the same events in the live tail as in a
//! search, and `GET /api/v1/fields` lists what it can name; against a real collector.

use std::time::Duration;

use crate::common::{full_event, Server};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_and_a_search_select_the_same_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let q = r#"(tool:delete_file OR "permission denied") AND NOT user:bob AND duration_ms:>100"#;
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/tail", s.http))
        .query(&[("q", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();

    let mut events = Vec::new();
    for (id, tool, user, error, duration) in [
        ("hit-tool", "delete_file", "alice", "", 500),
        (
            "hit-phrase",
            "read_file",
            "carol",
            "Permission denied: /etc",
            200,
        ),
        ("miss-user", "delete_file", "bob", "", 500),
        ("miss-words", "read_file", "alice", "denied permission", 500),
        ("miss-fast", "delete_file", "alice", "", 50),
        ("miss-exact", "Delete_File", "alice", "", 500),
    ] {
        let mut e = full_event(id);
        e.tool = tool.into();
        e.user = user.into();
        e.error = error.into();
        e.duration_ms = duration;
        events.push(e);
    }
    let mut last = full_event("last");
    last.tool = "delete_file".into();
    last.user = "dave".into();
    events.push(last);
    let resp = s.send(&events).await;
    assert_eq!(resp.accepted.len(), events.len(), "{:?}", resp.rejected);

    // Events arrive in order: everything before `last` has been filtered once it shows up.
    let mut seen = String::new();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if seen.contains("\"event_id\":\"last\"") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "the tail stopped: {seen}");
    let mut tailed: Vec<String> = seen
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
        .filter_map(|v| v["event_id"].as_str().map(str::to_string))
        .collect();
    tailed.sort();
    assert_eq!(tailed, vec!["hit-phrase", "hit-tool", "last"]);

    s.wait_for("*", events.len() as u64).await;
    let mut searched = s.ids(q).await;
    searched.sort();
    assert_eq!(searched, tailed);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_tail_filter_is_a_problem_naming_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (status, v) = s.get("/api/v1/tail", &[("q", "tool:x AND usr:bob")]).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["param"], "q");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("`q`: unknown field `usr` at position 11 (did you mean `user`?)"),
        "{detail}"
    );
    let (status, v) = s.get("/api/v1/tail", &[("q", "tenant:other")]).await;
    assert_eq!(status, 400, "{v}");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_lists_what_a_query_can_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let (status, v) = s.get("/api/v1/fields", &[]).await;
    assert_eq!(status, 200, "{v}");
    let fields = v["fields"].as_array().unwrap();
    let by_name = |n: &str| fields.iter().find(|f| f["name"] == n).cloned();
    let tool = by_name("tool").unwrap();
    assert_eq!(tool["type"], "exact");
    assert_eq!(tool["aggregatable"], true);
    assert!(!tool["description"].as_str().unwrap().is_empty());
    assert_eq!(by_name("trace_id").unwrap()["aggregatable"], false);
    assert_eq!(
        by_name("outcome").unwrap()["values"],
        serde_json::json!(["ok", "error", "denied", "consent_denied", "timeout"])
    );
    assert_eq!(by_name("duration_ms").unwrap()["type"], "number");
    assert_eq!(by_name("arguments").unwrap()["type"], "json");
    assert_eq!(by_name("labels").unwrap()["type"], "labels");
    assert_eq!(by_name("destructive").unwrap()["type"], "bool");
    for hidden in ["tenant", "hash", "received_at", "schema_version"] {
        assert!(by_name(hidden).is_none(), "{hidden}");
    }
    // Every aggregatable field is one `terms` accepts.
    for f in fields.iter().filter(|f| f["aggregatable"] == true) {
        let name = f["name"].as_str().unwrap();
        let (status, v) = s.get("/api/v1/terms", &[("field", name)]).await;
        assert_eq!(status, 200, "{name}: {v}");
    }
    let (status, _) = s.get("/api/v1/fields", &[("x", "1")]).await;
    assert_eq!(status, 400);
    s.stop().await.unwrap();
}
