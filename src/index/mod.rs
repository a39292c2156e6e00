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
//! ## Threads
//! [`Indexes::add`] and [`Indexes::commit`] are called from one indexing thread; searches from
//! any number of threads. A search takes a snapshot (one tantivy `Searcher` per day in its
//! range) under a short read lock and runs without any lock, so it never waits for a commit;
//! a commit reloads each day's reader before it returns, so a search started after `commit()`
//! sees everything committed.
//!
//! ## Submodules
//! - `schema`: the fields of a day index, from the field registry.
//! - `doc`: the document of an event, borrowed from it.
//! - `query`: compiles the query language's AST ([`crate::query`]) into tantivy queries.
//! - `search`: search, histogram, terms and get on a snapshot, with fast-field collectors.
//! - `cursor`: the opaque paging cursor.
//! - `day`: one day's folder, reader, writer and payload; the checkpoint file.
//! - `indexer`: the thread that consumes the WAL into the index, and recovers from failures.
//! - `erase`: a user's events found and deleted (erasure), on the indexing thread.
//! - `upgrade`: an index of an older on-disk format rewritten once, at start.

mod aggcache;
mod cursor;
mod day;
mod doc;
#[cfg(test)]
mod equivalence;
mod erase;
pub mod findings;
pub mod indexer;
pub mod layout;
mod query;
mod schema;
mod search;
#[cfg(test)]
mod tests;
mod upgrade;

use std::collections::{btree_map, BTreeMap};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;

use crate::event::{day_of, StoredEvent};
use crate::wal::{ChainHead, Checkpoint, Entry};
use day::{Day, DayWriter};
use doc::EventDoc;
pub use erase::{Candidate, EraseFilter, EraseWait};
use schema::Fields;
use search::Snapshot;

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
    /// The request ran past its deadline.
    #[error("the search took longer than {limit_ms} ms")]
    Timeout { limit_ms: u64 },
}

impl From<tantivy::TantivyError> for IndexError {
    fn from(e: tantivy::TantivyError) -> Self {
        IndexError::Tantivy(e.to_string())
    }
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
    /// Merge policy and document store.
    pub layout: layout::Layout,
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub tenant: String,
    /// Query text (the language of [`crate::query`]); empty matches everything.
    pub query: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub limit: usize,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Only these events (e.g. the ones a rule flagged); `None` for no such limit.
    pub event_ids: Option<Vec<String>>,
    /// Count matches exactly up to this many, then report a lower bound; `None` counts all.
    pub track_total: Option<u64>,
    /// Give up with [`IndexError::Timeout`] past this instant (checked between segments), and
    /// the budget it came from (for the message).
    pub deadline: Option<(std::time::Instant, u64)>,
}

