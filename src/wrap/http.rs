//! HTTP mode: a reverse proxy for streamable-HTTP MCP servers (`--listen ADDR --upstream URL`).
//!
//! Every request is forwarded to the upstream's scheme, host and port with its own path and
//! query (so the host is configured with the same path it would use upstream, e.g. `/mcp`),
//! its method, headers (hop-by-hop ones aside) and body. POST bodies are read whole (they are
//! single JSON-RPC messages) so they can be recorded and, with enforcement on, judged; a
//! refused `tools/call` is answered `200` with a JSON-RPC error and never forwarded. Answers
//! stream back chunk by chunk as they arrive: an SSE answer or the GET notification stream is
//! never buffered. A copy of each chunk feeds a parser that cuts SSE events (or gathers a JSON
//! body) into messages for the recorder.
//!
//! Events carry the caller's address, `Mcp-Session-Id` as `session_id` (2025-11-25; the
//! 2026-07-28 revision has no sessions), and the `Mcp-Method`/`Mcp-Name` request headers as
//! labels `mcp.method_header`/`mcp.name_header` where the host sends them.
//!
//! Not done here: TLS on the listener (put it behind a TLS terminator, or keep it on
//! loopback), and authentication of callers (the upstream's own auth headers pass through).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::guard::{denial, Guard};
use super::observe::{learn_tools, Catalog, Dir, Envelope};
use super::Observed;

/// Largest request body read (MCP requests are single JSON-RPC messages).
const MAX_BODY: usize = 32 << 20;
/// Largest JSON answer copied for the recorder; bigger answers still pass through whole.
const MAX_JSON_COPY: usize = 16 << 20;

pub struct Proxy {
    pub listen: String,
    pub upstream: String,
    pub observed: mpsc::Sender<Observed>,
    pub guard: Option<Guard>,
    pub catalog: Catalog,
    pub lost: Arc<AtomicU64>,
}

struct Shared {
    upstream: url::Url,
    client: reqwest::Client,
    observed: mpsc::Sender<Observed>,
    guard: Option<Mutex<Guard>>,
    catalog: Catalog,
    lost: Arc<AtomicU64>,
    scopes: AtomicU64,
}

impl Shared {
    fn hand_over(&self, msg: Observed) {
        if self.observed.try_send(msg).is_err() && self.lost.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("mcp-audit wrap: warning: the recorder fell behind; some messages were relayed without being recorded");
        }
    }
}

/// Serves until SIGINT or SIGTERM; returns 0.
pub async fn run(p: Proxy) -> anyhow::Result<u8> {
    let upstream = url::Url::parse(&p.upstream).map_err(|e| {
        anyhow::anyhow!(
            "`--upstream` {:?} is not a URL like http://127.0.0.1:3001/mcp: {e}",
            p.upstream
        )
    })?;
    anyhow::ensure!(
        matches!(upstream.scheme(), "http" | "https") && upstream.host().is_some(),
        "`--upstream` {:?} must be an http:// or https:// URL with a host",
        p.upstream
    );
    let listener = tokio::net::TcpListener::bind(&p.listen)
        .await
        .map_err(|e| anyhow::anyhow!("`--listen` {}: cannot bind: {e}", p.listen))?;
    let local = listener.local_addr()?;
    eprintln!("mcp-audit wrap: listening on http://{local}, forwarding to {upstream}");
    let shared = Arc::new(Shared {
        upstream,
        client: reqwest::Client::builder()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the upstream HTTP client: {e}"))?,
        observed: p.observed,
        guard: p.guard.map(Mutex::new),
        catalog: p.catalog,
        lost: p.lost,
        scopes: AtomicU64::new(1),
    });
    let app = axum::Router::new().fallback(proxy).with_state(shared);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stop_rx.changed().await;
    })
    .into_future();
    tokio::pin!(serve);
    tokio::select! {
        r = &mut serve => r?,
        () = crate::cli::shutdown_signal() => {
            let _ = stop_tx.send(true);
            // Open SSE streams never end by themselves; they get a moment, not forever.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), serve).await;
        }
    }
    Ok(0)
}

/// Headers that belong to one hop and are not forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r
}

