//! Erasure (the right to erasure): removes one user's events of one tenant from the WAL and
//! the index, and records that it did, so the hash chain stays verifiable across the hole.
//!
//! Each erased event keeps its tenant, seq and chain hash, twice: its WAL record becomes an
//! erasure marker (`wal/marker.rs`), and the signed erasure record lists it. `verify` takes
//! the hash from either as the event's, checks the next event against it, and requires every
//! marker to be listed by a validly signed record (a marker nobody signed is a deletion).
//!
//! ## Order, each step durable before the next
//! 1. find: the user's records in the WAL below its durable end (`wal_below`), and the user's
//!    committed events in the index below that position;
//! 2. record: the signed erasure record, listing each erased event's seq, position and hash,
//!    appended to `erasures.jsonl` (fsynced) before anything is changed;
//! 3. WAL: each of those records becomes a marker (the committer rewrites the segments);
//! 4. index: the documents are deleted and the deletion committed (on the indexing thread);
//! 5. applied: the erasure's id is appended to `erasures.applied`.
//!
//! A crash after step 2 leaves an erasure recorded and not (fully) applied: the next start
//! applies it again ([`reapply`], idempotent) before serving, so erased events never come
//! back, not even when the index is rebuilt from the WAL. Events of the user that arrive after
//! step 1 are not erased (they are newer than the request).
//!
//! Not done here: findings and alerts that cite erased events keep their ids; who may erase
//! (the API's admin check).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::jsonl::{self, Appender, Lines};
use super::key::{self, SigningKey};
use super::{ChainError, Message};
use crate::error::ErrorKind;
use crate::event::decode_hash;
use crate::index::{Candidate, EraseFilter, EraseWait, IndexError, Indexes};
use crate::wal::{marker, CommitterHandle, FileLogReader, Log, LogError, LogReader, WalError};

pub const ERASURES_FILE: &str = "erasures.jsonl";
pub const APPLIED_FILE: &str = "erasures.applied";

/// How long an erasure waits for the index to delete and commit.
const INDEX_WAIT: Duration = Duration::from_secs(60);

/// One erasure, as recorded (a line of `erasures.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureRecord {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub tenant: String,
    pub user: String,
    pub reason: String,
    /// Who asked (the credential).
    pub by: String,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<OffsetDateTime>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<OffsetDateTime>,
    /// Events at WAL positions below this were considered.
    pub wal_below: u64,
    /// `[seq, WAL position, hex chain hash]` of every erased event, by seq.
    pub events: Vec<(u64, u64, String)>,
    /// Base64 ed25519 signature of the record's canonical bytes.
    pub sig: String,
}

impl ErasureRecord {
    fn message(&self) -> Result<Vec<u8>, String> {
        let mut m = Message::new("mcp-audit erasure v1");
        m.bytes(self.id.as_bytes())
            .time(self.at)
            .bytes(self.tenant.as_bytes())
            .bytes(self.user.as_bytes())
            .bytes(self.reason.as_bytes())
            .bytes(self.by.as_bytes())
            .opt_time(self.start)
            .opt_time(self.end)
            .u64(self.wal_below)
            .u64(self.events.len() as u64);
        for (seq, pos, hash) in &self.events {
            let h = decode_hash(hash)
                .ok_or_else(|| format!("the hash of seq {seq} is not 64 hex digits"))?;
            m.u64(*seq).u64(*pos).bytes(&h);
        }
        Ok(m.into_bytes())
    }

    fn sign(mut self, key: &SigningKey) -> Result<Self, String> {
        let sig = key.sign(&self.message()?);
        self.sig = base64::engine::general_purpose::STANDARD.encode(sig);
        Ok(self)
    }

    /// Checks the signature against `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), String> {
        let sig: [u8; 64] = base64::engine::general_purpose::STANDARD
            .decode(&self.sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("`sig` is not a base64 ed25519 signature")?;
        if key::verify(key, &self.message()?, &sig) {
            Ok(())
        } else {
            Err("the signature does not verify".into())
        }
    }

    fn filter(&self) -> EraseFilter {
        EraseFilter {
            tenant: self.tenant.clone(),
            user: self.user.clone(),
            start: self.start,
            end: self.end,
            below: self.wal_below,
        }
    }

    /// The marker of each erased event, by position.
    fn markers(&self) -> BTreeMap<u64, Vec<u8>> {
        self.events
            .iter()
            .filter_map(|(seq, pos, hash)| {
                let h = decode_hash(hash)?;
                Some((*pos, marker::marker(&self.id, &self.tenant, *seq, &h)))
            })
            .collect()
    }

