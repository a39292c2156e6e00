//! Signed, tamper-evident history through the real binary: the collector signs every
//! tenant's chain head into `chain/checkpoints.jsonl`, and `mcp-audit verify` finds an edited,
//! deleted, reordered or newest-deleted event, a forged checkpoint and a wrong public key,
//! each with its own message; a readable or damaged signing key stops the collector.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{generated, mcp_audit, Collector};
use mcp_audit::wal::{FileLog, FileLogReader, Log, LogReader};

const EVERY_10: [(&str, &str); 1] = [("MCP_AUDIT_CHAIN_CHECKPOINT_EVERY_EVENTS", "10")];

fn checkpoints_file(dir: &Path) -> PathBuf {
    dir.join("chain").join("checkpoints.jsonl")
}

/// The highest seq signed so far (0 for none).
fn signed_seq(dir: &Path) -> u64 {
    std::fs::read_to_string(checkpoints_file(dir))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

async fn wait_signed(dir: &Path, seq: u64) {
    for _ in 0..400 {
        if signed_seq(dir) >= seq {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("seq {seq} was never signed; signed {}", signed_seq(dir));
}

/// A collector's store of `batches` × 10 events, each batch signed before the next is sent,
/// stopped cleanly.
async fn signed_store(dir: &Path, batches: u64) {
    let c = Collector::start(dir, &EVERY_10).await;
    let events = generated("ev", (batches * 10) as usize, 7);
    for (i, chunk) in events.chunks(10).enumerate() {
        assert_eq!(c.send(chunk).await.accepted.len(), 10);
        wait_signed(dir, (i as u64 + 1) * 10).await;
    }
    c.wait_total("", batches * 10).await;
    c.stop();
}

fn verify(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["verify", "--data-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, out, err) = mcp_audit(&args);
    (code, format!("{out}{err}"))
}

/// Every WAL record, in position order.
fn wal_records(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    FileLogReader::offline(&dir.join("wal"))
        .read(0, u64::MAX, &mut |_, r| {
            out.push(r.to_vec());
            true
        })
        .unwrap();
    out
}

/// Replaces the WAL with `records` (valid checksums: what someone rewriting history writes),
/// and empties the index, so the WAL holds the only copy of each event.
fn rewrite_store(dir: &Path, records: &[Vec<u8>]) {
    std::fs::remove_dir_all(dir.join("wal")).unwrap();
    let (mut log, _) = FileLog::open(&dir.join("wal"), 64 << 20, &mut |_, _| {}).unwrap();
    for r in records {
        log.append(r).unwrap();
    }
    log.sync().unwrap();
    std::fs::remove_dir_all(dir.join("index")).unwrap();
    std::fs::create_dir(dir.join("index")).unwrap();
}

/// Changes one letter of the event's `tool`, leaving the record valid JSON.
fn edit_content(record: &mut [u8]) {
    let key = b"\"tool\":\"";
    let at = record.windows(key.len()).position(|w| w == key).unwrap() + key.len();
    assert!(record[at].is_ascii_alphabetic());
    record[at] ^= 0x20;
}

/// The record of `seq` (tenant `default`).
fn index_of_seq(records: &[Vec<u8>], seq: u64) -> usize {
    records
        .iter()
        .position(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r[32..]).unwrap();
            v["seq"].as_u64() == Some(seq)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_store_verifies_with_its_own_and_an_exported_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    signed_store(&dir, 4).await;
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("tenant default: 40 events, seq 1..=40"),
        "{out}"
    );
    assert!(
        out.contains("signed checkpoints: 4 of 4 match the stored chain; newest at seq 40"),
        "{out}"
    );
    assert!(out.contains("this data dir's own key"), "{out}");

    let (code, key, err) = mcp_audit(&[
        "chain",
        "export-public-key",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let key = key.trim().to_string();
    assert!(key.starts_with("ed25519:"), "{key}");
    let (code, out) = verify(&dir, &["--public-key", &key]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("the public key given with --public-key"),
        "{out}"
    );
    // A file holding the key works too.
    let key_file = tmp.path().join("key.pub");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let (code, out) = verify(&dir, &["--public-key", key_file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");

    // The same store checked against another installation's key.
    let other = tmp.path().join("other");
    let c = Collector::start(&other, &[]).await;
    c.stop();
    let (_, other_key, _) = mcp_audit(&[
        "chain",
        "export-public-key",
        "--data-dir",
        other.to_str().unwrap(),
    ]);
    let (code, out) = verify(&dir, &["--public-key", other_key.trim()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("none of the 4 signed checkpoints in")
            && out.contains("verifies against the public key given with --public-key"),
        "{out}"
    );
    assert!(out.contains("CHAIN BROKEN"), "{out}");
    let (code, out) = verify(&dir, &["--public-key", "ed25519:nonsense"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("`--public-key`"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletions_and_reorders_are_each_found() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    signed_store(&clean, 4).await;
    let records = wal_records(&clean);
    assert_eq!(records.len(), 40);
    let copy = |name: &str| -> PathBuf {
        let d = tmp.path().join(name);
        let status = std::process::Command::new("cp")
            .args(["-a", clean.to_str().unwrap(), d.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
        d
    };

    // A byte of an event's content, with the record's checksum made good again.
    let dir = copy("edited");
    let mut r = records.clone();
    let i = index_of_seq(&r, 7);
    edit_content(&mut r[i]);
    rewrite_store(&dir, &r);
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("first broken seq 7:"), "{out}");

    // The same edit with every later hash recomputed: only the signatures tell.
    let dir = copy("rechained");
    let mut r = records.clone();
    let mut prev = [0u8; 32];
    for (k, rec) in r.iter_mut().enumerate() {
        if k == index_of_seq(&records, 7) {
            edit_content(rec);
        }
        let h = mcp_audit::event::chain_hash(&prev, &rec[32..]);
        rec[..32].copy_from_slice(&h);
        prev = h;
    }
    rewrite_store(&dir, &r);
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("seq 10 differs from its signed checkpoint")
            && out.contains("first broken seq is in 1..=10"),
        "{out}"
    );

    // A byte flipped on disk, checksum left as it is.
    let dir = copy("flipped");
    let seg = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "wal"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("damaged at byte"), "{out}");

    // A record in the middle deleted.
    let dir = copy("deleted");
    let mut r = records.clone();
    r.remove(index_of_seq(&r, 16));
    rewrite_store(&dir, &r);
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("first missing seq 16"), "{out}");

    // The newest five deleted: the chain is intact, the last signed checkpoint is not.
    let dir = copy("truncated");
    let r = records[..35].to_vec();
    rewrite_store(&dir, &r);
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "seq 36..=40 MISSING (5 events): the newest events were deleted; first missing seq 36"
        ),
        "{out}"
    );

    // Two records swapped in the log.
    let dir = copy("reordered");
    let mut r = records.clone();
    let (a, b) = (index_of_seq(&r, 11), index_of_seq(&r, 12));
    r.swap(a, b);
    rewrite_store(&dir, &r);
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the WAL holds seq 11 at position") && out.contains("were reordered"),
        "{out}"
    );

    // A checkpoint changed after signing.
    let dir = copy("forged");
    let text = std::fs::read_to_string(checkpoints_file(&dir)).unwrap();
    let forged: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 1 {
                l.replace("\"wal_next\":", "\"wal_next\":1")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(checkpoints_file(&dir), forged.join("\n") + "\n").unwrap();
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("line 2 (tenant default, seq 20): the signature does not verify against")
            && out.contains("changed or forged"),
        "{out}"
    );

    // Nothing was touched in the clean store, which still verifies.
    let (code, out) = verify(&clean, &[]);
    assert_eq!(code, Some(0), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_retention_the_chain_is_checked_from_the_retained_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    signed_store(&dir, 4).await;
    let records = wal_records(&dir);
    // Retention dropped seq 1..=20: the checkpoint at seq 20 anchors seq 21.
    let kept: Vec<Vec<u8>> = records[index_of_seq(&records, 21)..].to_vec();
    rewrite_store(&dir, &kept);
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("seq 21..=40")
            && out.contains(
                "the link into seq 21 is checked against the signed checkpoint at seq 20"
            ),
        "{out}"
    );
    // So an edit of the oldest retained event is found.
    let mut edited = kept.clone();
    edit_content(&mut edited[0]);
    rewrite_store(&dir, &edited);
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("first broken seq 21:"), "{out}");
    // Without a checkpoint right before it, the oldest retained checkpoint anchors the rest.
    rewrite_store(&dir, &records[index_of_seq(&records, 25)..]);
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("anchored from the oldest retained signed checkpoint, at seq 30, on"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readable_or_damaged_signing_key_stops_the_collector() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, &[]).await;
    c.stop();
    let key = dir.join("chain").join("signing.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let log = match Collector::try_start(&dir, &[]).await {
        Ok(c) => {
            c.kill();
            panic!("started with a group-readable key");
        }
        Err(log) => log,
    };
    assert!(
        log.contains("has mode 0640") && log.contains("chmod 600"),
        "{log}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&key, "0123\n").unwrap();
    let log = match Collector::try_start(&dir, &[]).await {
        Ok(c) => {
            c.kill();
            panic!("started with a damaged key");
        }
        Err(log) => log,
    };
    assert!(log.contains("the key file is damaged"), "{log}");
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        "0123\n",
        "kept as it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_survive_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, &EVERY_10).await;
    assert_eq!(c.send(&generated("k", 30, 9)).await.accepted.len(), 30);
    wait_signed(&dir, 30).await;
    c.kill();
    // The heads signed before the kill are there; a restart signs nothing twice.
    let c = Collector::start(&dir, &EVERY_10).await;
    assert_eq!(c.send(&generated("l", 10, 10)).await.accepted.len(), 10);
    wait_signed(&dir, 40).await;
    c.stop();
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("seq 1..=40"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_that_retention_emptied_is_not_a_deletion() {
    use mcp_audit::chain::{key, SignedCheckpoint};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    signed_store(&dir, 1).await;
    let signing = key::load_or_create(&dir.join("chain")).unwrap();
    let append = |time: time::OffsetDateTime| {
        let cp = SignedCheckpoint::sign(&signing, "gone", 7, &[7; 32], 3, time);
        let mut text = std::fs::read_to_string(checkpoints_file(&dir)).unwrap();
        text.push_str(&serde_json::to_string(&cp).unwrap());
        text.push('\n');
        std::fs::write(checkpoints_file(&dir), text).unwrap();
    };
    // Signed 40 days ago: older than every day the index keeps.
    append(time::OffsetDateTime::now_utc() - time::Duration::days(40));
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("tenant gone: no events stored") && out.contains("dropped by retention"),
        "{out}"
    );
    // Signed now: its events were deleted.
    append(time::OffsetDateTime::now_utc());
    let (code, out) = verify(&dir, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("seq 1..=7 MISSING (7 events): every event was deleted"),
        "{out}"
    );
}
