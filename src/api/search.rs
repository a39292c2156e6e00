//! Search, histogram, terms and get-by-id.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use time::OffsetDateTime;

use super::{json, parse_duration, problem, tenant, Params, Problem, RawParams};
use crate::app::Shared;
use crate::error::ErrorKind;
use crate::event::{fields, StoredEvent};
use crate::index::{Bucket, HistogramRequest, SearchRequest, TermCount, TermsRequest};

/// Largest page.
pub const MAX_LIMIT: u64 = 10_000;
/// Findings read to filter a search by rule (their cited events are the filter).
const MAX_RULE_FINDINGS: usize = 10_000;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "search task failed");
        Err(Problem::new(
            ErrorKind::Internal,
            "internal error",
            "the search failed; see the collector log",
        ))
    })
}

pub async fn search(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    raw: RawParams,
) -> Result<Response, Problem> {
    let started = Instant::now();
    let tenant = tenant(&s, &headers)?;
    let p = Params::new(raw, &["q", "start", "end", "limit", "cursor", "rule"])?;
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
            let (_, found) = blocking(move || store.search(&q).map_err(Problem::from)).await?;
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
    };
    let index = s.index.clone();
    let result = blocking(move || index.search(&req).map_err(Problem::from)).await?;
    let took = started.elapsed();
    s.metrics.search.observe(took.as_secs_f64());
    #[derive(Serialize)]
    struct Answer<'a> {
        total: u64,
        hits: &'a [StoredEvent],
        next_cursor: Option<&'a str>,
        took_ms: u64,
    }
    json(&Answer {
        total: result.total,
        hits: &result.hits,
        next_cursor: result.next_cursor.as_deref(),
        took_ms: took.as_millis() as u64,
    })
}

pub async fn histogram(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    raw: RawParams,
) -> Result<Response, Problem> {
    let tenant = tenant(&s, &headers)?;
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
    let index = s.index.clone();
    let buckets = blocking(move || index.histogram(&req).map_err(Problem::from)).await?;
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
    headers: HeaderMap,
    raw: RawParams,
) -> Result<Response, Problem> {
    let tenant = tenant(&s, &headers)?;
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
    let index = s.index.clone();
    let terms = blocking(move || index.terms(&req).map_err(Problem::from)).await?;
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
    headers: HeaderMap,
    event_id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let Path(event_id) = event_id.map_err(|e| {
        Problem::param(
            "event_id",
            format!(
                "{}; percent-encode the id as UTF-8",
                problem::lowercase_first(&e.body_text())
            ),
        )
    })?;
    let tenant = tenant(&s, &headers)?;
    let index = s.index.clone();
    let id = event_id.clone();
    let found = blocking(move || index.get(&tenant, &id).map_err(Problem::from)).await?;
    match found {
        Some(ev) => json(&ev),
        None => Err(Problem::new(
            ErrorKind::NotFound,
            "not found",
            format!("no event with id {event_id:?} in the retained days"),
        )),
    }
}