    /// What to tell the caller, log, or record as an audit event of tenant `_system`.
    pub fn summary(&self, wal_markers: u64, index_documents: usize) -> Summary {
        Summary {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            user: self.user.clone(),
            at: self.at,
            by: self.by.clone(),
            erased: self.events.len(),
            first_seq: self.events.first().map(|e| e.0),
            last_seq: self.events.last().map(|e| e.0),
            wal_markers,
            index_documents,
            wal_below: self.wal_below,
        }
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub tenant: String,
    pub user: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub by: String,
    /// Events erased.
    pub erased: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// WAL records replaced by markers (the WAL no longer holds events the index has had
    /// for a while).
    pub wal_markers: u64,
    /// Index documents deleted (committed ones; events not indexed yet are in the WAL).
    pub index_documents: usize,
    pub wal_below: u64,
}

/// An erasure to make.
#[derive(Debug, Clone)]
pub struct EraseRequest {
    pub tenant: String,
    pub user: String,
    pub reason: String,
    pub by: String,
    pub start: Option<OffsetDateTime>,
    pub end: Option<OffsetDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("cannot read the WAL to find the events: {0}")]
    Scan(String),
    #[error("cannot search the index for the events: {0}")]
    Index(#[from] IndexError),
    #[error("cannot record the erasure ({0}); nothing was erased")]
    Record(String),
    #[error("the erasure {id} is recorded but the WAL could not be rewritten ({source}); it is applied again when the collector restarts")]
    Wal { id: String, source: WalError },
    #[error("the erasure {id} is recorded and the WAL rewritten, but {source}")]
    IndexPending { id: String, source: EraseWait },
}

impl EraseError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EraseError::Scan(_) | EraseError::Index(_) | EraseError::Record(_) => {
                ErrorKind::Internal
            }
            EraseError::Wal { .. } | EraseError::IndexPending { .. } => ErrorKind::Unavailable,
        }
    }
}

/// Makes erasures in a running collector.
pub struct Eraser {
    key: Arc<SigningKey>,
    reader: FileLogReader,
    committer: CommitterHandle,
    index: Arc<Indexes>,
    /// One erasure at a time; holds the two appenders.
    files: Mutex<(Appender, Appender)>,
}

pub fn records_path(chain_dir: &Path) -> PathBuf {
    chain_dir.join(ERASURES_FILE)
}

fn applied_path(chain_dir: &Path) -> PathBuf {
    chain_dir.join(APPLIED_FILE)
}

/// Every line of `erasures.jsonl` (read-only).
pub fn read_all(chain_dir: &Path) -> Result<Lines<ErasureRecord>, ChainError> {
    jsonl::read(&records_path(chain_dir))
}

impl Eraser {
    pub fn open(
        chain_dir: &Path,
        key: Arc<SigningKey>,
        reader: FileLogReader,
        committer: CommitterHandle,
        index: Arc<Indexes>,
    ) -> Result<Self, ChainError> {
        let records = Appender::open(&records_path(chain_dir))?;
        let applied = Appender::open(&applied_path(chain_dir))?;
        Ok(Self {
            key,
            reader,
            committer,
            index,
            files: Mutex::new((records, applied)),
        })
    }

