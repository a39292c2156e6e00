//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export` and
//! `opentelemetry.proto.collector.logs.v1.LogsService/Export`, served beside `mcpaudit.v1`
//! on the gRPC port.
//!
//! The services are written out here rather than taken from opentelemetry-proto's generated
//! servers so that they decode with [`StrictCodec`]: a malformed export is `INVALID_ARGUMENT`
//! (the OTLP spec's answer for bad data, never retried), not prost's `INTERNAL`. gzip
//! requests are accepted. Errors follow the OTLP/gRPC spec: `UNAUTHENTICATED` and
//! `PERMISSION_DENIED` for credentials, `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo`
//! detail (and `retry-after` metadata) when the caller's quota is spent, `UNAVAILABLE` (also
//! with `RetryInfo`) while the WAL cannot take writes.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{http, Body, BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::pb::collector::logs::v1::ExportLogsServiceRequest;
use super::pb::collector::trace::v1::ExportTraceServiceRequest;
use super::{Export, ExportError, ProtoAny, ProtoDuration, Receiver, RetryInfo, RpcStatus};
use crate::ingest::codec::StrictCodec;
use crate::ingest::grpc::ingest_caller;

/// An export refused as a whole, as the OTLP/gRPC spec wants it said.
pub fn export_status(e: ExportError) -> Status {
    let code = e.kind().grpc_code();
    let message = e.to_string();
    let Some(secs) = e.retry_after_secs() else {
        return Status::new(code, message);
    };
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(secs).unwrap_or(i64::MAX),
            nanos: 0,
        }),
    };
    let details = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![ProtoAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".to_string(),
            value: retry.encode_to_vec(),
        }],
    };
    let mut status = Status::with_details(code, message, details.encode_to_vec().into());
    if let Ok(v) = secs.to_string().parse() {
        status.metadata_mut().insert("retry-after", v);
    }
    status
}

/// A unary handler as tonic's [`UnaryService`].
struct Unary<F>(F);

impl<F, Req, Resp, Fut> UnaryService<Req> for Unary<F>
where
    F: FnMut(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    type Response = Resp;
    type Future = Fut;

    fn call(&mut self, request: Request<Req>) -> Fut {
        (self.0)(request)
    }
}

/// Answers an unknown method of a service, as generated tonic servers do.
fn unimplemented() -> http::Response<tonic::body::Body> {
    Status::unimplemented("no such method; OTLP exports are `Export`").into_http()
}

/// `TraceService`.
pub type TraceService = ExportService<ExportTraceServiceRequest>;

/// `LogsService`.
pub type LogsService = ExportService<ExportLogsServiceRequest>;

/// An OTLP export service (`TraceService` or `LogsService`, after the request type `E`): one
/// `Export` method.
pub struct ExportService<E> {
    receiver: Arc<Receiver>,
    /// `grpc.max_message_bytes`.
    max_message_bytes: usize,
    /// `fn() -> E`: the service holds no `E`, so it is `Send + Sync` whatever `E` is.
    signal: PhantomData<fn() -> E>,
}

// Not derived: a derive would ask `E: Clone`, which the service does not need.
impl<E> Clone for ExportService<E> {
    fn clone(&self) -> Self {
        Self {
            receiver: self.receiver.clone(),
            max_message_bytes: self.max_message_bytes,
            signal: PhantomData,
        }
    }
}

impl<E: Export> ExportService<E> {
    pub fn new(receiver: Arc<Receiver>, max_message_bytes: usize) -> Self {
        Self {
            receiver,
            max_message_bytes,
            signal: PhantomData,
        }
    }

    fn grpc(&self) -> Grpc<StrictCodec<E::Response, E>> {
        let mut accept = tonic::codec::EnabledCompressionEncodings::default();
        accept.enable(CompressionEncoding::Gzip);
        Grpc::new(StrictCodec::default())
            .apply_compression_config(accept, Default::default())
            .apply_max_message_size_config(Some(self.max_message_bytes), None)
    }
}

impl<E: Export> NamedService for ExportService<E> {
    const NAME: &'static str = E::SERVICE;
}

impl<E, B> Service<http::Request<B>> for ExportService<E>
where
    E: Export,
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != E::EXPORT_PATH {
            return Box::pin(async { Ok(unimplemented()) });
        }
        let service = self.clone();
        Box::pin(async move {
            let receiver = service.receiver.clone();
            let handler = Unary(move |r: Request<E>| {
                let receiver = receiver.clone();
                async move {
                    let who = ingest_caller(&receiver.auth, &r).await?;
                    let exported = receiver
                        .export(&who, r.get_ref())
                        .await
                        .map_err(export_status)?;
                    Ok(Response::new(E::response(&exported)))
                }
            });
            let mut grpc = service.grpc();
            Ok(grpc.unary(handler, req).await)
        })
    }
}
