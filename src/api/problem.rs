//! RFC 9457 problem details, the one error body of the HTTP API.
//!
//! Handlers return [`Problem`]. The [`normalize`] middleware turns every other error response
//! into a problem as well (axum's rejections, 404 for an unknown route, 405 for a known route
//! with another method, 413), keeping headers such as `allow`, and answers a request target
//! longer than [`MAX_URI_BYTES`] with 414 before routing it.
//!
//! Not covered: errors hyper answers itself before a request reaches the router. A
//! malformed request line or header gets a bare `400`, a request target over 65,534 bytes a
//! bare `414`, and a request head over hyper's buffer (about 400 KiB) a bare `431`, each with
//! an empty body and the connection closed.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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
        (self.status, [(header::CONTENT_TYPE, PROBLEM_JSON)], json).into_response()
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
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(response.headers()) {
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

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