async fn proxy(
    State(s): State<Arc<Shared>>,
    ConnectInfo(caller): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let scope = s.scopes.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let env = Envelope {
        remote_addr: caller.to_string(),
        session_id: header(&parts.headers, "mcp-session-id"),
        mcp_method: header(&parts.headers, "mcp-method"),
        mcp_name: header(&parts.headers, "mcp-name"),
    };
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "mcp-audit wrap: cannot read the request body (at most {MAX_BODY} bytes): {e}"
                ),
            )
        }
    };
    if !body.is_empty() {
        if let Some(guard) = &s.guard {
            if let Ok(msg) = serde_json::from_slice::<Value>(&body) {
                let verdict = guard
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .check(&msg, &s.catalog);
                if let Some(reason) = verdict {
                    let answer = denial(&msg, &reason);
                    s.hand_over(Observed::Denied {
                        scope,
                        request: msg,
                        reason,
                        env,
                    });
                    let mut r = Response::new(Body::from(answer));
                    r.headers_mut().insert(
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("application/json"),
                    );
                    return r;
                }
            }
        }
        s.hand_over(Observed::Message {
            scope,
            dir: Dir::HostToServer,
            bytes: body.to_vec(),
            env: env.clone(),
            at: std::time::Instant::now(),
        });
    }
    let mut url = s.upstream.clone();
    url.set_path(parts.uri.path());
    url.set_query(parts.uri.query());
    let mut upstream_req = s.client.request(parts.method.clone(), url);
    for (name, value) in parts.headers.iter() {
        if !hop_by_hop(name) {
            upstream_req = upstream_req.header(name, value);
        }
    }
    let answer = match upstream_req.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            return plain(
                StatusCode::BAD_GATEWAY,
                format!(
                    "mcp-audit wrap: the upstream MCP server at {} did not answer: {}",
                    s.upstream,
                    crate::cli::client::error_chain(&e)
                ),
            )
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let kind = header(&headers, "content-type");
    let mut env = env;
    if env.session_id.is_empty() {
        // The answer to `initialize` is where a 2025-11-25 session gets its id.
        env.session_id = header(&headers, "mcp-session-id");
    }
    let mut tap = Tap {
        shared: s.clone(),
        scope,
        env,
        sse: kind.starts_with("text/event-stream"),
        json: kind.starts_with("application/json"),
        buf: Vec::new(),
    };
    let stream = answer.bytes_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            tap.feed(bytes);
        }
        chunk
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = status;
    for (name, value) in headers.iter() {
        if !hop_by_hop(name) {
            r.headers_mut().append(name, value.clone());
        }
    }
    r
}

/// Copies an answer's messages to the recorder as its chunks pass.
struct Tap {
    shared: Arc<Shared>,
    scope: u64,
    env: Envelope,
    sse: bool,
    json: bool,
    buf: Vec<u8>,
}

impl Tap {
    fn feed(&mut self, chunk: &[u8]) {
        if self.sse {
            self.buf.extend_from_slice(chunk);
            // An SSE event ends at a blank line (LF LF, or CR LF CR LF).
            while let Some(end) = event_end(&self.buf) {
                let event: Vec<u8> = self.buf.drain(..end.1).collect();
                self.sse_event(&event[..end.0]);
            }
        } else if self.json && self.buf.len() + chunk.len() <= MAX_JSON_COPY {
            self.buf.extend_from_slice(chunk);
        }
    }

    fn sse_event(&mut self, event: &[u8]) {
        let text = String::from_utf8_lossy(event);
        let mut data = String::new();
        for line in text.lines() {
            if let Some(d) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
        if !data.is_empty() {
            self.message(data.into_bytes());
        }
    }

    fn message(&self, bytes: Vec<u8>) {
        if self.shared.guard.is_some() {
            // The guard must know a tool's definition before the host can call it.
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                if let Some(result) = v.get("result") {
                    learn_tools(&self.shared.catalog, result);
                }
            }
        }
        self.shared.hand_over(Observed::Message {
            scope: self.scope,
            dir: Dir::ServerToHost,
            bytes,
            env: self.env.clone(),
            at: std::time::Instant::now(),
        });
    }
}

impl Drop for Tap {
    /// A JSON answer is one message, complete when its body ends.
    fn drop(&mut self) {
        if self.json && !self.buf.is_empty() {
            let bytes = std::mem::take(&mut self.buf);
            self.message(bytes);
        }
    }
}

/// Where the first SSE event in `buf` ends: (end of its text, end of its blank line).
fn event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::event_end;

    #[test]
    fn sse_events_end_at_a_blank_line_of_either_style() {
        assert_eq!(event_end(b"data: {}\n\nrest"), Some((8, 10)));
        assert_eq!(event_end(b"data: {}\r\n\r\n"), Some((8, 12)));
        assert_eq!(event_end(b"data: {}\n"), None);
    }
}
