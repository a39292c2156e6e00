//! Search, histogram, terms and get over a set of day snapshots.
//!
//! Every request runs on [`Snapshot`]s taken before it starts (a day and one tantivy
//! `Searcher`), so it never holds a lock while it runs and never sees a commit half way.
//! Each day is searched with `tenant = <caller> AND timestamp in [start, end) AND <query>`
//! (the time clause is left out for days entirely inside the range) by collectors that read
//! fast fields only; `_source` is loaded for the returned hits alone.

use std::collections::HashMap;

use tantivy::collector::{Collector, Count, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::columnar::StrColumn;
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery, TermQuery, Weight};
use tantivy::schema::{IndexRecordOption, Value as _};
use tantivy::{
    DateTime, DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, TantivyDocument,
    Term,
};

use super::aggcache;
use super::cursor::SortKey;
use super::schema::{self, from_micros, micros, Fields, MICROS_PER_DAY};
use super::{
    query, Bucket, HistogramRequest, IndexError, Result, SearchRequest, SearchResult, TermCount,
    TermsRequest,
};
use crate::event::fields as registry;
use crate::event::StoredEvent;

/// Largest page.
pub(crate) const MAX_LIMIT: usize = 10_000;
/// Most histogram buckets.
pub(crate) const MAX_BUCKETS: i128 = 10_000;
/// Most buckets of one segment's own histogram that are kept for a range that cuts it: the
/// same bound as a request's, so no kept entry is larger than an uncut request keeps (a finer
/// interval over a longer segment counts the range afresh instead).
const MAX_SEGMENT_BUCKETS: i128 = MAX_BUCKETS;
/// Most terms returned.
pub(crate) const MAX_TERMS: usize = 10_000;

/// One day index as of the start of a request.
pub(crate) struct Snapshot {
    pub day: i32,
    pub searcher: Searcher,
}

/// The time range of a request in microseconds, `None` when it is empty.
fn micros_range(start: time::OffsetDateTime, end: time::OffsetDateTime) -> Option<(i64, i64)> {
    let (s, e) = (micros(start), micros(end));
    (s < e).then_some((s, e))
}

/// The days a `[start, end)` microsecond range touches, inclusive.
pub(crate) fn day_span(start_us: i64, end_us: i64) -> (i32, i32) {
    (
        schema::day_of_micros(start_us),
        schema::day_of_micros(end_us - 1),
    )
}

/// The filter of one day: tenant, the time range when it cuts the day, the user query.
fn day_query(
    fields: &Fields,
    tenant: &str,
    user: Option<&dyn Query>,
    day: i32,
    (start_us, end_us): (i64, i64),
) -> Box<dyn Query> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
        Occur::Must,
        Box::new(TermQuery::new(
            Term::from_field_text(fields.tenant, tenant),
            IndexRecordOption::Basic,
        )),
    )];
    let day_start = i64::from(day).saturating_mul(MICROS_PER_DAY);
    if start_us > day_start || end_us < day_start.saturating_add(MICROS_PER_DAY) {
        let bound = |us| Term::from_field_date(fields.timestamp, super::schema::tantivy_date(us));
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(
                std::ops::Bound::Included(bound(start_us)),
                std::ops::Bound::Excluded(bound(end_us)),
            )),
        ));
    }
    if let Some(q) = user {
        clauses.push((Occur::Must, q.box_clone()));
    }
    Box::new(BooleanQuery::new(clauses))
}

