//! RFC 9457 problem details, the one error body of the HTTP API.
//!
//! Handlers return [`Problem`]. The [`normalize`] middleware turns every other error response
//! into a problem as well (axum's rejections, 404 for an unknown route, 405 for a known route
//! with another method, 413), keeping headers such as `allow`; answers a request target
//! longer than [`MAX_URI_BYTES`] with 414 before routing it; and answers a handler that
//! panics with a 500 problem instead of dropping the connection.
//!
//! Not covered: errors hyper answers itself before a request reaches the router. A
//! malformed request line or header gets a bare `400`, a request target over 65,534 bytes a
//! bare `414`, and a request head over hyper's buffer (about 400 KiB) a bare `431`, each with
//! an empty body and the connection closed.

use std::panic::AssertUnwindSafe;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde::Serialize;

use crate::error::ErrorKind;

/// Longest request target (path and query) the API reads; longer ones get a 414 problem.
pub const MAX_URI_BYTES: usize = 16 << 10;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem. `type` is always `about:blank`: the status says what kind of problem
/// it is, `detail` what exactly is wrong and what to do, `param` which parameter is at fault.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    pub param: Option<String>,
    /// Seconds for a `Retry-After` header (quotas, lockouts).
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem of a domain error kind; the status comes from [`ErrorKind::http_status`].
    pub fn new(kind: ErrorKind, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::from_u16(kind.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            title,
            detail: detail.into(),
            param: None,
            retry_after: None,
        }
    }

    /// An invalid request parameter (400); the detail starts with the parameter's name.
    pub fn param(param: &str, detail: impl Into<String>) -> Self {
        Self {
            param: Some(param.to_string()),
            ..Self::new(
                ErrorKind::InvalidArgument,
                "invalid parameter",
                format!("`{param}`: {}", detail.into()),
            )
        }
    }

    /// A problem of the HTTP exchange itself (405, 408, 413, 414...), titled by its status.
    pub fn http(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: status.canonical_reason().unwrap_or("error"),
            detail: detail.into(),
            param: None,
            retry_after: None,
        }
    }

    /// The same problem, naming the parameter at fault.
    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }
}

#[derive(Serialize)]
struct Body<'a> {
    r#type: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Body {
            r#type: "about:blank",
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            param: self.param.as_deref(),
        };
        // Strings and a number only: serializing cannot fail.
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp = (self.status, [(header::CONTENT_TYPE, PROBLEM_JSON)], json).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
    }
}

fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON))
}

/// At most this much of a request path is echoed back in a detail.
const ECHO_CHARS: usize = 200;

fn echo(path: &str) -> String {
    let mut s: String = path.chars().take(ECHO_CHARS).collect();
    if s.len() < path.len() {
        s.push('…');
    }
    s
}

/// Middleware: refuses over-long request targets, and turns every error response that is not
/// a problem yet into one. `max_body_bytes` is the configured body limit, for the 413 detail.
pub async fn normalize(State(max_body_bytes): State<usize>, req: Request, next: Next) -> Response {
    let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > MAX_URI_BYTES {
        return Problem::http(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {target_len} bytes; the limit is {MAX_URI_BYTES}: send fewer or shorter parameters"),
        )
        .into_response();
    }
    let method = req.method().clone();
    let path = echo(req.uri().path());
    // A handler that panics must still answer (a dropped connection tells the client nothing);
    // the panic is a bug, logged for the operator.
    let response = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%method, %path, panic = message, "http: a handler panicked");
            return Problem::new(
                ErrorKind::Internal,
                "internal error",
                "the collector failed to answer; see its log",
            )
            .into_response();
        }
    };
    let status = response.status();
    // OTLP fixes its own error bodies (`google.rpc.Status`).
    if !(status.is_client_error() || status.is_server_error())
        || is_problem(response.headers())
        || response
            .extensions()
            .get::<super::otlp::OtlpAnswer>()
            .is_some()
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let detail = match status {
        StatusCode::NOT_FOUND => {
            format!("nothing at {path}; the API is described at /api/v1/openapi.json")
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("{method} is not allowed on {path}; allowed: {allowed}")
        }
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is over {max_body_bytes} bytes (`http.max_body_bytes`): send smaller batches"
        ),
        _ if !text.trim().is_empty() => lowercase_first(text.trim()),
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_lowercase(),
    };
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), %path, detail, "http: internal error");
    }
    let mut out = Problem::http(status, detail).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

pub(super) fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::routing::get;
    use axum::Router;
    use tokio::net::TcpListener;

    use super::*;
    use crate::api::{serve, ServeLimits};

    /// Serves `app` behind [`normalize`] on loopback and GETs `path` from it.
    async fn answer(app: Router, path: &str) -> (StatusCode, String, serde_json::Value) {
        let app = app.layer(axum::middleware::from_fn_with_state(
            1usize << 20,
            normalize,
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ServeLimits {
            header_timeout: std::time::Duration::from_secs(5),
            idle_timeout: std::time::Duration::from_secs(5),
            max_connections: 4,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, limits, None, async move {
            let _ = stopped.await;
        }));
        let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let ctype = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let body = response.json().await.unwrap();
        let _ = stop.send(());
        server.await.unwrap();
        (status, ctype, body)
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_problem() {
        let app = Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("bug");
                }
                "unreachable"
            }),
        );
        let (status, ctype, v) = answer(app, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ctype, PROBLEM_JSON);
        assert_eq!(v["status"], 500);
    }

    #[tokio::test]
    async fn plain_text_errors_become_problems() {
        let app = Router::new().route(
            "/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, "Short and stout") }),
        );
        let (status, ctype, v) = answer(app, "/teapot").await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(ctype, PROBLEM_JSON);
        assert_eq!(v["detail"], "short and stout");
        assert_eq!(v["title"], "I'm a teapot");
    }
}
