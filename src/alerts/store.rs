//! The alert state on disk and the alerter thread that follows the findings store.
//!
//! On disk: a snapshot, `<data_dir>/alerts/state.json` (replaced atomically: temporary file,
//! fsync, rename, fsync of the directory), and a journal, `journal.jsonl`, of what changed
//! since: one JSON line per changed alert, outbox entry, silence, the destinations and the
//! cursor, appended and fsynced by each save. Loading applies the journal to the snapshot; a
//! torn last line (a crash in the middle of a save, never acted on) is ignored, a bad line
//! followed by good ones is refused. The journal is folded into a new snapshot when it grows
//! past [`COMPACT_BYTES`] and at shutdown. Saves happen before any notification they queued
//! is sent and before an API change is answered.

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

/// The journal is folded into the snapshot past this size (or twice the snapshot's).
pub const COMPACT_BYTES: u64 = 32 << 20;
/// Findings read from the store per step.
const BATCH: usize = 1000;
/// How often the alerter looks for new findings and due notifications.
const TICK: Duration = Duration::from_millis(20);

/// The shared alert state: the alerter, the deliverer and the API go through it.
pub struct Alerts {
    manager: Mutex<Manager>,
    /// The snapshot.
    path: PathBuf,
    journal: PathBuf,
    /// Bytes in the journal.
    journal_bytes: AtomicU64,
    /// Bytes of the last snapshot: the journal is folded in when it outgrows twice that (and
    /// [`COMPACT_BYTES`]), so compaction costs stay proportional to what was written.
    snapshot_bytes: AtomicU64,
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
        let journal = dir.join("journal.jsonl");
        let mut state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes).map_err(|e| {
                format!(
                    "the alert state {} is unreadable ({e}); move the alerts folder aside to start with no alerts (findings stay in the findings index)",
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
        let journal_bytes = replay(&journal, &mut state)?;
        let alerts = Alerts {
            manager: Mutex::new(Manager::new(state, config, webhooks)),
            path,
            journal,
            journal_bytes: AtomicU64::new(journal_bytes),
            snapshot_bytes: AtomicU64::new(0),
            wake: Notify::new(),
        };
        // Start from one clean snapshot and an empty journal.
        {
            let mut m = alerts.lock();
            alerts.compact(&mut m)?;
        }
        Ok(alerts)
    }

    pub fn lock(&self) -> MutexGuard<'_, Manager> {
        self.manager.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves what changed (the caller holds the lock, so no change slips in between).
    pub fn save(&self, m: &mut Manager) -> Result<(), String> {
        let dirty = m.take_dirty();
        if dirty.is_empty() {
            return Ok(());
        }
        let mut out = Vec::new();
        let mut line = |entry: Entry<'_>| -> Result<(), String> {
            serde_json::to_writer(&mut out, &entry)
                .map_err(|e| format!("cannot encode the alert state: {e}"))?;
            out.push(b'\n');
            Ok(())
        };
        for id in &dirty.alerts {
            if let Some(a) = m.state.alerts.get(id) {
                line(Entry::Alert(std::borrow::Cow::Borrowed(a)))?;
            }
        }
        for id in &dirty.removed_alerts {
            line(Entry::RemoveAlert(id.into()))?;
        }
        for id in &dirty.outbox {
            if let Some(d) = m.state.outbox.get(id) {
                line(Entry::Delivery(std::borrow::Cow::Borrowed(d)))?;
            }
        }
        for id in &dirty.removed_outbox {
            line(Entry::RemoveDelivery(id.into()))?;
        }
        for id in &dirty.silences {
            if let Some(s) = m.state.silences.get(id) {
                line(Entry::Silence(std::borrow::Cow::Borrowed(s)))?;
            }
        }
        if dirty.destinations {
            line(Entry::Destinations(std::borrow::Cow::Borrowed(
                &m.state.destinations,
            )))?;
        }
        if dirty.cursor {
            line(Entry::Cursor(m.state.cursor))?;
        }
        let result = append(&self.journal, &out).map_err(|e| {
            crate::error::name_os_errors(&format!(
                "cannot save the alert state in {}: {e}",
                self.journal.display()
            ))
        });
        if let Err(e) = result {
            // Keep it all for the next try.
            m.dirty = dirty;
            return Err(e);
        }
        let bytes = self
            .journal_bytes
            .fetch_add(out.len() as u64, Ordering::AcqRel)
            + out.len() as u64;
        if bytes > COMPACT_BYTES.max(2 * self.snapshot_bytes.load(Ordering::Acquire)) {
            self.compact(m)?;
        }
        Ok(())
    }

    /// Writes the whole state as the snapshot and empties the journal.
    pub fn compact(&self, m: &mut Manager) -> Result<(), String> {
        let bytes = serde_json::to_vec(&m.state)
            .map_err(|e| format!("cannot encode the alert state: {e}"))?;
        write_atomically(&self.path, &bytes).map_err(|e| {
            crate::error::name_os_errors(&format!(
                "cannot save the alert state {}: {e}",
                self.path.display()
            ))
        })?;
        write_atomically(&self.journal, b"").map_err(|e| {
            crate::error::name_os_errors(&format!("cannot reset {}: {e}", self.journal.display()))
        })?;
        self.journal_bytes.store(0, Ordering::Release);
        self.snapshot_bytes
            .store(bytes.len() as u64, Ordering::Release);
        m.take_dirty();
        Ok(())
    }
}

