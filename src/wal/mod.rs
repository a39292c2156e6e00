//! The write-ahead log stage: turns scrubbed events into durable, sequenced, hash-chained
//! stored events, acknowledges a batch only after its events are fsynced, and feeds every
//! durable consumer (the index, later rules and alerts) from it.
//!
//! It knows nothing downstream: consumers register here and say how far they have come.
//!
//! - `segment`: the on-disk format of one segment, and the strict scanner (torn tail or damage);
//! - `log`: [`FileLog`], the segmented record log (positions, fsync, rollback, readers);
//! - `committer`: the one thread that appends (group commit, chain heads, duplicates);
//! - `dedup`: the bounded duplicate filter;
//! - `consumer`: durable consumer positions and their [`Feed`]s;
//! - `checkpoint`: chain heads and checkpoints, and the log's base file;
//! - `marker`: the record an erased event becomes (see `chain/erase.rs`);
//! - `salvage`: `mcp-audit recover`, the explicit way out of a damaged log.
//!
//! ## Record format
//! Each log record is `hash: [u8; 32] | canonical JSON of the StoredEvent with "hash":""`,
//! so the chain hash is computed over exactly the bytes on disk and `verify` can recompute it.
//!
//! ## Start-up
//! [`open`] scans every segment kept (strictly: only a torn tail of the newest segment is cut),
//! and returns the chain heads as of its end and the id keys the index may not hold yet. The
//! wiring then merges the consumers' checkpoints and, if the log ends before a consumer's
//! position (its newest records were lost), skips ahead so a position is never reused.

mod checkpoint;
mod committer;
mod consumer;
mod dedup;
mod log;
pub mod marker;
pub mod salvage;
mod segment;

use std::borrow::Cow;
use std::path::Path;

pub use checkpoint::{read as read_checkpoint, ChainHead, Checkpoint, Heads};
pub use committer::{
    start, ChainState, Committed, CommitterHandle, Downstream, HeadsMoved, Pending, CHUNK,
};
pub use consumer::{Chunk, Consumers, Entry, Feed, Received};
pub use dedup::{Dedup, IdLookup};
pub use log::{
    inspect, FileLog, FileLogReader, Inspection, Log, LogError, LogReader, Recovery,
    MAX_RECORD_BYTES,
};
pub use segment::{BadSpot, SegmentScan};

use crate::error::ErrorKind;
use crate::event::{id_key, StoredEvent, RECORD_HASH_LEN};

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("wal record at position {pos} is unreadable: {reason}")]
    Record { pos: u64, reason: String },
    #[error("the write-ahead log failed ({0}) and accepts nothing until the collector is restarted; see /readyz")]
    Broken(String),
    #[error("the write-ahead log cannot write right now ({0}); retry with the same event ids")]
    Unavailable(String),
    #[error("the index is {0} events behind (failing or overloaded); retry with the same event ids once /readyz says ready")]
    IndexBehind(usize),
    #[error("the collector is shutting down; retry with the same event ids")]
    ShuttingDown,
}

impl WalError {
    /// What a client can do about it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            WalError::Broken(_)
            | WalError::Unavailable(_)
            | WalError::IndexBehind(_)
            | WalError::ShuttingDown => ErrorKind::Unavailable,
            WalError::Log(_) | WalError::Record { .. } => ErrorKind::Internal,
        }
    }
}

/// Decodes a WAL record into the stored event.
pub fn decode_record(pos: u64, bytes: &[u8]) -> Result<StoredEvent, WalError> {
    StoredEvent::from_record(bytes).map_err(|reason| WalError::Record { pos, reason })
}

/// The fields of a record the start-up scan needs, read without building the event.
pub struct RecordHead<'a> {
    pub tenant: Cow<'a, str>,
    pub event_id: Cow<'a, str>,
    pub seq: u64,
    pub hash: [u8; 32],
}

impl<'a> RecordHead<'a> {
    pub fn decode(record: &'a [u8]) -> Result<Self, String> {
        #[derive(serde::Deserialize)]
        struct Head<'a> {
            #[serde(borrow)]
            tenant: Cow<'a, str>,
            /// Absent from an erasure marker.
            #[serde(borrow, default)]
            event_id: Cow<'a, str>,
            seq: u64,
        }
        let (hash, json) = record
            .split_at_checked(RECORD_HASH_LEN)
            .ok_or_else(|| format!("{} bytes, shorter than a record's hash", record.len()))?;
        let head: Head<'a> = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let mut h = [0u8; 32];
        h.copy_from_slice(hash);
        Ok(RecordHead {
            tenant: head.tenant,
            event_id: head.event_id,
            seq: head.seq,
            hash: h,
        })
    }
}

/// The log as found at start-up.
pub struct Opened {
    pub log: FileLog,
    pub recovery: Recovery,
    /// Chain heads as of the end of the log: its base, then every record kept.
    pub heads: Heads,
    /// `(position, id key)` of every record at or after the `keys_from` given to [`open`].
    pub keys: Vec<(u64, u128)>,
}

/// Opens the log in `dir` strictly (see the module doc).
pub fn open(dir: &Path, segment_bytes: u64, keys_from: u64) -> Result<Opened, WalError> {
    let mut heads = Heads::default();
    let mut keys = Vec::new();
    let mut bad = None;
    let (log, recovery) = FileLog::open(dir, segment_bytes, &mut |pos, record| {
        if bad.is_some() {
            return;
        }
        match RecordHead::decode(record) {
            Ok(h) => {
                heads.observe(&h.tenant, h.seq, h.hash);
                // An erasure marker has no id to keep out of the WAL twice.
                if pos >= keys_from && !h.event_id.is_empty() {
                    keys.push((pos, id_key(&h.tenant, &h.event_id)));
                }
            }
            Err(reason) => bad = Some(WalError::Record { pos, reason }),
        }
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    heads
        .merge(&log.base()?.heads, "the wal's base.json")
        .map_err(|reason| WalError::Record { pos: 0, reason })?;
    Ok(Opened {
        log,
        recovery,
        heads,
        keys,
    })
}
