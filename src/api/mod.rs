//! The HTTP API (`/api/v1`), health, metrics and the dashboard, on one port.
//!
//! Every error is an RFC 9457 `application/problem+json` body naming the parameter at fault.
//! Handlers only translate HTTP to domain calls; searches run on the blocking pool because
//! tantivy is synchronous.

mod ingest;
mod search;
pub mod tail;
mod web;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::app::Shared;
use crate::error::ErrorKind;
use crate::index::IndexError;

pub fn router(shared: Arc<Shared>) -> Router {
    let body_limit = shared.config.http_max_body_bytes;
    Router::new()
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/histogram", get(search::histogram))
        .route("/api/v1/terms", get(search::terms))
        .route("/api/v1/events/{event_id}", get(search::event))
        .route("/api/v1/ingest", post(ingest::ingest))
        .route("/api/v1/tail", get(tail::tail))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(web::index))
        .route("/{*path}", get(web::asset))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(shared)
}

/// Ready while started and no stage is failing; otherwise a 503 problem naming each failing
/// stage and why.
async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    if !s.ready.load(Ordering::Acquire) {
        return Problem::new(
            ErrorKind::Unavailable,
            "not ready",
            "the collector is starting or shutting down",
        )
        .into_response();
    }
    let failures = s.health.failures();
    if failures.is_empty() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let detail = failures
        .iter()
        .map(|(c, f)| format!("{c} failing since {}: {}", f.since, f.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Problem::new(ErrorKind::Unavailable, "not ready", detail).into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// An RFC 9457 problem.
#[derive(Debug)]
pub struct Problem {
    pub kind: ErrorKind,
    pub title: &'static str,
    pub detail: String,
    pub param: Option<String>,
}

impl Problem {
    pub fn new(kind: ErrorKind, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            title,
            detail: detail.into(),
            param: None,
        }
    }

    pub fn param(param: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidArgument,
            title: "invalid parameter",
            detail: format!("`{param}`: {}", detail.into()),
            param: Some(param.to_string()),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({ "type": "about:blank", "title": self.title, "status": status.as_u16(), "detail": self.detail });
        if let Some(p) = self.param {
            body["param"] = json!(p);
        }
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<IndexError> for Problem {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Query { reason } => Problem::param("q", reason),
            IndexError::Param { param, reason } => Problem::param(param, reason),
            other => {
                tracing::error!(error = %other, "index failure");
                Problem::new(
                    ErrorKind::Internal,
                    "index failure",
                    "the search index failed; see the collector log",
                )
            }
        }
    }
}

/// Resolves the caller's tenant from the `authorization` header.
pub fn tenant(s: &Shared, headers: &HeaderMap) -> Result<Arc<str>, Problem> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    s.auth
        .tenant(h)
        .map_err(|e| Problem::new(ErrorKind::Unauthenticated, "unauthenticated", e.to_string()))
}

/// Query parameters, rejecting names the endpoint does not know (a typo must not silently
/// widen a search).
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn new(raw: HashMap<String, String>, known: &[&str]) -> Result<Self, Problem> {
        if let Some(k) = raw.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Problem::param(
                k,
                format!("unknown parameter; known: {}", known.join(", ")),
            ));
        }
        Ok(Self(raw))
    }

    pub fn str(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn opt(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn uint(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, Problem> {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(Problem::param(
                    name,
                    format!("must be a whole number from {min} to {max}, got {v:?}"),
                )),
            },
        }
    }

    pub fn time(
        &self,
        name: &str,
        default: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, Problem> {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => parse_time(v, now).map_err(|reason| Problem::param(name, reason)),
        }
    }

    /// `start`/`end` with the default range of the last 24 hours.
    pub fn range(&self, now: OffsetDateTime) -> Result<(OffsetDateTime, OffsetDateTime), Problem> {
        let start = self.time("start", now - Duration::hours(24), now)?;
        // The end is exclusive; default a little in the future so events stamped "now" by a
        // slightly fast clock are still found.
        let end = self.time("end", now + Duration::hours(1), now)?;
        if start >= end {
            return Err(Problem::param("start", "must be before `end`"));
        }
        Ok((start, end))
    }
}

/// Parses a duration like `15m`, `2h`, `7d`, `30s`, `1w`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs).map(Duration::seconds)
}

/// Parses `now`, a relative time (`-15m`, `-7d`) or an RFC 3339 time.
pub fn parse_time(v: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if v == "now" {
        return Ok(now);
    }
    if let Some(rel) = v.strip_prefix('-') {
        return parse_duration(rel)
            .and_then(|d| now.checked_sub(d))
            .ok_or_else(|| format!("{v:?} is not a relative time like -15m, -2h or -7d"));
    }
    OffsetDateTime::parse(v, &Rfc3339).map_err(|_| format!("{v:?} is neither an RFC 3339 time (2026-11-24T10:00:00Z) nor a relative time (-15m, -7d)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert_eq!(
            parse_time("-15m", now).unwrap(),
            now - Duration::minutes(15)
        );
        assert_eq!(parse_time("-7d", now).unwrap(), now - Duration::days(7));
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert!(parse_time("1970-01-12T13:46:40Z", now).is_ok());
        assert!(parse_time("-15x", now).is_err());
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("-99999999999999999d", now).is_err());
    }
}
