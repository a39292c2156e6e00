//! `POST /api/v1/ingest`: NDJSON, the same semantics as gRPC `Send`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{tenant, Problem};
use crate::app::Shared;
use crate::error::ErrorKind;
use crate::ingest::{json as wire, Incoming};
use crate::wal::WalError;

pub async fn ingest(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Result<Response, Problem> {
    let tenant = tenant(&s, &headers)?;
    let lines: Vec<&str> = body.lines().collect();
    if lines.len() > s.config.max_batch_events {
        return Err(Problem::param(
            "body",
            format!(
                "{} lines, over the limit of {} events per request (`ingest.max_batch_events`)",
                lines.len(),
                s.config.max_batch_events
            ),
        ));
    }
    // Blank lines keep their number so rejection indexes match the sender's line numbers, but
    // are not events.
    let mut batch = Vec::with_capacity(lines.len());
    let mut index_of = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        index_of.push(i as u32);
        batch.push(Incoming {
            decoded: wire::decode_line(line),
            wire_bytes: line.len(),
            id_hint: wire::event_id_hint(line),
        });
    }
    let mut result = s
        .ingestor
        .ingest(tenant, batch)
        .await
        .map_err(|e: WalError| {
            let title = match e.kind() {
                ErrorKind::Unavailable => "unavailable",
                _ => "storage failure",
            };
            Problem::new(e.kind(), title, e.to_string())
        })?;
    for r in &mut result.rejected {
        r.index = index_of.get(r.index as usize).copied().unwrap_or(r.index);
    }
    let rejected: Vec<_> = result
        .rejected
        .iter()
        .map(|r| json!({ "index": r.index, "event_id": r.event_id, "reason": r.reason }))
        .collect();
    Ok(Json(json!({ "accepted": result.accepted, "rejected": rejected })).into_response())
}
