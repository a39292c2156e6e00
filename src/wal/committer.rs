//! The committer thread: the one place that appends to the log.
//!
//! It owns the [`Log`], the chain heads and the duplicate filter, so the order of positions,
//! per-tenant sequence numbers and the dedup decision are decided in one place without locks.
//! Batches from every connection queue up for it; it takes all that are waiting, appends them,
//! fsyncs **once** for the whole group (group commit), and only then answers the batches and
//! hands the new events to the consumers and the live tail.
//!
//! A group changes the chain heads and the duplicate filter only after its fsync succeeded. If
//! a write or fsync fails, the log is rolled back to its durable state and every batch of the
//! group gets an error (clients retry with the same ids). A resource running out (a full disk,
//! too many open files) is retried with the next group; anything else, or a rollback that
//! fails, stops the WAL until restart. Either way `/readyz` says why.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{Checkpoint, Heads};
use super::consumer::{Chunk, Consumers, Entry};
use super::dedup::{Dedup, RECENT_MAX};
use super::log::{Log, LogError, MAX_RECORD_BYTES};
use super::WalError;
use crate::backlog::Charge;
use crate::event::{
    chain_hash, id_key, Event, RecordBuilder, Redaction, StoredEvent, GENESIS_HASH, RECORD_HASH_LEN,
};
use crate::health::Health;
use crate::metrics::Metrics;

/// Events per chunk handed to consumers.
pub const CHUNK: usize = 1024;
/// Batches that may wait for the committer before senders wait too (backpressure).
const QUEUE_BATCHES: usize = 1024;
/// Events taken into one group at most.
const GROUP_EVENTS: usize = 50_000;
/// Bytes a stored record needs beyond the event's own JSON (hash, tenant, times, seq).
const RECORD_OVERHEAD: usize = RECORD_HASH_LEN + 512;

/// One event ready to be stored.
pub struct Pending {
    pub event: Event,
    pub redactions: Vec<Redaction>,
    /// `serde_json::to_vec(&event)`, made by the caller so the committer does not serialize.
    pub event_json: Vec<u8>,
    /// The event's share of the ingest backlog, released once every consumer is done with it.
    pub charge: Charge,
}

impl Pending {
    /// Serializes the event; an event whose stored record would not fit in one WAL record is
    /// refused here, so it can never fail the commit group of others.
    pub fn new(event: Event, redactions: Vec<Redaction>, charge: Charge) -> Result<Self, String> {
        let event_json = serde_json::to_vec(&event)
            .map_err(|e| format!("the event cannot be stored as JSON: {e}"))?;
        let redaction_bytes: usize = redactions
            .iter()
            .map(|r| r.kind.len() + r.path.len() + 40)
            .sum();
        let stored = event_json.len() + redaction_bytes + RECORD_OVERHEAD;
        if stored > MAX_RECORD_BYTES {
            return Err(format!(
                "the event is {stored} bytes once stored as JSON, over the {MAX_RECORD_BYTES}-byte limit of one WAL record; shorten `result` or `arguments`"
            ));
        }
        Ok(Self {
            event,
            redactions,
            event_json,
            charge,
        })
    }
}

/// What happened to a batch: which events were stored now and which were already there.
#[derive(Debug, Default)]
pub struct Committed {
    /// Event ids, in batch order (new and duplicates alike).
    pub accepted: Vec<String>,
    pub duplicates: usize,
}

struct Batch {
    tenant: Arc<str>,
    events: Vec<Pending>,
    reply: oneshot::Sender<Result<Committed, WalError>>,
}

/// Durable records to replace in place (erasure markers).
struct Replace {
    records: BTreeMap<u64, Vec<u8>>,
    reply: oneshot::Sender<Result<u64, WalError>>,
}

/// What the committer thread is asked to do, in order.
enum Job {
    Batch(Batch),
    Replace(Replace),
}

/// The state the committer starts from, rebuilt at start-up.
pub struct ChainState {
    pub heads: Heads,
    pub dedup: Dedup,
}

/// The async side of the committer: what ingest talks to.
#[derive(Clone)]
pub struct CommitterHandle {
    tx: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
}