/// Default of [`SearchRequest::track_total`].
pub const TRACK_TOTAL: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct SearchResult {
    /// Number of events matching the query in the range (all pages): exact when
    /// `total_exact`, else a lower bound (the `track_total` threshold).
    pub total: u64,
    pub total_exact: bool,
    /// Newest first (timestamp, then WAL position, descending).
    pub hits: Vec<StoredEvent>,
    /// Present when more hits follow.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
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

#[derive(Debug, Clone, PartialEq)]
pub struct TermsRequest {
    pub tenant: String,
    /// An aggregatable field of the registry ([`crate::event::fields::aggregatable`]).
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

/// All day indexes of one collector.
pub struct Indexes {
    cfg: IndexConfig,
    /// Opened by [`Indexes::open_read_only`].
    read_only: bool,
    fields: Arc<Fields>,
    /// Every open day index, searchable. Searches clone what they need and let go at once.
    days: RwLock<BTreeMap<i32, Arc<Day>>>,
    /// The indexing thread's state; searches never take this lock.
    ingest: Mutex<Ingest>,
    /// The last checkpoint written (or read at open).
    checkpoint: RwLock<Checkpoint>,
    /// Histogram and terms counts of whole segments, kept between requests.
    agg_cache: aggcache::AggCache<aggcache::Counts>,
    terms_cache: aggcache::AggCache<aggcache::TermCounts>,
    /// Aggregations asked for lately, counted again on new segments after each commit.
    recent: Mutex<Vec<(Instant, Recent)>>,
    /// Erasures waiting for the indexing thread (see `erase.rs`).
    erasures: Mutex<Vec<erase::EraseJob>>,
}

struct Ingest {
    /// Open writers; a day without one gets one on its next event.
    writers: BTreeMap<i32, DayWriter>,
    /// Chain heads after every event passed to `add`.
    heads: BTreeMap<String, ChainHead>,
    /// The greatest position passed to `add`.
    last_pos: Option<u64>,
}

/// An aggregation someone asked for lately (see [`Indexes::warm`]): the request, its range
/// (and size) left out, so that asking again over another range is the same aggregation.
#[derive(Debug, Clone, PartialEq)]
enum Recent {
    Histogram(HistogramRequest),
    Terms(TermsRequest),
}

impl Recent {
    fn histogram(req: &HistogramRequest) -> Recent {
        Recent::Histogram(HistogramRequest {
            start: OffsetDateTime::UNIX_EPOCH,
            end: OffsetDateTime::UNIX_EPOCH,
            ..req.clone()
        })
    }

    fn terms(req: &TermsRequest) -> Recent {
        Recent::Terms(TermsRequest {
            start: OffsetDateTime::UNIX_EPOCH,
            end: OffsetDateTime::UNIX_EPOCH,
            size: 1,
            ..req.clone()
        })
    }
}

/// Aggregations remembered for warming at most, and for how long after they were last asked.
const RECENT_MAX: usize = 16;
const RECENT_FOR: Duration = Duration::from_secs(15 * 60);

/// A writer of a day older than yesterday is closed after this long without events.
const IDLE_WRITER: Duration = Duration::from_secs(600);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves state that is still consistent for our use
    // (tantivy keeps its own invariants); carry on rather than poison every later call.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Indexes {
    /// Opens (or creates) every day index under `cfg.dir` and reads the checkpoint.
    pub fn open(cfg: IndexConfig) -> Result<Self> {
        fs::create_dir_all(&cfg.dir)?;
        Self::open_with(cfg, false)
    }

    /// Opens the day indexes that exist for reading only (`verify`): nothing on disk is
    /// created or changed, and adding events is refused.
    pub fn open_read_only(cfg: IndexConfig) -> Result<Self> {
        Self::open_with(cfg, true)
    }

    fn open_with(cfg: IndexConfig, read_only: bool) -> Result<Self> {
        let fields = Arc::new(Fields::new());
        let mut days = BTreeMap::new();
        if !read_only {
            for entry in fs::read_dir(&cfg.dir)? {
                let name = entry?.file_name();
                if let Some(index) = name.to_str().and_then(upgrade::leftover_of) {
                    upgrade::recover(&cfg.dir.join(index))?;
                }
            }
        }
        for entry in fs::read_dir(&cfg.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(day) = name.to_str().and_then(day::parse_folder_name) else {
                continue;
            };
            if entry.file_type()?.is_dir() {
                let d = if read_only {
                    Day::open_existing(&cfg.dir, day)?
                } else {
                    Day::open(&cfg.dir, day, &fields, &cfg.layout)?
                };
                days.insert(day, Arc::new(d));
            }
        }
        let checkpoint = day::read_checkpoint(&cfg.dir)?;
        tracing::debug!(dir = %cfg.dir.display(), days = days.len(), wal_next = checkpoint.wal_next, "index opened");
        Ok(Indexes {
            read_only,
            fields,
            days: RwLock::new(days),
            ingest: Mutex::new(Ingest {
                writers: BTreeMap::new(),
                heads: checkpoint.heads.clone(),
                last_pos: None,
            }),
            checkpoint: RwLock::new(checkpoint),
            agg_cache: aggcache::AggCache::default(),
            terms_cache: aggcache::AggCache::default(),
            recent: Mutex::new(Vec::new()),
            erasures: Mutex::new(Vec::new()),
            cfg,
        })
    }

    /// Where WAL replay must start, and the chain heads at that point.
    pub fn checkpoint(&self) -> Checkpoint {
        read(&self.checkpoint).clone()
    }

    /// The first day kept at time `now`.
    fn first_retained_day(&self, now: OffsetDateTime) -> i32 {
        let keep = i32::try_from(self.cfg.retention_days).unwrap_or(i32::MAX);
        day_of(now).saturating_sub(keep)
    }

    /// Adds one stored event at WAL position `pos` (tests and tools; the indexer hands over
    /// [`Entry`]s with [`Self::add_entry`]).
    pub fn add(&self, pos: u64, event: &StoredEvent) -> Result<()> {
        let record = event
            .record()
            .map_err(|e| IndexError::Tantivy(format!("cannot index event at {pos}: {e}")))?;
        self.add_entry(Arc::new(Entry::decode(pos, &record).map_err(|e| {
            IndexError::Tantivy(format!("cannot index event at {pos}: {e}"))
        })?))
    }

    /// Adds one committed event. Positions arrive in increasing order. Skips the event when its
    /// day index already holds its position (after a crash); events whose day is beyond
    /// retention are skipped. The entry (and the backlog charge it carries) is released once
    /// tantivy has indexed it.
    pub fn add_entry(&self, entry: Arc<Entry>) -> Result<()> {
        if self.read_only {
            return Err(IndexError::Tantivy("the index was opened read-only".into()));
        }
        let mut ingest = lock(&self.ingest);
        let pos = entry.pos;
        ingest.last_pos = Some(ingest.last_pos.map_or(pos, |p| p.max(pos)));
        // The chain moves on whether or not this index needs the event.
        ingest.heads.insert(
            entry.event.tenant.clone(),
            ChainHead {
                seq: entry.event.seq,
                hash: entry.event.hash.clone(),
            },
        );
        let day = entry.event.day();
        if day < self.first_retained_day(OffsetDateTime::now_utc()) {
            return Ok(());
        }
        let w = match ingest.writers.entry(day) {
            btree_map::Entry::Occupied(e) => e.into_mut(),
            btree_map::Entry::Vacant(e) => {
                let d = self.day_or_create(day)?;
                e.insert(DayWriter::open(&d, &self.cfg)?)
            }
        };
        if pos < w.committed {
            return Ok(()); // replay after a crash: this day already holds it
        }
        if let Err(e) = w
            .writer
            .add_document(EventDoc::new(self.fields.clone(), entry))
        {
            // A worker thread of the writer died; only joining it tells why (a full disk, no
            // file handles), and an operator needs that, not "a writer was killed".
            let cause = w.writer.prepare_commit().err().unwrap_or(e);
            return Err(cause.into());
        }
        w.dirty = true;
        w.last_add = Instant::now();
        Ok(())
    }

    /// Drops every open writer and what it had not committed, after a failure: the caller
    /// replays from [`Self::checkpoint`]. Searches keep working on what is committed.
    pub fn reset_writers(&self) {
        let mut ingest = lock(&self.ingest);
        ingest.writers.clear();
        ingest.last_pos = None;
        ingest.heads = read(&self.checkpoint).heads.clone();
    }

    fn day_or_create(&self, day: i32) -> Result<Arc<Day>> {
        if let Some(d) = read(&self.days).get(&day) {
            return Ok(d.clone());
        }
        // Only the indexing thread creates days, so nobody races us between the two locks.
        let d = Arc::new(Day::open(
            &self.cfg.dir,
            day,
            &self.fields,
            &self.cfg.layout,
        )?);
        write(&self.days).insert(day, d.clone());
        Ok(d)
    }

    /// Commits every day index with pending documents with payload `wal_next`, then writes
    /// the checkpoint and makes the new documents visible to searches.
    ///
    /// `wal_next` must be above every position passed to [`Indexes::add`] so far.
    pub fn commit(&self, wal_next: u64) -> Result<()> {
        let mut ingest = lock(&self.ingest);
        if let Some(last) = ingest.last_pos.filter(|last| wal_next <= *last) {
            return Err(IndexError::Param {
                param: "wal_next",
                reason: format!(
                    "{wal_next} does not cover position {last}, already added; commit with the \
                     position after the last event added"
                ),
            });
        }
        let mut reloaded = Vec::new();
        for (day, w) in ingest.writers.iter_mut().filter(|(_, w)| w.dirty) {
            w.commit(wal_next)?;
            if let Some(d) = read(&self.days).get(day) {
                d.reader.reload()?;
            }
            reloaded.push(*day);
        }
        let committed = reloaded.len();
        let checkpoint = Checkpoint {
            wal_next,
            heads: ingest.heads.clone(),
        };
        if checkpoint != *read(&self.checkpoint) {
            day::write_checkpoint(&self.cfg.dir, &checkpoint)?;
            *write(&self.checkpoint) = checkpoint;
        }
        tracing::trace!(wal_next, days = committed, "index committed");

        // Old days rarely get events (late arrivals, replay): free their writers' memory.
        let yesterday = day_of(OffsetDateTime::now_utc()) - 1;
        ingest
            .writers
            .retain(|day, w| w.dirty || *day >= yesterday || w.last_add.elapsed() < IDLE_WRITER);
        drop(ingest);
        self.warm(&reloaded);
        Ok(())
    }

    /// Remembers an aggregation someone asked for (the newest first, at most [`RECENT_MAX`]).
    fn remember(&self, what: Recent) {
        let mut recent = lock(&self.recent);
        recent.retain(|(_, r)| *r != what);
        recent.insert(0, (Instant::now(), what));
        recent.truncate(RECENT_MAX);
    }

    /// Counts the aggregations asked for in the last [`RECENT_FOR`] on `days`' segments that
    /// have no kept counts yet: those a commit or a merge just made. Without it, the first
    /// request after a merge counts the merged segment afresh (≈ 10 ms per million events on
    /// this project's machine), which a dashboard refreshing a day of millions would feel;
    /// with it that cost is paid here, on the indexing thread, once per new segment.
    fn warm(&self, days: &[i32]) {
        let recent: Vec<Recent> = {
            let mut recent = lock(&self.recent);
            recent.retain(|(at, _)| at.elapsed() < RECENT_FOR);
            recent.iter().map(|(_, r)| r.clone()).collect()
        };
        if recent.is_empty() {
            return;
        }
        for day in days {
            let Some(d) = read(&self.days).get(day).cloned() else {
                continue;
            };
            let snap = [Snapshot {
                day: *day,
                searcher: d.reader.searcher(),
            }];
            // The whole day: every segment of it lies inside, so each is kept whole.
            let start = OffsetDateTime::UNIX_EPOCH + time::Duration::days(i64::from(*day));
            let end = start + time::Duration::days(1);
            for r in &recent {
                let done = match r {
                    Recent::Histogram(req) => {
                        let req = HistogramRequest {
                            start,
                            end,
                            ..req.clone()
                        };
                        search::histogram(&self.fields, &snap, &req, &self.agg_cache).map(drop)
                    }
                    Recent::Terms(req) => {
                        let req = TermsRequest {
                            start,
                            end,
                            ..req.clone()
                        };
                        search::terms(&self.fields, &snap, &req, &self.terms_cache).map(drop)
                    }
                };
                // A day too long for the interval's bucket limit, say: the request itself
                // still counts what it needs.
                if let Err(e) = done {
                    tracing::debug!(day, error = %e, "aggregation not warmed");
                }
            }
        }
    }

    /// Snapshots of the days that may hold events in `[start, end)`, newest first.
    fn snapshots(&self, start: OffsetDateTime, end: OffsetDateTime) -> Vec<Snapshot> {
        let (start_us, end_us) = (schema::micros(start), schema::micros(end));
        if start_us >= end_us {
            return Vec::new();
        }
        let (first, last) = search::day_span(start_us, end_us);
        read(&self.days)
            .range(first..=last)
            .rev()
            .map(|(day, d)| Snapshot {
                day: *day,
                searcher: d.reader.searcher(),
            })
            .collect()
    }

    fn all_snapshots(&self) -> Vec<Snapshot> {
        read(&self.days)
            .iter()
            .rev()
            .map(|(day, d)| Snapshot {
                day: *day,
                searcher: d.reader.searcher(),
            })
            .collect()
    }

    pub fn search(&self, req: &SearchRequest) -> Result<SearchResult> {
        search::search(&self.fields, &self.snapshots(req.start, req.end), req)
    }

    pub fn histogram(&self, req: &HistogramRequest) -> Result<Vec<Bucket>> {
        let out = search::histogram(
            &self.fields,
            &self.snapshots(req.start, req.end),
            req,
            &self.agg_cache,
        )?;
        self.remember(Recent::histogram(req));
        Ok(out)
    }

    pub fn terms(&self, req: &TermsRequest) -> Result<Vec<TermCount>> {
        let out = search::terms(
            &self.fields,
            &self.snapshots(req.start, req.end),
            req,
            &self.terms_cache,
        )?;
        self.remember(Recent::terms(req));
        Ok(out)
    }

    /// The stored event with this id, in any retained day.
    pub fn get(&self, tenant: &str, event_id: &str) -> Result<Option<StoredEvent>> {
        search::get(&self.fields, &self.all_snapshots(), tenant, event_id)
    }

    /// Calls `f(id_key, day)` for every committed event, where `id_key` is
    /// [`crate::event::id_key`] of its tenant and event id (stored as two u64 fast fields so
    /// this is a column scan): the committer rebuilds its duplicate filter from this on start.
    pub fn for_each_id(&self, f: &mut dyn FnMut(u128, i32)) -> Result<()> {
        for snap in self.all_snapshots() {
            search::for_each_id(&snap, f)?;
        }
        Ok(())
    }

    /// Whether a committed event of `tenant` has this id (the WAL's duplicate check).
    pub fn contains(&self, tenant: &str, event_id: &str) -> Result<bool> {
        search::contains(&self.fields, &self.all_snapshots(), tenant, event_id)
    }

    /// Calls `f(position, record)` with the stored record of every committed event of every
    /// retained day, in no particular order (for `verify`: the bytes as stored, never a
    /// re-serialization).
    pub fn for_each_record(&self, f: &mut dyn FnMut(u64, &[u8])) -> Result<()> {
        for snap in self.all_snapshots() {
            search::for_each_record(&self.fields, &snap, f)?;
        }
        Ok(())
    }

    /// Deletes day indexes older than `retention_days` before `now`; returns the days dropped.
    pub fn apply_retention(&self, now: OffsetDateTime) -> Result<Vec<i32>> {
        let first = self.first_retained_day(now);
        // Hold the indexing lock so no event re-creates a day while it is being deleted.
        let mut ingest = lock(&self.ingest);
        let old: Vec<i32> = read(&self.days)
            .range(..first)
            .map(|(day, _)| *day)
            .collect();
        let mut dropped = Vec::new();
        for day in old {
            if let Some(w) = ingest.writers.remove(&day) {
                // Pending documents of an expired day are dropped with it.
                if let Err(e) = w.writer.wait_merging_threads() {
                    tracing::warn!(day = %day::folder_name(day), error = %e, "closing an expired day writer");
                }
            }
            let Some(d) = write(&self.days).remove(&day) else {
                continue;
            };
            let path = d.path.clone();
            // Searches still holding a snapshot keep their open (mapped) files.
            drop(d);
            fs::remove_dir_all(&path)?;
            tracing::info!(day = %day::folder_name(day), "day index dropped by retention");
            dropped.push(day);
        }
        Ok(dropped)
    }

    /// Number of committed documents over all days (for metrics and tests).
    pub fn num_docs(&self) -> u64 {
        read(&self.days)
            .values()
            .map(|d| d.reader.searcher().num_docs())
            .sum()
    }
}

/// The index answers the WAL's duplicate check for everything it has committed.
impl crate::wal::IdLookup for Indexes {
    fn contains(&self, tenant: &str, event_id: &str) -> std::result::Result<bool, String> {
        Indexes::contains(self, tenant, event_id).map_err(|e| e.to_string())
    }

    fn for_each_key(&self, f: &mut dyn FnMut(u128)) -> std::result::Result<(), String> {
        self.for_each_id(&mut |key, _| f(key))
            .map_err(|e| e.to_string())
    }

    fn stored(&self) -> u64 {
        self.num_docs()
    }
}
