//! The wiring: opens every stage, recovers, starts the tasks, serves until shutdown.
//!
//! Start-up order (each step needs the previous one):
//! 1. lock the data dir (one collector per data dir), raise the open-file limit, load or create
//!    the scrub key and the signing key of the chain's checkpoints;
//! 2. open the index and read its checkpoint (the WAL position it covers, chain heads);
//! 3. open the WAL strictly (a torn tail is cut; damage stops start-up and names
//!    `mcp-audit recover`), and merge the chain heads of the WAL and the index;
//! 4. if the WAL ends before the index's position (its newest records were lost), say so
//!    loudly and continue at that position, so no position is ever given out twice;
//! 5. build the duplicate filter from the index and the WAL records it does not cover yet, and
//!    finish an erasure that a crash interrupted;
//! 6. start the committer, the indexer (which replays what it misses from the WAL), and the
//!    gRPC and HTTP servers.
//!
//! Shutdown: stop accepting, let in-flight batches finish (streams answer what they read),
//! then the committer drains and fsyncs, then the indexer commits what the WAL holds.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::tail::TailHub;
use crate::audit::{AuditTrail, Record};
use crate::auth::Auth;
use crate::backlog::{Backlog, BACKLOG_BYTES};
use crate::config::Config;
use crate::health::Health;
use crate::index::{IndexConfig, Indexes};
use crate::ingest::{grpc::IngestService, otlp, Ingestor, Limits};
use crate::metrics::Metrics;
use crate::proto::ingest_server::IngestServer;
use crate::rules;
use crate::scrub::Scrubber;
use crate::tls::Tls;
use crate::wal::{self, ChainState, Chunk, Consumers, Dedup, Downstream, IdLookup, Log, WalError};

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
    pub findings: Arc<crate::index::findings::Findings>,
    pub alerts: Arc<crate::alerts::Alerts>,
    /// Slots for searches, histograms and terms (`index.search_concurrency`).
    pub search_slots: Arc<tokio::sync::Semaphore>,
    /// `None` when rules are off (`rules.enabled = false`).
    pub rules: Option<Arc<rules::consumer::Handle>>,
    pub ingestor: Arc<Ingestor>,
    pub auth: Auth,
    /// The collector's own audit trail (tenant `_system`).
    pub audit: AuditTrail,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub tail: Arc<TailHub>,
    /// False while starting and once shutdown starts.
    pub ready: AtomicBool,
    /// TLS of both listeners; `None` without `[tls]`.
    pub tls: Option<Arc<Tls>>,
    pub config: Config,
    /// Becomes true when shutdown starts; long-lived responses (tail) end on it.
    pub shutdown: watch::Receiver<bool>,
    /// Erases a user's events (`POST /api/v1/admin/erase`).
    pub eraser: Arc<crate::chain::erase::Eraser>,
    /// Receives OTLP exports (OTLP/HTTP here, OTLP/gRPC on the gRPC port).
    pub otlp: Arc<otlp::Receiver>,
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

    raise_open_file_limit();
    let metrics = Metrics::new();
    let auth = open_auth(&config, &listeners, metrics.clone())?;
    let key = match config.scrub_key {
        Some(k) => k,
        None => crate::scrub::load_or_create_key(&config.data_dir.join(crate::scrub::KEY_FILE))?,
    };
    let scrubber = Arc::new(Scrubber::new(&config.scrub, key)?);
    // Signed history (chain/): refuses to start on a readable or damaged signing key.
    let chain_dir = crate::chain::dir(&config.data_dir);
    let signing_key = Arc::new(crate::chain::key::load_or_create(&chain_dir)?);
    let signer = crate::chain::Signer::open(&chain_dir, signing_key.clone(), config.chain.clone())?;
    let health = Health::new(metrics.clone());
    // Bad certificate files stop start-up here, before the slow steps.
    let tls = match &config.tls {
        Some(c) => Some(Tls::load(c.clone(), metrics.clone())?),
        None => None,
    };

    let index = Arc::new(Indexes::open(IndexConfig {
        dir: config.data_dir.join("index"),
        retention_days: config.retention_days,
        writer_memory_bytes: config.writer_memory_bytes,
        writer_threads: config.writer_threads,
        layout: config.index_layout.clone(),
    })?);
    metrics.index_docs.set(index.num_docs() as i64);
    let findings = Arc::new(
        crate::index::findings::Findings::open(&config.data_dir.join("findings"))
            .context("cannot open the findings store")?,
    );
    let rules_state = if config.rules_enabled {
        let path = rules::consumer::state_path(&config.data_dir);
        rules::consumer::load_state(&path).map_err(anyhow::Error::msg)?
    } else {
        None
    };
    let rules_position = rules_state.as_ref().map(|(p, _)| *p);
    let (mut log, state) = recover(&config, &index, rules_position, &metrics)?;
    // An erasure a crash interrupted is finished before anything reads the WAL or the index.
    crate::chain::erase::reapply(&chain_dir, &signing_key, &mut log, &index)?;
    let tips = crate::chain::Tips::new(&state.heads, log.next_position(), &config.chain);

    let consumers = Arc::new(Consumers::default());
    let wal_end = log.next_position();
    let feed = consumers.register("index", index.checkpoint().wal_next, log.reader());
    let index_position = feed.done_handle();
    let (rules_handle, rules_thread, findings_visible) = if config.rules_enabled {
        let (h, t, c) = start_rules(
            &config,
            rules_state,
            &consumers,
            &log,
            &findings,
            &health,
            &metrics,
        )?;
        (Some(h), Some(t), c)
    } else {
        let position = findings
            .position()
            .context("cannot read the findings store")?;
        (None, None, Arc::new(AtomicU64::new(position)))
    };
    let mut alerts_config = config.alerts.clone();
    if alerts_config.external_url.is_empty() {
        let scheme = if tls.is_some() { "https" } else { "http" };
        alerts_config.external_url = format!("{scheme}://{}", listeners.http.local_addr()?);
    }
    let alerts = Arc::new(
        crate::alerts::Alerts::open(
            &config.data_dir,
            alerts_config,
            config.webhooks.clone(),
            findings_visible.load(Ordering::Acquire),
        )
        .map_err(anyhow::Error::msg)?,
    );
    let alerts_stop = Arc::new(AtomicBool::new(false));
    let alerter_thread = {
        let (alerts, findings, visible, stop, health, metrics) = (
            alerts.clone(),
            findings.clone(),
            findings_visible.clone(),
            alerts_stop.clone(),
            health.clone(),
            metrics.clone(),
        );
        std::thread::Builder::new()
            .name("alerter".into())
            .spawn(move || {
                crate::alerts::store::run_alerter(alerts, findings, visible, stop, health, metrics)
            })?
    };
    let deliverer = tokio::spawn(crate::alerts::deliver::run(
        alerts.clone(),
        config.webhooks.clone(),
        metrics.clone(),
        alerts_stop.clone(),
    ));
    let retention_generation = Arc::new(AtomicU64::new(0));
    let tail = TailHub::new(metrics.clone());
    let wal_reader = log.reader();
    let (committer, committer_thread) = wal::start(
        log,
        state,
        Downstream {
            consumers,
            tail: {
                let tail = tail.clone();
                Arc::new(move |chunk: &Chunk| tail.publish(chunk))
            },
            index_position: index_position.clone(),
            retention_generation: retention_generation.clone(),
            heads: {
                let tips = tips.clone();
                Arc::new(move |moved: &wal::HeadsMoved<'_>| tips.moved(moved))
            },
            health: health.clone(),
            metrics: metrics.clone(),
        },
    )
    .context("cannot start the wal committer thread")?;
    let signer_thread = {
        let (tips, health) = (tips.clone(), health.clone());
        std::thread::Builder::new()
            .name("chain-signer".into())
            .spawn(move || crate::chain::signer::run(signer, tips, health))?
    };
    let indexer_thread = {
        let (index, metrics, health, interval) = (
            index.clone(),
            metrics.clone(),
            health.clone(),
            config.commit_interval,
        );
        std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || {
                crate::index::indexer::run(
                    &index,
                    feed,
                    interval,
                    &health,
                    &metrics,
                    &retention_generation,
                )
            })?
    };

    // Searches answer for everything acknowledged before the restart once serving starts.
    catch_up(&index_position, wal_end, &health).await;

    let eraser = Arc::new(crate::chain::erase::Eraser::open(
        &chain_dir,
        signing_key,
        wal_reader,
        committer.clone(),
        index.clone(),
    )?);
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
    let audit = AuditTrail::start(ingestor.clone());
    {
        let audit = audit.clone();
        auth.set_failure_sink(Arc::new(move |f: crate::auth::FailedAttempt| {
            let mut r = Record::new("auth", "refused", &f.credential, "");
            r.remote_addr = f.addr.map(|a| a.to_string()).unwrap_or_default();
            r.denied = true;
            r.error = f.reason;
            audit.record(r);
        }));
    }
    watch_auth(auth.clone(), stop_rx.clone());
    let receiver = Arc::new(otlp::Receiver {
        ingestor: ingestor.clone(),
        auth: auth.clone(),
        metrics: metrics.clone(),
        max_batch_events: config.max_batch_events,
    });
    let shared = Arc::new(Shared {
        index,
        findings,
        alerts,
        search_slots: Arc::new(tokio::sync::Semaphore::new(config.search_concurrency)),
        rules: rules_handle.clone(),
        ingestor: ingestor.clone(),
        auth: auth.clone(),
        audit,
        metrics,
        health,
        tail,
        ready: AtomicBool::new(false),
        tls: tls.clone(),
        config: config.clone(),
        shutdown: stop_rx.clone(),
        eraser,
        otlp: receiver.clone(),
    });

    let grpc_addr = listeners.grpc.local_addr()?;
    let http_addr = listeners.http.local_addr()?;
    let service = IngestService {
        ingestor: ingestor.clone(),
        auth,
        max_batch_events: config.max_batch_events,
        max_message_bytes: config.grpc_max_message_bytes,
        shutdown: stop_rx.clone(),
    };
    let grpc = {
        let mut stop = stop_rx.clone();
        let signal = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let server =
            IngestServer::new(service).max_decoding_message_size(config.grpc_max_message_bytes);
        let max = config.grpc_max_message_bytes;
        let router = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(server)
            .add_service(otlp::grpc::TraceService::new(receiver.clone(), max))
            .add_service(otlp::grpc::LogsService::new(receiver, max));
        match &tls {
            Some(tls) => {
                let incoming = crate::tls::incoming::grpc(listeners.grpc, tls.clone());
                tokio::spawn(router.serve_with_incoming_shutdown(incoming, signal))
            }
            None => {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listeners.grpc);
                tokio::spawn(router.serve_with_incoming_shutdown(incoming, signal))
            }
        }
    };
    let http = {
        let mut stop = stop_rx.clone();
        let router = crate::api::router(shared.clone());
        let limits = crate::api::ServeLimits::from_config(&config);
        tokio::spawn(crate::api::serve(
            listeners.http,
            router,
            limits,
            tls.clone(),
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        ))
    };
    if let Some(h) = &rules_handle {
        watch_rules(
            h.clone(),
            shared.metrics.clone(),
            shared.audit.clone(),
            stop_rx.clone(),
        );
    }
    match &tls {
        Some(tls) => {
            tls.log_listener(crate::tls::Listener::Grpc, grpc_addr);
            tls.log_listener(crate::tls::Listener::Http, http_addr);
            crate::tls::reload_on_sighup(tls.clone(), shared.audit.clone(), stop_rx.clone());
        }
        None => tracing::info!(
            grpc = %grpc_addr,
            http = %http_addr,
            "tls: off; both listeners serve plain TCP (set `tls.cert` and `tls.key` to serve TLS)"
        ),
    }
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
        // After the committer's last group: sign the final heads.
        tips.stop();
        let _ = signer_thread.join();
        let _ = indexer_thread.join();
        if let Some(t) = rules_thread {
            let _ = t.join();
        }
        // After the rules' final findings commit: the alerter takes them in, saves, stops.
        alerts_stop.store(true, Ordering::Release);
        let _ = alerter_thread.join();
    })
    .await?;
    deliverer.abort();
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Starts the rules consumer: loads the rule set (a bad rule file at start leaves the built-in
/// pack running and says why), restores the saved state, and replays the WAL from it.
#[allow(clippy::too_many_arguments)]
fn start_rules(
    config: &Config,
    saved: Option<(u64, rules::EngineState)>,
    consumers: &Consumers,
    log: &wal::FileLog,
    findings: &Arc<crate::index::findings::Findings>,
    health: &Arc<Health>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(
    Arc<rules::consumer::Handle>,
    std::thread::JoinHandle<()>,
    Arc<AtomicU64>,
)> {
    let status = Arc::new(std::sync::RwLock::new(rules::consumer::Status::default()));
    let (control_tx, control_rx) = std::sync::mpsc::channel();
    let handle = Arc::new(rules::consumer::Handle::new(
        status.clone(),
        control_tx,
        config.rules.clone(),
    ));
    let set = match rules::pack::load(&config.rules) {
        Ok(set) => set,
        Err(errors) => {
            let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
            for m in &msgs {
                tracing::error!(error = %m, "rule files not loaded; running the built-in pack only. Fix them and POST /api/v1/rules/reload");
            }
            metrics.rules_load_errors.set(msgs.len() as i64);
            status.write().unwrap_or_else(|e| e.into_inner()).errors = msgs;
            let builtin_only = rules::pack::Source {
                dir: None,
                ..config.rules.clone()
            };
            rules::pack::load(&builtin_only).map_err(|e| {
                anyhow::anyhow!(
                    "the built-in rule pack does not load: {}",
                    e.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            })?
        }
    };
    let mut engine = rules::Engine::new(set, config.rules_key_cap);
    let state_path = rules::consumer::state_path(&config.data_dir);
    let start = match saved {
        Some((position, state)) => {
            engine.restore(state);
            position
        }
        None => {
            // Rules start with what arrives from now on; saving at once pins that position.
            let end = log.next_position();
            rules::consumer::save_state(&state_path, end, engine.state())
                .map_err(anyhow::Error::msg)?;
            end
        }
    };
    let stored_below = findings
        .position()
        .context("cannot read the findings store")?
        .max(start);
    let feed = consumers.register("rules", start, log.reader());
    let visible = Arc::new(AtomicU64::new(stored_below));
    let runtime = rules::consumer::Runtime {
        engine,
        feed,
        findings: findings.clone(),
        state_path,
        stored_below,
        commit_interval: config.commit_interval,
        control: control_rx,
        status,
        health: health.clone(),
        metrics: metrics.clone(),
        visible: visible.clone(),
        retention_days: config.retention_days,
    };
    let health = health.clone();
    let thread = std::thread::Builder::new()
        .name("rules".into())
        .spawn(move || {
            // A bug must not stop the rules silently: readiness says so.
            let run = std::panic::AssertUnwindSafe(|| rules::consumer::run(runtime));
            if let Err(panic) = std::panic::catch_unwind(run) {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                tracing::error!(panic = %what, "the rules stopped after a panic; restart the collector");
                health.fail("rules", format!("the rules stopped after a panic ({what}); restart the collector"));
            }
        })?;
    Ok((handle, thread, visible))
}

/// Reloads the rules when a file of the rules dir changes (checked every 2 s).
fn watch_rules(
    handle: Arc<rules::consumer::Handle>,
    metrics: Arc<Metrics>,
    audit: AuditTrail,
    mut stop: watch::Receiver<bool>,
) {
    let Some(dir) = handle.dir().map(Path::to_path_buf) else {
        return;
    };
    tokio::spawn(async move {
        let mut last = rules::consumer::dir_signature(&dir);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let now = rules::consumer::dir_signature(&dir);
            if now != last {
                last = now;
                tracing::info!(dir = %dir.display(), "rule files changed; reloading");
                let (h, m) = (handle.clone(), metrics.clone());
                let outcome = match tokio::task::spawn_blocking(move || h.reload(&m)).await {
                    Ok(Ok(n)) => serde_json::json!({ "loaded": n }),
                    Ok(Err(errors)) => serde_json::json!({ "errors": errors }),
                    Err(_) => serde_json::json!({ "errors": ["the reload task failed"] }),
                };
                audit.record(Record::new("rules", "reload", "file-watch", "").details(
                    serde_json::json!({ "dir": dir.display().to_string(), "outcome": outcome }),
                ));
            }
        }
    });
}

/// Waits until the index covers `target` (what the WAL held at start), or is failing.
async fn catch_up(position: &AtomicU64, target: u64, health: &Health) {
    let started = std::time::Instant::now();
    let mut said = started;
    while position.load(Ordering::Acquire) < target && !health.is_failing("index") {
        if said.elapsed() > Duration::from_secs(5) {
            tracing::info!(
                at = position.load(Ordering::Acquire),
                target,
                "index: replaying the WAL before serving"
            );
            said = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if target > 0 && started.elapsed() > Duration::from_millis(100) {
        tracing::info!(took = ?started.elapsed(), "index: caught up with the WAL");
    }
}

/// Decides who may talk to the collector. Without any credential configured (open local
/// mode), only loopback listeners are allowed.
fn open_auth(
    config: &Config,
    listeners: &Listeners,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Auth> {
    let auth = Auth::open(&config.data_dir, &config.auth, metrics)?;
    if auth.is_open() {
        for (name, l) in [
            ("grpc.listen", &listeners.grpc),
            ("http.listen", &listeners.http),
        ] {
            let addr = l.local_addr()?;
            if !addr.ip().is_loopback() {
                let flag = name.replace('.', "-");
                anyhow::bail!(
                    "`{name}` is {addr}, which is not loopback, and no credential is configured: create a token first (`mcp-audit token create --tenant T --role ingest --data-dir {}`) or configure `[auth.jwt]`, or listen on loopback (`--{flag} 127.0.0.1:{}`)",
                    config.data_dir.display(),
                    addr.port()
                );
            }
        }
        tracing::warn!("OPEN LOCAL MODE: no token and no identity provider configured; every caller on this machine is an admin of tenant `default`. Listening on loopback only. Create a token (`mcp-audit token create`) to require credentials");
    } else {
        tracing::info!(
            tokens = auth.token_count(),
            jwt_issuer = config
                .auth
                .jwt
                .as_ref()
                .map(|j| j.issuer.as_str())
                .unwrap_or("none"),
            "auth: every request needs a collector token or an access token"
        );
    }
    Ok(auth)
}

/// Keeps the tokens current (a created or revoked token counts within a second) and fetches
/// the identity provider's keys at start.
fn watch_auth(auth: Auth, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        if let Some(v) = auth.jwt() {
            v.prefetch().await;
        }
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let a = auth.clone();
            let _ = tokio::task::spawn_blocking(move || a.reload_tokens()).await;
        }
    });
}

/// Raises the soft limit of open files to the hard limit: the index opens files per segment
/// and every connection takes one, and running out is a failure of the whole collector.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < 4096 => tracing::warn!(
            limit = n,
            "the open-file limit is low; raise it (ulimit -n, LimitNOFILE=) so the index and many connections fit"
        ),
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
}