impl CommitterHandle {
    /// Stores the events durably (or finds them already stored) and answers once they are
    /// fsynced.
    pub async fn commit(
        &self,
        tenant: Arc<str>,
        events: Vec<Pending>,
    ) -> Result<Committed, WalError> {
        if events.is_empty() {
            return Ok(Committed::default());
        }
        let (reply, rx) = oneshot::channel();
        self.metrics.wal_queue.inc();
        let sent = self
            .tx
            .send(Job::Batch(Batch {
                tenant,
                events,
                reply,
            }))
            .await;
        if sent.is_err() {
            self.metrics.wal_queue.dec();
            return Err(WalError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(WalError::ShuttingDown))
    }

    /// Replaces durable records in place, between two groups (see [`Log::replace`]); returns
    /// how many changed. Blocks: call it from a thread that may block, never from async code.
    /// A failure stops the WAL until restart: the active segment may have been swapped.
    pub fn replace_blocking(&self, records: BTreeMap<u64, Vec<u8>>) -> Result<u64, WalError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(Job::Replace(Replace { records, reply }))
            .map_err(|_| WalError::ShuttingDown)?;
        rx.blocking_recv().unwrap_or(Err(WalError::ShuttingDown))
    }
}

/// Where committed events go, and what the committer watches while it runs.
pub struct Downstream {
    pub consumers: Arc<Consumers>,
    /// Called with every committed chunk for the live tail (must not block).
    pub tail: Arc<dyn Fn(&Chunk) + Send + Sync>,
    /// The index's durable position: keys below it leave the exact duplicate set.
    pub index_position: Arc<AtomicU64>,
    /// Bumped when retention drops data (the duplicate filter is rebuilt).
    pub retention_generation: Arc<AtomicU64>,
    /// Called with the chain heads each durable group moved (must not block): the signer of
    /// checkpoints (`chain/`) follows them.
    pub heads: Arc<dyn Fn(&HeadsMoved<'_>) + Send + Sync>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
}

/// The chain heads one durable group moved.
pub struct HeadsMoved<'a> {
    /// `(tenant, seq, hash)` of each tenant's last event in the group.
    pub heads: &'a [(Arc<str>, u64, [u8; 32])],
    /// Every event of the group lies below this WAL position.
    pub wal_next: u64,
    /// Events the group stored.
    pub events: usize,
}

