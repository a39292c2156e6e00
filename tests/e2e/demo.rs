//! Generated traffic through the real collector: `serve --demo` seeds a day with its attack
//! scenarios, and `mcp-audit demo` streams one over gRPC; both arrive scrubbed and searchable.

use crate::common::{mcp_audit, test_config, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_seeds_a_day_with_its_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.demo = true;
    let server = Server::start_with(config).await;
    // `serve --demo` uses seed 42: scenario event ids carry "2a".
    server
        .wait_for("event_id:ssrf-cloud-metadata-2a-001", 1)
        .await;
    server.wait_indexed().await;
    let total = server.search("").await["total"].as_u64().unwrap();
    assert!(
        (3_500..=6_500).contains(&total),
        "{total} events for a 5000-event day"
    );
    // Every server of the catalog and the scenarios' own servers are there.
    for server_name in ["github", "warehouse", "context7", "pastebin", "docs-search"] {
        assert!(
            !server
                .ids(&format!("server:{server_name}"))
                .await
                .is_empty(),
            "no {server_name}"
        );
    }
    // Credentials were scrubbed before storage and are findable by kind.
    let leaked = server.search("event_id:credential-in-result-2a-001").await;
    let hit = &leaked["hits"][0];
    assert!(
        hit["result"]
            .as_str()
            .unwrap()
            .contains("[REDACTED:aws_access_key_id:"),
        "{hit}"
    );
    assert!(!server.ids("redaction:aws_access_key_id").await.is_empty());
    // Near misses are stored as they are: SQL with quotes and comments is not altered.
    let sql = server
        .search("event_id:near-sql-quotes-and-comments-2a-002")
        .await;
    assert!(sql["hits"][0]["arguments"]["sql"]
        .as_str()
        .unwrap()
        .contains("O''Brien"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_command_streams_a_day_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let grpc = server.grpc.clone();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || {
        mcp_audit(&[
            "demo",
            "--endpoint",
            &grpc,
            "--events",
            "2500",
            "--rate",
            "20000",
            "--seed",
            "5",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{stderr}");
    let sent: u64 = stderr
        .split("demo: sent ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {stderr:?}"));
    assert!(stderr.contains(&format!("({sent} accepted)")), "{stderr}");
    assert!((2_000..=2_500).contains(&sent), "{stderr}");
    server.wait_for("", sent).await;
    // Seed 5's scenarios are in the stream, after a warm-up of ordinary traffic.
    assert!(!server.ids("event_id:day-5-000000").await.is_empty());
    assert!(!server.ids("server:pastebin").await.is_empty());
    server.stop().await.unwrap();
}
