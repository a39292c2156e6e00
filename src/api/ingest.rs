//! `POST /api/v1/ingest`: NDJSON, the same semantics as gRPC `Send`.
//!
//! The body is read here, not by an extractor, so each way it can be wrong gets its own
//! problem: over `http.max_body_bytes` (declared or counted, chunked bodies too) is 413, a
//! body that stops arriving for `http.idle_timeout_ms` is 408, a line that is not UTF-8 is a
//! 400 naming the line (see [`wire::decode_body`], which splits the body into events).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde::Serialize;

use super::{json, Caller, Problem};
use crate::app::Shared;
use crate::error::ErrorKind;
use crate::ingest::json as wire;
use crate::wal::WalError;

pub async fn ingest(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    // Events always go to the credential's own tenant, whatever tenant the request reads.
    let tenant = caller.principal.tenant.clone();
    let body = read_body(
        body,
        &headers,
        s.config.http_max_body_bytes,
        s.config.http_idle_timeout,
    )
    .await?;
    let wire::NdjsonBody { events, line_of } = wire::decode_body(&body, s.config.max_batch_events)
        .map_err(|reason| Problem::param("body", reason))?;
    let n = u32::try_from(events.len()).unwrap_or(u32::MAX);
    s.auth
        .take_ingest(&caller.principal, n)
        .map_err(|r| super::auth::problem(r, "too many requests"))?;
    let mut result = s
        .ingestor
        .ingest(tenant, events)
        .await
        .map_err(|e: WalError| {
            let title = match e.kind() {
                ErrorKind::Unavailable => "unavailable",
                _ => "storage failure",
            };
            Problem::new(e.kind(), title, e.to_string())
        })?;
    for r in &mut result.rejected {
        r.index = line_of.get(r.index as usize).copied().unwrap_or(r.index);
    }
    #[derive(Serialize)]
    struct Rejected<'a> {
        index: u32,
        event_id: &'a str,
        reason: &'a str,
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        accepted: &'a [String],
        rejected: Vec<Rejected<'a>>,
    }
    json(&Answer {
        accepted: &result.accepted,
        rejected: result
            .rejected
            .iter()
            .map(|r| Rejected {
                index: r.index,
                event_id: &r.event_id,
                reason: &r.reason,
            })
            .collect(),
    })
}

/// Reads the whole body, at most `limit` bytes, each chunk within `idle` of the previous one.
pub(super) async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
    idle: Duration,
) -> Result<Bytes, Problem> {
    let too_large = || {
        Problem::http(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over {limit} bytes (`http.max_body_bytes`): send smaller batches"),
        )
        .with_param("body")
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // A declared length is a hint, not a promise: reserve at most 1 MiB up front.
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n.min(1 << 20) as usize));
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(Problem::http(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "no part of the request body arrived for {} ms (`http.idle_timeout_ms`) after {} bytes",
                        idle.as_millis(),
                        out.len()
                    ),
                )
                .with_param("body"))
            }
            Ok(None) => return Ok(Bytes::from(out)),
            Ok(Some(Err(e))) => {
                return Err(Problem::param(
                    "body",
                    format!("the request body could not be read: {e}"),
                ))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
}
