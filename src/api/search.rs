//! Search, histogram, terms and get-by-id.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use time::OffsetDateTime;

use super::{blocking, json, parse_duration, path_param, Caller, Params, Problem, RawParams};
use crate::app::Shared;
use crate::error::ErrorKind;
use crate::event::{fields, StoredEvent};
use crate::index::{Bucket, HistogramRequest, SearchRequest, TermCount, TermsRequest};

/// Largest page.
pub const MAX_LIMIT: u64 = 10_000;
/// Findings read to filter a search by rule (their cited events are the filter).
const MAX_RULE_FINDINGS: usize = 10_000;

/// A search slot: at most `index.search_concurrency` searches, histograms and terms run at
/// once, so one heavy query never starves ingest or other users; a request that waits longer
/// than the search timeout for a slot is refused.
async fn slot(s: &Shared) -> Result<tokio::sync::OwnedSemaphorePermit, Problem> {
    let wait = s.config.search_timeout;
    match tokio::time::timeout(wait, s.search_slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(Problem::new(
            ErrorKind::Unavailable,
            "too many searches",
            format!(
                "{} searches were already running for {} ms (`index.search_concurrency`); retry shortly",
                s.config.search_concurrency,
                wait.as_millis()
            ),
        )),
    }
}

pub async fn search(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: RawParams,
) -> Result<Response, Problem> {
    let started = Instant::now();
    let tenant = caller.tenant();
    let p = Params::new(
        raw,
        &[
            "q",
            "start",
            "end",
            "limit",
            "cursor",
            "rule",
            "exact_total",
        ],
    )?;
    let exact_total = match p.opt("exact_total") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(Problem::param(
                "exact_total",
                format!("{v:?} is not true or false"),
            ))
        }
    };
    let now = OffsetDateTime::now_utc();
    let (start, end) = p.range(now)?;
    // `rule=`: the events that rule's findings cite (findings of the range, newest first).
    let event_ids = match p.opt("rule") {
        None => None,
        Some(rule) => {
            let q = crate::index::findings::FindingsQuery {
                tenant: tenant.to_string(),
                rule: Some(rule.to_string()),
                since: Some(start - time::Duration::days(1)),
                limit: MAX_RULE_FINDINGS,
                ..Default::default()
            };
            let store = s.findings.clone();
            let (_, found) =
                blocking("search", move || store.search(&q).map_err(Problem::from)).await?;
            Some(found.into_iter().flat_map(|f| f.event_ids).collect())
        }
    };
    let req = SearchRequest {
        tenant: tenant.to_string(),
        query: p.str("q").to_string(),
        start,
        end,
        limit: p.uint("limit", 100, 1, MAX_LIMIT)? as usize,
        cursor: p.opt("cursor").map(str::to_string),
        event_ids,
        track_total: (!exact_total).then_some(crate::index::TRACK_TOTAL),
        deadline: None,
    };
    let permit = slot(&s).await?;
    let budget = s.config.search_timeout;
    let req = SearchRequest {
        deadline: Some((Instant::now() + budget, budget.as_millis() as u64)),
        ..req
    };
    let index = s.index.clone();
    let result = blocking("search", move || {
        let _permit = permit;
        index.search(&req).map_err(Problem::from)
    })
    .await?;
    let took = started.elapsed();
    s.metrics.search.observe(took.as_secs_f64());
    #[derive(Serialize)]
    struct Answer<'a> {
        total: u64,
        /// `eq`: `total` is exact; `gte`: at least `total` (pass `exact_total=true` to count).
        total_relation: &'static str,
        hits: &'a [StoredEvent],
        next_cursor: Option<&'a str>,
        took_ms: u64,
    }
    json(&Answer {
        total: result.total,
        total_relation: if result.total_exact { "eq" } else { "gte" },
        hits: &result.hits,
        next_cursor: result.next_cursor.as_deref(),
        took_ms: took.as_millis() as u64,
    })
}

pub async fn histogram(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: RawParams,
) -> Result<Response, Problem> {
    let tenant = caller.tenant();
    let p = Params::new(raw, &["q", "start", "end", "interval"])?;
    let now = OffsetDateTime::now_utc();
    let (start, end) = p.range(now)?;
    let interval = match p.opt("interval") {
        None => {
            // About 60 buckets over the range, rounded to a whole minute at least.
            let secs = ((end - start).whole_seconds() / 60).max(60);
            std::time::Duration::from_secs(secs as u64)
        }
        Some(v) => parse_duration(v)
            .filter(|d| d.whole_seconds() > 0)
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| {
                Problem::param(
                    "interval",
                    format!("{v:?} is not a duration like 30s, 5m, 1h or 1d"),
                )
            })?,
    };
    let req = HistogramRequest {
        tenant: tenant.to_string(),
        query: p.str("q").to_string(),
        start,
        end,
        interval,
    };
    let permit = slot(&s).await?;
    let index = s.index.clone();
    let buckets = blocking("search", move || {
        let _permit = permit;
        index.histogram(&req).map_err(Problem::from)
    })
    .await?;
    #[derive(Serialize)]
    struct Answer<'a> {
        interval_secs: u64,
        buckets: &'a [Bucket],
    }
    json(&Answer {
        interval_secs: interval.as_secs(),
        buckets: &buckets,
    })
}

pub async fn terms(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: RawParams,
) -> Result<Response, Problem> {
    let tenant = caller.tenant();
    let p = Params::new(raw, &["q", "start", "end", "field", "size"])?;
    let now = OffsetDateTime::now_utc();
    let (start, end) = p.range(now)?;
    let field = p.opt("field").ok_or_else(|| {
        Problem::param(
            "field",
            format!(
                "is required; one of {}",
                fields::names(fields::aggregatable())
            ),
        )
    })?;
    let req = TermsRequest {
        tenant: tenant.to_string(),
        field: field.to_string(),
        query: p.str("q").to_string(),
        start,
        end,
        size: p.uint("size", 10, 1, 1000)? as usize,
    };
    let permit = slot(&s).await?;
    let index = s.index.clone();
    let terms = blocking("search", move || {
        let _permit = permit;
        index.terms(&req).map_err(Problem::from)
    })
    .await?;
    #[derive(Serialize)]
    struct Answer<'a> {
        field: &'a str,
        terms: &'a [TermCount],
    }
    json(&Answer {
        field,
        terms: &terms,
    })
}

pub async fn event(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    event_id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let event_id = path_param("event_id", "id", event_id)?;
    let tenant = caller.tenant();
    let index = s.index.clone();
    let id = event_id.clone();
    let found = blocking("search", move || {
        index.get(&tenant, &id).map_err(Problem::from)
    })
    .await?;
    match found {
        Some(ev) => json(&ev),
        None => Err(Problem::new(
            ErrorKind::NotFound,
            "not found",
            format!("no event with id {event_id:?} in the retained days"),
        )),
    }
}
