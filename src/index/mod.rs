//! The search index: tantivy, one index per UTC day of the event timestamp.
//!
//! This is the only module that imports tantivy. It consumes stored events in WAL order
//! ([`Indexes::add`]), commits on the caller's timer ([`Indexes::commit`]) and answers search,
//! histogram, terms and get-by-id queries for one tenant at a time. It does not decide what is
//! durable (the WAL does) nor what is a duplicate (the WAL committer does).
//!
//! ## On disk
//! ```text
//! <dir>/<YYYY-MM-DD>/          one tantivy index per UTC day (retention drops whole folders)
//! <dir>/checkpoint.json        { "wal_next": P, "heads": { tenant: { "seq", "hash" } } }
//! ```
//! Every tantivy commit carries the payload `{"wal_next": P}`: the index holds every event of
//! its day whose WAL position is `< P`. `checkpoint.json` is written (tmp + fsync + rename)
//! only after every dirty day index has committed with the same `P`, so on start the WAL is
//! replayed from the checkpoint and [`Indexes::add`] skips positions a day index already holds:
//! a crash between two day commits neither loses nor duplicates an event.
//!
//! TODO(index helper): implementation.

// Not wired into `Indexes` yet.
#[allow(dead_code)]
mod cursor;
#[allow(dead_code)]
mod query;
#[allow(dead_code)]
mod schema;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::StoredEvent;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The query text could not be parsed; `reason` says where and what to write instead.
    #[error("invalid query: {reason}")]
    Query { reason: String },
    /// A request parameter is invalid (field name for terms, interval, cursor...).
    #[error("invalid `{param}`: {reason}")]
    Param { param: &'static str, reason: String },
    #[error("index i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("index: {0}")]
    Tantivy(String),
}

pub type Result<T> = std::result::Result<T, IndexError>;

/// Checked index settings.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    pub dir: PathBuf,
    /// Days kept, counted back from today (UTC); older day indexes are deleted.
    pub retention_days: u32,
    /// Memory budget of one day's tantivy writer.
    pub writer_memory_bytes: usize,
    /// Indexing threads per day writer.
    pub writer_threads: usize,
}

/// The head of one tenant's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    /// Hex SHA-256.
    pub hash: String,
}

/// What the index durably covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every event with a WAL position below this is durably indexed.
    pub wal_next: u64,
    /// Chain heads as of `wal_next` (the last event below it, per tenant).
    pub heads: BTreeMap<String, ChainHead>,
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub tenant: String,
    /// Query text (see the query language in `query.rs`); empty matches everything.
    pub query: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub limit: usize,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SearchResult {
    /// Number of events matching the query in the range (all pages).
    pub total: u64,
    /// Newest first (timestamp, then WAL position, descending).
    pub hits: Vec<StoredEvent>,
    /// Present when more hits follow.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HistogramRequest {
    pub tenant: String,
    pub query: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Start of the bucket.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub count: u64,
}

#[derive(Debug, Clone)]
pub struct TermsRequest {
    pub tenant: String,
    /// One of [`TERM_FIELDS`].
    pub field: String,
    pub query: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermCount {
    pub value: String,
    pub count: u64,
}

/// Fields `terms` can aggregate on.
pub const TERM_FIELDS: &[&str] = &[
    "source", "method", "server", "tool", "user", "client", "conversation_id", "session_id",
    "outcome", "consent", "transport", "remote_addr", "redaction",
];

/// All day indexes of one collector.
pub struct Indexes {}

impl Indexes {
    /// Opens (or creates) every day index under `cfg.dir` and reads the checkpoint.
    pub fn open(_cfg: IndexConfig) -> Result<Self> {
        todo!()
    }

    /// Where WAL replay must start, and the chain heads at that point.
    pub fn checkpoint(&self) -> Checkpoint {
        todo!()
    }

    /// Adds one stored event at WAL position `pos`. Positions arrive in increasing order.
    /// Skips the event when its day index already holds `pos` (after a crash); events whose
    /// day is beyond retention are skipped.
    pub fn add(&self, _pos: u64, _event: &StoredEvent) -> Result<()> {
        todo!()
    }

    /// Commits every day index with pending documents with payload `wal_next`, then writes
    /// the checkpoint and makes the new documents visible to searches.
    pub fn commit(&self, _wal_next: u64) -> Result<()> {
        todo!()
    }

    pub fn search(&self, _req: &SearchRequest) -> Result<SearchResult> {
        todo!()
    }

    pub fn histogram(&self, _req: &HistogramRequest) -> Result<Vec<Bucket>> {
        todo!()
    }

    pub fn terms(&self, _req: &TermsRequest) -> Result<Vec<TermCount>> {
        todo!()
    }

    /// The stored event with this id, in any retained day.
    pub fn get(&self, _tenant: &str, _event_id: &str) -> Result<Option<StoredEvent>> {
        todo!()
    }

    /// Calls `f(id_key, day)` for every committed event, where `id_key` is
    /// [`crate::event::id_key`] of its tenant and event id (stored as two u64 fast fields so
    /// this is a column scan): the committer rebuilds its duplicate filter from this on start.
    pub fn for_each_id(&self, _f: &mut dyn FnMut(u128, i32)) -> Result<()> {
        todo!()
    }

    /// Deletes day indexes older than `retention_days` before `now`; returns the days dropped.
    pub fn apply_retention(&self, _now: OffsetDateTime) -> Result<Vec<i32>> {
        todo!()
    }

    /// Number of committed documents over all days (for metrics and tests).
    pub fn num_docs(&self) -> u64 {
        todo!()
    }
}
