//! gRPC client plumbing shared by `ship`, `demo` and `bench`.

use std::time::Duration;

use anyhow::Context;
use futures::Stream;
use prost::bytes::{BufMut, Bytes};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::proto::ingest_client::IngestClient;
use crate::proto::ShipResponse;

pub const DEFAULT_GRPC: &str = "http://127.0.0.1:4317";
pub const DEFAULT_HTTP: &str = "http://127.0.0.1:8080";

/// Largest gRPC message either way (the collector's default `grpc.max_message_bytes`).
const MAX_MESSAGE: usize = 64 << 20;

/// One connection to the collector. It reconnects by itself on the next call after the
/// connection drops; HTTP/2 keep-alive notices a peer that vanished without closing, so a
/// long-lived idle stream (a `ship` following a log) fails and is retried instead of hanging.
pub async fn channel(endpoint: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(endpoint.to_string())
        .with_context(|| format!("`--endpoint` {endpoint:?} is not a URL like {DEFAULT_GRPC}"))?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true)
        .connect()
        .await
        .with_context(|| {
            format!("cannot connect to the collector at {endpoint}; is `mcp-audit serve` running?")
        })
}

pub async fn connect(endpoint: &str) -> anyhow::Result<IngestClient<Channel>> {
    Ok(IngestClient::new(channel(endpoint).await?)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// The `authorization` header value for `--token`, checked once.
pub fn bearer(token: Option<&str>) -> anyhow::Result<Option<MetadataValue<Ascii>>> {
    token
        .map(|t| {
            format!("Bearer {t}")
                .parse()
                .context("`--token` contains characters not allowed in a header")
        })
        .transpose()
}

/// Wraps a message with the bearer token, if any.
pub fn request<T>(msg: T, token: Option<&str>) -> anyhow::Result<Request<T>> {
    Ok(authorized(msg, bearer(token)?))
}

fn authorized<T>(msg: T, auth: Option<MetadataValue<Ascii>>) -> Request<T> {
    let mut req = Request::new(msg);
    if let Some(v) = auth {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

/// Opens a `Ship` stream whose requests are `ShipRequest`s already encoded as protobuf bytes.
///
/// `ship` encodes each batch once, on its parser threads, and keeps the bytes until the
/// collector acknowledges the batch, so re-sending it after a reconnect costs no re-encoding.
pub async fn ship_encoded(
    channel: Channel,
    requests: impl Stream<Item = Bytes> + Send + 'static,
    auth: Option<MetadataValue<Ascii>>,
) -> Result<Streaming<ShipResponse>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("the connection is not ready: {e}")))?;
    let path = PathAndQuery::from_static("/mcpaudit.v1.Ingest/Ship");
    let response = grpc
        .streaming(authorized(requests, auth), path, PreEncoded)
        .await?;
    Ok(response.into_inner())
}

/// Sends bytes as they are; decodes `ShipResponse`s.
#[derive(Clone, Copy)]
struct PreEncoded;

impl Codec for PreEncoded {
    type Encode = Bytes;
    type Decode = ShipResponse;
    type Encoder = PreEncoded;
    type Decoder = PreEncoded;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncoded
    }

    fn decoder(&mut self) -> Self::Decoder {
        PreEncoded
    }
}

impl Encoder for PreEncoded {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PreEncoded {
    type Item = ShipResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ShipResponse>, Status> {
        ShipResponse::decode(src).map(Some).map_err(|e| {
            Status::internal(format!("the collector's answer is not a ShipResponse: {e}"))
        })
    }
}

/// Whether a failed call may succeed if retried with the same events.
pub fn transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable
            | tonic::Code::DeadlineExceeded
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::Unknown
    )
}
