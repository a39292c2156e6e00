//! The proxy's shipper: scrubs each event, sends it to the collector over gRPC, and keeps what
//! the collector cannot take yet in a bounded on-disk spool.
//!
//! ```text
//! events ─▶ scrub ─▶ memory batch ─Send─▶ collector
//!                        │ collector down, slow or refusing the connection
//!                        └─▶ spool file ─(collector back)─Send─▶ collector, file removed
//! ```
//!
//! The proxied session never waits for this task: events reach it through a channel, and a
//! send that fails or takes longer than [`SEND_TIMEOUT`] moves the batch to the spool. Events
//! keep the ids they were given when observed, in memory and in the spool, so a batch sent
//! twice (acknowledged by a collector that then died before we heard it) is stored once: the
//! collector acknowledges a known id again without storing it again.
//!
//! **Spool** (`--spool DIR`): one file per spilled batch, `<uuidv7>.jsonl`, holding scrubbed
//! events as JSON Lines in the `ship` format; written to `.tmp` and renamed, so a reader never
//! sees half a file. Files sort by creation time and are shipped oldest first, by whichever
//! proxy sharing the directory gets to them (a file shipped twice is harmless, see above). The
//! directory's `.jsonl` total is capped (`--spool-max-bytes`); a batch that does not fit is
//! dropped, counted, announced on stderr, and the count travels to the collector as a
//! `wrap/spool_overflow` event as soon as it can be shipped. Nothing unscrubbed is ever written.
//!
//! Each spool file is fsynced, and so is the directory after the rename, so a machine crash
//! loses no spilled batch. Not done here: retrying events the collector rejected as invalid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;

use super::observe::self_event;
use crate::cli::client::{connect, request, status_text, ClientTls};
use crate::event::Event;
use crate::proto::ingest_client::IngestClient;
use crate::proto::ShipRequest;
use crate::scrub::Scrubber;

/// Longest a batch may take to be acknowledged before it is spooled instead.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Events per `Send`.
const BATCH: usize = 200;
/// How long an event may wait in memory for company before its batch is sent.
const LINGER: Duration = Duration::from_millis(50);
/// Waits between connection attempts while the collector is away: doubling up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct ShipperConfig {
    pub endpoint: String,
    pub token: Option<String>,
    pub tls: ClientTls,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    pub server: String,
    /// How long the final flush may take at exit before the rest is spooled.
    pub exit_deadline: Duration,
}

/// What the shipper did, for the exit summary.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub shipped: u64,
    pub spooled: u64,
    pub dropped: u64,
    pub rejected: u64,
}

struct Shipper {
    cfg: ShipperConfig,
    scrubber: Scrubber,
    client: Option<IngestClient<Channel>>,
    retry_at: Instant,
    backoff: Duration,
    batch: Vec<Event>,
    /// Overflow not yet reported to the collector.
    unreported_drops: u64,
    /// Whether the spool is known to hold files from us or another proxy.
    spool_maybe_full: bool,
    summary: Summary,
}

/// Runs until `events` closes and everything is shipped or spooled.
pub async fn run(
    mut events: mpsc::Receiver<Event>,
    cfg: ShipperConfig,
    scrubber: Scrubber,
) -> Summary {
    let mut s = Shipper {
        cfg,
        scrubber,
        client: None,
        retry_at: Instant::now(),
        backoff: Duration::from_millis(500),
        batch: Vec::new(),
        unreported_drops: 0,
        spool_maybe_full: true,
        summary: Summary::default(),
    };
    let mut tick = tokio::time::interval(LINGER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    s.push(ev);
                    if s.batch.len() >= BATCH {
                        s.flush().await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                s.flush().await;
                if s.batch.is_empty() && s.connected_or_due() {
                    s.drain_spool_file().await;
                }
            }
        }
    }
    s.finish().await;
    s.summary
}

impl Shipper {
    fn push(&mut self, mut ev: Event) {
        // Scrubbed here, before the event is held anywhere: memory, spool or wire.
        self.scrubber.scrub(&mut ev);
        self.batch.push(ev);
    }

