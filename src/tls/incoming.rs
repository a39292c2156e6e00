//! Accepting TLS connections: the gRPC listener's stream of finished handshakes, and the
//! handshake step the HTTP accept loop (`api/serve.rs`) runs on each of its connections.
//!
//! Handshakes run concurrently, each bounded by `tls.handshake_timeout_ms`, so a client that
//! connects and then stalls (or speaks something else) only costs its own socket until the
//! timeout. On the gRPC listener at most [`MAX_HANDSHAKES`] run at once; past that, new clients
//! wait in the listen backlog. A failed handshake is routine on an exposed port (scanners, a
//! client without the required certificate): it is logged at debug level and counted in
//! `mcp_audit_tls_handshake_failures`, never an error of the collector.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::{Listener, Tls};

/// TLS handshakes in progress at once on the gRPC listener.
pub const MAX_HANDSHAKES: usize = 512;

const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Runs the TLS handshake on `io` for `listener` within the handshake timeout.
pub async fn handshake<IO>(tls: &Tls, listener: Listener, io: IO) -> Option<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let acceptor = tls.acceptor(listener);
    let why = match tokio::time::timeout(tls.handshake_timeout(), acceptor.accept(io)).await {
        Ok(Ok(stream)) => return Some(stream),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "no handshake within {} ms (`tls.handshake_timeout_ms`)",
            tls.handshake_timeout().as_millis()
        ),
    };
    tracing::debug!(
        listener = listener.name(),
        error = %why,
        "tls: handshake failed"
    );
    tls.metrics
        .tls_handshake_failures
        .get_or_create(&vec![("listener".into(), listener.name().into())])
        .inc();
    None
}

/// The gRPC listener's connections, after their TLS handshake, for tonic's
/// `serve_with_incoming_shutdown`. Accepting stops when the stream is dropped (tonic drops it
/// on shutdown).
pub fn grpc(
    listener: TcpListener,
    tls: Arc<Tls>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, Infallible>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let mut backoff = MIN_BACKOFF;
        loop {
            let slot = tokio::select! {
                () = tx.closed() => return,
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(s) => s,
                    Err(_) => return,
                },
            };
            let accepted = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => {
                    backoff = MIN_BACKOFF;
                    tcp
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "grpc: cannot accept connections");
                    tokio::select! {
                        () = tx.closed() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                let _slot = slot;
                if let Some(stream) = handshake(&tls, Listener::Grpc, tcp).await {
                    let _ = tx.send(Ok(stream)).await;
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
