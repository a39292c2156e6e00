//! End to end: secret-laden events go in; no raw secret can be found anywhere afterwards — not
//! in the data dir's bytes, not in any API response, not as a searchable term, not in metrics.

use crate::common::{full_event, Server};
use mcp_audit::event::Event;

/// base62 of a u32, left-padded to 6 characters (GitHub's token checksum encoding).
fn base62_6(mut n: u32) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = A[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).unwrap()
}

fn github_token(body30: &str) -> String {
    format!(
        "ghp_{body30}{}",
        base62_6(crc32fast::hash(body30.as_bytes()))
    )
}

fn secrets() -> Vec<String> {
    vec![
        github_token("R8uV2Xk9LmQ4wZp7Ns3Tb6Yc1Jd5Fh"),
        "AKIAZ3MHQ7VWXR4TPL2N".to_string(),
        "sk_live_51HqLyjWDarjtT1zdp7dcXYZ0abcdefghijk".to_string(),
        "xoxb-2048502398-2048502399123-AbCdEfGhIjKlMnOpQrStUvWx".to_string(),
        "correct-horse-battery-staple-91".to_string(),
        "s3cr3t-Pa55w0rd!x".to_string(),
    ]
}

fn laden_events() -> Vec<Event> {
    let s = secrets();
    let mut a = full_event("sec-1");
    a.arguments = serde_json::json!({"headers": {"Authorization": format!("token {}", s[0])}, "aws_key": s[1]});
    a.result = format!(
        "{{\"config\": {{\"stripe\": \"{}\", \"password\": \"{}\"}}}}",
        s[2], s[4]
    );
    let mut b = full_event("sec-2");
    b.error = format!("slack call failed with token {}", s[3]);
    b.labels.insert("db_password".into(), s[5].clone());
    b.result = format!("DATABASE_URL=postgres://app:{}@db.internal:5432/prod", s[5]);
    vec![a, b]
}

fn walk_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            walk_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_raw_secret_survives_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let resp = s.send(&laden_events()).await;
    assert_eq!(resp.accepted.len(), 2, "{:?}", resp.rejected);
    s.wait_for("", 2).await;

    let mut responses = Vec::new();
    responses.push(s.search("").await.to_string());
    for id in ["sec-1", "sec-2"] {
        let (status, v) = s.get(&format!("/api/v1/events/{id}"), &[]).await;
        assert_eq!(status, 200);
        assert!(
            !v["redactions"].as_array().unwrap().is_empty(),
            "{id} records its redactions"
        );
        responses.push(v.to_string());
    }
    responses.push(s.get_text("/metrics").await.1);
    for field in ["user", "tool", "redaction"] {
        responses.push(
            s.get("/api/v1/terms", &[("field", field), ("start", "-7d")])
                .await
                .1
                .to_string(),
        );
    }
    let all = responses.join("\n");
    assert!(all.contains("[REDACTED:"), "markers are visible in hits");
    for secret in secrets() {
        assert!(!all.contains(&secret), "API responses leak {secret}");
        let q = format!("\"{}\"", secret.replace('\\', "\\\\").replace('"', "\\\""));
        let (status, v) = s
            .get("/api/v1/search", &[("q", q.as_str()), ("start", "-7d")])
            .await;
        assert_eq!(status, 200, "the phrase query for {secret} must run: {v}");
        assert_eq!(v["total"], 0, "the index holds a term of {secret}");
    }
    let (_, v) = s
        .get(
            "/api/v1/search",
            &[("q", "redaction:github_token"), ("start", "-7d")],
        )
        .await;
    assert_eq!(v["total"], 1, "search filters on redaction kinds: {v}");
    s.stop().await.unwrap();

    // After a clean stop, the stored documents (tantivy compresses its doc store, so its
    // files cannot be byte-scanned) and the WAL records are free of raw secrets.
    let index = mcp_audit::index::Indexes::open_read_only(mcp_audit::index::IndexConfig {
        dir: dir.path().join("index"),
        retention_days: 30,
        writer_memory_bytes: 20 << 20,
        writer_threads: 1,
        layout: mcp_audit::index::layout::Layout::default(),
    })
    .unwrap();
    let mut stored = Vec::new();
    index
        .for_each_record(&mut |_, record| stored.push(record.to_vec()))
        .unwrap();
    mcp_audit::wal::inspect(&dir.path().join("wal"), &mut |found| {
        stored.push(found.payload.to_vec())
    })
    .unwrap();
    assert_eq!(stored.len(), 4, "two events, each in the index and the WAL");
    for record in &stored {
        let text = String::from_utf8_lossy(record);
        assert!(text.contains("[REDACTED:"), "{text}");
        for secret in secrets() {
            assert!(
                !text.contains(&secret),
                "a stored record holds {secret}: {text}"
            );
        }
    }
    drop(index);

    // And every byte on disk (WAL, index files, checkpoint) too.
    let mut files = Vec::new();
    walk_files(dir.path(), &mut files);
    assert!(files
        .iter()
        .any(|f| f.extension().is_some_and(|e| e == "wal")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for secret in secrets() {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} contains {secret}",
                f.display()
            );
        }
    }
}