pub(crate) fn search(
    fields: &Fields,
    days: &[Snapshot],
    req: &SearchRequest,
) -> Result<SearchResult> {
    let limit = req.limit.clamp(1, MAX_LIMIT);
    let after = req.cursor.as_deref().map(SortKey::decode).transpose()?;
    let mut user = query::compile_text(&req.query, fields)?;
    if let Some(ids) = &req.event_ids {
        let field = registry::field("event_id")
            .and_then(|def| fields.field(def))
            .ok_or_else(|| IndexError::Tantivy("schema has no `event_id` field".into()))?;
        let set: Box<dyn Query> = Box::new(tantivy::query::TermSetQuery::new(
            ids.iter().map(|id| Term::from_field_text(field, id)),
        ));
        user = Some(match user {
            None => set,
            Some(q) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, q),
                (Occur::Must, set),
            ])),
        });
    }
    let empty = SearchResult {
        total: 0,
        total_exact: true,
        hits: Vec::new(),
        next_cursor: None,
    };
    let Some(range) = micros_range(req.start, req.end) else {
        return Ok(empty);
    };
    let track = req.track_total.unwrap_or(u64::MAX);
    let page = limit + 1; // one more than the page, to know whether another page follows

    let mut total = 0u64;
    let mut counted_all = true;
    // The newest `page` hits so far, newest first: (key, index into `days`, address).
    let mut hits: Vec<(SortKey, usize, DocAddress)> = Vec::new();
    for (i, snap) in days.iter().enumerate() {
        let q = day_query(fields, &req.tenant, user.as_deref(), snap.day, range);
        let weight = q.weight(tantivy::query::EnableScoring::disabled_from_searcher(
            &snap.searcher,
        ))?;
        // Segments newest first: once the page is full, a segment whose newest event is older
        // than the page's oldest hit cannot change it, and is only counted (while the total
        // is still tracked) or skipped.
        let mut segments: Vec<(i64, i64, SegmentOrdinal)> = Vec::new();
        for (ord, reader) in snap.searcher.segment_readers().iter().enumerate() {
            let (oldest, newest) = segment_span(reader)?;
            segments.push((newest, oldest, ord as SegmentOrdinal));
        }
        segments.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        for (newest, oldest, ord) in segments {
            if let Some((d, limit_ms)) = req.deadline {
                if std::time::Instant::now() >= d {
                    return Err(IndexError::Timeout { limit_ms });
                }
            }
            let full = hits.len() >= page;
            let older_than_page = full && hits.last().is_some_and(|(k, _, _)| newest < k.ts_micros);
            let newer_than_cursor = after.is_some_and(|a| oldest > a.ts_micros);
            let reader = snap.searcher.segment_reader(ord);
            if older_than_page || newer_than_cursor {
                if total < track {
                    total += u64::from(weight.count(reader)?);
                } else {
                    counted_all = false;
                }
                continue;
            }
            let collector = TopCollector { k: page, after };
            let (count, top) = collector.collect_segment(&*weight, ord, reader)?;
            total += count;
            if !top.is_empty() {
                hits.extend(top.into_iter().map(|(key, addr)| (key, i, addr)));
                hits.sort_unstable_by_key(|h| std::cmp::Reverse(h.0));
                hits.truncate(page);
            }
        }
    }

    // Everything counted: exact, even past the threshold. Otherwise counting stopped once it
    // reached the threshold, which is then a lower bound.
    let total_exact = counted_all;
    let total = if total_exact { total } else { track };
    let more = hits.len() > limit;
    hits.truncate(limit);
    let next_cursor = if more {
        hits.last().map(|(key, _, _)| key.encode())
    } else {
        None
    };
    let hits = hits
        .into_iter()
        .map(|(_, i, addr)| load(fields, &days[i].searcher, addr))
        .collect::<Result<Vec<_>>>()?;
    Ok(SearchResult {
        total,
        total_exact,
        hits,
        next_cursor,
    })
}

/// Rebuilds a hit from its `_source`.
pub(crate) fn load(fields: &Fields, searcher: &Searcher, addr: DocAddress) -> Result<StoredEvent> {
    let doc: TantivyDocument = searcher.doc(addr)?;
    let bytes = doc
        .get_first(fields.source)
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| IndexError::Tantivy(format!("document {addr:?} has no `_source`")))?;
    StoredEvent::from_record(bytes)
        .map_err(|e| IndexError::Tantivy(format!("document {addr:?} has a corrupt `_source`: {e}")))
}

/// The query for one tenant's event id.
fn id_query(fields: &Fields, tenant: &str, event_id: &str) -> Result<BooleanQuery> {
    let term = |f, v: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(f, v),
            IndexRecordOption::Basic,
        ))
    };
    let event_field = registry::field("event_id")
        .and_then(|def| fields.field(def))
        .ok_or_else(|| IndexError::Tantivy("schema has no `event_id` field".into()))?;
    Ok(BooleanQuery::new(vec![
        (Occur::Must, term(fields.tenant, tenant)),
        (Occur::Must, term(event_field, event_id)),
    ]))
}

