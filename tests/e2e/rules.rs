//! Rules through the real binary: findings are stored and queryable soon after their event,
//! search filters by rule, a plain Sigma rule loads unchanged, hot reload keeps the running
//! rules when a file is bad, state and findings survive a restart and a kill -9 (no finding
//! lost, none duplicated), and `rules check` / `rules test` work offline.

use std::time::{Duration, Instant};

use crate::common::{full_event, mcp_audit, traversal, Collector};
use serde_json::Value;

async fn post(c: &Collector, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(c.url(path))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until `GET /api/v1/findings?rule=` has `n` findings; returns them.
async fn wait_findings(c: &Collector, rule: &str, n: usize) -> Vec<Value> {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (status, v) = c
            .get("/api/v1/findings", &[("rule", rule), ("since", "-7d")])
            .await;
        assert_eq!(status, 200, "{v}");
        if v["findings"].as_array().unwrap().len() >= n {
            return v["findings"].as_array().unwrap().clone();
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never {n} findings of {rule}: {last}\n{}", c.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_is_stored_queryable_and_filters_search() {
    let tmp = tempfile::tempdir().unwrap();
    // Findings are committed long after they are served: everything below reads them (and
    // the rules' counts) as soon as they are made.
    let c = Collector::start(
        &tmp.path().join("data"),
        &[("MCP_AUDIT_INDEX_COMMIT_INTERVAL_MS", "5000")],
    )
    .await;
    let quiet = full_event("quiet-1");
    let started = Instant::now();
    let resp = c.send(&[traversal("bad-1"), quiet]).await;
    assert_eq!(resp.accepted.len(), 2);
    let found = wait_findings(&c, "mcp-path-traversal", 1).await;
    let took = started.elapsed();
    let f = &found[0];
    assert_eq!(f["event_ids"], serde_json::json!(["bad-1"]));
    assert_eq!(f["severity"], "high");
    assert!(f["explanation"].as_str().unwrap().contains("alice"), "{f}");
    assert!(
        f["group_key"].as_str().unwrap().contains("tool=read_file"),
        "{f}"
    );
    // By id, and by the event it cites.
    let (status, one) = c
        .get(
            &format!("/api/v1/findings/{}", f["id"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!((status, &one), (200, f));
    let (_, by_event) = c.get("/api/v1/findings", &[("event_id", "bad-1")]).await;
    assert_eq!(by_event["total"], 1);
    // Search: the events a rule flagged.
    c.wait_total("", 2).await;
    let (_, hits) = c
        .get(
            "/api/v1/search",
            &[("rule", "mcp-path-traversal"), ("start", "-7d")],
        )
        .await;
    let ids: Vec<&str> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["bad-1"]);
    // The rules and their state, and metrics per rule.
    let (_, rules) = c.get("/api/v1/rules", &[]).await;
    let r = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "mcp-path-traversal")
        .unwrap();
    assert_eq!(r["findings"], 1);
    assert!(r["last_fired"].is_string());
    let (_, metrics) = common_metrics(&c).await;
    assert!(
        metrics
            .contains("mcp_audit_findings_total{rule=\"mcp-path-traversal\",severity=\"high\"} 1"),
        "{metrics}"
    );
    eprintln!("finding queryable {took:?} after the send returned");
    c.stop();
}

async fn common_metrics(c: &Collector) -> (u16, String) {
    let r = reqwest::get(c.url("/metrics")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A plain Sigma rule (UUID id, `level`, `logsource`, `falsepositives`, `author`) with our
/// field names.
const SIGMA: &str = r#"title: Kubernetes secrets listed
id: 3f1b7a2c-8d4e-4f60-9a11-2b3c4d5e6f70
status: experimental
description: An agent listed Kubernetes secrets.
author: Security team
date: 2026-11-01
references:
  - https://example.com/runbook
logsource:
  product: mcp
  service: tool_call
detection:
  selection:
    server: kubernetes
    tool|startswith: kubectl_get
    arguments.resource|contains:
      - secret
  filter_ci:
    user: ci-bot
  condition: selection and not filter_ci
falsepositives:
  - Cluster admins auditing secrets
level: medium
tags:
  - attack.t1552.007
  - owasp.mcp01
"#;

fn secrets_event(id: &str, user: &str) -> mcp_audit::event::Event {
    let mut e = full_event(id);
    e.server = "kubernetes".into();
    e.tool = "kubectl_get".into();
    e.user = user.into();
    e.arguments = serde_json::json!({"resource": "secrets", "namespace": "prod"});
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigma_rules_load_unchanged_and_reload_never_takes_running_rules_down() {
    let tmp = tempfile::tempdir().unwrap();
    let rules_dir = tmp.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("k8s.yml"), SIGMA).unwrap();
    let dir_s = rules_dir.to_str().unwrap().to_string();
    let c = Collector::start(&tmp.path().join("data"), &[("MCP_AUDIT_RULES_DIR", &dir_s)]).await;
    const ID: &str = "3f1b7a2c-8d4e-4f60-9a11-2b3c4d5e6f70";
    c.send(&[
        secrets_event("k-1", "mallory"),
        secrets_event("k-ci", "ci-bot"),
    ])
    .await;
    let found = wait_findings(&c, ID, 1).await;
    assert_eq!(
        found[0]["event_ids"],
        serde_json::json!(["k-1"]),
        "the filter keeps ci-bot out"
    );

    // A broken file: reload refuses, names the place, and the running rules stay.
    std::fs::write(
        rules_dir.join("broken.yml"),
        "title: Broken\nid: broken-1\ndetection:\n  sel:\n    tool|contans: x\n  condition: sel\n",
    )
    .unwrap();
    let (status, problem) = post(&c, "/api/v1/rules/reload").await;
    assert_eq!(status, 400, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("broken.yml:5:"),
        "names line and column: {detail}"
    );
    assert!(detail.contains("tool|contans"), "names the field: {detail}");
    let (_, rules) = c.get("/api/v1/rules", &[]).await;
    assert!(!rules["errors"].as_array().unwrap().is_empty());
    let (_, metrics) = common_metrics(&c).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("mcp_audit_rules_load_errors ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    c.send(&[secrets_event("k-2", "mallory")]).await;
    wait_findings(&c, ID, 2).await;

    // Fixed and changed on disk: the watcher reloads on its own.
    std::fs::remove_file(rules_dir.join("broken.yml")).unwrap();
    std::fs::write(
        rules_dir.join("k8s.yml"),
        SIGMA.replace("level: medium", "level: critical"),
    )
    .unwrap();
    let mut reloaded = false;
    for _ in 0..200 {
        let (_, rules) = c.get("/api/v1/rules", &[]).await;
        let r = rules["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == ID)
            .cloned();
        if rules["errors"].as_array().unwrap().is_empty()
            && r.is_some_and(|r| r["severity"] == "critical")
        {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "{}", c.log_text());
    c.send(&[secrets_event("k-3", "mallory")]).await;
    let found = wait_findings(&c, ID, 3).await;
    assert_eq!(found[0]["severity"], "critical");
    c.stop();
}

const COUNT_RULE: &str = r#"title: Five calls of the expensive report
id: test-five-reports
level: high
tags: [owasp.mcp10]
detection:
  sel:
    tool: monthly_report
  condition: sel
correlation:
  type: event_count
  group-by: [user]
  timespan: 1h
  condition:
    gte: 5
"#;

fn report(id: &str, minutes_ago: i64) -> mcp_audit::event::Event {
    let mut e = full_event(id);
    e.tool = "monthly_report".into();
    e.timestamp = time::OffsetDateTime::now_utc() - time::Duration::minutes(minutes_ago);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_findings_survive_a_restart_and_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let rules_dir = tmp.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("count.yml"), COUNT_RULE).unwrap();
    let dir_s = rules_dir.to_str().unwrap().to_string();
    let env = [
        ("MCP_AUDIT_RULES_DIR", dir_s.as_str()),
        ("MCP_AUDIT_RULES_BUILTIN", "false"),
    ];
    let data = tmp.path().join("data");
    let c = Collector::start(&data, &env).await;
    // Three of five before a kill -9 (the state is not saved yet: it is replayed from the WAL).
    c.send(&[report("r-1", 50), report("r-2", 40), report("r-3", 30)])
        .await;
    c.wait_total("", 3).await;
    c.kill();
    let c = Collector::start(&data, &env).await;
    c.send(&[report("r-4", 20), report("r-5", 10)]).await;
    let found = wait_findings(&c, "test-five-reports", 1).await;
    assert_eq!(
        found[0]["event_ids"].as_array().unwrap().len(),
        5,
        "{}",
        found[0]
    );
    // A kill right after the finding, and a clean restart: still exactly one.
    c.kill();
    let c = Collector::start(&data, &env).await;
    c.wait_total("", 5).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // two commit intervals of the rules
    let (_, v) = c
        .get(
            "/api/v1/findings",
            &[("rule", "test-five-reports"), ("since", "-7d")],
        )
        .await;
    assert_eq!(v["total"], 1, "{v}");
    c.stop();
    let c = Collector::start(&data, &env).await;
    c.send(&[report("r-6", 5)]).await;
    c.wait_total("", 6).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, v) = c
        .get(
            "/api/v1/findings",
            &[("rule", "test-five-reports"), ("since", "-7d")],
        )
        .await;
    assert_eq!(
        v["total"], 1,
        "one burst is one finding, across restarts: {v}"
    );
    c.stop();
}

#[test]
fn rules_check_and_test_work_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.yml");
    std::fs::write(&good, SIGMA).unwrap();
    let bad = tmp.path().join("bad.yml");
    std::fs::write(
        &bad,
        "title: Bad\nid: bad\ndetection:\n  sel:\n    toll: x\n  condition: sel or other\n",
    )
    .unwrap();
    let (code, out, _) = mcp_audit(&["rules", "check", good.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok, 1 rules"), "{out}");
    let (code, out, _) = mcp_audit(&[
        "rules",
        "check",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("bad.yml:5:"), "line and column: {out}");
    assert!(out.contains("`detection.sel.toll`"), "the field: {out}");
    assert!(out.contains("unknown field"), "{out}");
    let (code, out, _) = mcp_audit(&["rules", "check", "builtin"]);
    assert_eq!(code, Some(0), "{out}");

    let events = tmp.path().join("events.jsonl");
    let line = |id: &str, user: &str| {
        format!(
            r#"{{"event_id":"{id}","method":"tools/call","server":"kubernetes","tool":"kubectl_get","user":"{user}","arguments":{{"resource":"secrets"}}}}"#
        )
    };
    std::fs::write(
        &events,
        format!("{}\n{}\n", line("e1", "ci-bot"), line("e2", "eve")),
    )
    .unwrap();
    let (code, out, err) = mcp_audit(&[
        "rules",
        "test",
        good.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("events.jsonl:2: 3f1b7a2c"), "{out}");
    assert!(!out.contains("e1"), "{out}");
    assert!(err.contains("1 findings over 2 events"), "{err}");
}
