//! The findings store: one tantivy index of every finding the rules made, by tenant, rule,
//! severity, time and the events they cite.
//!
//! It is written by the rules consumer only. Each commit carries the WAL position it covers
//! (`{"wal_next": P}`, like a day index): every finding triggered by an event below `P` is in
//! it, so a replay after a crash skips exactly those. Findings are small and few next to
//! events, so one index holds them all; retention deletes old ones by time.
//!
//! Visible before durable: a finding is [staged](Findings::stage) the moment its event is
//! evaluated, and every read (search, get, the alerter's `between`) sees staged findings
//! beside committed ones. Commits, which make them durable, come with the consumer's position
//! commits (every `index.commit_interval_ms`). A tantivy commit writes a segment and costs
//! milliseconds whatever it holds, so committing for each burst of findings (four a second
//! under a noisy rule) cost more than the findings did. A staged finding lost to a crash is
//! made again, with the same id, when its events are replayed from the WAL.
//!
//! ## On disk
//! `<data_dir>/findings/`: a tantivy index; `_source` holds each finding as JSON.

use std::path::Path;
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, Schema, TextFieldIndexing,
    TextOptions, Value as _, STORED,
};
use tantivy::{
    DateTime, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term,
};
use time::OffsetDateTime;

use super::{IndexError, Result};
use crate::rules::{Finding, Severity};

struct Fields {
    tenant: Field,
    id: Field,
    rule: Field,
    severity: Field,
    event_id: Field,
    time: Field,
    /// WAL position of the triggering event (the alerter follows the store by it).
    pos: Field,
    source: Field,
}

/// The findings index.
pub struct Findings {
    index: Index,
    reader: IndexReader,
    /// `None` after a failure: the next write opens a new one (tantivy's own rollback panics
    /// on a writer whose threads died).
    writer: Mutex<Option<IndexWriter>>,
    /// Findings staged and not yet visible through `reader`, oldest first.
    recent: RwLock<Recent>,
    f: Fields,
}

/// The staged findings. Readers take the lock before the searcher, and a commit trims the
/// list under it together with the reader's reload, so each finding is seen exactly once.
#[derive(Default)]
struct Recent {
    findings: Vec<Finding>,
    /// How many of `findings` (from the front) are committed but not yet in the reader (its
    /// reload failed): the next commit does not add them again.
    committed: usize,
}

/// A findings query; everything optional but the tenant.
#[derive(Debug, Clone, Default)]
pub struct FindingsQuery {
    pub tenant: String,
    pub rule: Option<String>,
    /// At least this severe.
    pub severity: Option<Severity>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Findings that cite this event.
    pub event_id: Option<String>,
    pub limit: usize,
}

impl FindingsQuery {
    /// Whether `f` answers this query (what [`Findings::query`] asks of the index).
    fn admits(&self, f: &Finding) -> bool {
        f.tenant == self.tenant
            && self.rule.as_ref().is_none_or(|r| *r == f.rule)
            && self.severity.is_none_or(|s| f.severity >= s)
            && self.since.is_none_or(|t| f.time >= t)
            && self.until.is_none_or(|t| f.time < t)
            && self
                .event_id
                .as_ref()
                .is_none_or(|e| f.event_ids.iter().any(|id| id == e))
    }
}

/// Memory budget of the findings writer (tantivy's smallest).
const WRITER_MEMORY: usize = 15_000_000;

#[derive(Serialize, Deserialize)]
struct Payload {
    wal_next: u64,
}

fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

fn document(f: &Fields, finding: &Finding) -> Result<TantivyDocument> {
    let source = serde_json::to_vec(finding)
        .map_err(|e| IndexError::Tantivy(format!("cannot store finding {}: {e}", finding.id)))?;
    let mut doc = TantivyDocument::default();
    doc.add_text(f.tenant, &finding.tenant);
    doc.add_text(f.id, &finding.id);
    doc.add_text(f.rule, &finding.rule);
    doc.add_u64(f.severity, finding.severity as u64);
    for id in &finding.event_ids {
        doc.add_text(f.event_id, id);
    }
    doc.add_date(f.time, super::schema::tantivy_date(micros(finding.time)));
    doc.add_u64(f.pos, finding.pos);
    doc.add_bytes(f.source, &source);
    Ok(doc)
}

