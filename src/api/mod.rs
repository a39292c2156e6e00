//! The HTTP API (`/api/v1`), health, metrics and the dashboard, on one port.
//!
//! Every error is an RFC 9457 `application/problem+json` body naming the parameter at fault
//! ([`problem`]); `GET /api/v1/openapi.json` describes every route ([`openapi`]). Handlers
//! only translate HTTP to domain calls; searches run on the blocking pool because tantivy is
//! synchronous. Connections are served by [`serve`], which bounds what a slow or stalled
//! client can hold.

mod admin;
mod alerts;
mod fields;
mod ingest;
mod openapi;
mod params;
mod problem;
mod rules;
mod search;
mod serve;
pub mod tail;
mod web;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{middleware, Router};
use serde::Serialize;

pub use params::{parse_duration, parse_time, path_param, Params, RawParams};
pub use problem::{Problem, MAX_URI_BYTES};
pub use serve::{serve, ServeLimits};

use crate::app::Shared;
use crate::error::ErrorKind;
use crate::index::IndexError;

pub fn router(shared: Arc<Shared>) -> Router {
    let body_limit = shared.config.http_max_body_bytes;
    let mut router = Router::new();
    for (path, route) in routes() {
        router = router.route(path, route);
    }
    let app = router
        .route("/", get(web::index))
        .fallback(web::fallback)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(shared);
    // Around the whole router, not each route: a route adds `allow` to its 405 after its own
    // layers have run, and the problem should quote it.
    Router::new()
        .fallback_service(app)
        .layer(middleware::from_fn_with_state(
            body_limit,
            problem::normalize,
        ))
}

/// Runs `f` on the blocking pool (tantivy and the stores are synchronous); a task that
/// failed (a panic) is a 500 naming `what`.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "{what} task failed");
        Err(Problem::new(
            ErrorKind::Internal,
            "internal error",
            format!("the {what} failed; see the collector log"),
        ))
    })
}

/// Every route but the dashboard's; `/api/v1/openapi.json` describes exactly these (a test
/// checks).
pub(crate) fn routes() -> Vec<(&'static str, MethodRouter<Arc<Shared>>)> {
    vec![
        ("/api/v1/search", get(search::search)),
        ("/api/v1/histogram", get(search::histogram)),
        ("/api/v1/terms", get(search::terms)),
        ("/api/v1/events/{event_id}", get(search::event)),
        ("/api/v1/fields", get(fields::fields)),
        ("/api/v1/ingest", post(ingest::ingest)),
        ("/api/v1/tail", get(tail::tail)),
        ("/api/v1/findings", get(rules::findings)),
        ("/api/v1/findings/{id}", get(rules::finding)),
        ("/api/v1/rules", get(rules::rules)),
        ("/api/v1/rules/reload", post(rules::reload)),
        ("/api/v1/alerts", get(alerts::alerts)),
        ("/api/v1/alerts/{id}", get(alerts::alert)),
        ("/api/v1/alerts/{id}/ack", post(alerts::ack)),
        ("/api/v1/alerts/{id}/resolve", post(alerts::resolve)),
        (
            "/api/v1/silences",
            get(alerts::silences).post(alerts::create_silence),
        ),
        (
            "/api/v1/silences/{id}",
            axum::routing::delete(alerts::expire_silence),
        ),
        ("/api/v1/webhooks", get(alerts::webhooks)),
        (
            "/api/v1/webhooks/{name}/enable",
            post(alerts::enable_webhook),
        ),
        // auth: admin only (see admin.rs)
        ("/api/v1/admin/erase", post(admin::erase)),
        ("/api/v1/openapi.json", get(openapi::document)),
        ("/healthz", get(|| async { "ok\n" })),
        ("/readyz", get(readyz)),
        ("/metrics", get(metrics)),
    ]
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

/// A JSON answer. A value that cannot be written as JSON is a 500 problem, never a panic
/// (`serde_json::json!` unwraps its serializations and took the connection down).
pub(crate) fn json<T: Serialize>(value: &T) -> Result<Response, Problem> {
    match serde_json::to_vec(value) {
        Ok(body) => Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an answer as JSON");
            Err(Problem::new(
                ErrorKind::Internal,
                "internal error",
                "the answer could not be encoded as JSON; see the collector log",
            ))
        }
    }
}

impl From<IndexError> for Problem {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::Query { reason } => Problem::param("q", reason),
            IndexError::Param { param, reason } => Problem::param(param, reason),
            IndexError::Timeout { limit_ms } => Problem::new(
                ErrorKind::Unavailable,
                "search timed out",
                format!("the search took longer than `index.search_timeout_ms` ({limit_ms} ms) and was stopped; narrow the time range or the query"),
            ),
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