    fn connected_or_due(&self) -> bool {
        self.client.is_some() || Instant::now() >= self.retry_at
    }

    async fn client(&mut self) -> Option<IngestClient<Channel>> {
        if let Some(c) = &self.client {
            return Some(c.clone());
        }
        if Instant::now() < self.retry_at {
            return None;
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(&self.cfg.endpoint, &self.cfg.tls))
            .await
        {
            Ok(Ok(c)) => {
                self.backoff = Duration::from_millis(500);
                self.client = Some(c.clone());
                Some(c)
            }
            _ => {
                self.failed();
                None
            }
        }
    }

    fn failed(&mut self) {
        self.client = None;
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Sends events; true when the collector acknowledged them (each accepted or rejected).
    async fn send(&mut self, events: &[Event]) -> bool {
        let Some(mut client) = self.client().await else {
            return false;
        };
        let msg = ShipRequest {
            events: events.iter().map(crate::ingest::proto::encode).collect(),
        };
        let req = match request(msg, self.cfg.token.as_deref()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mcp-audit wrap: {e:#}");
                return false;
            }
        };
        match tokio::time::timeout(SEND_TIMEOUT, client.send(req)).await {
            Ok(Ok(resp)) => {
                let resp = resp.into_inner();
                self.summary.shipped += resp.accepted.len() as u64;
                for r in &resp.rejected {
                    self.summary.rejected += 1;
                    eprintln!(
                        "mcp-audit wrap: the collector rejected event {}: {}",
                        r.event_id, r.reason
                    );
                }
                true
            }
            Ok(Err(status)) => {
                if status.code() == tonic::Code::Unauthenticated
                    || status.code() == tonic::Code::PermissionDenied
                {
                    eprintln!(
                        "mcp-audit wrap: the collector refused the events: {}; check `--token` (events are kept in the spool)",
                        status_text(&status)
                    );
                }
                self.failed();
                false
            }
            Err(_) => {
                self.failed();
                false
            }
        }
    }

    async fn flush(&mut self) {
        if self.unreported_drops > 0 && self.connected_or_due() {
            let mut labels = BTreeMap::new();
            labels.insert(
                "dropped_events".to_string(),
                self.unreported_drops.to_string(),
            );
            labels.insert(
                "spool_dir".to_string(),
                self.cfg.spool_dir.display().to_string(),
            );
            let ev = self_event("wrap/spool_overflow", &self.cfg.server, labels);
            if self.send(std::slice::from_ref(&ev)).await {
                self.unreported_drops = 0;
            }
        }
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if !self.send(&batch).await {
            self.spool(&batch);
        }
    }

    fn spool(&mut self, events: &[Event]) {
        match write_spool(&self.cfg.spool_dir, events, self.cfg.spool_max_bytes) {
            Ok(true) => {
                self.summary.spooled += events.len() as u64;
                self.spool_maybe_full = true;
            }
            Ok(false) => self.dropped(
                events.len() as u64,
                &format!(
                    "the spool at {} is full (cap {} bytes, `--spool-max-bytes`)",
                    self.cfg.spool_dir.display(),
                    self.cfg.spool_max_bytes
                ),
            ),
            Err(e) => self.dropped(
                events.len() as u64,
                &format!(
                    "cannot write the spool at {}: {}",
                    self.cfg.spool_dir.display(),
                    crate::error::describe_io(&e)
                ),
            ),
        }
    }

    fn dropped(&mut self, n: u64, why: &str) {
        self.summary.dropped += n;
        self.unreported_drops += n;
        eprintln!(
            "mcp-audit wrap: warning: {why}; dropped {n} events ({} so far); the count is reported to the collector when it is back",
            self.summary.dropped
        );
    }

    /// Ships the oldest spool file, if any, and removes it once acknowledged.
    async fn drain_spool_file(&mut self) {
        if !self.spool_maybe_full {
            return;
        }
        let Some(path) = oldest_spool_file(&self.cfg.spool_dir) else {
            self.spool_maybe_full = false;
            return;
        };
        let events = match read_spool(&path) {
            Ok(ev) => ev,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!(
                        "mcp-audit wrap: cannot read spool file {}: {}; leaving it",
                        path.display(),
                        crate::error::describe_io(&e)
                    );
                    self.spool_maybe_full = false;
                }
                return;
            }
        };
        for chunk in events.chunks(BATCH) {
            if !self.send(chunk).await {
                return;
            }
        }
        // Another proxy may have shipped and removed it first: fine.
        let _ = std::fs::remove_file(&path);
    }

    async fn finish(&mut self) {
        let deadline = Instant::now() + self.cfg.exit_deadline;
        // One connection attempt at exit even inside a backoff: the collector may be back.
        self.retry_at = Instant::now();
        let batch = std::mem::take(&mut self.batch);
        let mut sent = 0;
        for chunk in batch.chunks(BATCH) {
            if Instant::now() >= deadline {
                break;
            }
            let ok = tokio::time::timeout_at(deadline, self.send(chunk))
                .await
                .unwrap_or(false);
            if !ok {
                break;
            }
            sent += chunk.len();
        }
        if sent < batch.len() {
            self.spool(&batch[sent..]);
        }
        if self.unreported_drops > 0 && Instant::now() < deadline {
            self.retry_at = Instant::now();
            let _ = tokio::time::timeout_at(deadline, self.flush()).await;
        }
        // What earlier sessions (or this one, while the collector was away) left in the spool.
        let mut files = 0;
        while Instant::now() < deadline
            && self.client.is_some()
            && self.spool_maybe_full
            && files < 1000
        {
            files += 1;
            if tokio::time::timeout_at(deadline, self.drain_spool_file())
                .await
                .is_err()
            {
                break;
            }
        }
        if self.summary.dropped > 0 {
            eprintln!(
                "mcp-audit wrap: {} events were dropped because the spool was full or unwritable",
                self.summary.dropped
            );
        }
    }
}

