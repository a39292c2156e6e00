//! Erasure in the index: finding the events of one user of one tenant, and deleting them.
//!
//! The deletion runs on the indexing thread ([`Indexes::take_due_erasures`], called by the
//! indexer), once the indexer has added every event below the erasure's WAL position: events
//! read before the WAL's records became markers may still be on their way to a writer, and a
//! tantivy deletion only reaches the documents added before it. The deletion is then committed
//! at once, with the indexer's position, so it is durable before the erasure is answered.
//!
//! Not here: what an erasure is and how it is recorded (`chain/erase.rs`), the WAL's side.

use std::ops::Bound;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tantivy::collector::DocSetCollector;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value as _};
use tantivy::{TantivyDocument, Term};
use time::OffsetDateTime;

use super::day::DayWriter;
use super::schema::{self, micros};
use super::{lock, read, IndexError, Indexes, Result, IDLE_WRITER};
use crate::event::fields as registry;
use crate::event::{MAX_TIME, MIN_TIME, RECORD_HASH_LEN};

/// Which events an erasure removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseFilter {
    pub tenant: String,
    /// The events' `user`, exactly.
    pub user: String,
    /// Event times in `[start, end)`; all times when `None`.
    pub start: Option<OffsetDateTime>,
    pub end: Option<OffsetDateTime>,
    /// Only events at WAL positions below this (those durable when the erasure started).
    pub below: u64,
}

/// One erased event as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub pos: u64,
    pub seq: u64,
    pub hash: [u8; 32],
}

/// An erasure waiting for the indexing thread.
pub(crate) struct EraseJob {
    filter: EraseFilter,
    done: mpsc::Sender<std::result::Result<(), String>>,
}

/// Why [`Indexes::erase`] returned before the deletion was committed.
#[derive(Debug, thiserror::Error)]
pub enum EraseWait {
    #[error("the index has not applied the deletion within {0:?} (failing or far behind; see /readyz); it is applied once the index catches up, and again at the next start")]
    Timeout(Duration),
    #[error("the index could not delete the events: {0}")]
    Failed(String),
}

impl EraseFilter {
    fn query(&self, idx: &Indexes) -> Result<Box<dyn Query>> {
        let f = &idx.fields;
        let user = registry::field("user")
            .and_then(|def| f.field(def))
            .ok_or_else(|| IndexError::Tantivy("schema has no `user` field".into()))?;
        let term = |field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, v),
                IndexRecordOption::Basic,
            ))
        };
        let date = |t: OffsetDateTime| {
            Term::from_field_date(f.timestamp, super::schema::tantivy_date(micros(t)))
        };
        let mut clauses = vec![
            (Occur::Must, term(f.tenant, &self.tenant)),
            (Occur::Must, term(user, &self.user)),
            (
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_u64(f.pos, 0)),
                    Bound::Excluded(Term::from_field_u64(f.pos, self.below)),
                )) as Box<dyn Query>,
            ),
        ];
        if self.start.is_some() || self.end.is_some() {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    self.start
                        .map_or(Bound::Unbounded, |t| Bound::Included(date(t))),
                    self.end
                        .map_or(Bound::Unbounded, |t| Bound::Excluded(date(t))),
                )),
            ));
        }
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    fn range(&self) -> (OffsetDateTime, OffsetDateTime) {
        (self.start.unwrap_or(MIN_TIME), self.end.unwrap_or(MAX_TIME))
    }
}

