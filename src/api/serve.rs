//! The HTTP accept loop. It drives hyper's HTTP/1 connections itself (rather than
//! `axum::serve`) so that slow, stalled and hostile clients cannot hold the collector's
//! connections and memory:
//!
//! - **Header timeout** (`http.header_timeout_ms`): a request head must be complete within
//!   this, counted from the connection's start or from the end of the previous response.
//!   hyper restarts its header-read timer whenever it waits for a head, so the same deadline
//!   closes idle keep-alive connections and clients that trickle a header byte by byte.
//! - **Idle timeout** (`http.idle_timeout_ms`): a write the client does not drain for this
//!   long fails its connection (a client that stopped reading a response or a tail). Request
//!   bodies have the same limit per chunk where they are read (`api/ingest.rs`).
//! - **Connection cap** (`http.max_connections`): beyond it the loop stops accepting and
//!   clients wait in the kernel's listen backlog.
//! - **TLS** (`[tls]`): each connection's handshake runs in its own task, holding its slot,
//!   within `tls.handshake_timeout_ms`; the TLS stream sits over the write deadline, so the
//!   idle timeout also catches a client that stops reading encrypted records. A client that
//!   speaks plain HTTP to the TLS port gets a 400 saying to use https://, not a reset.
//! - **Accept errors** (EMFILE when out of file descriptors...) are logged and retried after
//!   a backoff of 10 ms doubling to 1 s, never in a busy loop.
//! - **Shutdown**: stop accepting, let every connection finish its in-flight request
//!   (hyper's graceful shutdown closes idle ones at once), wait for them. Long-lived
//!   responses (tail) end on the collector's shutdown signal themselves. Dropping the
//!   future of [`serve`] aborts every connection.
//!
//! There is deliberately no limit on a request's total duration: a tail response lives as
//! long as its client reads it.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::config::Config;
use crate::tls::{self, Tls};

/// What a connection may take; see the module doc.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl ServeLimits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_timeout: config.http_header_timeout,
            idle_timeout: config.http_idle_timeout,
            max_connections: config.http_max_connections,
        }
    }
}

const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// The "connection cap reached" warning is logged at most this often.
const FULL_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then drains the connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    tls: Option<Arc<Tls>>,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = MIN_BACKOFF;
    let mut last_full_warning: Option<Instant> = None;
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                if last_full_warning.is_none_or(|t| t.elapsed() >= FULL_WARNING_EVERY) {
                    tracing::warn!(
                        max = limits.max_connections,
                        "http: connection cap reached (`http.max_connections`); new clients wait"
                    );
                    last_full_warning = Some(Instant::now());
                }
                None
            }
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = joined {
                    if e.is_panic() {
                        tracing::error!(error = %e, "http: a connection task panicked");
                    }
                }
                continue;
            }
            accepted = accept(&listener, &permits, permit) => accepted,
        };
        match accepted {
            Ok((stream, permit)) => {
                backoff = MIN_BACKOFF;
                connections.spawn(connection(
                    stream,
                    app.clone(),
                    limits,
                    tls.clone(),
                    stop_rx.clone(),
                    permit,
                ));
            }
            // The client gave up between connecting and our accept: nothing is wrong here.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "http: cannot accept connections");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// Waits for a connection slot (unless one is already held), then for a connection.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
) -> io::Result<(TcpStream, OwnedSemaphorePermit)> {
    let permit = match permit {
        Some(p) => p,
        None => permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("connection slots closed"))?,
    };
    let (stream, _) = listener.accept().await?;
    Ok((stream, permit))
}

/// Serves one connection; the permit is its slot under `http.max_connections`.
async fn connection(
    mut stream: TcpStream,
    app: Router,
    limits: ServeLimits,
    tls: Option<Arc<Tls>>,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    // The caller's address, for the per-address limit of failed attempts.
    let app = match stream.peer_addr() {
        Ok(addr) => app.layer(axum::Extension(super::auth::Peer(addr))),
        Err(_) => app,
    };
    let Some(tls) = tls else {
        let io = WriteDeadline::new(stream, limits.idle_timeout);
        return serve_connection(io, app, limits, stop).await;
    };
    let handshake = async {
        if !speaks_tls(&mut stream, tls.handshake_timeout()).await {
            return None;
        }
        let io = WriteDeadline::new(stream, limits.idle_timeout);
        tls::incoming::handshake(&tls, tls::Listener::Http, io).await
    };
    let stream = tokio::select! {
        stream = handshake => stream,
        _ = stop.wait_for(|s| *s) => None,
    };
    if let Some(stream) = stream {
        serve_connection(stream, app, limits, stop).await;
    }
}