impl Findings {
    /// Opens (or creates) the findings index in `dir`.
    pub fn open(dir: &Path) -> Result<Findings> {
        // Before the folder is created: a crash may have left it renamed aside.
        super::upgrade::recover(dir)?;
        std::fs::create_dir_all(dir)?;
        let mut b = Schema::builder();
        let raw = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_fieldnorms(false)
                .set_index_option(IndexRecordOption::Basic),
        );
        let f = Fields {
            tenant: b.add_text_field("tenant", raw.clone()),
            id: b.add_text_field("id", raw.clone()),
            rule: b.add_text_field("rule", raw.clone().set_fast("raw")),
            severity: b.add_u64_field("severity", tantivy::schema::INDEXED | tantivy::schema::FAST),
            event_id: b.add_text_field("event_id", raw),
            time: b.add_date_field(
                "time",
                DateOptions::default()
                    .set_indexed()
                    .set_fast()
                    .set_precision(DateTimePrecision::Microseconds),
            ),
            pos: b.add_u64_field("pos", tantivy::schema::INDEXED | tantivy::schema::FAST),
            source: b.add_bytes_field("_source", STORED),
        };
        let schema = b.build();
        let context = |e: tantivy::TantivyError| {
            IndexError::Tantivy(format!(
                "findings index {}: {e}; if it was made by another version, move the folder aside (findings are not rebuilt)",
                dir.display()
            ))
        };
        let directory = MmapDirectory::open(dir).map_err(|e| context(e.into()))?;
        let index = Index::open_or_create(directory, schema.clone()).map_err(context)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(context)?;
        if super::upgrade::is_old_format(&reader) {
            drop(index);
            super::upgrade::rewrite(
                dir,
                reader,
                |new| {
                    Ok(Index::create_in_dir(new, schema.clone())?
                        .writer_with_num_threads(1, WRITER_MEMORY)?)
                },
                |_, record| {
                    let finding: Finding = serde_json::from_slice(record).map_err(|e| {
                        IndexError::Tantivy(format!("a stored finding is unreadable: {e}"))
                    })?;
                    document(&f, &finding)
                },
            )?;
            return Findings::open(dir);
        }
        let writer = index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(context)?;
        Ok(Findings {
            index,
            reader,
            writer: Mutex::new(Some(writer)),
            recent: RwLock::new(Recent::default()),
            f,
        })
    }

    /// Runs `f` on the writer, opening one if the last failed.
    fn with_writer<T>(&self, f: impl FnOnce(&mut IndexWriter) -> Result<T>) -> Result<T> {
        let mut slot = lock(&self.writer);
        if slot.is_none() {
            *slot = Some(self.index.writer_with_num_threads(1, WRITER_MEMORY)?);
        }
        match slot.as_mut() {
            Some(w) => f(w),
            None => Err(IndexError::Tantivy(
                "the findings writer is not open".into(),
            )),
        }
    }

    /// The WAL position the last commit covers (0 before any).
    pub fn position(&self) -> Result<u64> {
        let meta = self.index.load_metas()?;
        match meta.payload.as_deref() {
            None | Some("") => Ok(0),
            Some(p) => serde_json::from_str::<Payload>(p)
                .map(|p| p.wal_next)
                .map_err(|e| {
                    IndexError::Tantivy(format!("findings index: bad commit payload {p:?}: {e}"))
                }),
        }
    }

    /// Makes `findings` visible to every reader at once; the next [`commit`](Self::commit)
    /// makes them durable.
    pub fn stage(&self, findings: impl IntoIterator<Item = Finding>) {
        write(&self.recent).findings.extend(findings);
    }

    /// Makes every staged finding durable, recording that they cover every event below
    /// `wal_next`. After a failure the writer is dropped with what it held; the findings stay
    /// staged (and visible) for the next commit to write again.
    pub fn commit(&self, wal_next: u64) -> Result<()> {
        let payload = serde_json::to_string(&Payload { wal_next })
            .map_err(|e| IndexError::Tantivy(e.to_string()))?;
        // Only the consumer stages and commits, so nothing is staged while this runs.
        let written = {
            let recent = read(&self.recent);
            let result = self.with_writer(|w| {
                for f in &recent.findings[recent.committed..] {
                    w.add_document(document(&self.f, f)?)?;
                }
                let mut prepared = w.prepare_commit()?;
                prepared.set_payload(&payload);
                prepared.commit()?;
                Ok(())
            });
            if let Err(e) = result {
                lock(&self.writer).take();
                return Err(e);
            }
            recent.findings.len()
        };
        let mut recent = write(&self.recent);
        recent.committed = written;
        self.reader.reload()?;
        recent.findings.drain(..written);
        recent.committed = 0;
        Ok(())
    }

    fn query(&self, q: &FindingsQuery) -> Box<dyn Query> {
        let term = |f: Field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(f, v),
                IndexRecordOption::Basic,
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, term(self.f.tenant, &q.tenant))];
        if let Some(r) = &q.rule {
            clauses.push((Occur::Must, term(self.f.rule, r)));
        }
        if let Some(e) = &q.event_id {
            clauses.push((Occur::Must, term(self.f.event_id, e)));
        }
        if let Some(s) = q.severity {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    std::ops::Bound::Included(Term::from_field_u64(self.f.severity, s as u64)),
                    std::ops::Bound::Unbounded,
                )),
            ));
        }
        if q.since.is_some() || q.until.is_some() {
            let bound = |t: Option<OffsetDateTime>, incl: bool| match t {
                None => std::ops::Bound::Unbounded,
                Some(t) => {
                    let term =
                        Term::from_field_date(self.f.time, super::schema::tantivy_date(micros(t)));
                    if incl {
                        std::ops::Bound::Included(term)
                    } else {
                        std::ops::Bound::Excluded(term)
                    }
                }
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(q.since, true), bound(q.until, false))),
            ));
        }
        if clauses.is_empty() {
            return Box::new(AllQuery);
        }
        Box::new(BooleanQuery::new(clauses))
    }

    /// Findings matching `q`, newest first, and how many match in all.
    pub fn search(&self, q: &FindingsQuery) -> Result<(u64, Vec<Finding>)> {
        let (searcher, staged) = self.snapshot(|f| q.admits(f));
        let query = self.query(q);
        let top = TopDocs::with_limit(q.limit.max(1))
            .order_by_fast_field::<DateTime>("time", Order::Desc);
        let (total, hits) = searcher.search(&*query, &(Count, top))?;
        let mut out = Vec::with_capacity(hits.len());
        for (_, addr) in hits {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let bytes = doc
                .get_first(self.f.source)
                .and_then(|v| v.as_bytes())
                .ok_or_else(|| IndexError::Tantivy("a finding has no `_source`".into()))?;
            out.push(serde_json::from_slice(bytes).map_err(|e| {
                IndexError::Tantivy(format!("a stored finding is unreadable: {e}"))
            })?);
        }
        let total = total as u64 + staged.len() as u64;
        out.extend(staged);
        out.sort_by_key(|f| std::cmp::Reverse(f.time));
        out.truncate(q.limit.max(1));
        Ok((total, out))
    }

    /// The reader's view and the staged findings `keep` admits, taken together so that no
    /// finding is in both or in neither.
    fn snapshot(&self, keep: impl Fn(&Finding) -> bool) -> (tantivy::Searcher, Vec<Finding>) {
        let recent = read(&self.recent);
        let searcher = self.reader.searcher();
        let staged = recent
            .findings
            .iter()
            .filter(|f| keep(f))
            .cloned()
            .collect();
        (searcher, staged)
    }

    /// Findings (committed or staged) of every tenant triggered at WAL positions in
    /// `from..to`, in position order (ties by id), at most `limit`.
    pub fn between(&self, from: u64, to: u64, limit: usize) -> Result<Vec<Finding>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let (searcher, staged) = self.snapshot(|f| (from..to).contains(&f.pos));
        let query = RangeQuery::new(
            std::ops::Bound::Included(Term::from_field_u64(self.f.pos, from)),
            std::ops::Bound::Excluded(Term::from_field_u64(self.f.pos, to)),
        );
        let top = TopDocs::with_limit(limit.max(1)).order_by_fast_field::<u64>("pos", Order::Asc);
        let hits = searcher.search(&query, &top)?;
        let mut out: Vec<Finding> = Vec::with_capacity(hits.len());
        for (_, addr) in hits {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let bytes = doc
                .get_first(self.f.source)
                .and_then(|v| v.as_bytes())
                .ok_or_else(|| IndexError::Tantivy("a finding has no `_source`".into()))?;
            out.push(serde_json::from_slice(bytes).map_err(|e| {
                IndexError::Tantivy(format!("a stored finding is unreadable: {e}"))
            })?);
        }
        out.extend(staged);
        out.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.id.cmp(&b.id)));
        out.truncate(limit.max(1));
        Ok(out)
    }

    /// One finding by id.
    pub fn get(&self, tenant: &str, id: &str) -> Result<Option<Finding>> {
        let (searcher, staged) = self.snapshot(|f| f.tenant == tenant && f.id == id);
        if let Some(f) = staged.into_iter().next() {
            return Ok(Some(f));
        }
        let q = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f.tenant, tenant),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f.id, id),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let hits = searcher.search(&q, &TopDocs::with_limit(1).order_by_score())?;
        let Some((_, addr)) = hits.first() else {
            return Ok(None);
        };
        let doc: TantivyDocument = searcher.doc(*addr)?;
        let bytes = doc
            .get_first(self.f.source)
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| IndexError::Tantivy("a finding has no `_source`".into()))?;
        serde_json::from_slice(bytes)
            .map(Some)
            .map_err(|e| IndexError::Tantivy(format!("a stored finding is unreadable: {e}")))
    }

    /// Deletes findings older than `before`; returns how many.
    pub fn apply_retention(&self, before: OffsetDateTime) -> Result<u64> {
        let searcher = self.reader.searcher();
        let q = RangeQuery::new(
            std::ops::Bound::Unbounded,
            std::ops::Bound::Excluded(Term::from_field_date(
                self.f.time,
                super::schema::tantivy_date(micros(before)),
            )),
        );
        let n = searcher.search(&q, &Count)? as u64;
        if n > 0 {
            self.with_writer(|w| w.delete_query(Box::new(q)).map(|_| ()).map_err(Into::into))?;
        }
        Ok(n)
    }

    /// Number of findings, staged ones included.
    pub fn len(&self) -> u64 {
        let recent = read(&self.recent);
        self.reader.searcher().num_docs() + recent.findings.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(i: u64, tenant: &str) -> Finding {
        let start = time::macros::datetime!(2026-11-02 00:00 UTC);
        Finding {
            id: format!("f{i:03}"),
            tenant: tenant.into(),
            rule: if i.is_multiple_of(2) { "even" } else { "odd" }.into(),
            title: "t".into(),
            severity: Severity::Medium,
            tags: Vec::new(),
            group_key: String::new(),
            event_ids: vec![format!("e{i}")],
            explanation: String::new(),
            time: start + time::Duration::seconds(i as i64),
            pos: i * 10,
        }
    }

    fn ids(found: &[Finding]) -> Vec<&str> {
        found.iter().map(|f| f.id.as_str()).collect()
    }

    fn everything(tenant: &str) -> FindingsQuery {
        FindingsQuery {
            tenant: tenant.into(),
            limit: 100,
            ..FindingsQuery::default()
        }
    }

    #[test]
    fn staged_findings_are_read_at_once_and_exactly_once_after_their_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Findings::open(dir.path()).unwrap();
        store.stage((0..4).map(|i| finding(i, "acme")));
        store.commit(40).unwrap();
        store.stage(
            (4..7)
                .map(|i| finding(i, "acme"))
                .chain([finding(7, "other")]),
        );

        // Committed and staged together, newest first, the tenant's only.
        let (total, found) = store.search(&everything("acme")).unwrap();
        assert_eq!(total, 7);
        assert_eq!(
            ids(&found),
            ["f006", "f005", "f004", "f003", "f002", "f001", "f000"]
        );
        let odd = FindingsQuery {
            rule: Some("odd".into()),
            limit: 2,
            ..everything("acme")
        };
        let (total, found) = store.search(&odd).unwrap();
        assert_eq!((total, ids(&found)), (3, vec!["f005", "f003"]));
        let by_event = FindingsQuery {
            event_id: Some("e5".into()),
            ..everything("acme")
        };
        assert_eq!(ids(&store.search(&by_event).unwrap().1), ["f005"]);
        assert_eq!(store.get("acme", "f005").unwrap().unwrap().pos, 50);
        assert!(
            store.get("acme", "f007").unwrap().is_none(),
            "another tenant's"
        );
        assert_eq!(
            ids(&store.between(20, 71, 100).unwrap()),
            ["f002", "f003", "f004", "f005", "f006", "f007"]
        );
        assert_eq!(
            ids(&store.between(20, 70, 3).unwrap()),
            ["f002", "f003", "f004"]
        );
        assert_eq!(store.len(), 8);

        store.commit(80).unwrap();
        assert_eq!(store.search(&everything("acme")).unwrap().0, 7);
        assert_eq!(store.between(0, 80, 100).unwrap().len(), 8);
        assert_eq!(store.len(), 8);
        assert_eq!(store.position().unwrap(), 80);

        // A new process sees what was committed, and nothing staged is left over.
        drop(store);
        let store = Findings::open(dir.path()).unwrap();
        assert_eq!(store.search(&everything("acme")).unwrap().0, 7);
        assert_eq!(store.len(), 8);
    }

    #[test]
    fn staged_findings_not_committed_are_gone_with_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let store = Findings::open(dir.path()).unwrap();
        store.stage([finding(1, "acme")]);
        store.commit(20).unwrap();
        store.stage([finding(2, "acme")]);
        assert_eq!(store.len(), 2);
        drop(store);
        let store = Findings::open(dir.path()).unwrap();
        assert_eq!(store.position().unwrap(), 20, "a replay starts here");
        assert_eq!(ids(&store.search(&everything("acme")).unwrap().1), ["f001"]);
    }
}
