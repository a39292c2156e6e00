//! The wiring: opens every stage, recovers, starts the tasks, serves until shutdown.
//!
//! Start-up order (each step needs the previous one):
//! 1. lock the data dir (one collector per data dir), load or create the scrub key;
//! 2. open the index and read its checkpoint (`wal_next` and chain heads);
//! 3. open the WAL (cutting a torn tail) and replay it from `wal_next` into the index, the
//!    chain heads and the duplicate filter, then commit the index;
//! 4. rebuild the duplicate filter from the index;
//! 5. start the committer thread, the indexer thread and the gRPC and HTTP servers.
//!
//! Shutdown: stop accepting, let in-flight batches finish (streams answer what they read),
//! then the committer drains and fsyncs, then the indexer makes a last commit.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use crate::backlog::{Backlog, BACKLOG_BYTES};
use crate::config::Config;
use crate::event::StoredEvent;
use crate::index::{IndexConfig, Indexes};
use crate::ingest::{grpc::IngestService, Auth, Ingestor, Limits};
use crate::metrics::Metrics;
use crate::proto::ingest_server::IngestServer;
use crate::scrub::Scrubber;
use crate::wal::{self, ChainState, Downstream, FileLog, Log, Positioned};

/// The sockets the collector serves on (bound by the caller, so tests can use port 0).
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: TcpListener,
}

impl Listeners {
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        let grpc = TcpListener::bind(config.grpc_listen)
            .await
            .with_context(|| format!("cannot listen on {} (`grpc.listen`)", config.grpc_listen))?;
        let http = TcpListener::bind(config.http_listen)
            .await
            .with_context(|| format!("cannot listen on {} (`http.listen`)", config.http_listen))?;
        Ok(Self { grpc, http })
    }
}

/// Shared state of the running collector, as the API sees it.
pub struct Shared {
    pub index: Arc<Indexes>,
    pub ingestor: Arc<Ingestor>,
    pub auth: Auth,
    pub metrics: Arc<Metrics>,
    pub tail: broadcast::Sender<Arc<StoredEvent>>,
    pub ready: AtomicBool,
    pub config: Config,
    /// Becomes true when shutdown starts; long-lived responses (tail) end on it.
    pub shutdown: watch::Receiver<bool>,
}