/// The newest event with this id (the WAL committer keeps ids unique per tenant).
pub(crate) fn get(
    fields: &Fields,
    days: &[Snapshot],
    tenant: &str,
    event_id: &str,
) -> Result<Option<StoredEvent>> {
    let q = id_query(fields, tenant, event_id)?;
    for snap in days {
        let (_, top) = snap
            .searcher
            .search(&q, &TopCollector { k: 1, after: None })?;
        if let Some((_, addr)) = top.first() {
            return load(fields, &snap.searcher, *addr).map(Some);
        }
    }
    Ok(None)
}

/// Whether any day holds an event with this id (without loading it).
pub(crate) fn contains(
    fields: &Fields,
    days: &[Snapshot],
    tenant: &str,
    event_id: &str,
) -> Result<bool> {
    let q = id_query(fields, tenant, event_id)?;
    for snap in days {
        if snap.searcher.search(&q, &Count)? > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Calls `f(position, record)` with the `_source` of every live document of a day.
pub(crate) fn for_each_record(
    fields: &Fields,
    snap: &Snapshot,
    f: &mut dyn FnMut(u64, &[u8]),
) -> Result<()> {
    for (ord, seg) in snap.searcher.segment_readers().iter().enumerate() {
        let pos = seg.fast_fields().u64(schema::POS)?;
        for doc in seg.doc_ids_alive() {
            let addr = DocAddress::new(ord as u32, doc);
            let stored: TantivyDocument = snap.searcher.doc(addr)?;
            let bytes = stored
                .get_first(fields.source)
                .and_then(|v| v.as_bytes())
                .ok_or_else(|| {
                    IndexError::Tantivy(format!("document {addr:?} has no `_source`"))
                })?;
            f(pos.first(doc).unwrap_or(u64::MAX), bytes);
        }
    }
    Ok(())
}

/// The oldest and newest event time of a segment, in microseconds.
fn segment_span(reader: &SegmentReader) -> Result<(i64, i64)> {
    let ts = reader.fast_fields().date(schema::TIMESTAMP)?;
    Ok((
        ts.min_value().into_timestamp_micros(),
        ts.max_value().into_timestamp_micros(),
    ))
}

/// One aggregation request (histogram or terms) over the days.
struct Aggregation<'a> {
    fields: &'a Fields,
    days: &'a [Snapshot],
    tenant: &'a str,
    query: &'a str,
    user: Option<&'a dyn Query>,
    range: (i64, i64),
    /// Names the aggregation in the cache key.
    what: &'a str,
}

/// The weights of one day for an aggregation: the range's, and the whole day's (built on
/// first use).
struct DayWeights<'a> {
    agg: &'a Aggregation<'a>,
    snap: &'a Snapshot,
    ranged: Box<dyn Weight>,
    whole: Option<Box<dyn Weight>>,
}

impl<'a> DayWeights<'a> {
    fn new(agg: &'a Aggregation<'a>, snap: &'a Snapshot) -> Result<Self> {
        Ok(DayWeights {
            agg,
            snap,
            ranged: agg.weight(snap, agg.range)?,
            whole: None,
        })
    }

    /// The tenant's events matching the query in `range` of this day.
    fn weight(&self, range: (i64, i64)) -> Result<Box<dyn Weight>> {
        self.agg.weight(self.snap, range)
    }

    /// The tenant's events matching the query, whatever their time.
    fn whole(&mut self) -> Result<&dyn Weight> {
        let w = match self.whole.take() {
            Some(w) => w,
            None => self.agg.weight(self.snap, (i64::MIN, i64::MAX))?,
        };
        Ok(&**self.whole.insert(w))
    }
}

/// A segment that holds events of the range.
struct Overlap<'a> {
    ord: SegmentOrdinal,
    reader: &'a SegmentReader,
    oldest: i64,
    newest: i64,
    /// The range holds all of the segment.
    inside: bool,
}

impl<'a> Aggregation<'a> {
    fn weight(&self, snap: &Snapshot, range: (i64, i64)) -> Result<Box<dyn Weight>> {
        Ok(
            day_query(self.fields, self.tenant, self.user, snap.day, range).weight(
                tantivy::query::EnableScoring::disabled_from_searcher(&snap.searcher),
            )?,
        )
    }

