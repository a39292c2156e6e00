//! `mcp-audit wrap`: an audit proxy in front of an MCP server that is not ours.
//!
//! ```text
//! host ◀──relay──▶ server          (stdio: child process; HTTP: upstream URL)
//!        │ copies
//!        ▼
//!     recorder (observe: pair requests and answers) ─events─▶ ship (scrub, send or spool) ─▶ collector
//! ```
//! - `stdio`: the child process and the two line pumps, signals, exit code;
//! - `http`: the streamable-HTTP reverse proxy (JSON and SSE answers streamed through);
//! - `observe`: pure pairing of JSON-RPC messages into events, and the tool catalog;
//! - `guard`: optional enforcement (pinning, consent for destructive tools, local policy);
//! - `ship`: scrubbing, gRPC `Send`, the bounded on-disk spool.
//!
//! The relay never waits for recording or for the collector: the recorder gets copies over a
//! bounded channel, the shipper gets events over another, and each can only fall behind, never
//! hold the session back. Wiring lives here, in [`run`].

pub mod guard;
pub mod http;
pub mod observe;
pub mod ship;
pub mod stdio;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use self::guard::{Guard, GuardConfig};
use self::observe::{Catalog, Context, Dir, Envelope, Observer};
use self::ship::{ShipperConfig, Summary};
use crate::event::Transport;
use crate::scrub::Scrubber;

/// Copies waiting for the recorder.
const OBSERVED_QUEUE: usize = 8192;
/// Events waiting for the shipper.
const EVENT_QUEUE: usize = 8192;

/// A copy of what the relay did, for the recorder.
#[derive(Debug)]
pub enum Observed {
    /// A message relayed in one direction, as its bytes.
    Message {
        scope: u64,
        dir: Dir,
        bytes: Vec<u8>,
        env: Envelope,
        /// When the relay passed it on.
        at: std::time::Instant,
    },
    /// A request the guard refused (answered by the proxy, never relayed).
    Denied {
        scope: u64,
        request: Value,
        reason: String,
        env: Envelope,
    },
    /// The relay is over: record what is left and stop.
    End,
}

/// Where the proxy sits.
pub enum Mode {
    Stdio { command: Vec<String> },
    Http { listen: String, upstream: String },
}

pub struct Options {
    pub mode: Mode,
    pub context: Context,
    pub guard: GuardConfig,
    pub shipper: ShipperConfig,
    pub scrubber: Scrubber,
}

/// Runs the proxy until the child exits (stdio) or a shutdown signal (HTTP); returns the exit
/// code to leave with.
pub async fn run(opts: Options) -> anyhow::Result<u8> {
    let Options {
        mode,
        mut context,
        guard,
        shipper,
        scrubber,
    } = opts;
    context.transport = match mode {
        Mode::Stdio { .. } => Transport::Stdio,
        Mode::Http { .. } => Transport::StreamableHttp,
    };
    let guard = if guard.enabled() {
        Some(Guard::new(&guard, &context.server, &context.user)?)
    } else {
        None
    };
    let catalog = Catalog::default();
    let (obs_tx, obs_rx) = mpsc::channel(OBSERVED_QUEUE);
    let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
    let exit_deadline = shipper.exit_deadline;
    let shipping = tokio::spawn(ship::run(ev_rx, shipper, scrubber));
    let recording = tokio::spawn(record(
        obs_rx,
        Observer::new(context, catalog.clone()),
        ev_tx,
    ));
    let lost = Arc::new(AtomicU64::new(0));
    let end = obs_tx.clone();
    let code = match mode {
        Mode::Stdio { command } => {
            stdio::run(stdio::Relay {
                command,
                observed: obs_tx,
                guard,
                catalog,
                lost,
            })
            .await
        }
        Mode::Http { listen, upstream } => {
            http::run(http::Proxy {
                listen,
                upstream,
                observed: obs_tx,
                guard,
                catalog,
                lost,
            })
            .await
        }
    };
    // A stdin reader blocked on a host that never closes still holds a sender, so the
    // recorder is told the session is over rather than left to notice.
    let _ = end.send(Observed::End).await;
    let deadline = exit_deadline + Duration::from_secs(1);
    let _ = tokio::time::timeout(deadline, recording).await;
    let summary: Summary = tokio::time::timeout(deadline, shipping)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if summary.spooled > 0 {
        tracing::debug!(spooled = summary.spooled, "events left in the spool");
    }
    code
}

/// The recorder: copies in, events out, until [`Observed::End`].
async fn record(
    mut rx: mpsc::Receiver<Observed>,
    mut observer: Observer,
    events: mpsc::Sender<crate::event::Event>,
) {
    while let Some(o) = rx.recv().await {
        let out = match o {
            Observed::Message {
                scope,
                dir,
                bytes,
                env,
                at,
            } => observer.observe(scope, dir, &bytes, &env, at),
            Observed::Denied {
                scope,
                request,
                reason,
                env,
            } => vec![observer.denied(scope, &request, &env, &reason)],
            Observed::End => break,
        };
        for ev in out {
            if events.send(ev).await.is_err() {
                return;
            }
        }
    }
    for ev in observer.finish() {
        let _ = events.send(ev).await;
    }
}

/// Default spool size cap.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 << 20;

/// The scrubber key for the proxy: the installation key of `--data-dir` when given (so
/// fingerprints match a collector on the same machine), else one kept in the state dir.
pub fn scrub_key(data_dir: Option<&PathBuf>) -> anyhow::Result<[u8; 32]> {
    let path = match data_dir {
        Some(d) => d.join(crate::scrub::KEY_FILE),
        None => ship::default_spool_dir()
            .parent()
            .map(|p| p.join(crate::scrub::KEY_FILE))
            .unwrap_or_else(|| PathBuf::from(crate::scrub::KEY_FILE)),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            anyhow::anyhow!(
                "cannot create {}: {}",
                parent.display(),
                crate::error::describe_io(&e)
            )
        })?;
    }
    Ok(crate::scrub::load_or_create_key(&path)?)
}
