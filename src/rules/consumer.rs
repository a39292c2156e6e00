//! The rules as a durable consumer of the WAL.
//!
//! One thread takes committed events from its [`Feed`], evaluates them with the [`Engine`],
//! and stages the findings in the findings store (visible at once to the API and the
//! alerter), which commits them on a timer (`index.commit_interval_ms`) with the WAL position
//! it covers. Every [`SAVE_EVERY`] the engine's state is saved with its position,
//! and only then is that position published (so the WAL keeps what a restart must replay).
//!
//! After a restart or a kill -9: the state saved at position `S` is restored, the feed replays
//! from `S`, and findings triggered below the findings store's position `F ≥ S` are skipped
//! (they are stored already; the engine is deterministic, so the replay makes the same ones).
//! So no finding is lost and none is stored twice.
//!
//! ## On disk
//! `<data_dir>/rules/state.json`: `{ "position": S, "state": ... }`, written atomically.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::engine::RuleStats;
use super::{Engine, EngineState, Finding, Rule, RuleError};
use crate::health::Health;
use crate::index::findings::Findings;
use crate::metrics::Metrics;
use crate::wal::{Feed, LogReader, Received};

/// How often the engine's state is saved (a restart replays at most this much).
pub const SAVE_EVERY: Duration = Duration::from_secs(30);

/// A rule as the API shows it, with what it has done.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: String,
    pub kind: &'static str,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub builtin: bool,
    pub origin: String,
    pub findings: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_fired: Option<time::OffsetDateTime>,
    /// Group keys in its state now, and how many were evicted (the cap was reached).
    pub keys: usize,
    pub evicted: u64,
}

/// What the rules are doing, shared with the API.
#[derive(Debug, Default)]
pub struct Status {
    pub rules: Vec<RuleInfo>,
    /// Problems of the last load or reload (the running set stays the last good one).
    pub errors: Vec<String>,
    #[allow(clippy::type_complexity)]
    pub reloaded: Option<time::OffsetDateTime>,
}

/// Messages to the consumer thread.
pub enum Control {
    /// A newly loaded, valid rule set.
    Replace(Vec<Rule>),
}

#[derive(Serialize, Deserialize)]
struct Saved {
    position: u64,
    state: EngineState,
}

pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("rules").join("state.json")
}

/// Reads the saved state: its position and the engine state (`None` without a file).
pub fn load_state(path: &Path) -> Result<Option<(u64, EngineState)>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<Saved>(&bytes)
            .map(|s| Some((s.position, s.state)))
            .map_err(|e| {
                format!(
                    "{} is not valid ({e}); move it aside to start the rules with empty state",
                    path.display()
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "cannot read {}: {}",
            path.display(),
            crate::error::describe_io(&e)
        )),
    }
}

