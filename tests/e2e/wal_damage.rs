//! A damaged WAL never silently loses acknowledged events, through the real binary:
//! positions never go backwards after the newest records are lost, damage with readable
//! records after it stops start-up until `mcp-audit recover` salvages it explicitly, `verify`
//! reads the stored bytes, changes nothing and names the first missing sequence number.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use crate::common::{generated, mcp_audit, Collector};

/// The newest WAL segment file.
fn newest_segment(data_dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(data_dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segs.sort();
    segs.pop().expect("a wal segment")
}

/// Every file under `dir` with its bytes, to prove a tool changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn verify(dir: &Path) -> (Option<i32>, String) {
    let (code, out, err) = mcp_audit(&["verify", "--data-dir", dir.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_cut_below_the_index_checkpoint_never_reuses_positions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, &[]).await;
    for chunk in generated("before", 3000, 1).chunks(500) {
        assert_eq!(c.send(chunk).await.accepted.len(), 500);
    }
    c.wait_total("", 3000).await;
    c.stop();

    // Cut the newest segment in half: its records are all indexed.
    let seg = newest_segment(&dir);
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let c = Collector::start(&dir, &[]).await;
    assert!(
        c.log_text()
            .contains("THE WAL ENDS BEFORE THE INDEX CHECKPOINT"),
        "{}",
        c.log_text()
    );
    assert!(c.metric("mcp_audit_wal_lost_positions").await.unwrap() > 0.0);
    let after = generated("after", 100, 2);
    assert_eq!(c.send(&after).await.accepted.len(), 100);
    c.wait_total("", 3100).await;
    c.stop();

    // And they stay searchable after another restart.
    let c = Collector::start(&dir, &[]).await;
    c.wait_total("", 3100).await;
    let ids: HashSet<String> = c.all_ids().await.into_iter().collect();
    assert!(after.iter().all(|e| ids.contains(&e.event_id)));
    c.stop();
    let (code, out) = verify(&dir);
    assert_eq!(code, Some(0), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_before_readable_records_stops_start_up_until_recover_salvages_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Nothing is indexed: every acknowledged event lives only in the WAL.
    let slow = [("MCP_AUDIT_INDEX_COMMIT_INTERVAL_MS", "60000")];
    let c = Collector::start(&dir, &slow).await;
    let events = generated("acked", 1000, 3);
    for chunk in events.chunks(100) {
        assert_eq!(c.send(chunk).await.accepted.len(), 100);
    }
    c.kill();

    let seg = newest_segment(&dir);
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] = 0;
    std::fs::write(&seg, &bytes).unwrap();
    let before = snapshot(&dir.join("wal"));

    let log = match Collector::try_start(&dir, &[]).await {
        Ok(c) => {
            let log = c.log_text();
            c.kill();
            panic!("started on a damaged WAL:\n{log}");
        }
        Err(log) => log,
    };
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(log.contains(name), "names the file: {log}");
    assert!(log.contains("damaged at byte"), "names the offset: {log}");
    assert!(log.contains("readable records follow"), "{log}");
    assert!(
        log.contains("mcp-audit recover --data-dir"),
        "says what to do: {log}"
    );
    assert_eq!(
        snapshot(&dir.join("wal")),
        before,
        "a refused start changes nothing"
    );

    let (code, out) = verify(&dir);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("damaged at byte"), "{out}");
    assert_eq!(snapshot(&dir.join("wal")), before, "verify changes nothing");

    let dir_s = dir.to_str().unwrap();
    let (code, out, err) = mcp_audit(&["recover", "--data-dir", dir_s, "--dry-run"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        snapshot(&dir.join("wal")),
        before,
        "a dry run changes nothing"
    );
    let (code, out, err) = mcp_audit(&["recover", "--data-dir", dir_s]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("(1 records)"), "one record lost: {out}");
    assert!(out.contains("readable records"), "{out}");

    let c = Collector::start(&dir, &[]).await;
    c.wait_total("", 999).await;
    let ids: HashSet<String> = c.all_ids().await.into_iter().collect();
    let lost: Vec<_> = events
        .iter()
        .filter(|e| !ids.contains(&e.event_id))
        .collect();
    assert_eq!(lost.len(), 1, "exactly the damaged record is lost");
    c.stop();
    let (code, out) = verify(&dir);
    assert_eq!(code, Some(2), "only a recorded gap: {out}");
    assert!(out.contains("recorded by `mcp-audit recover`"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reads_stored_bytes_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = Collector::start(&dir, &[]).await;
    let mut events = generated("floats", 50, 4);
    for (i, e) in events.iter_mut().enumerate() {
        // Numbers whose text does not survive serde_json's parse and re-serialization (its
        // default float parser is not exact): a check that re-serializes reads them as edits.
        e.arguments = serde_json::from_str(&format!(
            r#"{{"a": 3.987349067861593e-41, "b": 7.089595313882607e-61, "c": 8.859313048405679e-20, "d": 2.0448004575885844e-47, "n": {i}.5}}"#
        ))
        .unwrap();
    }
    assert_eq!(c.send(&events).await.accepted.len(), 50);
    c.wait_total("", 50).await;
    c.stop();
    let before = snapshot(&dir);
    let (code, out) = verify(&dir);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("tenant default: 50 events, seq 1..=50"),
        "{out}"
    );
    assert_eq!(
        snapshot(&dir),
        before,
        "verify changes nothing, not even a lock file"
    );
}
