//! The OTLP receiver: OpenTelemetry trace and log exports become tool-call events.
//!
//! Both transports of OTLP end here: OTLP/gRPC (`TraceService/Export`, `LogsService/Export`,
//! [`grpc`]) on the gRPC port and OTLP/HTTP (`POST /v1/traces`, `/v1/logs`, in `api/otlp.rs`)
//! on the HTTP port, protobuf or JSON ([`json`]). [`Receiver`] is what they share: it maps an
//! export ([`map`], pure), drops and counts what is not an audit event, takes the events from
//! the caller's ingest quota and stores them through the same [`Ingestor`] as native ingest
//! (validation, scrubbing, fsync before the answer). Events that ingest rejects are counted in
//! the answer's `partial_success` with their reasons; dropped spans are not rejections (the
//! exporter did nothing wrong) and only show in `/metrics`. What differs between the two
//! signals (message types, JSON decoding, mapping, answers) is [`Export`], so that each
//! transport serves traces and logs with one piece of code.
//!
//! Not here: credentials are checked by each transport before an export reaches the receiver
//! (gRPC metadata in [`grpc`], the HTTP middleware for HTTP), and findings are not exported as
//! OTLP logs yet (the seam is [`crate::rules`]'s findings; see the README).

pub mod grpc;
pub mod json;
pub mod map;

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::{Incoming, Ingestor, Rejection};
use crate::auth::{Auth, Principal, Refusal};
use crate::error::ErrorKind;
use crate::metrics::Metrics;
use crate::wal::WalError;

pub use opentelemetry_proto::tonic as pb;

/// The signal of an export, for messages and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
        }
    }

    /// What one item of the signal is called in messages.
    fn item(self) -> &'static str {
        match self {
            Signal::Traces => "span",
            Signal::Logs => "log record",
        }
    }
}

/// What an export achieved, for its `partial_success`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Exported {
    pub accepted: u64,
    /// Audit spans or records refused by ingest (each with its reason in `message`).
    pub rejected: u64,
    /// Why they were refused; empty when nothing was.
    pub message: String,
}

impl Exported {
    /// `partial_success` as (rejected, error message); `None` on full success, where the
    /// spec requires the field to be left unset.
    pub fn partial(&self) -> Option<(i64, String)> {
        (self.rejected > 0 || !self.message.is_empty()).then(|| {
            (
                i64::try_from(self.rejected).unwrap_or(i64::MAX),
                self.message.clone(),
            )
        })
    }
}

/// The export request of one signal, with everything the transports need that differs
/// between traces and logs, so that each transport serves both with one piece of code.
pub trait Export: Message + Default + Send + Sync + 'static {
    /// The export's protobuf answer.
    type Response: Message + Default + Send + 'static;
    const SIGNAL: Signal;
    /// The request's protobuf message name, for decode errors.
    const MESSAGE: &'static str;
    /// The OTLP/gRPC service's full name.
    const SERVICE: &'static str;
    /// The OTLP/gRPC path of the service's `Export` method.
    const EXPORT_PATH: &'static str;

    /// Decodes the OTLP/JSON encoding; the error names where the body is wrong.
    fn from_json(body: &[u8]) -> Result<Self, String>;
    /// The export's events and what was dropped ([`map`]).
    fn mapped(&self) -> map::Mapped;
    /// The protobuf answer, with `partial_success` when some items were rejected.
    fn response(done: &Exported) -> Self::Response;
    /// The OTLP/JSON answer.
    fn json_response(done: &Exported) -> Vec<u8>;
}

impl Export for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;
    const SIGNAL: Signal = Signal::Traces;
    const MESSAGE: &'static str = "ExportTraceServiceRequest";
    const SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

    fn from_json(body: &[u8]) -> Result<Self, String> {
        json::traces(body)
    }

    fn mapped(&self) -> map::Mapped {
        map::traces(self)
    }

    fn response(done: &Exported) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: done
                .partial()
                .map(|(rejected, message)| ExportTracePartialSuccess {
                    rejected_spans: rejected,
                    error_message: message,
                }),
        }
    }

    fn json_response(done: &Exported) -> Vec<u8> {
        json::traces_response(done.rejected, &done.message)
    }
}

impl Export for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;
    const MESSAGE: &'static str = "ExportLogsServiceRequest";
    const SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const EXPORT_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

    fn from_json(body: &[u8]) -> Result<Self, String> {
        json::logs(body)
    }

    fn mapped(&self) -> map::Mapped {
        map::logs(self)
    }

    fn response(done: &Exported) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: done
                .partial()
                .map(|(rejected, message)| ExportLogsPartialSuccess {
                    rejected_log_records: rejected,
                    error_message: message,
                }),
        }
    }

    fn json_response(done: &Exported) -> Vec<u8> {
        json::logs_response(done.rejected, &done.message)
    }
}

