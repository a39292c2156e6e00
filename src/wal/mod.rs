//! The write-ahead log stage: turns scrubbed events into durable, sequenced, hash-chained
//! stored events, and acknowledges a batch only after its events are fsynced.
//!
//! One committer thread owns the [`Log`], the chain heads and the duplicate filter, so the
//! order of positions, per-tenant sequence numbers and the dedup decision are decided in one
//! place without locks. Batches from every connection queue up for it; it takes all that are
//! waiting, appends them, fsyncs **once** for the whole group (group commit), answers every
//! batch, and then hands the new events on to the indexer and the live tail. It does not scrub
//! (that happened before) and does not index.
//!
//! ## Record format
//! Each log record is `hash: [u8; 32] | canonical JSON of the StoredEvent with "hash":""`,
//! so the chain hash is computed over exactly the bytes on disk and `verify` can recompute it.
//!
//! ## Duplicates
//! A re-sent event (same tenant and `event_id`) is acknowledged again and not stored twice.
//! The filter holds [`crate::event::id_key`] of every retained event; it is rebuilt on start
//! from the index and the replayed WAL tail, so it also holds across restarts.

mod log;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

pub use log::{FileLog, Log, LogError, Recovery};

use crate::backlog::Charge;
use crate::event::{
    chain_hash, day_of, id_key, Event, RecordBuilder, Redaction, StoredEvent, GENESIS_HASH,
    RECORD_HASH_LEN,
};
use crate::index::{ChainHead, Checkpoint};
use crate::metrics::Metrics;

/// Events per chunk handed to the indexer; the indexer channel holds [`INDEX_QUEUE_CHUNKS`].
pub const INDEX_CHUNK: usize = 1024;
/// Chunks that may wait for the indexer (at most ~64k events, ~100 MB).
pub const INDEX_QUEUE_CHUNKS: usize = 64;

/// Batches that may wait for the committer before senders wait too (backpressure).
const QUEUE_BATCHES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("wal record at position {pos} is unreadable: {reason}")]
    Record { pos: u64, reason: String },
    #[error("the write-ahead log failed earlier ({0}); nothing more is accepted until the collector is restarted")]
    Broken(String),
    #[error("the collector is shutting down; retry with the same event ids")]
    ShuttingDown,
}

/// One event ready to be stored.
pub struct Pending {
    pub event: Event,
    pub redactions: Vec<Redaction>,
    /// `serde_json::to_vec(&event)`, made by the caller so the committer does not serialize.
    pub event_json: Vec<u8>,
    /// The event's share of the ingest backlog, released once it is indexed.
    pub charge: Charge,
}

