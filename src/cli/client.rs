//! Client plumbing shared by the commands that talk to a collector: gRPC (`ship`, `demo`,
//! `bench`), the HTTP client (`search`, `bench`), and TLS for `https://` endpoints.
//!
//! An `https://` endpoint is verified against the system's trusted CAs, or only against
//! `--ca-cert` when it is given (as `curl --cacert` does); `--client-cert` and `--client-key`
//! present a client certificate to a collector that requires one (mTLS). Over `http://` these
//! options are ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use futures::Stream;
use prost::bytes::{BufMut, Bytes};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder, Streaming};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use crate::proto::ingest_client::IngestClient;
use crate::proto::ShipResponse;

pub const DEFAULT_GRPC: &str = "http://127.0.0.1:4317";
pub const DEFAULT_HTTP: &str = "http://127.0.0.1:8080";

/// Largest gRPC message either way (the collector's default `grpc.max_message_bytes`).
const MAX_MESSAGE: usize = 64 << 20;

/// TLS options of the commands that talk to a collector.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// CA certificate(s) (PEM) to trust for an https:// collector, instead of the system's.
    #[arg(long, env = "MCP_AUDIT_CA_CERT", value_name = "PATH")]
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for a collector that requires one (mTLS); needs --client-key.
    #[arg(
        long,
        env = "MCP_AUDIT_CLIENT_CERT",
        value_name = "PATH",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        env = "MCP_AUDIT_CLIENT_KEY",
        value_name = "PATH",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
}

/// The files of [`TlsArgs`], read and checked once (PEM text).
#[derive(Clone, Default)]
pub struct ClientTls {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsArgs {
    /// Reads the files; a file that is missing or holds no certificate (or key) is an error
    /// naming the flag and the path.
    pub fn load(&self) -> anyhow::Result<ClientTls> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        fn certs(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
            let text = std::fs::read(path)
                .with_context(|| format!("`{flag}`: cannot read {}", path.display()))?;
            let n = CertificateDer::pem_slice_iter(&text)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("`{flag}`: {} is not valid PEM: {e}", path.display()))?
                .len();
            anyhow::ensure!(
                n > 0,
                "`{flag}`: no PEM certificate found in {}; expected a `-----BEGIN CERTIFICATE-----` block",
                path.display()
            );
            Ok(text)
        }
        let ca = self
            .ca_cert
            .as_deref()
            .map(|p| certs("--ca-cert", p))
            .transpose()?;
        let identity = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let cert = certs("--client-cert", cert)?;
                let text = std::fs::read(key)
                    .with_context(|| format!("`--client-key`: cannot read {}", key.display()))?;
                PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "`--client-key`: no usable PEM private key in {} ({e}); expected a `-----BEGIN PRIVATE KEY-----` block",
                        key.display()
                    )
                })?;
                Some((cert, text))
            }
            (None, None) => None,
            _ => anyhow::bail!("`--client-cert` and `--client-key` go together; give both"),
        };
        Ok(ClientTls { ca, identity })
    }
}

impl ClientTls {
    /// TLS for a gRPC channel: ALPN `h2`, the roots, the client certificate.
    fn grpc(&self) -> ClientTlsConfig {
        let mut c = ClientTlsConfig::new();
        c = match &self.ca {
            Some(ca) => c.ca_certificate(Certificate::from_pem(ca)),
            None => c.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            c = c.identity(Identity::from_pem(cert, key));
        }
        c
    }

    /// An HTTP client for the collector's API with these roots and client certificate.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        let mut b = reqwest::Client::builder();
        if let Some(ca) = &self.ca {
            b = b.tls_built_in_root_certs(false);
            for cert in reqwest::Certificate::from_pem_bundle(ca).context("`--ca-cert`")? {
                b = b.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &self.identity {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            b = b.identity(
                reqwest::Identity::from_pem(&pem)
                    .context("`--client-cert`/`--client-key` do not make a client identity")?,
            );
        }
        b.build().map_err(|e| {
            anyhow::anyhow!(
                "cannot use the TLS files (`--ca-cert`, `--client-cert`, `--client-key`): {}",
                error_chain(&e)
            )
        })
    }
}

/// One connection to the collector. It reconnects by itself on the next call after the
/// connection drops; HTTP/2 keep-alive notices a peer that vanished without closing, so a
/// long-lived idle stream (a `ship` following a log) fails and is retried instead of hanging.
pub async fn channel(endpoint: &str, tls: &ClientTls) -> anyhow::Result<Channel> {
    let mut e = Endpoint::from_shared(endpoint.to_string())
        .with_context(|| format!("`--endpoint` {endpoint:?} is not a URL like {DEFAULT_GRPC}"))?;
    if e.uri().scheme_str() == Some("https") {
        e = e.tls_config(tls.grpc()).map_err(|e| {
            anyhow::anyhow!(
                "cannot use the TLS files (`--ca-cert`, `--client-cert`, `--client-key`) for {endpoint}: {}",
                error_chain(&e)
            )
        })?;
    }
    e.tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true)
        .connect()
        .await
        .map_err(|e| {
            let hint = if endpoint.starts_with("https://") {
                "is `mcp-audit serve` running with TLS, and is its certificate trusted (`--ca-cert`)?"
            } else {
                "is `mcp-audit serve` running (without TLS; use https:// if it serves TLS)?"
            };
            anyhow::anyhow!(
                "cannot connect to the collector at {endpoint}: {}; {hint}",
                error_chain(&e)
            )
        })
}

/// An error and its sources on one line: tonic's transport error alone says only
/// "transport error", the cause (refused, unknown issuer...) is in its sources.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    with_sources(e.to_string(), e.source())
}

/// A failed call's message and its causes: "transport error" alone hides why (a refused
/// client certificate, a reset connection...).
pub fn status_text(status: &Status) -> String {
    with_sources(
        status.message().to_string(),
        std::error::Error::source(status),
    )
}

fn with_sources(mut out: String, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    // Bounded: error chains are a few links long.
    for _ in 0..16 {
        let Some(s) = source else { break };
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

pub async fn connect(endpoint: &str, tls: &ClientTls) -> anyhow::Result<IngestClient<Channel>> {
    Ok(IngestClient::new(channel(endpoint, tls).await?)
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