impl Indexes {
    /// Every committed event the filter matches: its position, seq and chain hash (from its
    /// stored record), for the erasure record.
    pub fn erasure_candidates(&self, filter: &EraseFilter) -> Result<Vec<Candidate>> {
        let q = filter.query(self)?;
        let (start, end) = filter.range();
        let mut out = Vec::new();
        for snap in self.snapshots(start, end) {
            let docs = snap.searcher.search(&*q, &DocSetCollector)?;
            for addr in docs {
                let doc: TantivyDocument = snap.searcher.doc(addr)?;
                let bytes = doc
                    .get_first(self.fields.source)
                    .and_then(|v| v.as_bytes())
                    .ok_or_else(|| {
                        IndexError::Tantivy(format!("document {addr:?} has no `_source`"))
                    })?;
                let head = crate::wal::RecordHead::decode(bytes).map_err(|e| {
                    IndexError::Tantivy(format!("document {addr:?} has a corrupt `_source`: {e}"))
                })?;
                let pos = snap
                    .searcher
                    .segment_reader(addr.segment_ord)
                    .fast_fields()
                    .u64(schema::POS)?
                    .first(addr.doc_id)
                    .unwrap_or(u64::MAX);
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&bytes[..RECORD_HASH_LEN]);
                out.push(Candidate {
                    pos,
                    seq: head.seq,
                    hash,
                });
            }
        }
        Ok(out)
    }

    /// Hands the deletion to the indexing thread and waits up to `timeout` until it is
    /// committed.
    pub fn erase(
        &self,
        filter: EraseFilter,
        timeout: Duration,
    ) -> std::result::Result<(), EraseWait> {
        let (done, rx) = mpsc::channel();
        lock(&self.erasures).push(EraseJob { filter, done });
        match rx.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(EraseWait::Failed(e)),
            Err(_) => Err(EraseWait::Timeout(timeout)),
        }
    }

    /// Deletes and commits at once, with the checkpoint's position: at start, before the
    /// indexing thread runs (an erasure that a crash interrupted is applied again).
    pub fn erase_now(&self, filter: &EraseFilter) -> Result<()> {
        let days = self.delete_matching(filter)?;
        self.commit(self.checkpoint().wal_next)?;
        self.compact(&days);
        Ok(())
    }

    /// The erasures whose events below their position have all been added (the indexer is at
    /// `position`): the indexer deletes them, commits, then calls [`Self::finish_erasures`].
    pub(crate) fn take_due_erasures(&self, position: u64) -> Vec<EraseJob> {
        let mut queued = lock(&self.erasures);
        if queued.is_empty() {
            return Vec::new();
        }
        let (due, wait) = std::mem::take(&mut *queued)
            .into_iter()
            .partition(|j| j.filter.below <= position);
        *queued = wait;
        due
    }

    /// Queues the deletions of `jobs` in their day writers (committed by the caller, then
    /// [`Self::compact`]ed); returns the days concerned.
    pub(crate) fn delete_erased(&self, jobs: &[EraseJob]) -> Result<Vec<i32>> {
        let mut days = Vec::new();
        for j in jobs {
            days.extend(self.delete_matching(&j.filter)?);
        }
        days.sort_unstable();
        days.dedup();
        Ok(days)
    }

    /// Rewrites the segments of `days` that hold deleted documents: a tantivy deletion only
    /// hides a document until its segment is merged, and erased events must leave the disk.
    /// A failure leaves them hidden (and merged later by tantivy); it is logged.
    pub(crate) fn compact(&self, days: &[i32]) {
        for &day in days {
            if let Err(e) = self.compact_day(day) {
                tracing::warn!(day = %super::day::folder_name(day), error = %e, "erasure: cannot merge away the deleted documents yet; they stay hidden and go at a later merge");
            }
        }
    }

    fn compact_day(&self, day: i32) -> Result<()> {
        let Some(d) = read(&self.days).get(&day).cloned() else {
            return Ok(());
        };
        let ids: Vec<tantivy::index::SegmentId> = d
            .index
            .searchable_segment_metas()?
            .into_iter()
            .filter(|m| m.has_deletes())
            .map(|m| m.id())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let mut ingest = lock(&self.ingest);
        let mut own = None;
        let w = match ingest.writers.get_mut(&day) {
            Some(w) => w,
            None => own.insert(DayWriter::open(&d, &self.cfg)?),
        };
        w.writer.merge(&ids).wait()?;
        d.reader.reload()?;
        Ok(())
    }

    /// Answers the waiting erasures.
    pub(crate) fn finish_erasures(jobs: Vec<EraseJob>, result: std::result::Result<(), String>) {
        for j in jobs {
            let _ = j.done.send(result.clone());
        }
    }

    /// Queues the deletion in every day that holds a matching committed event or has events
    /// not committed yet; marks those writers dirty so the next commit makes it durable.
    fn delete_matching(&self, filter: &EraseFilter) -> Result<Vec<i32>> {
        if self.read_only {
            return Err(IndexError::Tantivy("the index was opened read-only".into()));
        }
        let q = filter.query(self)?;
        let (start, end) = filter.range();
        let mut ingest = lock(&self.ingest);
        let yesterday = crate::event::day_of(OffsetDateTime::now_utc()) - 1;
        let mut days = Vec::new();
        for snap in self.snapshots(start, end) {
            let committed = snap.searcher.search(&*q, &tantivy::collector::Count)? > 0;
            let pending = ingest.writers.get(&snap.day).is_some_and(|w| w.dirty);
            if !committed && !pending {
                continue;
            }
            let w = match ingest.writers.entry(snap.day) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let Some(d) = read(&self.days).get(&snap.day).cloned() else {
                        continue;
                    };
                    let mut w = DayWriter::open(&d, &self.cfg)?;
                    // Opened only to delete: closed after the commit unless events arrive.
                    if snap.day < yesterday {
                        w.last_add = Instant::now()
                            .checked_sub(IDLE_WRITER)
                            .unwrap_or_else(Instant::now);
                    }
                    e.insert(w)
                }
            };
            w.writer.delete_query(q.box_clone())?;
            w.dirty = true;
            days.push(snap.day);
        }
        Ok(days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, StoredEvent};
    use crate::index::{IndexConfig, SearchRequest};

    fn stored(tenant: &str, id: &str, user: &str, seq: u64) -> StoredEvent {
        let mut e = Event::new(id, "tools/call", "read_file");
        e.user = user.into();
        StoredEvent {
            event: e,
            tenant: tenant.into(),
            received_at: OffsetDateTime::now_utc(),
            seq,
            hash: format!("{seq:064x}"),
            redactions: vec![],
        }
    }

    fn ids(idx: &Indexes, tenant: &str) -> Vec<String> {
        let now = OffsetDateTime::now_utc();
        let r = idx
            .search(&SearchRequest {
                tenant: tenant.into(),
                query: String::new(),
                start: now - time::Duration::days(1),
                end: now + time::Duration::hours(1),
                limit: 100,
                cursor: None,
                event_ids: None,
                track_total: None,
                deadline: None,
            })
            .unwrap();
        let mut ids: Vec<String> = r.hits.into_iter().map(|h| h.event.event_id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_users_events_below_the_position_go_committed_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let idx = Indexes::open(IndexConfig {
            dir: dir.path().to_path_buf(),
            retention_days: 30,
            writer_memory_bytes: 15_000_000,
            writer_threads: 1,
            layout: crate::index::layout::Layout::default(),
        })
        .unwrap();
        idx.add(0, &stored("t", "a1", "alice", 1)).unwrap();
        idx.add(1, &stored("t", "b1", "bob", 2)).unwrap();
        idx.add(2, &stored("u", "a2", "alice", 1)).unwrap();
        idx.commit(3).unwrap();
        // Not committed yet, and one after the erasure's position.
        idx.add(3, &stored("t", "a3", "alice", 3)).unwrap();
        idx.add(4, &stored("t", "a4", "alice", 4)).unwrap();
        let filter = EraseFilter {
            tenant: "t".into(),
            user: "alice".into(),
            start: None,
            end: None,
            below: 4,
        };
        let found = idx.erasure_candidates(&filter).unwrap();
        assert_eq!(
            found,
            vec![Candidate {
                pos: 0,
                seq: 1,
                hash: {
                    let mut h = [0u8; 32];
                    h[31] = 1;
                    h
                }
            }],
            "committed matches only"
        );
        let days = idx.delete_matching(&filter).unwrap();
        idx.commit(5).unwrap();
        assert_eq!(ids(&idx, "t"), vec!["a4", "b1"]);
        idx.compact(&days);
        let day = read(&idx.days).get(&days[0]).cloned().unwrap();
        assert!(
            day.index
                .searchable_segment_metas()
                .unwrap()
                .iter()
                .all(|m| !m.has_deletes()),
            "deleted documents are merged away"
        );
        assert_eq!(ids(&idx, "t"), vec!["a4", "b1"]);
        assert_eq!(ids(&idx, "u"), vec!["a2"], "other tenants keep theirs");
        // Nothing left to find; a second erasure changes nothing.
        assert!(idx.erasure_candidates(&filter).unwrap().is_empty());
        idx.erase_now(&filter).unwrap();
        assert_eq!(ids(&idx, "t"), vec!["a4", "b1"]);
        assert_eq!(idx.checkpoint().wal_next, 5);
        // Bounds far outside what tantivy's dates hold match nothing, and never overflow.
        let far = EraseFilter {
            start: Some(time::macros::datetime!(3747-08-17 12:29:30 UTC)),
            end: Some(MAX_TIME),
            ..filter.clone()
        };
        assert!(idx.erasure_candidates(&far).unwrap().is_empty());
        idx.erase_now(&far).unwrap();
        let all = EraseFilter {
            start: Some(MIN_TIME),
            end: Some(MAX_TIME),
            below: 5,
            ..filter
        };
        assert_eq!(idx.erasure_candidates(&all).unwrap().len(), 1, "a4");
    }
}
