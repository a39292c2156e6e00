//! A data dir written by an earlier version (tantivy term dictionaries as FSTs) is rewritten
//! in the current format when the collector starts, with nothing lost; `verify` on it says
//! what to do and changes nothing.
//!
//! The fixture (`tests/fixtures/fst-index/data`) was made with the release build of `ffaa9c5`:
//! `bench --events 120 --write`, `ship`ped to a fresh collector, then `user:heidi` (9 events)
//! erased; it holds 111 searchable events and 19 findings, dated 2026-11-28.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{self, Collector};

const DAY: &str = "2026-11-28";
const EVENTS: u64 = 111;
const FINDINGS: u64 = 19;

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fst-index/data"),
        dir.path(),
    );
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            // git keeps no modes but the executable bit; the collector refuses keys that
            // others can read.
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(snapshot(&entry.path()));
        } else {
            out.insert(entry.path(), std::fs::read(entry.path()).unwrap());
        }
    }
    out
}

/// The fixture's events are dated; search from before them whatever today is.
async fn total(c: &Collector, q: &str) -> u64 {
    let (status, v) = c
        .get(
            "/api/v1/search",
            &[
                ("q", q),
                ("start", "2026-11-27T00:00:00Z"),
                ("limit", "1"),
                ("exact_total", "true"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["total"].as_u64().unwrap()
}

async fn findings(c: &Collector) -> u64 {
    let (status, v) = c.get("/api/v1/findings", &[("limit", "1000")]).await;
    assert_eq!(status, 200, "{v}");
    v["total"].as_u64().unwrap()
}

/// Retention long enough to keep the fixture's day whenever the test runs.
const ENV: &[(&str, &str)] = &[("MCP_AUDIT_RETENTION_DAYS", "36500")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_format_data_dir_is_rewritten_once_and_loses_nothing() {
    let dir = fixture();
    let data = dir.path();

    // `verify` reads only: it names what to do and leaves every byte as it was.
    let before = snapshot(data);
    let (code, _, stderr) = common::mcp_audit(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("{DAY} was written by an earlier mcp-audit"))
            && stderr.contains("start the collector on this data dir once"),
        "{stderr}"
    );
    assert!(before == snapshot(data), "verify changed the data dir");

    let c = Collector::start(data, ENV).await;
    assert_eq!(total(&c, "").await, EVENTS);
    assert_eq!(total(&c, "event_id:demo-1-120").await, 1);
    assert_eq!(total(&c, "user:heidi").await, 0, "erased events came back");
    // What the build that wrote the fixture answered, query by query.
    for (q, n) in [
        ("pagination", 86),
        ("docs.rs", 21),
        ("tool:fetch", 21),
        ("outcome:ok", 110),
        ("user:alice", 10),
        ("duration_ms:>100", 80),
    ] {
        assert_eq!(total(&c, q).await, n, "{q}");
    }
    assert_eq!(findings(&c).await, FINDINGS);
    let (status, v) = c
        .get(
            "/api/v1/findings",
            &[("event_id", "demo-1-120"), ("limit", "10")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let log = c.stop();
    assert_eq!(
        log.matches("index rewritten in the current format").count(),
        2,
        "the day index and the findings index: {log}"
    );
    let names: Vec<String> = std::fs::read_dir(data.join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".upgrading") && !n.contains(".old-format")),
        "{names:?}"
    );

    // Written in the current format: the next start rewrites nothing and takes new events.
    let c = Collector::start(data, ENV).await;
    let r = c.send(&[common::traversal("after-upgrade")]).await;
    assert_eq!(r.accepted.len(), 1, "{:?}", r.rejected);
    c.wait_total("event_id:after-upgrade", 1).await;
    assert_eq!(total(&c, "").await, EVENTS + 1);
    let log = c.stop();
    assert!(!log.contains("rewriting it"), "{log}");
    let (code, stdout, stderr) =
        common::mcp_audit(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_cut_short_by_a_crash_is_finished_at_the_next_start() {
    // The day: a crash between the two renames (the old index set aside, the new one not yet
    // in place) after a half-written new one was left by an earlier attempt. The findings: a
    // crash after the new index was in place, before the old one was removed.
    let dir = fixture();
    let index = dir.path().join("index");
    std::fs::rename(index.join(DAY), index.join(format!("{DAY}.old-format"))).unwrap();
    std::fs::create_dir_all(index.join(format!("{DAY}.upgrading"))).unwrap();
    std::fs::write(index.join(format!("{DAY}.upgrading/meta.json")), b"{").unwrap();
    copy_tree(
        &dir.path().join("findings"),
        &dir.path().join("findings.old-format"),
    );

    let c = Collector::start(dir.path(), ENV).await;
    assert_eq!(total(&c, "").await, EVENTS);
    assert_eq!(findings(&c).await, FINDINGS);
    c.stop();
    let mut names: Vec<String> = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["2026-11-28", "checkpoint.json"]);
    assert!(!dir.path().join("findings.old-format").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_old_index_stops_the_start_and_stays_as_it_was() {
    let dir = fixture();
    let day = dir.path().join("index").join(DAY);
    // A run of zeros in the middle of the day's largest document store (its footer intact).
    let store = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "store"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&store).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle - 512..middle + 512].fill(0);
    std::fs::write(&store, &bytes).unwrap();
    let before = snapshot(&day);

    let log = match Collector::try_start(dir.path(), ENV).await {
        Ok(c) => panic!("started on a damaged index:\n{}", c.stop()),
        Err(log) => log,
    };
    assert!(
        log.contains(&format!(
            "rewriting {} in the current format failed",
            day.display()
        )) && log.contains("The old index is untouched; move it aside"),
        "{log}"
    );
    assert!(before == snapshot(&day), "the old index was changed");
    assert!(!dir
        .path()
        .join("index")
        .join(format!("{DAY}.upgrading"))
        .exists());
}
