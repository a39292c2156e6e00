//! The alert state on disk and the alerter thread that follows the findings store.
//!
//! The state is one JSON file, `<data_dir>/alerts/state.json`, replaced atomically (write a
//! temporary file, fsync, rename, fsync the directory): after a crash it is the last saved
//! state whole, never a mix. It is saved before any notification it queued is sent, and
//! before an API change (ack, resolve, silence) is answered.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

use super::manager::{Manager, State};
use super::{AlertsConfig, WebhookConfig};
use crate::health::Health;
use crate::index::findings::Findings;
use crate::metrics::Metrics;

/// Findings read from the store per step.
const BATCH: usize = 1000;
/// How often the alerter looks for new findings and due notifications.
const TICK: Duration = Duration::from_millis(20);

/// The shared alert state: the alerter, the deliverer and the API go through it.
pub struct Alerts {
    manager: Mutex<Manager>,
    path: PathBuf,
    /// Set when the state changed since the last save.
    dirty: AtomicBool,
    /// Wakes the deliverer when the outbox has new entries.
    pub wake: Notify,
}

impl Alerts {
    /// Loads the saved state (a fresh one when there is none).
    pub fn open(
        data_dir: &Path,
        config: AlertsConfig,
        webhooks: Vec<WebhookConfig>,
        findings_position: u64,
    ) -> Result<Alerts, String> {
        let dir = data_dir.join("alerts");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("state.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|e| {
                format!(
                    "the alert state {} is unreadable ({e}); move it aside to start with no alerts (findings stay in the findings index)",
                    path.display()
                )
            })?,
            // A first start alerts on what is found from now on, not on stored history.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                cursor: findings_position,
                ..State::default()
            },
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Alerts {
            manager: Mutex::new(Manager::new(state, config, webhooks)),
            path,
            dirty: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Manager> {
        self.manager.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Saves the state (the caller holds the lock, so no change slips in between).
    pub fn save(&self, m: &Manager) -> Result<(), String> {
        let bytes = serde_json::to_vec(&m.state)
            .map_err(|e| format!("cannot encode the alert state: {e}"))?;
        write_atomically(&self.path, &bytes).map_err(|e| {
            crate::error::name_os_errors(&format!(
                "cannot save the alert state {}: {e}",
                self.path.display()
            ))
        })?;
        self.dirty.store(false, Ordering::Release);
        Ok(())
    }

    /// Saves if anything changed since the last save.
    pub fn save_if_dirty(&self) -> Result<(), String> {
        if self.dirty.load(Ordering::Acquire) {
            let m = self.lock();
            self.save(&m)?;
        }
        Ok(())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Runs the alerter until `stop` is set: applies committed findings (those below
/// `committed`, the rules consumer's last findings commit) in position order, queues due
/// notifications, and saves before the deliverer may send them.
pub fn run_alerter(
    alerts: Arc<Alerts>,
    findings: Arc<Findings>,
    committed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) {
    let mut failing = false;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let result = step(
            &alerts,
            &findings,
            committed.load(Ordering::Acquire),
            &metrics,
        );
        match result {
            Ok(queued) => {
                if failing {
                    health.recover("alerts");
                    failing = false;
                }
                if queued > 0 {
                    alerts.wake.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "alerts");
                health.fail("alerts", e);
                failing = true;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        if stopping {
            return;
        }
        std::thread::sleep(TICK);
    }
}

/// One round: new findings, due notifications, save. Returns the notifications queued.
fn step(
    alerts: &Alerts,
    findings: &Findings,
    committed: u64,
    metrics: &Metrics,
) -> Result<usize, String> {
    let mut m = alerts.lock();
    let now = OffsetDateTime::now_utc();
    let mut changed = false;
    while m.state.cursor < committed {
        let batch = findings
            .between(m.state.cursor, committed, BATCH)
            .map_err(|e| format!("cannot read findings: {e}"))?;
        let full = batch.len() == BATCH;
        // A full batch may end inside one position's findings: apply up to the position
        // before the last, so the next read starts at a position boundary.
        let (apply_below, next) = match batch.last().map(|f| f.pos) {
            Some(last) if full && batch.iter().any(|f| f.pos < last) => (last, last),
            Some(last) if full => (last + 1, last + 1),
            _ => (committed, committed),
        };
        for f in batch.iter().filter(|f| f.pos < apply_below) {
            m.apply(f, now);
        }
        m.state.cursor = next;
        changed = true;
        if !full {
            break;
        }
    }
    let before = m.state.alerts.len();
    let queued = m.tick(now);
    changed |= queued > 0 || m.state.alerts.len() != before || m.take_changed();
    if changed || alerts.dirty.load(Ordering::Acquire) {
        alerts.save(&m)?;
    }
    metrics.alerts_observe(&m.state);
    Ok(queued)
}
