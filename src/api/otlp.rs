//! OTLP/HTTP: `POST /v1/traces` and `POST /v1/logs`, the OTLP exporters' default paths.
//!
//! The request is `application/x-protobuf` or `application/json` (OTLP/JSON), optionally
//! `Content-Encoding: gzip`, and the answer uses the request's encoding, as the OTLP spec
//! requires: 200 with the export response (with `partialSuccess` when some audit spans were
//! rejected), or an error status whose body is a `google.rpc.Status`: 400 for a body that
//! does not decode, 413 over `http.max_body_bytes` (after decompression too), 415 for another
//! content type or encoding, 429 with `Retry-After` over the ingest quota, 503 with
//! `Retry-After` while starting or while the WAL cannot take writes. Credentials are checked
//! by the API's middleware like every route (role `ingest`); on these routes its refusals
//! (401, 403, 429) are `google.rpc.Status` bodies too ([`refused`]).
//!
//! These routes are described by the OTLP specification, not by `/api/v1/openapi.json`.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;

use super::Caller;
use crate::app::Shared;
use crate::error::ErrorKind;
use crate::ingest::otlp::pb::collector::logs::v1::ExportLogsServiceRequest;
use crate::ingest::otlp::pb::collector::trace::v1::ExportTraceServiceRequest;
use crate::ingest::otlp::{json, Export, ExportError, RpcStatus, UNAVAILABLE_RETRY_SECS};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The two OTLP/HTTP encodings; an answer is written in the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

/// Marks an OTLP answer, so that the API's error normalisation leaves its body alone (the
/// OTLP spec fixes it).
#[derive(Debug, Clone, Copy)]
pub struct OtlpAnswer;

/// An OTLP/HTTP error: its status, the `google.rpc.Status` message, and `Retry-After`.
struct Failure {
    status: StatusCode,
    code: ErrorKind,
    message: String,
    retry_after: Option<u64>,
}

impl Failure {
    fn new(status: StatusCode, code: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn response(self, encoding: Encoding) -> Response {
        let code = self.code.grpc_code() as i32;
        let body = match encoding {
            Encoding::Protobuf => RpcStatus {
                code,
                message: self.message,
                details: Vec::new(),
            }
            .encode_to_vec(),
            Encoding::Json => json::status(code, &self.message),
        };
        let mut resp = answer(self.status, encoding, body);
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<ExportError> for Failure {
    fn from(e: ExportError) -> Self {
        let kind = e.kind();
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            retry_after: e.retry_after_secs(),
            ..Self::new(status, kind, e.to_string())
        }
    }
}

/// A refused credential on an OTLP route (401, 403, 429 from the API's middleware): the OTLP
/// spec wants every 4xx body to be a `google.rpc.Status`, in the request's encoding
/// (protobuf when the request's is neither).
pub fn refused(headers: &HeaderMap, r: &crate::auth::Refusal) -> Response {
    let kind = r.kind();
    let status = StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    let encoding = match essence(content_type(headers)).as_str() {
        JSON => Encoding::Json,
        _ => Encoding::Protobuf,
    };
    Failure {
        retry_after: r.retry_after_secs(),
        ..Failure::new(status, kind, r.to_string())
    }
    .response(encoding)
}

/// The request's `Content-Type` ("" when absent or not text).
fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// A media type lower case, without parameters.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn answer(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response();
    resp.extensions_mut().insert(OtlpAnswer);
    resp
}

pub async fn traces(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export::<ExportTraceServiceRequest>(&s, &caller, &headers, body).await
}

pub async fn logs(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export::<ExportLogsServiceRequest>(&s, &caller, &headers, body).await
}

/// One export of either signal: read, decode, store, answer in the request's encoding.
async fn export<E: Export>(
    s: &Shared,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let (encoding, body) = match read(s, headers, body).await {
        Ok(read) => read,
        Err((failure, encoding)) => return failure.response(encoding),
    };
    let req = match encoding {
        Encoding::Protobuf => {
            E::decode(body).map_err(|e| format!("the body is not a protobuf {}: {e}", E::MESSAGE))
        }
        Encoding::Json => E::from_json(&body),
    };
    let req = match req {
        Ok(req) => req,
        Err(message) => {
            return Failure::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidArgument, message)
                .response(encoding)
        }
    };
    match s.otlp.export(&caller.principal, &req).await {
        Err(e) => Failure::from(e).response(encoding),
        Ok(done) => {
            let body = match encoding {
                Encoding::Protobuf => E::response(&done).encode_to_vec(),
                Encoding::Json => E::json_response(&done),
            };
            answer(StatusCode::OK, encoding, body)
        }
    }
}

/// The request's encoding and its decompressed body; an error comes with the encoding to
/// answer it in (protobuf, OTLP's default, when the request's is not one of OTLP's).
async fn read(
    s: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Encoding, Bytes), (Failure, Encoding)> {
    let content_type = content_type(headers);
    let encoding = match essence(content_type).as_str() {
        PROTOBUF => Encoding::Protobuf,
        JSON => Encoding::Json,
        _ => {
            return Err((
                Failure::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorKind::InvalidArgument,
                    format!("content type {content_type:?} is not an OTLP encoding: send `{PROTOBUF}` or `{JSON}`"),
                ),
                Encoding::Protobuf,
            ))
        }
    };
    let fail = |f: Failure| (f, encoding);
    if !s.ready.load(Ordering::Acquire) {
        let mut f = Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Unavailable,
            "the collector is starting or stopping; retry later",
        );
        f.retry_after = Some(UNAVAILABLE_RETRY_SECS);
        return Err(fail(f));
    }
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return Err(fail(Failure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorKind::InvalidArgument,
                format!("content encoding {other:?} is not supported: send `gzip` or none"),
            )))
        }
    };
    let limit = s.config.http_max_body_bytes;
    let raw = super::ingest::read_body(body, headers, limit, s.config.http_idle_timeout)
        .await
        .map_err(|p| fail(Failure::new(p.status, ErrorKind::InvalidArgument, p.detail)))?;
    if !gzip {
        return Ok((encoding, raw));
    }
    let mut out = Vec::new();
    // One byte past the limit tells an over-limit body from one exactly at it.
    let read = flate2::read::GzDecoder::new(raw.as_ref())
        .take(limit as u64 + 1)
        .read_to_end(&mut out);
    match read {
        Err(e) => Err(fail(Failure::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidArgument,
            format!("the body is not valid gzip (`Content-Encoding: gzip`): {e}"),
        ))),
        Ok(_) if out.len() > limit => Err(fail(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::InvalidArgument,
            format!("the decompressed body is over {limit} bytes (`http.max_body_bytes`): send smaller batches"),
        ))),
        Ok(_) => Ok((encoding, Bytes::from(out))),
    }
}
