//! The HTTP API (`/api/v1`), health, metrics and the dashboard, on one port.
//!
//! Every error is an RFC 9457 `application/problem+json` body naming the parameter at fault
//! ([`problem`]); `GET /api/v1/openapi.json` describes every route ([`openapi`]). Handlers
//! only translate HTTP to domain calls; searches run on the blocking pool because tantivy is
//! synchronous. Connections are served by [`serve`], which bounds what a slow or stalled
//! client can hold.

mod admin;
mod alerts;
pub mod auth;
mod fields;
mod ingest;
mod openapi;
mod otlp;
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

pub use auth::Caller;
pub use params::{parse_duration, parse_time, path_param, Params, RawParams};
pub use problem::{Problem, MAX_URI_BYTES};
pub use serve::{serve, ServeLimits};

use crate::app::Shared;
use crate::error::ErrorKind;
use crate::index::IndexError;

pub fn router(shared: Arc<Shared>) -> Router {
    let body_limit = shared.config.http_max_body_bytes;
    let mut router = Router::new();
    for (path, route) in routes().into_iter().chain(otlp_routes()) {
        router = router.route(path, route);
    }
    // Before the dashboard's routes: the dashboard's files are public, its data is not.
    let router = router.route_layer(middleware::from_fn_with_state(
        shared.clone(),
        auth::authorize,
    ));
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
        .layer(middleware::from_fn(security_headers))
}

/// The dashboard's content security policy: only its own scripts, styles and connections, no
/// inline code, never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers on every answer: API answers are never cached (they hold audit data), the
/// dashboard runs under [`CSP`], nothing is sniffed or framed. No CORS headers are sent, so
/// browsers keep other origins out.
async fn security_headers(req: axum::extract::Request, next: middleware::Next) -> Response {
    let api = req.uri().path().starts_with("/api/")
        || req.uri().path().starts_with("/v1/")
        || req.uri().path() == "/metrics";
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    if api {
        h.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    } else {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(CSP),
        );
    }
    resp
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

/// OTLP/HTTP's routes. They are left out of `/api/v1/openapi.json` on purpose: the OTLP
/// specification describes them (protobuf bodies, `google.rpc.Status` errors instead of
/// problems), and an OpenAPI client or fuzzer could not speak them.
pub(crate) fn otlp_routes() -> Vec<(&'static str, MethodRouter<Arc<Shared>>)> {
    vec![
        ("/v1/traces", post(otlp::traces)),
        ("/v1/logs", post(otlp::logs)),
    ]
}

/// Every route but the dashboard's and OTLP's; `/api/v1/openapi.json` describes exactly
/// these (a test checks).
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
        ("/api/v1/admin/erase", post(admin::erase)),
        ("/api/v1/openapi.json", get(openapi::document)),
        (
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        ),
        ("/healthz", get(|| async { "ok\n" })),
        ("/readyz", get(readyz)),
        ("/metrics", get(metrics)),
    ]
}

/// RFC 9728 protected-resource metadata: where clients get access tokens for this collector.
/// A 404 problem when no identity provider is configured (`[auth.jwt]`).
async fn protected_resource(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match s.auth.jwt() {
        Some(v) => {
            let body = v.metadata(&auth::resource_url(&s, &headers));
            match json(&body) {
                Ok(r) => r,
                Err(p) => p.into_response(),
            }
        }
        None => Problem::new(
            ErrorKind::NotFound,
            "not found",
            "this collector has no identity provider configured (`[auth.jwt]`); it takes collector tokens only",
        )
        .into_response(),
    }
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
        return (StatusCode::OK, format!("ready\n{}", tls_status(&s))).into_response();
    }
    let detail = failures
        .iter()
        .map(|(c, f)| format!("{c} failing since {}: {}", f.since, f.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Problem::new(ErrorKind::Unavailable, "not ready", detail).into_response()
}

/// The listeners' TLS, for `/readyz`: a failed reload does not stop serving (the previous
/// certificate stays), so it is shown here rather than making the collector unready.
fn tls_status(s: &Shared) -> String {
    let Some(tls) = &s.tls else {
        return "tls: off\n".into();
    };
    let loaded = tls.loaded();
    let mut out = format!("tls: grpc and http, {}", tls.client_certs());
    if let Some(c) = &loaded.cert {
        out.push_str(&format!(
            "; certificate {:?} serial {} expires {}",
            c.subject,
            c.serial,
            crate::tls::rfc3339(c.not_after)
        ));
    }
    out.push('\n');
    if let Some(f) = tls.failure() {
        out.push_str(&format!(
            "tls: the reload at {} failed, still serving the certificate loaded at {}: {}\n",
            crate::tls::rfc3339(f.at),
            crate::tls::rfc3339(loaded.at),
            f.reason
        ));
    }
    out
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