/// Opens the WAL and rebuilds the committer's state: chain heads from the WAL and the index
/// checkpoint, positions that never go back, and the duplicate filter.
fn recover(
    config: &Config,
    index: &Arc<Indexes>,
    rules_position: Option<u64>,
    metrics: &Metrics,
) -> anyhow::Result<(wal::FileLog, ChainState)> {
    let cp = index.checkpoint();
    // The furthest any consumer has come: the WAL may never give out a position below it again.
    let consumed = cp.wal_next.max(rules_position.unwrap_or(0));
    let wal_dir = config.data_dir.join("wal");
    let opened = match wal::open(&wal_dir, config.wal_segment_bytes, cp.wal_next) {
        Ok(o) => o,
        Err(WalError::Log(e @ wal::LogError::Corrupt { .. })) => anyhow::bail!(
            "{e}. Starting would lose acknowledged events, so nothing was changed. Run `mcp-audit recover --data-dir {}` to keep every readable record and record the gap (the damaged file is copied first), then start again",
            config.data_dir.display()
        ),
        Err(e) => return Err(e).context("cannot open the write-ahead log"),
    };
    if opened.recovery.truncated_bytes > 0 {
        tracing::warn!(
            bytes = opened.recovery.truncated_bytes,
            reason = opened.recovery.reason.as_deref().unwrap_or(""),
            "wal: cut a torn tail left by a crash (an incomplete last record, never acknowledged)"
        );
    }
    let mut log = opened.log;
    let mut heads = opened.heads;
    heads
        .merge(&cp.heads, "the index checkpoint")
        .map_err(anyhow::Error::msg)?;
    let end = log.next_position();
    if end < consumed {
        tracing::error!(
            wal_end = end,
            consumed,
            lost = consumed - end,
            "THE WAL ENDS BEFORE THE INDEX CHECKPOINT: its newest records were lost (damaged, truncated or restored from an old backup). The index holds those events; continuing at the consumers' position so no position is given out twice. Run `mcp-audit verify` on a copy of the data dir to check the chain"
        );
        metrics.wal_lost_positions.inc_by(consumed - end);
        log.skip_to(consumed)
            .context("cannot continue the wal after its lost records")?;
    }
    let lookup: Arc<dyn IdLookup> = index.clone();
    let mut dedup = Dedup::build(lookup, 0).map_err(anyhow::Error::msg)?;
    let unindexed = opened.keys.len();
    for (pos, key) in opened.keys {
        dedup.insert(pos, key);
    }
    if unindexed > 0 {
        tracing::info!(
            events = unindexed,
            from = cp.wal_next,
            "wal: events not in the index yet; the indexer replays them"
        );
    }
    metrics.dedup_filter_bytes.set(dedup.bloom_bytes() as i64);
    Ok((log, ChainState { heads, dedup }))
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
