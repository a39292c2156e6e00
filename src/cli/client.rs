//! gRPC client plumbing shared by `ship`, `demo` and `bench`.

use anyhow::Context;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::Request;

use crate::proto::ingest_client::IngestClient;

pub const DEFAULT_GRPC: &str = "http://127.0.0.1:4317";
pub const DEFAULT_HTTP: &str = "http://127.0.0.1:8080";

pub async fn connect(endpoint: &str) -> anyhow::Result<IngestClient<Channel>> {
    let channel = Endpoint::from_shared(endpoint.to_string())
        .with_context(|| format!("`--endpoint` {endpoint:?} is not a URL like {DEFAULT_GRPC}"))?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| {
            format!("cannot connect to the collector at {endpoint}; is `mcp-audit serve` running?")
        })?;
    Ok(IngestClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}

/// Wraps a message with the bearer token, if any.
pub fn request<T>(msg: T, token: Option<&str>) -> anyhow::Result<Request<T>> {
    let mut req = Request::new(msg);
    if let Some(t) = token {
        let v: MetadataValue<_> = format!("Bearer {t}")
            .parse()
            .context("`--token` contains characters not allowed in a header")?;
        req.metadata_mut().insert("authorization", v);
    }
    Ok(req)
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