/// The body of the answer to a plain HTTP request on the TLS port.
const PLAIN_HTTP_ON_TLS: &str = r#"{"type":"about:blank","title":"plain HTTP sent to a TLS port","status":400,"detail":"this port serves HTTPS only; use https:// (with --ca-cert for a private CA)"}"#;

/// Whether the client opens with a TLS record. A client that sent something else (plain
/// HTTP) is told to use https:// and closed; one that sends nothing in time is closed.
async fn speaks_tls(stream: &mut TcpStream, timeout: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// The content type of a TLS handshake record, the first byte of every ClientHello.
    const HANDSHAKE_RECORD: u8 = 0x16;
    let mut first = [0u8; 1];
    match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == HANDSHAKE_RECORD => return true,
        Ok(Ok(1)) => {}
        _ => return false,
    }
    let answer = async {
        let response = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{PLAIN_HTTP_ON_TLS}",
            PLAIN_HTTP_ON_TLS.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent before closing, so the close does not reset the
        // connection and discard the answer before the client reads it.
        let mut sink = [0u8; 4096];
        for _ in 0..64 {
            if stream.read(&mut sink).await? == 0 {
                break;
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(timeout, answer).await;
    tracing::debug!("http: a plain HTTP request on the TLS port was told to use https://");
    false
}

/// Serves HTTP/1 on one connection until it closes or the server stops.
async fn serve_connection<IO>(
    io: IO,
    app: Router,
    limits: ServeLimits,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, TowerToHyperService::new(app));
    let mut conn = pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = async {
            // Ends on the signal, or when `serve` is gone (then nothing waits for us anyway).
            let _ = stop.wait_for(|s| *s).await;
        } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    // Timeouts and clients that hang up are routine; they are not the collector's faults.
    if let Err(e) = result {
        tracing::debug!(error = %e, "http: connection closed with an error");
    }
}

/// A socket whose writes fail with `TimedOut` once the peer has taken no byte for `limit`.
/// Reads are untouched: hyper's header timeout and the body readers bound those.
struct WriteDeadline {
    inner: TcpStream,
    limit: Duration,
    /// Running while a write waits for the peer to drain its receive window.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteDeadline {
    fn new(inner: TcpStream, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {} ms (`http.idle_timeout_ms`)",
                    limit.as_millis()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::convert::Infallible;

    use axum::body::{Body, Bytes};
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpSocket;
    use tokio::sync::{mpsc, oneshot};

    use super::*;

    /// Sends the time it is dropped.
    struct DropClock(mpsc::UnboundedSender<Instant>);

    impl Drop for DropClock {
        fn drop(&mut self) {
            let _ = self.0.send(Instant::now());
        }
    }

    async fn start(
        app: Router,
        limits: ServeLimits,
    ) -> (
        std::net::SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, app, limits, None, async move {
            let _ = stopped.await;
        }));
        (addr, stop, task)
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off() {
        let (tx, mut dropped) = mpsc::unbounded_channel();
        let app = Router::new().route(
            "/forever",
            get(move || {
                let clock = DropClock(tx.clone());
                async move {
                    let chunks = futures::stream::repeat_with(move || {
                        let _ = &clock;
                        Ok::<_, Infallible>(Bytes::from(vec![b'x'; 64 << 10]))
                    });
                    Body::from_stream(chunks)
                }
            }),
        );
        let idle = Duration::from_millis(300);
        let limits = ServeLimits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: idle,
            max_connections: 8,
        };
        let (addr, stop, task) = start(app, limits).await;
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket.connect(addr).await.unwrap();
        client
            .write_all(b"GET /forever HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let asked = Instant::now();
        // The client never reads: the server's writes stall once the socket buffers fill.
        let at = tokio::time::timeout(Duration::from_secs(10), dropped.recv())
            .await
            .expect("still writing to a client that reads nothing")
            .unwrap();
        assert!(at - asked >= idle, "cut off after {:?}", at - asked);
        let _ = stop.send(());
        task.await.unwrap();
    }

    #[tokio::test]
    async fn shutdown_finishes_requests_in_flight_then_returns() {
        let (tx, mut begun) = mpsc::unbounded_channel();
        let app = Router::new().route(
            "/slow",
            get(move || {
                let _ = tx.send(());
                async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }
            }),
        );
        let limits = ServeLimits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            max_connections: 8,
        };
        let (addr, stop, task) = start(app, limits).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        begun.recv().await.unwrap();
        let _ = stop.send(());
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
            .await
            .expect("the connection was closed after its answer")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("serve returned once its connections were done")
            .unwrap();
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    }
}
