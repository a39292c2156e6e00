//! Ingest: the front doors for events. Decodes each wire format (protobuf over gRPC, JSON
//! lines over HTTP, OpenTelemetry spans and logs over OTLP in [`otlp`]), validates every
//! event on its own, binds it to the caller's tenant, scrubs it, and hands the valid ones to
//! the WAL. A bad event is rejected with its index and a reason; the good events of the same
//! batch are still stored.
//!
//! This module and `api/` are the only ones that know wire formats.

pub mod codec;
pub mod grpc;
pub mod json;
pub mod otlp;
pub mod proto;
pub mod validate;

use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

pub use validate::{Invalid, Limits, Rejection};

use crate::backlog::Backlog;
use crate::event::Event;
use crate::metrics::Metrics;
use crate::scrub::Scrubber;
use crate::wal::{CommitterHandle, Pending, WalError};

/// The answer to one batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchResult {
    pub accepted: Vec<String>,
    pub rejected: Vec<Rejection>,
}

/// One event of a batch as it came off the wire.
pub struct Incoming {
    pub decoded: Result<Event, Invalid>,
    /// Encoded size, for the size limit.
    pub wire_bytes: usize,
    /// The client's event id, when known, to name a rejected event.
    pub id_hint: String,
}

/// The shared ingest path behind every front door.
pub struct Ingestor {
    pub scrubber: Arc<Scrubber>,
    pub committer: CommitterHandle,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    /// Bounds the bytes between here and the index (see [`crate::backlog`]).
    pub backlog: Backlog,
}

impl Ingestor {
    /// Validates, scrubs and durably stores a batch for `tenant`. Returns only after every
    /// accepted event is fsynced.
    pub async fn ingest(
        &self,
        tenant: Arc<str>,
        batch: Vec<Incoming>,
    ) -> Result<BatchResult, WalError> {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        let mut rejected = Vec::new();
        let mut pending = Vec::with_capacity(batch.len());
        let mut charge = self
            .backlog
            .charge(batch.iter().map(|item| item.wire_bytes).sum())
            .await;
        for (i, item) in batch.into_iter().enumerate() {
            let index = i as u32;
            let checked = item.decoded.and_then(|mut ev| {
                validate::check(&mut ev, item.wire_bytes, &self.limits, now).map(|()| ev)
            });
            match checked {
                Ok(mut event) => {
                    let redactions = if cfg!(feature = "bench-unscrubbed") {
                        Vec::new()
                    } else {
                        self.scrubber.scrub(&mut event)
                    };
                    for r in &redactions {
                        self.metrics.redacted(&r.kind, r.count as u64);
                    }
                    match Pending::new(event, redactions, charge.take(item.wire_bytes)) {
                        Ok(p) => pending.push(p),
                        Err(reason) => {
                            self.metrics.reject("too_large");
                            rejected
                                .push(Invalid::new("too_large", reason).at(index, &item.id_hint));
                        }
                    }
                }
                Err(invalid) => {
                    self.metrics.reject(invalid.code);
                    rejected.push(invalid.at(index, &item.id_hint));
                }
            }
        }
        let committed = self.committer.commit(tenant, pending).await?;
        self.metrics.ack.observe(started.elapsed().as_secs_f64());
        Ok(BatchResult {
            accepted: committed.accepted,
            rejected,
        })
    }
}

pub use crate::auth::DEFAULT_TENANT;