impl Pending {
    pub fn new(event: Event, redactions: Vec<Redaction>, charge: Charge) -> Self {
        let event_json = serde_json::to_vec(&event).unwrap_or_default();
        Self {
            event,
            redactions,
            event_json,
            charge,
        }
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

/// A committed event as handed to the indexer: its WAL position, the event, and its record
/// (which the index keeps as the event's source, so it does not serialize it again).
pub struct Positioned {
    pub pos: u64,
    pub event: Arc<StoredEvent>,
    pub record: Vec<u8>,
    /// The event's share of the ingest backlog ([`crate::backlog`]).
    pub charge: Charge,
}

/// Decodes a WAL record into the stored event.
pub fn decode_record(pos: u64, bytes: &[u8]) -> Result<StoredEvent, WalError> {
    StoredEvent::from_record(bytes).map_err(|reason| WalError::Record { pos, reason })
}

/// The state the committer starts from, rebuilt by recovery.
pub struct ChainState {
    pub heads: HashMap<Arc<str>, (u64, [u8; 32])>,
    /// id_key → day of the event (days let retention shrink the filter).
    pub seen: HashMap<u128, i32>,
}

impl ChainState {
    pub fn from_checkpoint(cp: &Checkpoint) -> Self {
        let mut heads = HashMap::new();
        for (tenant, head) in &cp.heads {
            let mut h = [0u8; 32];
            if let Ok(bytes) = hex::decode(&head.hash) {
                if bytes.len() == 32 {
                    h.copy_from_slice(&bytes);
                }
            }
            heads.insert(Arc::from(tenant.as_str()), (head.seq, h));
        }
        Self {
            heads,
            seen: HashMap::new(),
        }
    }

    /// Applies a replayed or indexed event to the state.
    pub fn observe(&mut self, ev: &StoredEvent) {
        let mut h = [0u8; 32];
        if let Ok(bytes) = hex::decode(&ev.hash) {
            if bytes.len() == 32 {
                h.copy_from_slice(&bytes);
            }
        }
        let entry = self
            .heads
            .entry(Arc::from(ev.tenant.as_str()))
            .or_insert((0, GENESIS_HASH));
        if ev.seq > entry.0 {
            *entry = (ev.seq, h);
        }
        self.seen
            .insert(id_key(&ev.tenant, &ev.event.event_id), ev.day());
    }

    pub fn checkpoint_heads(&self) -> std::collections::BTreeMap<String, ChainHead> {
        self.heads
            .iter()
            .map(|(t, (seq, h))| {
                (
                    t.to_string(),
                    ChainHead {
                        seq: *seq,
                        hash: hex::encode(h),
                    },
                )
            })
            .collect()
    }
}

/// The async side of the committer: what ingest talks to.
#[derive(Clone)]
pub struct CommitterHandle {
    tx: mpsc::Sender<Batch>,
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
            .send(Batch {
                tenant,
                events,
                reply,
            })
            .await;
        if sent.is_err() {
            self.metrics.wal_queue.dec();
            return Err(WalError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(WalError::ShuttingDown))
    }
}

/// Where committed events go after their batch is acknowledged.
pub struct Downstream {
    /// The indexer (bounded: a slow indexer slows acks down instead of growing memory).
    pub index: std::sync::mpsc::SyncSender<Vec<Positioned>>,
    /// The live tail (lossy for slow readers).
    pub tail: tokio::sync::broadcast::Sender<Arc<StoredEvent>>,
}

/// Starts the committer thread. It ends when every handle is dropped, after answering every
/// queued batch.
pub fn start<L: Log>(
    mut log: L,
    mut state: ChainState,
    downstream: Downstream,
    index_covered: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
) -> (CommitterHandle, std::thread::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Batch>(QUEUE_BATCHES);
    let handle = CommitterHandle {
        tx,
        metrics: metrics.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("wal-committer".into())
        .spawn(move || {
            let broken = AtomicBool::new(false);
            let mut broken_reason = String::new();
            let mut removed_upto = 0u64;
            while let Some(first) = rx.blocking_recv() {
                let mut group = vec![first];
                let mut n = group[0].events.len();
                while n < 50_000 {
                    match rx.try_recv() {
                        Ok(b) => {
                            n += b.events.len();
                            group.push(b);
                        }
                        Err(_) => break,
                    }
                }
                metrics.wal_queue.dec_by(group.len() as i64);
                if broken.load(Ordering::Relaxed) {
                    for b in group {
                        let _ = b.reply.send(Err(WalError::Broken(broken_reason.clone())));
                    }
                    continue;
                }
                match commit_group(&mut log, &mut state, &mut group, &metrics) {
                    Ok((answers, fresh)) => {
                        for (b, answer) in group.into_iter().zip(answers) {
                            let _ = b.reply.send(Ok(answer));
                        }
                        for p in &fresh {
                            let _ = downstream.tail.send(p.event.clone());
                        }
                        // Bounded in events, not groups (a group can hold 50,000 events): a
                        // lagging indexer slows acks down instead of growing memory.
                        let mut fresh = fresh;
                        while !fresh.is_empty() {
                            let rest = fresh.split_off(fresh.len().min(INDEX_CHUNK));
                            metrics.index_queue.inc();
                            if downstream.index.send(fresh).is_err() {
                                tracing::error!("indexer stopped; events stay in the WAL and are indexed on restart");
                            }
                            fresh = rest;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "wal write failed; refusing further writes until restart");
                        broken_reason = e.to_string();
                        broken.store(true, Ordering::Relaxed);
                        for b in group {
                            let _ = b.reply.send(Err(WalError::Broken(broken_reason.clone())));
                        }
                    }
                }
                let covered = index_covered.load(Ordering::Acquire);
                if covered > removed_upto {
                    if let Err(e) = log.remove_before(covered) {
                        tracing::warn!(error = %e, "could not delete indexed wal segments");
                    }
                    removed_upto = covered;
                }
            }
            if let Err(e) = log.sync() {
                tracing::error!(error = %e, "final wal sync failed");
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the wal committer thread: {e}"));
    (handle, thread)
}

fn commit_group<L: Log>(
    log: &mut L,
    state: &mut ChainState,
    group: &mut [Batch],
    metrics: &Metrics,
) -> Result<(Vec<Committed>, Vec<Positioned>), WalError> {
    let now = OffsetDateTime::now_utc();
    let mut answers = Vec::with_capacity(group.len());
    let mut fresh = Vec::new();
    let mut in_group: HashSet<u128> = HashSet::new();
    for batch in group.iter_mut() {
        let mut answer = Committed {
            accepted: Vec::with_capacity(batch.events.len()),
            duplicates: 0,
        };
        let records = RecordBuilder::new(&batch.tenant, now);
        for p in batch.events.drain(..) {
            let key = id_key(&batch.tenant, &p.event.event_id);
            if state.seen.contains_key(&key) || !in_group.insert(key) {
                answer.accepted.push(p.event.event_id);
                answer.duplicates += 1;
                continue;
            }
            let head = state
                .heads
                .entry(batch.tenant.clone())
                .or_insert((0, GENESIS_HASH));
            let seq = head.0 + 1;
            let mut record = records.record(&p.event_json, seq, &p.redactions);
            let hash = chain_hash(&head.1, &record[RECORD_HASH_LEN..]);
            record[..RECORD_HASH_LEN].copy_from_slice(&hash);
            let pos = log.append(&record)?;
            *head = (seq, hash);
            state.seen.insert(key, day_of(p.event.timestamp));
            answer.accepted.push(p.event.event_id.clone());
            let stored = StoredEvent {
                event: p.event,
                tenant: batch.tenant.to_string(),
                received_at: now,
                seq,
                hash: hex_string(&hash),
                redactions: p.redactions,
            };
            fresh.push(Positioned {
                pos,
                event: Arc::new(stored),
                record,
                charge: p.charge,
            });
        }
        answers.push(answer);
    }
    let started = Instant::now();
    log.sync()?;
    metrics.wal_fsync.observe(started.elapsed().as_secs_f64());
    metrics.ingested.inc_by(fresh.len() as u64);
    metrics
        .duplicates
        .inc_by(answers.iter().map(|a| a.duplicates as u64).sum());
    metrics.index_lag_events.inc_by(fresh.len() as i64);
    Ok((answers, fresh))
}

/// Lower-case hex of a hash (faster than `hex::encode`, which goes char by char).
fn hex_string(hash: &[u8; 32]) -> String {
    let mut buf = [0u8; 64];
    // 64 bytes is exactly the room 32 bytes need.
    let _ = hex::encode_to_slice(hash, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Replays the log from `from`, calling `f` with each stored event in order.
pub fn replay<L: Log>(
    log: &L,
    from: u64,
    f: &mut dyn FnMut(u64, StoredEvent),
) -> Result<u64, WalError> {
    let mut bad = None;
    let mut n = 0u64;
    log.replay(from, &mut |pos, bytes| {
        if bad.is_some() {
            return;
        }
        match decode_record(pos, bytes) {
            Ok(ev) => {
                n += 1;
                f(pos, ev)
            }
            Err(e) => bad = Some(e),
        }
    })?;
    match bad {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_dedups_sequences_and_chains() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = FileLog::open(dir.path(), 1 << 20).unwrap();
        let (itx, irx) = std::sync::mpsc::sync_channel(100);
        let (ttx, _) = tokio::sync::broadcast::channel(16);
        let state = ChainState {
            heads: HashMap::new(),
            seen: HashMap::new(),
        };
        let (handle, thread) = start(
            log,
            state,
            Downstream {
                index: itx,
                tail: ttx,
            },
            Arc::new(AtomicU64::new(0)),
            Metrics::new(),
        );
        let tenant: Arc<str> = Arc::from("t1");
        let mk =
            |id: &str| Pending::new(Event::new(id, "tools/call", "x"), vec![], Charge::default());
        let a = handle
            .commit(tenant.clone(), vec![mk("a"), mk("b"), mk("a")])
            .await
            .unwrap();
        assert_eq!(a.accepted, vec!["a", "b", "a"]);
        assert_eq!(a.duplicates, 1);
        let b = handle
            .commit(tenant.clone(), vec![mk("b"), mk("c")])
            .await
            .unwrap();
        assert_eq!(b.duplicates, 1);
        let other = handle.commit(Arc::from("t2"), vec![mk("a")]).await.unwrap();
        assert_eq!(other.duplicates, 0, "dedup is per tenant");
        drop(handle);
        thread.join().unwrap();
        let mut all: Vec<Positioned> = Vec::new();
        while let Ok(chunk) = irx.try_recv() {
            all.extend(chunk);
        }
        let t1: Vec<_> = all
            .iter()
            .map(|p| &p.event)
            .filter(|e| e.tenant == "t1")
            .collect();
        assert_eq!(t1.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        let mut prev = GENESIS_HASH;
        for e in &t1 {
            assert_eq!(hex::encode(e.chain_hash(&prev)), e.hash);
            prev = e.chain_hash(&prev);
        }
        // The record handed to the indexer is the event's own.
        for p in &all {
            assert_eq!(p.record, p.event.record());
        }
        // And the records on disk decode to the same events.
        let (log, _) = FileLog::open(dir.path(), 1 << 20).unwrap();
        let mut replayed = Vec::new();
        replay(&log, 0, &mut |p, e| replayed.push((p, e))).unwrap();
        assert_eq!(replayed.len(), 4);
        for ((p, e), q) in replayed.iter().zip(&all) {
            assert_eq!(*p, q.pos);
            assert_eq!(e, q.event.as_ref());
        }
    }
}