/// One journal line (made and read one at a time, so its size does not matter).
#[allow(clippy::large_enum_variant)]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry<'a> {
    Alert(std::borrow::Cow<'a, super::Alert>),
    RemoveAlert(std::borrow::Cow<'a, str>),
    Delivery(std::borrow::Cow<'a, super::Delivery>),
    RemoveDelivery(std::borrow::Cow<'a, str>),
    Silence(std::borrow::Cow<'a, super::Silence>),
    Destinations(
        std::borrow::Cow<'a, std::collections::BTreeMap<String, super::manager::DestinationState>>,
    ),
    Cursor(u64),
}

/// Applies the journal to `state`; returns its size.
fn replay(path: &Path, state: &mut State) -> Result<u64, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        let entry: Entry<'static> = match serde_json::from_slice::<Entry<'_>>(line) {
            Ok(e) => e.into_owned(),
            // The last line without its newline: a save cut by a crash, never acted on.
            Err(_) if i == last => {
                tracing::warn!(file = %path.display(), "ignoring an incomplete last line of the alert journal (a save cut by a crash)");
                break;
            }
            Err(e) => {
                return Err(format!(
                    "the alert journal {} is damaged at line {} ({e}) with {} lines after it; move the alerts folder aside to start with no alerts (findings stay in the findings index)",
                    path.display(),
                    i + 1,
                    lines[i + 1..].iter().filter(|l| !l.is_empty()).count()
                ))
            }
        };
        match entry {
            Entry::Alert(a) => {
                state.alerts.insert(a.id.clone(), a.into_owned());
            }
            Entry::RemoveAlert(id) => {
                state.alerts.remove(id.as_ref());
            }
            Entry::Delivery(d) => {
                state.outbox.insert(d.id.clone(), d.into_owned());
            }
            Entry::RemoveDelivery(id) => {
                state.outbox.remove(id.as_ref());
            }
            Entry::Silence(s) => {
                state.silences.insert(s.id.clone(), s.into_owned());
            }
            Entry::Destinations(d) => state.destinations = d.into_owned(),
            Entry::Cursor(c) => state.cursor = c,
        }
    }
    Ok(text.len() as u64)
}

impl Entry<'_> {
    fn into_owned(self) -> Entry<'static> {
        use std::borrow::Cow::Owned;
        match self {
            Entry::Alert(a) => Entry::Alert(Owned(a.into_owned())),
            Entry::RemoveAlert(id) => Entry::RemoveAlert(Owned(id.into_owned())),
            Entry::Delivery(d) => Entry::Delivery(Owned(d.into_owned())),
            Entry::RemoveDelivery(id) => Entry::RemoveDelivery(Owned(id.into_owned())),
            Entry::Silence(s) => Entry::Silence(Owned(s.into_owned())),
            Entry::Destinations(d) => Entry::Destinations(Owned(d.into_owned())),
            Entry::Cursor(c) => Entry::Cursor(c),
        }
    }
}

fn append(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_data()
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

/// Runs the alerter until `stop` is set: applies the findings below `visible` (the position
/// the rules consumer has evaluated and staged every finding of) in position order, queues due
/// notifications, and saves before the deliverer may send them. A staged finding that a crash
/// loses before its commit is made again by the replay with the same id and position, which
/// the alerter's saved cursor has already passed: it is not notified twice.
pub fn run_alerter(
    alerts: Arc<Alerts>,
    findings: Arc<Findings>,
    visible: Arc<AtomicU64>,
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
            visible.load(Ordering::Acquire),
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
            let mut m = alerts.lock();
            if let Err(e) = alerts.compact(&mut m) {
                tracing::error!(error = %e, "alerts: the final snapshot failed (the journal keeps everything)");
            }
            return;
        }
        std::thread::sleep(TICK);
    }
}

/// One round: new findings, due notifications, save. Returns the notifications queued.
fn step(
    alerts: &Alerts,
    findings: &Findings,
    visible: u64,
    metrics: &Metrics,
) -> Result<usize, String> {
    let mut m = alerts.lock();
    let now = OffsetDateTime::now_utc();
    while m.state.cursor < visible {
        let batch = findings
            .between(m.state.cursor, visible, BATCH)
            .map_err(|e| format!("cannot read findings: {e}"))?;
        let full = batch.len() == BATCH;
        // A full batch may end inside one position's findings: apply up to the position
        // before the last, so the next read starts at a position boundary.
        let (apply_below, next) = match batch.last().map(|f| f.pos) {
            Some(last) if full && batch.iter().any(|f| f.pos < last) => (last, last),
            Some(last) if full => (last + 1, last + 1),
            _ => (visible, visible),
        };
        for f in batch.iter().filter(|f| f.pos < apply_below) {
            m.apply(f, now);
        }
        m.state.cursor = next;
        m.dirty.cursor = true;
        if !full {
            break;
        }
    }
    let queued = m.tick(now);
    alerts.save(&mut m)?;
    metrics.alerts_observe(&m.state);
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(e: Entry<'_>) -> String {
        serde_json::to_string(&e).unwrap() + "\n"
    }

    #[test]
    fn the_journal_replays_a_torn_tail_is_ignored_and_damage_in_the_middle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let good = line(Entry::Cursor(7)) + &line(Entry::RemoveAlert("x".into()));
        std::fs::write(&path, format!("{good}{{\"cursor\":")).unwrap();
        let mut state = State::default();
        replay(&path, &mut state).unwrap();
        assert_eq!(state.cursor, 7);

        std::fs::write(&path, format!("{{\"cursor\":\n{good}")).unwrap();
        let err = replay(&path, &mut State::default()).unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("2 lines after it"),
            "{err}"
        );
    }
}