    /// The day's segments with events in the range (by their oldest and newest event).
    fn overlaps<'s>(&self, snap: &'s Snapshot) -> Result<Vec<Overlap<'s>>> {
        let mut out = Vec::new();
        for (ord, reader) in snap.searcher.segment_readers().iter().enumerate() {
            let (oldest, newest) = segment_span(reader)?;
            if newest < self.range.0 || oldest >= self.range.1 {
                continue;
            }
            out.push(Overlap {
                ord: ord as SegmentOrdinal,
                reader,
                oldest,
                newest,
                inside: oldest >= self.range.0 && newest < self.range.1,
            });
        }
        Ok(out)
    }

    /// What a segment's whole result is kept under.
    fn key(&self, reader: &SegmentReader) -> aggcache::Key {
        aggcache::Key {
            segment: reader.segment_id(),
            deleted: reader.num_deleted_docs(),
            tenant: self.tenant.to_string(),
            query: self.query.to_string(),
            what: self.what.to_string(),
        }
    }

    /// Calls `merge(result, false)` with every segment's result: kept in `cache` for the whole
    /// segment (computed by `compute` on a miss). Where the range cuts a segment and most of it
    /// looks inside (by its time span), the kept whole is merged and the part outside the
    /// range is computed and taken off with `merge(part, true)`; where most looks outside, the
    /// range is computed afresh.
    fn per_segment<V: Clone>(
        &self,
        cache: &aggcache::AggCache<V>,
        compute: &mut dyn FnMut(&dyn Weight, SegmentOrdinal, &SegmentReader) -> Result<V>,
        merge: &mut dyn FnMut(&V, bool),
    ) -> Result<()> {
        for snap in self.days {
            let mut weights = DayWeights::new(self, snap)?;
            for seg in self.overlaps(snap)? {
                let (ord, reader) = (seg.ord, seg.reader);
                // The share of the segment's time span that the range leaves out.
                let span = (i128::from(seg.newest) - i128::from(seg.oldest)).max(1);
                let out_span = (i128::from(self.range.0) - i128::from(seg.oldest)).max(0)
                    + (i128::from(seg.newest) + 1 - i128::from(self.range.1)).max(0);
                if !seg.inside && out_span * 2 > span {
                    merge(&compute(&*weights.ranged, ord, reader)?, false);
                    continue;
                }
                // Inside the range, the range's query holds the whole segment.
                let kept = cache.get_or_compute(self.key(reader), || {
                    let w = if seg.inside {
                        &*weights.ranged
                    } else {
                        weights.whole()?
                    };
                    compute(w, ord, reader)
                })?;
                merge(&kept, false);
                if seg.inside {
                    continue;
                }
                for part in [
                    (seg.oldest, self.range.0),
                    (self.range.1, seg.newest.saturating_add(1)),
                ] {
                    if part.0 < part.1 {
                        merge(&compute(&*weights.weight(part)?, ord, reader)?, true);
                    }
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn histogram(
    fields: &Fields,
    days: &[Snapshot],
    req: &HistogramRequest,
    cache: &aggcache::AggCache<aggcache::Counts>,
) -> Result<Vec<Bucket>> {
    // Bucket arithmetic in i128: no interval or range can overflow it.
    let interval = i128::try_from(req.interval.as_micros()).unwrap_or(i128::MAX);
    if interval < 1000 {
        return Err(IndexError::Param {
            param: "interval",
            reason: "must be at least 1ms, e.g. 1m or 1h".into(),
        });
    }
    let user = query::compile_text(&req.query, fields)?;
    let Some(range) = micros_range(req.start, req.end) else {
        return Ok(Vec::new());
    };
    let first = i128::from(range.0).div_euclid(interval) * interval;
    let n = (i128::from(range.1) - first + interval - 1) / interval;
    if n > MAX_BUCKETS {
        return Err(IndexError::Param {
            param: "interval",
            reason: format!(
                "{n} buckets between start and end; the limit is {MAX_BUCKETS}: use a longer interval or a shorter range"
            ),
        });
    }
    let n = n as usize;
    let mut counts = vec![0u64; n];
    let first_bucket = first / interval;
    let collector = HistogramCollector { first, interval, n };
    let what = format!("histogram {interval}");
    let last_bucket = first_bucket + n as i128 - 1;
    let mut add = |bucket: i128, c: u64| {
        if let Some(slot) = usize::try_from(bucket - first_bucket)
            .ok()
            .and_then(|i| counts.get_mut(i))
        {
            *slot += c;
        }
    };
    let agg = Aggregation {
        fields,
        days,
        tenant: &req.tenant,
        query: &req.query,
        user: user.as_deref(),
        range,
        what: &what,
    };
    for snap in days {
        let mut weights = DayWeights::new(&agg, snap)?;
        // Built on the first cut segment: the range's first and last buckets (the only ones
        // a range can cut).
        let mut edges: Option<Vec<(i128, Box<dyn Weight>)>> = None;
        for seg in agg.overlaps(snap)? {
            let (ord, reader) = (seg.ord, seg.reader);
            // The segment's own buckets, whatever the range: what is kept.
            let seg_first = i128::from(seg.oldest).div_euclid(interval) * interval;
            let seg_n = (i128::from(seg.newest) - seg_first) / interval + 1;
            if !seg.inside && seg_n > MAX_SEGMENT_BUCKETS {
                // Too fine to keep for the whole segment: count the range afresh.
                let counted = collector.collect_segment(&*weights.ranged, ord, reader)?;
                for (i, c) in counted.into_iter().enumerate() {
                    add(first_bucket + i as i128, c);
                }
                continue;
            }
            let kept = cache.get_or_compute(agg.key(reader), || {
                // Inside the range the range's buckets hold the whole segment.
                let (w, c) = if seg.inside {
                    (&*weights.ranged, HistogramCollector { first, interval, n })
                } else {
                    let c = HistogramCollector {
                        first: seg_first,
                        interval,
                        n: seg_n as usize,
                    };
                    (weights.whole()?, c)
                };
                let from = c.first / interval;
                let counted = c.collect_segment(w, ord, reader)?;
                Ok(std::sync::Arc::new(
                    counted
                        .into_iter()
                        .enumerate()
                        .filter(|(_, c)| *c > 0)
                        .map(|(i, c)| (from + i as i128, c))
                        .collect(),
                ))
            })?;
            if seg.inside {
                for (bucket, c) in kept.iter() {
                    add(*bucket, *c);
                }
                continue;
            }
            // Cut: the buckets the range holds whole come from the kept counts; the first and
            // last, which the range may cut, are counted exactly.
            for (bucket, c) in kept.iter() {
                if *bucket > first_bucket && *bucket < last_bucket {
                    add(*bucket, *c);
                }
            }
            let edges = match &mut edges {
                Some(e) => e,
                None => {
                    let mut e = Vec::new();
                    for bucket in [first_bucket, last_bucket] {
                        if e.iter().any(|(b, _)| *b == bucket) {
                            continue;
                        }
                        let lo = clamp_i64((bucket * interval).max(i128::from(range.0)));
                        let hi = clamp_i64(((bucket + 1) * interval).min(i128::from(range.1)));
                        e.push((bucket, weights.weight((lo, hi))?));
                    }
                    edges.insert(e)
                }
            };
            for (bucket, w) in edges.iter() {
                add(*bucket, u64::from(w.count(reader)?));
            }
        }
    }
    Ok(counts
        .into_iter()
        .enumerate()
        .map(|(i, count)| Bucket {
            time: from_micros(clamp_i64(first + i as i128 * interval)),
            count,
        })
        .collect())
}

pub(crate) fn terms(
    fields: &Fields,
    days: &[Snapshot],
    req: &TermsRequest,
    cache: &aggcache::AggCache<aggcache::TermCounts>,
) -> Result<Vec<TermCount>> {
    let Some(field) = registry::aggregatable()
        .map(|f| f.name)
        .find(|f| *f == req.field)
    else {
        return Err(IndexError::Param {
            param: "field",
            reason: format!(
                "`{}` cannot be aggregated; use one of: {}",
                req.field.chars().take(64).collect::<String>(),
                registry::names(registry::aggregatable())
            ),
        });
    };
    let size = req.size.clamp(1, MAX_TERMS);
    let user = query::compile_text(&req.query, fields)?;
    let Some(range) = micros_range(req.start, req.end) else {
        return Ok(Vec::new());
    };
    let mut counts: HashMap<String, u64> = HashMap::new();
    let collector = TermsCollector { field };
    let what = format!("terms {field}");
    let agg = Aggregation {
        fields,
        days,
        tenant: &req.tenant,
        query: &req.query,
        user: user.as_deref(),
        range,
        what: &what,
    };
    agg.per_segment(
        cache,
        &mut |weight, ord, reader| {
            Ok(std::sync::Arc::new(
                collector.collect_segment(weight, ord, reader)??,
            ))
        },
        &mut |seg, take_off| {
            for (value, n) in seg.iter() {
                if take_off {
                    if let Some(c) = counts.get_mut(value) {
                        *c = c.saturating_sub(*n);
                    }
                } else {
                    *counts.entry(value.clone()).or_default() += n;
                }
            }
        },
    )?;
    let mut out: Vec<TermCount> = counts
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(value, count)| TermCount { value, count })
        .collect();
    out.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    out.truncate(size);
    Ok(out)
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Calls `f` with the id key of every live document of a day.
pub(crate) fn for_each_id(snap: &Snapshot, f: &mut dyn FnMut(u128, i32)) -> Result<()> {
    for seg in snap.searcher.segment_readers() {
        let hi = seg.fast_fields().u64(schema::ID_HI)?;
        let lo = seg.fast_fields().u64(schema::ID_LO)?;
        for doc in seg.doc_ids_alive() {
            if let (Some(h), Some(l)) = (hi.first(doc), lo.first(doc)) {
                f(schema::join_key(h, l), snap.day);
            }
        }
    }
    Ok(())
}

/// Counts every match and keeps the `k` greatest sort keys strictly below `after`.
struct TopCollector {
    k: usize,
    after: Option<SortKey>,
}

struct TopSegment {
    segment: SegmentOrdinal,
    ts: Column<DateTime>,
    pos: Column<u64>,
    after: Option<SortKey>,
    count: u64,
    top: TopK,
    ts_buf: Vec<Option<DateTime>>,
}

impl Collector for TopCollector {
    type Fruit = (u64, Vec<(SortKey, DocAddress)>);
    type Child = TopSegment;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<TopSegment> {
        Ok(TopSegment {
            segment,
            ts: reader.fast_fields().date(schema::TIMESTAMP)?,
            pos: reader.fast_fields().u64(schema::POS)?,
            after: self.after,
            count: 0,
            top: TopK::new(self.k),
            ts_buf: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<(u64, Vec<(SortKey, DocAddress)>)>,
    ) -> tantivy::Result<Self::Fruit> {
        let mut count = 0;
        let mut all = Vec::new();
        for (c, hits) in fruits {
            count += c;
            all.extend(hits);
        }
        all.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        all.truncate(self.k);
        Ok((count, all))
    }
}

impl TopSegment {
    fn offer(&mut self, doc: DocId, ts: Option<DateTime>) {
        let Some(ts) = ts else { return };
        let ts_micros = ts.into_timestamp_micros();
        // Cheap rejections on the timestamp alone, before reading `pos`.
        if self.top.below_threshold_ts(ts_micros)
            || self.after.is_some_and(|a| ts_micros > a.ts_micros)
        {
            return;
        }
        let key = SortKey {
            ts_micros,
            pos: self.pos.first(doc).unwrap_or(0),
        };
        if self.after.is_some_and(|a| key >= a) {
            return;
        }
        self.top.push(key, doc);
    }
}

impl SegmentCollector for TopSegment {
    type Fruit = (u64, Vec<(SortKey, DocAddress)>);

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.count += 1;
        let ts = self.ts.first(doc);
        self.offer(doc, ts);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.count += docs.len() as u64;
        let mut buf = std::mem::take(&mut self.ts_buf);
        buf.clear();
        buf.resize(docs.len(), None);
        self.ts.first_vals(docs, &mut buf);
        for (doc, ts) in docs.iter().zip(&buf) {
            self.offer(*doc, *ts);
        }
        self.ts_buf = buf;
    }

    fn harvest(self) -> Self::Fruit {
        let segment = self.segment;
        let hits = self
            .top
            .into_sorted()
            .into_iter()
            .map(|(key, doc)| (key, DocAddress::new(segment, doc)))
            .collect();
        (self.count, hits)
    }
}

/// The `k` greatest keys pushed, in amortized O(1) per push: a buffer of up to `2k` entries
/// is cut back to its `k` greatest whenever it fills, and keys not above the k-th greatest
/// seen so far are rejected at once.
struct TopK {
    k: usize,
    buf: Vec<(SortKey, DocId)>,
    threshold: Option<SortKey>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            buf: Vec::new(),
            threshold: None,
        }
    }

    /// Whether every key with this timestamp is already out of the top k.
    fn below_threshold_ts(&self, ts_micros: i64) -> bool {
        self.threshold.is_some_and(|t| ts_micros < t.ts_micros)
    }

    fn push(&mut self, key: SortKey, doc: DocId) {
        if self.k == 0 || self.threshold.is_some_and(|t| key <= t) {
            return;
        }
        self.buf.push((key, doc));
        if self.buf.len() >= 2 * self.k {
            self.cut();
        }
    }

    fn cut(&mut self) {
        let k = self.k;
        self.buf.select_nth_unstable_by(k - 1, |a, b| b.0.cmp(&a.0));
        self.buf.truncate(k);
        self.threshold = self.buf.iter().map(|e| e.0).min();
    }

    fn into_sorted(mut self) -> Vec<(SortKey, DocId)> {
        self.buf.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        self.buf.truncate(self.k);
        self.buf
    }
}

/// Counts per time bucket.
struct HistogramCollector {
    first: i128,
    interval: i128,
    n: usize,
}

struct HistogramSegment {
    c: HistogramCollector,
    ts: Column<DateTime>,
    counts: Vec<u64>,
    buf: Vec<Option<DateTime>>,
}

impl Collector for HistogramCollector {
    type Fruit = Vec<u64>;
    type Child = HistogramSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<HistogramSegment> {
        Ok(HistogramSegment {
            c: HistogramCollector {
                first: self.first,
                interval: self.interval,
                n: self.n,
            },
            ts: reader.fast_fields().date(schema::TIMESTAMP)?,
            counts: vec![0; self.n],
            buf: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        let mut total = vec![0; self.n];
        for f in fruits {
            for (t, c) in total.iter_mut().zip(f) {
                *t += c;
            }
        }
        Ok(total)
    }
}

impl HistogramSegment {
    fn add(&mut self, ts: Option<DateTime>) {
        if let Some(ts) = ts {
            let i =
                (i128::from(ts.into_timestamp_micros()) - self.c.first).div_euclid(self.c.interval);
            if let Some(c) = usize::try_from(i).ok().and_then(|i| self.counts.get_mut(i)) {
                *c += 1;
            }
        }
    }
}

impl SegmentCollector for HistogramSegment {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let ts = self.ts.first(doc);
        self.add(ts);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(docs.len(), None);
        self.ts.first_vals(docs, &mut buf);
        for ts in &buf {
            self.add(*ts);
        }
        self.buf = buf;
    }

    fn harvest(self) -> Vec<u64> {
        self.counts
    }
}

/// Counts per value of one raw fast field (each value once per document).
struct TermsCollector {
    field: &'static str,
}

struct TermsSegment {
    column: Option<StrColumn>,
    /// Per term ordinal of this segment's dictionary.
    counts: Vec<u64>,
}

impl Collector for TermsCollector {
    type Fruit = Vec<(String, u64)>;
    type Child = TermsSegment;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<TermsSegment> {
        let column = reader.fast_fields().str(self.field)?;
        let n = column.as_ref().map_or(0, |c| c.num_terms());
        Ok(TermsSegment {
            column,
            counts: vec![0; n],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(
        &self,
        fruits: Vec<tantivy::Result<Vec<(String, u64)>>>,
    ) -> tantivy::Result<Self::Fruit> {
        let mut merged: HashMap<String, u64> = HashMap::new();
        for fruit in fruits {
            for (value, n) in fruit? {
                *merged.entry(value).or_default() += n;
            }
        }
        Ok(merged.into_iter().collect())
    }
}

impl SegmentCollector for TermsSegment {
    type Fruit = tantivy::Result<Vec<(String, u64)>>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(column) = &self.column {
            for ord in column.ords().values_for_doc(doc) {
                if let Some(c) = self.counts.get_mut(ord as usize) {
                    *c += 1;
                }
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        let Some(column) = self.column else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (ord, n) in self.counts.into_iter().enumerate().filter(|(_, n)| *n > 0) {
            let mut value = String::new();
            column
                .ord_to_str(ord as u64, &mut value)
                .map_err(|e| tantivy::TantivyError::IoError(e.into()))?;
            out.push((value, n));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_greatest() {
        let mut t = TopK::new(3);
        for i in 0..100u64 {
            t.push(
                SortKey {
                    ts_micros: (i % 10) as i64,
                    pos: i,
                },
                i as DocId,
            );
        }
        let got: Vec<u64> = t.into_sorted().iter().map(|(k, _)| k.pos).collect();
        assert_eq!(got, vec![99, 89, 79]);
        let mut t = TopK::new(0);
        t.push(
            SortKey {
                ts_micros: 0,
                pos: 0,
            },
            0,
        );
        assert!(t.into_sorted().is_empty());
    }
}