/// Starts the committer thread. It ends when every handle is dropped, after answering every
/// queued batch; then the consumers' feeds end too.
pub fn start<L: Log>(
    log: L,
    state: ChainState,
    downstream: Downstream,
) -> std::io::Result<(CommitterHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel::<Job>(QUEUE_BATCHES);
    let handle = CommitterHandle {
        tx,
        metrics: downstream.metrics.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("wal-committer".into())
        .spawn(move || run(log, state, downstream, rx))?;
    Ok((handle, thread))
}

fn run<L: Log>(mut log: L, mut state: ChainState, down: Downstream, mut rx: mpsc::Receiver<Job>) {
    let metrics = &down.metrics;
    let mut broken: Option<String> = None;
    let mut removed_upto = 0u64;
    // A replacement taken while gathering a group runs right after that group.
    let mut deferred: Option<Replace> = None;
    loop {
        if let Some(r) = deferred.take() {
            replace(&mut log, r, &mut broken, &down);
        }
        let Some(job) = rx.blocking_recv() else {
            break;
        };
        let first = match job {
            Job::Batch(b) => b,
            Job::Replace(r) => {
                replace(&mut log, r, &mut broken, &down);
                continue;
            }
        };
        let mut group = vec![first];
        let mut n = group[0].events.len();
        while n < GROUP_EVENTS {
            match rx.try_recv() {
                Ok(Job::Batch(b)) => {
                    n += b.events.len();
                    group.push(b);
                }
                Ok(Job::Replace(r)) => {
                    deferred = Some(r);
                    break;
                }
                Err(_) => break,
            }
        }
        metrics.wal_queue.dec_by(group.len() as i64);
        if let Some(reason) = &broken {
            for b in group {
                let _ = b.reply.send(Err(WalError::Broken(reason.clone())));
            }
            continue;
        }
        state
            .dedup
            .prune(down.index_position.load(Ordering::Acquire));
        state
            .dedup
            .maintain(down.retention_generation.load(Ordering::Acquire));
        if state.dedup.recent_len() > RECENT_MAX {
            for b in group {
                let _ = b
                    .reply
                    .send(Err(WalError::IndexBehind(state.dedup.recent_len())));
            }
            continue;
        }
        let lookups_before = state.dedup.lookups;
        match commit_group(&mut log, &mut state, &mut group, metrics) {
            Ok(GroupDone {
                answers,
                fresh,
                moved,
            }) => {
                down.health.recover("wal");
                (down.heads)(&HeadsMoved {
                    heads: &moved,
                    wal_next: log.next_position(),
                    events: fresh.len(),
                });
                for (b, answer) in group.into_iter().zip(answers) {
                    let _ = b.reply.send(Ok(answer));
                }
                let mut fresh = fresh;
                while !fresh.is_empty() {
                    let rest = fresh.split_off(fresh.len().min(CHUNK));
                    (down.tail)(&fresh);
                    down.consumers.publish(&fresh);
                    fresh = rest;
                }
            }
            Err(e) => {
                let reason = e.to_string();
                let retry = e.is_resource() && log.rollback().is_ok();
                // Readiness says why before any client hears of the failure.
                down.health.fail("wal", reason.clone());
                for b in group {
                    let err = if retry {
                        WalError::Unavailable(reason.clone())
                    } else {
                        WalError::Broken(reason.clone())
                    };
                    let _ = b.reply.send(Err(err));
                }
                if retry {
                    tracing::error!(error = %reason, "wal write failed; rolled back, refusing batches until a write succeeds");
                } else {
                    tracing::error!(error = %reason, "wal write failed; refusing every batch until the collector is restarted");
                    broken = Some(reason);
                }
            }
        }
        metrics
            .dedup_index_lookups
            .inc_by(state.dedup.lookups - lookups_before);
        metrics
            .dedup_recent_keys
            .set(state.dedup.recent_len() as i64);
        metrics
            .dedup_filter_bytes
            .set(state.dedup.bloom_bytes() as i64);
        let slowest = down.consumers.slowest().min(log.next_position());
        if slowest > removed_upto && log.removable(slowest) {
            if let Err(e) = remove_segments(&mut log, &state.heads, slowest) {
                tracing::warn!(error = %e, "could not delete consumed wal segments");
            }
            removed_upto = slowest;
        }
    }
    if broken.is_none() {
        if let Err(e) = log.sync() {
            tracing::error!(error = %e, "final wal sync failed");
        }
    }
    down.consumers.close();
}

/// Replaces records in place for an erasure. Any failure stops the WAL: the active segment
/// may have been swapped under the open file, and a restart re-applies the erasure.
fn replace<L: Log>(log: &mut L, r: Replace, broken: &mut Option<String>, down: &Downstream) {
    let result = match broken {
        Some(reason) => Err(WalError::Broken(reason.clone())),
        None => log.replace(&r.records).map_err(|e| {
            let reason = format!("replacing erased records failed: {e}");
            tracing::error!(error = %reason, "wal: refusing every batch until the collector is restarted (the erasure is applied again at start)");
            down.health.fail("wal", reason.clone());
            *broken = Some(reason.clone());
            WalError::Broken(reason)
        }),
    };
    let _ = r.reply.send(result);
}

/// Deletes the segments below `position`, recording the current heads as the log's base (they
/// are at least as new as `position`, which is all a restart needs).
fn remove_segments<L: Log>(log: &mut L, heads: &Heads, position: u64) -> Result<(), String> {
    let base = Checkpoint {
        wal_next: position,
        heads: heads.to_checkpoint_heads(),
    };
    log.remove_before(position, &base)
        .map_err(|e| e.to_string())
}

/// What a durable group produced.
struct GroupDone {
    answers: Vec<Committed>,
    fresh: Vec<Arc<Entry>>,
    /// `(tenant, seq, hash)` of each tenant's new chain head.
    moved: Vec<(Arc<str>, u64, [u8; 32])>,
}

fn commit_group<L: Log>(
    log: &mut L,
    state: &mut ChainState,
    group: &mut [Batch],
    metrics: &Metrics,
) -> Result<GroupDone, LogError> {
    let now = OffsetDateTime::now_utc();
    let mut answers = Vec::with_capacity(group.len());
    let mut fresh = Vec::new();
    // Applied to the state only once the group is durable.
    let mut heads: HashMap<Arc<str>, (u64, [u8; 32])> = HashMap::new();
    let mut keys: Vec<(u64, u128)> = Vec::new();
    let mut in_group: HashSet<u128> = HashSet::new();
    for batch in group.iter_mut() {
        let mut answer = Committed {
            accepted: Vec::with_capacity(batch.events.len()),
            duplicates: 0,
        };
        let records = RecordBuilder::new(&batch.tenant, now).map_err(LogError::Encode)?;
        for p in batch.events.drain(..) {
            let key = id_key(&batch.tenant, &p.event.event_id);
            if in_group.contains(&key)
                || state.dedup.contains(&batch.tenant, &p.event.event_id, key)
            {
                answer.accepted.push(p.event.event_id);
                answer.duplicates += 1;
                continue;
            }
            in_group.insert(key);
            let head = heads.entry(batch.tenant.clone()).or_insert_with(|| {
                state
                    .heads
                    .0
                    .get(&batch.tenant)
                    .copied()
                    .unwrap_or((0, GENESIS_HASH))
            });
            let seq = head.0 + 1;
            let mut record = records
                .record(&p.event_json, seq, &p.redactions)
                .map_err(LogError::Encode)?;
            let hash = chain_hash(&head.1, &record[RECORD_HASH_LEN..]);
            record[..RECORD_HASH_LEN].copy_from_slice(&hash);
            let pos = log.append(&record)?;
            *head = (seq, hash);
            keys.push((pos, key));
            answer.accepted.push(p.event.event_id.clone());
            let stored = StoredEvent {
                event: p.event,
                tenant: batch.tenant.to_string(),
                received_at: now,
                seq,
                hash: hex_string(&hash),
                redactions: p.redactions,
            };
            fresh.push(Arc::new(Entry {
                pos,
                event: stored,
                record,
                _charge: p.charge,
            }));
        }
        answers.push(answer);
    }
    let started = Instant::now();
    log.sync()?;
    metrics.wal_fsync.observe(started.elapsed().as_secs_f64());
    let mut moved = Vec::with_capacity(heads.len());
    for (tenant, head) in heads {
        moved.push((tenant.clone(), head.0, head.1));
        state.heads.0.insert(tenant, head);
    }
    for (pos, key) in keys {
        state.dedup.insert(pos, key);
    }
    metrics.ingested.inc_by(fresh.len() as u64);
    metrics
        .duplicates
        .inc_by(answers.iter().map(|a| a.duplicates as u64).sum());
    metrics.index_lag_events.inc_by(fresh.len() as i64);
    Ok(GroupDone {
        answers,
        fresh,
        moved,
    })
}

/// Lower-case hex of a hash (faster than `hex::encode`, which goes char by char).
fn hex_string(hash: &[u8; 32]) -> String {
    let mut buf = [0u8; 64];
    // 64 bytes is exactly the room 32 bytes need.
    let _ = hex::encode_to_slice(hash, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::consumer::Received;
    use crate::wal::dedup::IdLookup;
    use crate::wal::log::{FileLog, FileLogReader};
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    /// A log whose next sync fails with ENOSPC when asked to (a full disk).
    struct FullDisk {
        inner: FileLog,
        fail: Arc<AtomicBool>,
    }

    impl Log for FullDisk {
        type Reader = FileLogReader;
        fn append(&mut self, payload: &[u8]) -> Result<u64, LogError> {
            self.inner.append(payload)
        }
        fn sync(&mut self) -> Result<(), LogError> {
            if self.fail.swap(false, Ordering::AcqRel) {
                return Err(LogError::Io {
                    path: "wal".into(),
                    source: std::io::Error::from_raw_os_error(28),
                });
            }
            self.inner.sync()
        }
        fn rollback(&mut self) -> Result<(), LogError> {
            self.inner.rollback()
        }
        fn next_position(&self) -> u64 {
            self.inner.next_position()
        }
        fn skip_to(&mut self, position: u64) -> Result<(), LogError> {
            self.inner.skip_to(position)
        }
        fn removable(&self, position: u64) -> bool {
            self.inner.removable(position)
        }
        fn remove_before(&mut self, position: u64, base: &Checkpoint) -> Result<(), LogError> {
            self.inner.remove_before(position, base)
        }
        fn base(&self) -> Result<Checkpoint, LogError> {
            self.inner.base()
        }
        fn reader(&self) -> FileLogReader {
            self.inner.reader()
        }
        fn replace(
            &mut self,
            records: &std::collections::BTreeMap<u64, Vec<u8>>,
        ) -> Result<u64, LogError> {
            self.inner.replace(records)
        }
    }

    struct Nothing;
    impl IdLookup for Nothing {
        fn contains(&self, _: &str, _: &str) -> Result<bool, String> {
            Ok(false)
        }
        fn for_each_key(&self, _: &mut dyn FnMut(u128)) -> Result<(), String> {
            Ok(())
        }
        fn stored(&self) -> u64 {
            0
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_dedup_sequence_chain_and_survive_a_full_disk() {
        let dir = tempfile::tempdir().unwrap();
        let (inner, _) = FileLog::open(dir.path(), 1 << 20, &mut |_, _| {}).unwrap();
        let fail = Arc::new(AtomicBool::new(false));
        let log = FullDisk {
            inner,
            fail: fail.clone(),
        };
        let consumers = Arc::new(Consumers::default());
        let mut feed = consumers.register("test", 0, log.reader());
        let metrics = Metrics::new();
        let health = Health::new(metrics.clone());
        let state = ChainState {
            heads: Heads::default(),
            dedup: Dedup::build(Arc::new(Nothing), 0).unwrap(),
        };
        let (handle, thread) = start(
            log,
            state,
            Downstream {
                consumers,
                tail: Arc::new(|_: &Chunk| {}),
                index_position: Arc::new(AtomicU64::new(0)),
                retention_generation: Arc::new(AtomicU64::new(0)),
                heads: Arc::new(|_: &HeadsMoved<'_>| {}),
                health: health.clone(),
                metrics,
            },
        )
        .unwrap();
        let tenant: Arc<str> = Arc::from("t1");
        let mk = |id: &str| {
            Pending::new(Event::new(id, "tools/call", "x"), vec![], Charge::default()).unwrap()
        };
        let a = handle
            .commit(tenant.clone(), vec![mk("a"), mk("b"), mk("a")])
            .await
            .unwrap();
        assert_eq!(a.accepted, vec!["a", "b", "a"]);
        assert_eq!(a.duplicates, 1);

        // A full disk: the batch fails, nothing of it is kept, readiness says why.
        fail.store(true, Ordering::Release);
        let err = handle
            .commit(tenant.clone(), vec![mk("c"), mk("d")])
            .await
            .unwrap_err();
        assert!(matches!(err, WalError::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("ENOSPC"), "{err}");
        assert!(health.is_failing("wal"));
        // The retry with the same ids succeeds: they were not taken as duplicates.
        let b = handle
            .commit(tenant.clone(), vec![mk("b"), mk("c"), mk("d")])
            .await
            .unwrap();
        assert_eq!(b.duplicates, 1);
        assert!(!health.is_failing("wal"));
        let other = handle.commit(Arc::from("t2"), vec![mk("a")]).await.unwrap();
        assert_eq!(other.duplicates, 0, "dedup is per tenant");
        drop(handle);
        thread.join().unwrap();

        let mut all = Vec::new();
        loop {
            match feed.recv(Duration::from_millis(50)).unwrap() {
                Received::Events(c) => all.extend(c),
                Received::Idle => {}
                Received::Closed => break,
            }
        }
        let t1: Vec<_> = all.iter().filter(|e| e.event.tenant == "t1").collect();
        assert_eq!(
            t1.iter().map(|e| e.event.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4],
            "no sequence number was used by the failed batch"
        );
        assert_eq!(
            all.iter().map(|e| e.pos).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4],
            "no position was used by the failed batch"
        );
        let mut prev = GENESIS_HASH;
        for e in &t1 {
            let h = chain_hash(&prev, &e.record[RECORD_HASH_LEN..]);
            assert_eq!(hex::encode(h), e.event.hash);
            assert_eq!(
                e.record,
                e.event.record().unwrap(),
                "the record is the event's own"
            );
            prev = h;
        }
    }

    #[test]
    fn an_event_too_large_for_a_record_is_refused_before_the_committer() {
        let mut e = Event::new("big", "tools/call", "x");
        e.result = "\u{1}".repeat(MAX_RECORD_BYTES / 5);
        let err = Pending::new(e, vec![], Charge::default()).err().unwrap();
        assert!(err.contains("WAL record"), "{err}");
    }
}