    /// Erases the events (see the module doc for the order). Blocks: run it on a thread that
    /// may.
    pub fn erase(&self, req: EraseRequest) -> Result<Summary, EraseError> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let at = OffsetDateTime::now_utc();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let below = self.reader.durable_end();
        let filter = EraseFilter {
            tenant: req.tenant.clone(),
            user: req.user.clone(),
            start: req.start,
            end: req.end,
            below,
        };
        // 1. Find.
        let in_wal = scan_wal(&self.reader, &filter).map_err(EraseError::Scan)?;
        let in_index = self.index.erasure_candidates(&filter)?;
        let mut events: BTreeMap<u64, (u64, [u8; 32])> = BTreeMap::new();
        for c in in_wal.iter().chain(&in_index) {
            events.insert(c.seq, (c.pos, c.hash));
        }
        // 2. Record.
        let record = ErasureRecord {
            id: id.clone(),
            at,
            tenant: req.tenant,
            user: req.user,
            reason: req.reason,
            by: req.by,
            start: req.start,
            end: req.end,
            wal_below: below,
            events: events
                .into_iter()
                .map(|(seq, (pos, hash))| (seq, pos, hex::encode(hash)))
                .collect(),
            sig: String::new(),
        }
        .sign(&self.key)
        .map_err(EraseError::Record)?;
        files
            .0
            .append(std::slice::from_ref(&record))
            .map_err(|e| EraseError::Record(e.to_string()))?;
        // 3. WAL.
        let wal_positions: HashSet<u64> = in_wal.iter().map(|c| c.pos).collect();
        let markers: BTreeMap<u64, Vec<u8>> = record
            .markers()
            .into_iter()
            .filter(|(pos, _)| wal_positions.contains(pos))
            .collect();
        let wal_markers =
            self.committer
                .replace_blocking(markers)
                .map_err(|source| EraseError::Wal {
                    id: id.clone(),
                    source,
                })?;
        // 4. Index.
        self.index
            .erase(record.filter(), INDEX_WAIT)
            .map_err(|source| EraseError::IndexPending {
                id: id.clone(),
                source,
            })?;
        // 5. Applied. Failing here only means the next start applies it once more.
        if let Err(e) = files.1.append(&[&id]) {
            tracing::warn!(error = %e, erasure = %id, "chain: cannot mark the erasure applied; the next start applies it again");
        }
        let summary = record.summary(wal_markers, in_index.len());
        tracing::info!(
            erasure = %summary.id,
            tenant = %summary.tenant,
            user = %summary.user,
            by = %summary.by,
            erased = summary.erased,
            wal_markers = summary.wal_markers,
            index_documents = summary.index_documents,
            "erasure: a user's events removed from the WAL and the index (recorded in chain/erasures.jsonl)"
        );
        Ok(summary)
    }
}