fn spool_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Writes one spool file; `Ok(false)` when it would take the spool over `max_bytes`.
pub fn write_spool(dir: &Path, events: &[Event], max_bytes: u64) -> std::io::Result<bool> {
    let mut text = Vec::new();
    for ev in events {
        // An Event always serializes; a failure would be a bug, and the line is skipped.
        if serde_json::to_writer(&mut text, ev).is_ok() {
            text.push(b'\n');
        }
    }
    std::fs::create_dir_all(dir)?;
    if spool_size(dir) + text.len() as u64 > max_bytes {
        return Ok(false);
    }
    let name = uuid::Uuid::now_v7().to_string();
    let tmp = dir.join(format!("{name}.tmp"));
    // Durable before it counts as spooled: the file's bytes, then its name in the directory.
    // Only the spill path pays this, while the collector is away.
    let mut file = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(&mut file, &text)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(format!("{name}.jsonl")))?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(true)
}

fn oldest_spool_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .min()
}

/// Reads a spool file back; lines that are not events (a hand-edited file) are skipped.
pub fn read_spool(path: &Path) -> std::io::Result<Vec<Event>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| crate::ingest::json::decode_line(l).ok())
        .collect())
}

/// The default spool: `$XDG_STATE_HOME/mcp-audit/spool`, else `~/.local/state/mcp-audit/spool`,
/// else under the temporary directory.
pub fn default_spool_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("mcp-audit/spool");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".local/state/mcp-audit/spool");
    }
    std::env::temp_dir().join("mcp-audit-spool")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spooled_events_come_back_with_their_ids_and_the_cap_holds() {
        let dir = tempfile::tempdir().unwrap();
        let events: Vec<Event> = (0..3)
            .map(|i| Event::new(format!("ev-{i}"), "tools/call", "read"))
            .collect();
        assert!(write_spool(dir.path(), &events, 1 << 20).unwrap());
        let file = oldest_spool_file(dir.path()).unwrap();
        let back = read_spool(&file).unwrap();
        let ids: Vec<&str> = back.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["ev-0", "ev-1", "ev-2"]);
        let used = spool_size(dir.path());
        assert!(!write_spool(dir.path(), &events, used + 10).unwrap());
        assert_eq!(spool_size(dir.path()), used);
    }
}