/// Saves the state atomically (tmp, fsync, rename, fsync of the folder).
pub fn save_state(path: &Path, position: u64, state: EngineState) -> Result<(), String> {
    let saved = Saved { position, state };
    let bytes = serde_json::to_vec(&saved)
        .map_err(|e| format!("cannot serialize the rules' state: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |e: std::io::Error| {
        format!(
            "cannot save the rules' state in {}: {}",
            dir.display(),
            crate::error::describe_io(&e)
        )
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

/// Everything the consumer thread needs.
pub struct Runtime<R: LogReader> {
    pub engine: Engine,
    pub feed: Feed<R>,
    pub findings: Arc<Findings>,
    pub state_path: PathBuf,
    /// Findings triggered below this position are already stored (a replay skips them).
    pub stored_below: u64,
    pub commit_interval: Duration,
    pub control: Receiver<Control>,
    pub status: Arc<RwLock<Status>>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    /// The position below which every finding is visible in the store, staged or committed
    /// (the alerter follows it).
    pub visible: Arc<AtomicU64>,
    pub retention_days: u32,
}

fn publish(status: &RwLock<Status>, engine: &Engine, metrics: &Metrics) {
    let stats = engine.stats();
    for (rule, st) in &stats {
        let label = vec![("rule".to_string(), rule.clone())];
        metrics.rule_keys.get_or_create(&label).set(st.keys as i64);
        metrics
            .rule_evictions
            .get_or_create(&label)
            .set(st.evicted as i64);
    }
    let infos = engine
        .rules()
        .iter()
        .map(|r| info(r, stats.get(&r.id)))
        .collect();
    status.write().unwrap_or_else(|e| e.into_inner()).rules = infos;
}

pub fn info(r: &Rule, s: Option<&RuleStats>) -> RuleInfo {
    let s = s.cloned().unwrap_or_default();
    RuleInfo {
        id: r.id.clone(),
        title: r.title.clone(),
        description: r.description.clone(),
        severity: r.severity.as_str().to_string(),
        kind: r.kind.name(),
        tags: r.tags.clone(),
        enabled: r.enabled,
        builtin: r.builtin,
        origin: r.origin.clone(),
        findings: s.findings,
        last_fired: s.last_fired.and_then(|us| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).ok()
        }),
        keys: s.keys,
        evicted: s.evicted,
    }
}

/// Runs until the WAL's committer stops and every durable event has been evaluated.
pub fn run<R: LogReader>(mut rt: Runtime<R>) {
    let mut uncommitted = false;
    let mut next_commit = Instant::now() + rt.commit_interval;
    let mut next_save = Instant::now() + SAVE_EVERY;
    let mut next_retention = Instant::now();
    let mut failing = false;
    // The last findings commit failed: evaluating waits for one that succeeds.
    let mut store_failing = false;
    // Reading the WAL failed (its files could not be opened, say): the health entry goes as
    // soon as a read succeeds, not with the next findings commit, which may never be due.
    let mut read_failing = false;
    publish(&rt.status, &rt.engine, &rt.metrics);
    loop {
        while let Ok(Control::Replace(rules)) = rt.control.try_recv() {
            rt.engine.replace_rules(rules);
            publish(&rt.status, &rt.engine, &rt.metrics);
            tracing::info!(rules = rt.engine.rules().len(), "rules reloaded");
        }
        let wait = next_commit.saturating_duration_since(Instant::now());
        let closed = if store_failing {
            // The findings store is failing: nothing more is evaluated until what is staged
            // is committed, so staged findings cannot grow without bound. The WAL keeps the
            // events; the feed reads them back once a commit succeeds.
            rt.feed.discard_live();
            std::thread::sleep(wait);
            rt.feed.is_closed()
        } else {
            match rt.feed.recv(wait) {
                Ok(Received::Events(chunk)) => {
                    let started = Instant::now();
                    let mut made: Vec<Finding> = Vec::new();
                    for entry in &chunk {
                        for f in rt.engine.evaluate(&entry.event, entry.pos) {
                            if f.pos >= rt.stored_below {
                                made.push(f);
                            }
                        }
                    }
                    rt.metrics
                        .rules_eval
                        .observe(started.elapsed().as_secs_f64() / chunk.len().max(1) as f64);
                    for f in &made {
                        rt.metrics.finding(&f.rule, f.severity.as_str());
                    }
                    let fired = !made.is_empty();
                    rt.findings.stage(made);
                    rt.visible.store(rt.feed.position(), Ordering::Release);
                    if fired {
                        // The rules' counts are read with the findings, which are visible now.
                        publish(&rt.status, &rt.engine, &rt.metrics);
                    }
                    uncommitted = true;
                    false
                }
                Ok(Received::Idle) => false,
                Ok(Received::Closed) => true,
                Err(e) => {
                    tracing::error!(error = %e, "rules cannot read the WAL");
                    rt.health.fail("rules", format!("cannot read the WAL: {e}"));
                    read_failing = true;
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            }
        };
        rt.metrics.rules_lag_events.set(rt.feed.unread() as i64);
        if read_failing {
            read_failing = false;
            // A failing findings store keeps the entry until its next commit succeeds.
            if !failing {
                rt.health.recover("rules");
            }
        }
        if (Instant::now() >= next_commit || closed) && uncommitted {
            let position = rt.feed.position();
            match rt.findings.commit(position) {
                Ok(()) => {
                    uncommitted = false;
                    store_failing = false;
                    if failing {
                        rt.health.recover("rules");
                        failing = false;
                    }
                    publish(&rt.status, &rt.engine, &rt.metrics);
                }
                Err(e) => {
                    // The findings stay staged for the next commit; the WAL keeps the events
                    // meanwhile.
                    let reason =
                        crate::error::name_os_errors(&format!("cannot store findings: {e}"));
                    tracing::error!(error = %reason, "rules");
                    rt.health.fail("rules", reason);
                    failing = true;
                    store_failing = true;
                }
            }
            next_commit = Instant::now() + rt.commit_interval;
        } else if Instant::now() >= next_commit {
            next_commit = Instant::now() + rt.commit_interval;
        }
        // Save only what the findings store already covers: S ≤ F always.
        if (Instant::now() >= next_save || closed) && !uncommitted {
            let position = rt.feed.position();
            match save_state(&rt.state_path, position, rt.engine.state()) {
                Ok(()) => {
                    rt.feed.mark_done(position);
                    rt.stored_below = rt.stored_below.max(position);
                }
                Err(e) => {
                    tracing::error!(error = %e, "rules");
                    rt.health.fail("rules", e);
                    failing = true;
                }
            }
            next_save = Instant::now() + SAVE_EVERY;
        }
        if Instant::now() >= next_retention {
            let before = time::OffsetDateTime::now_utc()
                - time::Duration::days(i64::from(rt.retention_days));
            match rt.findings.apply_retention(before) {
                Ok(n) if n > 0 => {
                    tracing::info!(findings = n, "retention: dropping old findings");
                    uncommitted = true;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "findings retention failed"),
            }
            next_retention = Instant::now() + Duration::from_secs(3600);
        }
        if closed && !uncommitted {
            return;
        }
        if closed && failing {
            // Shutting down while the store fails: the WAL replays the rest next time.
            return;
        }
    }
}

/// What the API and the file watcher hold to see and reload the rules.
pub struct Handle {
    pub status: Arc<RwLock<Status>>,
    control: std::sync::Mutex<std::sync::mpsc::Sender<Control>>,
    source: super::pack::Source,
}

impl Handle {
    pub fn new(
        status: Arc<RwLock<Status>>,
        control: std::sync::mpsc::Sender<Control>,
        source: super::pack::Source,
    ) -> Handle {
        Handle {
            status,
            control: std::sync::Mutex::new(control),
            source,
        }
    }

    /// Loads the rule files again and hands a valid set to the running rules. With any error,
    /// nothing changes and the errors are reported (returned, in the status, the log and
    /// `/metrics`).
    pub fn reload(&self, metrics: &Metrics) -> Result<usize, Vec<String>> {
        match super::pack::load(&self.source) {
            Ok(rules) => {
                let n = rules.iter().filter(|r| r.enabled).count();
                let sent = self
                    .control
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .send(Control::Replace(rules));
                if sent.is_err() {
                    return Err(vec![
                        "the rules are not running (the collector is stopping)".into(),
                    ]);
                }
                let mut st = self.status.write().unwrap_or_else(|e| e.into_inner());
                st.errors.clear();
                st.reloaded = Some(time::OffsetDateTime::now_utc());
                metrics.rules_load_errors.set(0);
                Ok(n)
            }
            Err(errors) => {
                let msgs: Vec<String> = errors.iter().map(RuleError::to_string).collect();
                for m in &msgs {
                    tracing::error!(error = %m, "rule files not loaded; the running rules stay");
                }
                metrics.rules_load_errors.set(msgs.len() as i64);
                self.status
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .errors = msgs.clone();
                Err(msgs)
            }
        }
    }

    /// The rules dir, to watch for changes.
    pub fn dir(&self) -> Option<&Path> {
        self.source.dir.as_deref()
    }
}

/// A cheap signature of the rule files (names, sizes, modification times) to notice edits.
pub fn dir_signature(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    super::pack::files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let m = std::fs::metadata(&p).ok();
            let len = m.as_ref().map_or(0, |m| m.len());
            let modified = m.and_then(|m| m.modified().ok());
            (p, len, modified)
        })
        .collect()
}