/// The user's events among the WAL's records below the filter's position. A segment deleted
/// under the scan (consumed meanwhile: the index holds its events) restarts it.
fn scan_wal(reader: &impl LogReader, filter: &EraseFilter) -> Result<Vec<Candidate>, String> {
    #[derive(Deserialize)]
    struct Who<'a> {
        #[serde(borrow)]
        tenant: Cow<'a, str>,
        #[serde(borrow, default)]
        user: Cow<'a, str>,
        #[serde(with = "time::serde::rfc3339")]
        timestamp: OffsetDateTime,
        seq: u64,
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut out = Vec::new();
        let mut bad = None;
        let read = reader.read(0, filter.below, &mut |pos, record| {
            if marker::is_marker(record) {
                return true;
            }
            let Some(json) = record.get(crate::event::RECORD_HASH_LEN..) else {
                bad = Some(format!("the record at position {pos} is too short"));
                return false;
            };
            match serde_json::from_slice::<Who<'_>>(json) {
                Ok(w) => {
                    if w.tenant == filter.tenant
                        && w.user == filter.user
                        && filter.start.is_none_or(|s| w.timestamp >= s)
                        && filter.end.is_none_or(|e| w.timestamp < e)
                    {
                        let mut hash = [0u8; 32];
                        hash.copy_from_slice(&record[..crate::event::RECORD_HASH_LEN]);
                        out.push(Candidate {
                            pos,
                            seq: w.seq,
                            hash,
                        });
                    }
                    true
                }
                Err(e) => {
                    bad = Some(format!("the record at position {pos} is unreadable: {e}"));
                    false
                }
            }
        });
        match read {
            Ok(()) => return bad.map_or(Ok(out), Err),
            Err(LogError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && attempts < 3 => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Applies again every erasure recorded but not marked applied (a crash interrupted it), at
/// start, before the committer and the indexer run. A record whose signature does not verify
/// is not applied (`verify` reports it).
pub fn reapply<L: Log>(
    chain_dir: &Path,
    key: &SigningKey,
    log: &mut L,
    index: &Indexes,
) -> anyhow::Result<usize> {
    let records = read_all(chain_dir)?;
    if records.lines.is_empty() {
        return Ok(0);
    }
    let applied: Lines<String> = jsonl::read(&applied_path(chain_dir))?;
    let done: HashSet<String> = applied
        .lines
        .into_iter()
        .filter_map(|(_, id)| id.ok())
        .collect();
    let mut again = 0;
    let mut marks = Appender::open(&applied_path(chain_dir))?;
    for (line, record) in records.lines {
        let Ok(record) = record else { continue };
        if done.contains(&record.id) {
            continue;
        }
        if let Err(why) = record.verify(&key.public()) {
            tracing::error!(line, erasure = %record.id, reason = %why, "erasure record not applied: its signature does not verify; run `mcp-audit verify`");
            continue;
        }
        let markers = log.replace(&record.markers())?;
        index.erase_now(&record.filter())?;
        marks.append(&[&record.id])?;
        tracing::info!(erasure = %record.id, tenant = %record.tenant, wal_markers = markers, "erasure: applied again at start (a crash had interrupted it)");
        again += 1;
    }
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ErasureRecord {
        ErasureRecord {
            id: "e1".into(),
            at: OffsetDateTime::now_utc(),
            tenant: "acme".into(),
            user: "alice".into(),
            reason: "gdpr request 7".into(),
            by: "admin".into(),
            start: None,
            end: Some(OffsetDateTime::now_utc()),
            wal_below: 10,
            events: vec![
                (3, 2, hex::encode([3u8; 32])),
                (5, 4, hex::encode([5u8; 32])),
            ],
            sig: String::new(),
        }
    }

    #[test]
    fn an_interrupted_erasure_is_applied_again_at_start_once() {
        use crate::event::{Event, StoredEvent, GENESIS_HASH};
        use crate::index::IndexConfig;
        use crate::wal::FileLog;
        let dir = tempfile::tempdir().unwrap();
        let chain_dir = dir.path().join("chain");
        let (mut log, _) = FileLog::open(&dir.path().join("wal"), 1 << 20, &mut |_, _| {}).unwrap();
        let index = Indexes::open(IndexConfig {
            dir: dir.path().join("index"),
            retention_days: 30,
            writer_memory_bytes: 15_000_000,
            writer_threads: 1,
            layout: crate::index::layout::Layout::default(),
        })
        .unwrap();
        let mut prev = GENESIS_HASH;
        let mut events = Vec::new();
        for (i, user) in ["alice", "bob", "alice", "bob"].iter().enumerate() {
            let mut e = Event::new(format!("e{i}"), "tools/call", "t");
            e.user = user.to_string();
            let mut ev = StoredEvent {
                event: e,
                tenant: "acme".into(),
                received_at: OffsetDateTime::now_utc(),
                seq: i as u64 + 1,
                hash: String::new(),
                redactions: vec![],
            };
            let h = ev.chain_hash(&prev).unwrap();
            ev.hash = hex::encode(h);
            prev = h;
            let pos = log.append(&ev.record().unwrap()).unwrap();
            index.add(pos, &ev).unwrap();
            events.push((pos, ev, h));
        }
        log.sync().unwrap();
        index.commit(4).unwrap();
        // Recorded, then the crash: neither the WAL nor the index changed.
        let key = SigningKey::from_seed([4; 32]);
        let record = ErasureRecord {
            id: "x1".into(),
            at: OffsetDateTime::now_utc(),
            tenant: "acme".into(),
            user: "alice".into(),
            reason: String::new(),
            by: "test".into(),
            start: None,
            end: None,
            wal_below: 4,
            events: [0usize, 2]
                .iter()
                .map(|&i| (events[i].1.seq, events[i].0, hex::encode(events[i].2)))
                .collect(),
            sig: String::new(),
        }
        .sign(&key)
        .unwrap();
        Appender::open(&records_path(&chain_dir))
            .unwrap()
            .append(&[record])
            .unwrap();
        assert_eq!(reapply(&chain_dir, &key, &mut log, &index).unwrap(), 1);
        let mut markers = Vec::new();
        log.reader()
            .read(0, u64::MAX, &mut |pos, r| {
                if marker::is_marker(r) {
                    markers.push(pos);
                }
                true
            })
            .unwrap();
        assert_eq!(markers, vec![0, 2]);
        let left = index
            .erasure_candidates(&EraseFilter {
                tenant: "acme".into(),
                user: "alice".into(),
                start: None,
                end: None,
                below: 4,
            })
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        assert!(index.contains("acme", "e1").unwrap(), "bob's stay");
        assert_eq!(
            reapply(&chain_dir, &key, &mut log, &index).unwrap(),
            0,
            "once"
        );
    }

    #[test]
    fn a_signed_record_covers_every_value() {
        let key = SigningKey::from_seed([2; 32]);
        let r = record().sign(&key).unwrap();
        r.verify(&key.public()).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let back: ErasureRecord = serde_json::from_str(&json).unwrap();
        back.verify(&key.public()).unwrap();
        let mut t = r.clone();
        t.events.pop();
        assert!(t.verify(&key.public()).is_err());
        let mut t = r.clone();
        t.user = "bob".into();
        assert!(t.verify(&key.public()).is_err());
        let mut t = r.clone();
        t.end = None;
        assert!(t.verify(&key.public()).is_err());
        let markers = r.markers();
        assert_eq!(markers.keys().copied().collect::<Vec<_>>(), vec![2, 4]);
        assert!(markers.values().all(|m| marker::is_marker(m)));
    }
}