/// How long servers get to finish in-flight requests after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Runs the collector until `shutdown` completes.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create data dir {} (`data_dir`)",
            config.data_dir.display()
        )
    })?;
    let _lock = lock_data_dir(&config.data_dir, || {
        format!(
            "data dir {} is in use by another mcp-audit; stop it or choose another `data_dir`",
            config.data_dir.display()
        )
    })?;

    let auth = open_auth(&config, &listeners)?;
    let key = match config.scrub_key {
        Some(k) => k,
        None => crate::scrub::load_or_create_key(&config.data_dir.join("scrub.key"))?,
    };
    let scrubber = Arc::new(Scrubber::new(&config.scrub, key)?);
    let metrics = Metrics::new();

    let index = Arc::new(Indexes::open(IndexConfig {
        dir: config.data_dir.join("index"),
        retention_days: config.retention_days,
        writer_memory_bytes: config.writer_memory_bytes,
        writer_threads: config.writer_threads,
    })?);
    let (log, state) = recover(&config, &index)?;
    metrics.index_docs.set(index.num_docs() as i64);

    let covered = Arc::new(AtomicU64::new(index.checkpoint().wal_next));
    let (index_tx, index_rx) =
        std::sync::mpsc::sync_channel::<Vec<Positioned>>(wal::INDEX_QUEUE_CHUNKS);
    let (tail, _) = broadcast::channel(4096);
    let (committer, committer_thread) = wal::start(
        log,
        state,
        Downstream {
            index: index_tx,
            tail: tail.clone(),
        },
        covered.clone(),
        metrics.clone(),
    );
    let indexer_thread = {
        let (index, metrics, covered, interval) = (
            index.clone(),
            metrics.clone(),
            covered.clone(),
            config.commit_interval,
        );
        std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || run_indexer(&index, index_rx, &covered, interval, &metrics))?
    };

    let ingestor = Arc::new(Ingestor {
        scrubber,
        committer,
        limits: Limits {
            max_event_bytes: config.max_event_bytes,
            max_future: config.max_future,
            retention_days: config.retention_days,
        },
        metrics: metrics.clone(),
        backlog: Backlog::new(BACKLOG_BYTES),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        index,
        ingestor: ingestor.clone(),
        auth: auth.clone(),
        metrics,
        tail,
        ready: AtomicBool::new(false),
        config: config.clone(),
        shutdown: stop_rx.clone(),
    });

    let grpc_addr = listeners.grpc.local_addr()?;
    let http_addr = listeners.http.local_addr()?;
    let service = IngestService {
        ingestor: ingestor.clone(),
        auth,
        max_batch_events: config.max_batch_events,
        shutdown: stop_rx.clone(),
    };
    let grpc = {
        let mut stop = stop_rx.clone();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listeners.grpc);
        let server =
            IngestServer::new(service).max_decoding_message_size(config.grpc_max_message_bytes);
        tokio::spawn(
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .add_service(server)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop.wait_for(|s| *s).await;
                }),
        )
    };
    let http = {
        let mut stop = stop_rx.clone();
        let router = crate::api::router(shared.clone());
        let limits = crate::api::ServeLimits::from_config(&config);
        tokio::spawn(crate::api::serve(
            listeners.http,
            router,
            limits,
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ))
    };
    shared.ready.store(true, Ordering::Release);
    tracing::info!(grpc = %grpc_addr, http = %http_addr, data_dir = %config.data_dir.display(), "mcp-audit collector ready");
    if config.demo && shared.index.num_docs() == 0 {
        let ingestor = ingestor.clone();
        tokio::spawn(async move {
            match crate::demo::seed(&ingestor, 5_000).await {
                Ok(n) if n > 0 => tracing::info!(
                    events = n,
                    "demo: generated a day of MCP traffic, attacks included"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "demo: could not generate traffic"),
            }
        });
    }

    shutdown.await;
    tracing::info!("shutting down: finishing in-flight batches");
    shared.ready.store(false, Ordering::Release);
    let _ = stop_tx.send(true);
    let (mut grpc, mut http) = (grpc, http);
    let drained = tokio::time::timeout(DRAIN, async {
        let _ = (&mut grpc).await;
        let _ = (&mut http).await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("clients still connected after {DRAIN:?}; closing their connections");
        grpc.abort();
        http.abort();
        let _ = grpc.await;
        let _ = http.await;
    }
    // Dropping the last handles lets the committer drain its queue, fsync and stop; then the
    // indexer's channel closes and it makes a final commit.
    drop(ingestor);
    drop(shared);
    tokio::task::spawn_blocking(move || {
        let _ = committer_thread.join();
        let _ = indexer_thread.join();
    })
    .await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Decides who may talk to the collector. Without tokens, only loopback listeners are allowed.
fn open_auth(config: &Config, listeners: &Listeners) -> anyhow::Result<Auth> {
    let _ = config;
    for (name, l) in [
        ("grpc.listen", &listeners.grpc),
        ("http.listen", &listeners.http),
    ] {
        let addr = l.local_addr()?;
        if !addr.ip().is_loopback() {
            let flag = name.replace('.', "-");
            anyhow::bail!("`{name}` is {addr}, which is not loopback: this collector has no authentication yet, so it listens on loopback addresses only. Use `--{flag} 127.0.0.1:{}` (or set `{name}`)", addr.port());
        }
    }
    tracing::warn!("OPEN LOCAL MODE: no tokens configured; every caller on this machine is tenant `default`. Listening on loopback only");
    Ok(Auth::Open)
}

/// Replays the WAL tail the index does not cover yet; returns the log and the chain state.
fn recover(config: &Config, index: &Indexes) -> anyhow::Result<(FileLog, ChainState)> {
    let cp = index.checkpoint();
    let (log, recovery) = FileLog::open(&config.data_dir.join("wal"), config.wal_segment_bytes)?;
    if recovery.truncated_bytes > 0 {
        tracing::warn!(
            bytes = recovery.truncated_bytes,
            reason = recovery.reason.as_deref().unwrap_or(""),
            "wal: cut a torn tail left by a crash (never acknowledged)"
        );
    }
    let mut state = ChainState::from_checkpoint(&cp);
    let mut add_error = None;
    let replayed = wal::replay(&log, cp.wal_next, &mut |pos, ev| {
        if add_error.is_none() {
            if let Err(e) = index.add(pos, &ev) {
                add_error = Some(e);
            }
        }
        state.observe(&ev);
    })?;
    if let Some(e) = add_error {
        return Err(e).context("cannot index the replayed wal tail");
    }
    if replayed > 0 {
        index.commit(log.next_position())?;
        tracing::info!(
            events = replayed,
            from = cp.wal_next,
            "wal: replayed the tail into the index"
        );
    }
    index.for_each_id(&mut |key, day| {
        state.seen.insert(key, day);
    })?;
    Ok((log, state))
}

/// Takes the data dir's lock file (one process per data dir); held until the file is dropped.
/// `busy` says what to do when another process holds it.
pub fn lock_data_dir(
    dir: &std::path::Path,
    busy: impl FnOnce() -> String,
) -> anyhow::Result<std::fs::File> {
    let path = dir.join("LOCK");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    lock.try_lock().map_err(|_| anyhow::anyhow!(busy()))?;
    Ok(lock)
}

/// The indexer thread: adds committed events to the index and commits on a timer.
fn run_indexer(
    index: &Indexes,
    rx: Receiver<Vec<Positioned>>,
    covered: &AtomicU64,
    interval: Duration,
    metrics: &Metrics,
) {
    let mut next_commit = Instant::now() + interval;
    let mut next_retention = Instant::now();
    let mut wal_next = covered.load(Ordering::Acquire);
    let mut pending = 0i64;
    let mut failed = false;
    loop {
        let wait = next_commit.saturating_duration_since(Instant::now());
        let closed = match rx.recv_timeout(wait) {
            Ok(chunk) => {
                metrics.index_queue.dec();
                for Positioned {
                    pos,
                    event,
                    record,
                    charge,
                } in chunk
                {
                    if failed {
                        continue;
                    }
                    if let Err(e) = index.add_record(pos, event, record, charge) {
                        tracing::error!(error = %e, pos, "indexing failed; events stay in the WAL and are indexed on restart");
                        failed = true;
                        continue;
                    }
                    wal_next = pos + 1;
                    pending += 1;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if (Instant::now() >= next_commit || closed) && pending > 0 && !failed {
            let started = Instant::now();
            match index.commit(wal_next) {
                Ok(()) => {
                    covered.store(wal_next, Ordering::Release);
                    metrics
                        .index_commit
                        .observe(started.elapsed().as_secs_f64());
                    metrics.index_lag_events.dec_by(pending);
                    metrics.index_docs.set(index.num_docs() as i64);
                    pending = 0;
                }
                Err(e) => {
                    tracing::error!(error = %e, "index commit failed; will retry");
                }
            }
        }
        if Instant::now() >= next_commit {
            next_commit = Instant::now() + interval;
        }
        if Instant::now() >= next_retention {
            match index.apply_retention(time::OffsetDateTime::now_utc()) {
                Ok(days) if !days.is_empty() => {
                    tracing::info!(days = ?days, "retention: dropped old day indexes")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention failed"),
            }
            next_retention = Instant::now() + Duration::from_secs(3600);
        }
        if closed {
            return;
        }
    }
}
