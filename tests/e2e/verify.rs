//! `mcp-audit verify` finds edits and deletions in stored history.

use crate::common;
use std::process::Command;

use mcp_audit::event::{Event, StoredEvent, GENESIS_HASH};
use mcp_audit::wal::{FileLog, Log};

fn verify(dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-audit"))
        .args(["verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_store_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let s = common::Server::start(dir.path()).await;
    let events: Vec<Event> = (0..40)
        .map(|i| common::full_event(&format!("v-{i}")))
        .collect();
    s.send(&events[..20]).await;
    s.send(&events[20..]).await;
    s.stop().await.unwrap();
    let (ok, out) = verify(dir.path());
    assert!(ok, "{out}");
    assert!(
        out.contains("tenant default: 40 events, seq 1..=40"),
        "{out}"
    );
    assert!(
        out.contains("chain intact (40 events; 80 of 80 stored copies checked"),
        "{out}"
    );
}

/// Writes a chain of `n` events straight into a WAL (as the committer would), letting the
/// test tamper with one of them first.
fn write_chain(dir: &std::path::Path, n: u64, tamper: impl Fn(u64, &mut StoredEvent) -> bool) {
    std::fs::create_dir_all(dir.join("index")).unwrap();
    let (mut log, _) = FileLog::open(&dir.join("wal"), 1 << 20, &mut |_, _| {}).unwrap();
    let mut prev = GENESIS_HASH;
    for seq in 1..=n {
        let mut ev = StoredEvent {
            event: Event::new(format!("t-{seq}"), "tools/call", "read_file"),
            tenant: "acme".into(),
            received_at: time::OffsetDateTime::now_utc(),
            seq,
            hash: String::new(),
            redactions: vec![],
        };
        let h = ev.chain_hash(&prev).unwrap();
        prev = h;
        if tamper(seq, &mut ev) {
            continue; // deleted
        }
        let mut record = h.to_vec();
        record.extend(ev.canonical_bytes().unwrap());
        log.append(&record).unwrap();
    }
    log.sync().unwrap();
}

#[test]
fn an_edited_event_is_found() {
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), 10, |seq, ev| {
        if seq == 4 {
            ev.event.tool = "innocent_tool".into();
        }
        false
    });
    let (ok, out) = verify(dir.path());
    assert!(!ok, "{out}");
    assert!(
        out.contains("first broken seq 4: its stored bytes do not match its hash"),
        "{out}"
    );
}

#[test]
fn a_deleted_event_is_found() {
    let dir = tempfile::tempdir().unwrap();
    write_chain(dir.path(), 10, |seq, _| seq == 6);
    let (ok, out) = verify(dir.path());
    assert!(!ok, "{out}");
    assert!(out.contains("first missing seq 6"), "{out}");
}