/// Why an export was refused as a whole (nothing of it was stored).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Storage(#[from] WalError),
    #[error("{0}")]
    Invalid(String),
}

impl ExportError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExportError::Refused(r) => r.kind(),
            ExportError::Storage(e) => e.kind(),
            ExportError::Invalid(_) => ErrorKind::InvalidArgument,
        }
    }

    /// Seconds to wait before sending again, when waiting helps (throttled, or storage
    /// unavailable for a while).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ExportError::Refused(r) => r.retry_after_secs(),
            ExportError::Storage(e) if e.kind() == ErrorKind::Unavailable => {
                Some(UNAVAILABLE_RETRY_SECS)
            }
            _ => None,
        }
    }
}

/// How long an exporter is asked to wait when the WAL cannot take writes.
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// The `google.rpc.Status` message (OTLP/HTTP error bodies, gRPC error details). Declared
/// here because it is three fields, not worth another generated package.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`: how an OTLP/gRPC server says a throttled export may be retried.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// The shared receiving end of both OTLP transports.
pub struct Receiver {
    pub ingestor: Arc<Ingestor>,
    pub auth: Auth,
    pub metrics: Arc<Metrics>,
    /// Events stored per ingest call (`ingest.max_batch_events`); a bigger export is stored
    /// in several calls, all before the answer.
    pub max_batch_events: usize,
}

impl Receiver {
    /// Stores a trace or logs export: what it achieved, or why nothing of it was stored.
    pub async fn export<E: Export>(
        &self,
        who: &Principal,
        req: &E,
    ) -> Result<Exported, ExportError> {
        self.store(who, E::SIGNAL, req.mapped()).await
    }

    async fn store(
        &self,
        who: &Principal,
        signal: Signal,
        mapped: map::Mapped,
    ) -> Result<Exported, ExportError> {
        for (why, n) in &mapped.dropped {
            self.metrics.otlp_dropped(signal.as_str(), why.as_str(), *n);
        }
        let mut events = mapped.events;
        if events.is_empty() {
            return Ok(Exported::default());
        }
        let n = u32::try_from(events.len()).unwrap_or(u32::MAX);
        self.auth.take_ingest(who, n)?;
        let total = events.len();
        let mut rejected: Vec<Rejection> = Vec::new();
        let mut accepted = 0u64;
        let mut offset = 0u32;
        let chunk = self.max_batch_events.max(1);
        while !events.is_empty() {
            let rest = events.split_off(chunk.min(events.len()));
            let batch: Vec<Incoming> = std::mem::replace(&mut events, rest);
            let len = batch.len() as u32;
            let result = self.ingestor.ingest(who.tenant.clone(), batch).await?;
            accepted += result.accepted.len() as u64;
            rejected.extend(result.rejected.into_iter().map(|mut r| {
                r.index += offset;
                r
            }));
            offset += len;
        }
        self.metrics.otlp_accepted(signal.as_str(), accepted);
        Ok(Exported {
            accepted,
            rejected: rejected.len() as u64,
            message: rejection_message(signal, total, &rejected),
        })
    }
}

/// At most this many reasons are spelled out in `error_message`.
const REASONS_SHOWN: usize = 5;

/// `error_message` of a partial success: how many were rejected, and why (the first few).
fn rejection_message(signal: Signal, total: usize, rejected: &[Rejection]) -> String {
    if rejected.is_empty() {
        return String::new();
    }
    let item = signal.item();
    let mut out = format!("{} of {total} audit {item}s rejected: ", rejected.len());
    let reasons: Vec<String> = rejected
        .iter()
        .take(REASONS_SHOWN)
        .map(|r| {
            // The event id carries the span's trace and span ids; without one, the position
            // among the export's audit items (dropped ones not counted).
            let name = if r.event_id.is_empty() {
                format!("{item} #{}", r.index)
            } else {
                format!("{item} {}", r.event_id)
            };
            format!("{name}: {}", r.reason)
        })
        .collect();
    out.push_str(&reasons.join("; "));
    if rejected.len() > REASONS_SHOWN {
        out.push_str(&format!("; and {} more", rejected.len() - REASONS_SHOWN));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_each_rejected_item_and_its_reason() {
        let r = |i: u32, id: &str| Rejection {
            index: i,
            event_id: id.into(),
            code: "timestamp",
            reason: "`timestamp` is 40d old".into(),
        };
        assert_eq!(rejection_message(Signal::Traces, 3, &[]), "");
        assert_eq!(
            rejection_message(Signal::Traces, 3, &[r(1, "otel-a-b")]),
            "1 of 3 audit spans rejected: span otel-a-b: `timestamp` is 40d old"
        );
        let many: Vec<_> = (0..7).map(|i| r(i, "")).collect();
        let m = rejection_message(Signal::Logs, 9, &many);
        assert!(m.starts_with("7 of 9 audit log records rejected: log record #0: "));
        assert!(m.ends_with("; and 2 more"));
    }
}
