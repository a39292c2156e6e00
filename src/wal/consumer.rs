//! Durable consumers of the WAL (the index today; rules and the alert outbox next).
//!
//! Each consumer keeps its own durable position: the position after the last event whose
//! effect it has made durable (the index: committed to tantivy). It publishes that position
//! here, so the committer keeps every segment until the slowest consumer has passed it.
//!
//! A consumer reads through a [`Feed`]: committed events come straight from the committer
//! (no decoding, no disk) while the consumer keeps up; whatever it did not get that way (it
//! started behind, it rewound after a failure, it dropped events while failing) it reads back
//! from the log's files. So after a crash or a failure each consumer replays exactly what it
//! missed, and the live path never waits for a consumer that is catching up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::log::LogReader;
use super::WalError;
use crate::backlog::Charge;
use crate::event::StoredEvent;

/// A committed event as consumers see it. Shared: the backlog charge it carries returns when
/// the last consumer lets go of it.
pub struct Entry {
    pub pos: u64,
    pub event: StoredEvent,
    /// The stored record (`hash | canonical JSON`), as in the WAL.
    pub record: Vec<u8>,
    pub(crate) _charge: Charge,
}

impl Entry {
    /// An entry read back from the log (it holds no backlog charge).
    pub fn decode(pos: u64, record: &[u8]) -> Result<Entry, WalError> {
        Ok(Entry {
            pos,
            event: super::decode_record(pos, record)?,
            record: record.to_vec(),
            _charge: Charge::default(),
        })
    }
}

/// Committed events handed over together (positions ascending, no gaps except skipped ones).
pub type Chunk = Vec<Arc<Entry>>;

/// Chunks waiting for one consumer before the committer waits too: a slow consumer slows
/// acknowledgements down instead of growing memory.
pub const QUEUE_CHUNKS: usize = 64;
/// Events read back from the log per call while catching up.
const CATCH_UP: u64 = 4096;
/// Live events a consumer keeps while it works through earlier ones. Every live event holds
/// its share of the ingest backlog until the last consumer lets go of it, so in a burst the
/// backlog (`backlog::BACKLOG_BYTES`), not this window, is what fills first, and
/// acknowledgements wait for the slowest consumer instead of running ahead of it. A consumer
/// that falls further behind (it started late, it failed, the events are tiny) drops what
/// arrives and reads it back from the log instead. That costs it a file read and a decode per
/// event: with the old window of 4,096 the index and the rules both fell out of it in every
/// burst and did so for the rest of it (README, "end-to-end ingest with the pack on").
const LIVE_WINDOW: u64 = 65_536;

struct Slot {
    name: &'static str,
    tx: SyncSender<Chunk>,
    done: Arc<AtomicU64>,
}

/// Every consumer of one WAL: where to send committed events, and how far each has come.
#[derive(Default)]
pub struct Consumers {
    slots: Mutex<Vec<Slot>>,
}

impl Consumers {
    /// Registers a consumer whose durable position is `position`; returns its feed.
    pub fn register<R: LogReader>(&self, name: &'static str, position: u64, reader: R) -> Feed<R> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_CHUNKS);
        let done = Arc::new(AtomicU64::new(position));
        lock(&self.slots).push(Slot {
            name,
            tx,
            done: done.clone(),
        });
        Feed {
            rx,
            reader,
            next: position,
            done,
            ready: VecDeque::new(),
            closed: false,
        }
    }

    /// The lowest durable position of all consumers (`u64::MAX` with none).
    pub fn slowest(&self) -> u64 {
        lock(&self.slots)
            .iter()
            .map(|s| s.done.load(Ordering::Acquire))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The durable position of one consumer.
    pub fn position(&self, name: &str) -> Option<u64> {
        lock(&self.slots)
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.done.load(Ordering::Acquire))
    }

    /// Hands a chunk to every consumer, waiting while one's queue is full. A consumer that is
    /// gone is forgotten (its position stays, so its segments are kept).
    pub(crate) fn publish(&self, chunk: &Chunk) {
        let senders: Vec<(usize, SyncSender<Chunk>)> = lock(&self.slots)
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.tx.clone()))
            .collect();
        for (i, tx) in senders {
            let sent = match tx.try_send(chunk.clone()) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(c)) => tx.send(c).map_err(|_| ()),
                Err(TrySendError::Disconnected(_)) => Err(()),
            };
            if sent.is_err() {
                let slots = lock(&self.slots);
                if let Some(s) = slots.get(i) {
                    tracing::error!(
                        consumer = s.name,
                        "wal consumer stopped; its events stay in the WAL until it restarts"
                    );
                }
            }
        }
    }

    /// Ends every feed (after the committer's last chunk): consumers read what is left from
    /// the log and then see the end.
    pub(crate) fn close(&self) {
        lock(&self.slots).clear();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One consumer's view of the WAL: committed events in position order, each exactly once
/// (unless the consumer rewinds).
pub struct Feed<R: LogReader> {
    rx: Receiver<Chunk>,
    reader: R,
    /// The position of the next event to hand out.
    next: u64,
    /// Published durable position.
    done: Arc<AtomicU64>,
    /// Live events already received, at or after `next`.
    ready: VecDeque<Arc<Entry>>,
    /// The committer has stopped: nothing more will arrive live.
    closed: bool,
}

/// What [`Feed::recv`] returns.
pub enum Received {
    /// Events in position order, starting at the feed's position.
    Events(Chunk),
    /// Nothing new within the timeout.
    Idle,
    /// The committer stopped and every durable event has been handed out.
    Closed,
}

impl<R: LogReader> Feed<R> {
    /// Waits up to `timeout` for the next events.
    pub fn recv(&mut self, timeout: Duration) -> Result<Received, WalError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Take what the committer has sent, so it never waits while this consumer reads
            // the log.
            loop {
                match self.rx.try_recv() {
                    Ok(chunk) => self.take(chunk),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        self.closed = true;
                        break;
                    }
                }
            }
            // Events the consumer missed live come from the log first.
            let live_from = self.ready.front().map(|e| e.pos);
            let durable = self.reader.durable_end();
            let catch_up_to = live_from.unwrap_or(durable).min(durable);
            if self.next < catch_up_to {
                let to = catch_up_to.min(self.next + CATCH_UP);
                let mut out = Vec::new();
                let mut bad = None;
                self.reader.read(self.next, to, &mut |pos, record| {
                    // An erased event: nothing left to consume.
                    if super::marker::is_marker(record) {
                        return true;
                    }
                    match Entry::decode(pos, record) {
                        Ok(e) => out.push(Arc::new(e)),
                        Err(e) => bad = Some(e),
                    }
                    bad.is_none()
                })?;
                if let Some(e) = bad {
                    return Err(e);
                }
                // Positions the log skipped are not there: move past them too.
                self.next = out.last().map_or(to, |e| e.pos + 1).max(to);
                if !out.is_empty() {
                    return Ok(Received::Events(out));
                }
                continue;
            }
            if !self.ready.is_empty() {
                let chunk: Chunk = self.ready.drain(..).collect();
                self.next = chunk.last().map_or(self.next, |e| e.pos + 1);
                return Ok(Received::Events(chunk));
            }
            if self.closed {
                return Ok(Received::Closed);
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(wait) {
                Ok(chunk) => self.take(chunk),
                Err(RecvTimeoutError::Timeout) => {
                    if self.next < self.reader.durable_end() {
                        continue;
                    }
                    return Ok(Received::Idle);
                }
                Err(RecvTimeoutError::Disconnected) => self.closed = true,
            }
        }
    }

    /// Keeps the part of a live chunk the consumer does not have yet. While it is behind,
    /// chunks beyond what it has are dropped rather than held: the log has them, and holding
    /// them would make the committer wait.
    fn take(&mut self, chunk: Chunk) {
        let expected = self.ready.back().map_or(self.next, |e| e.pos + 1);
        let mut fresh = chunk.into_iter().filter(|e| e.pos >= expected).peekable();
        match fresh.peek() {
            None => {}
            Some(first) if self.ready.is_empty() && first.pos > self.next + LIVE_WINDOW => {
                // Far behind: read from the log; drop this.
            }
            Some(_) => self.ready.extend(fresh),
        }
        // A queue of live events that the consumer cannot reach soon is dropped too.
        if self.ready.len() > LIVE_WINDOW as usize {
            self.ready.clear();
        }
    }

    /// Goes back to `position` (the consumer's durable position after a failure): everything
    /// from there is handed out again.
    pub fn rewind(&mut self, position: u64) {
        self.next = position;
        self.ready.clear();
    }

    /// Drains live events without handing them out (a failed consumer does this so the
    /// committer never waits for it; the events are read back from the log later).
    pub fn discard_live(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(chunk) => drop(chunk),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.closed = true;
                    break;
                }
            }
        }
        self.ready.clear();
    }

    /// The committer has stopped (nothing more arrives live).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Durable events this consumer has not made durable yet.
    pub fn lag(&self) -> u64 {
        self.reader
            .durable_end()
            .saturating_sub(self.done.load(Ordering::Acquire))
    }

    /// Publishes the consumer's durable position: segments below the slowest one may go.
    pub fn mark_done(&self, position: u64) {
        self.done.store(position, Ordering::Release);
    }

    pub fn position(&self) -> u64 {
        self.next
    }

    /// Durable events not handed out yet.
    pub fn unread(&self) -> u64 {
        self.reader.durable_end().saturating_sub(self.next)
    }

    /// The shared durable position (for whoever needs to know how far this consumer is).
    pub fn done_handle(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::wal::log::{FileLog, Log};

    fn record(i: u64) -> Vec<u8> {
        let ev = StoredEvent {
            event: Event::new(format!("e{i}"), "tools/call", "t"),
            tenant: "t".into(),
            received_at: time::OffsetDateTime::now_utc(),
            seq: i + 1,
            hash: hex::encode([0u8; 32]),
            redactions: vec![],
        };
        ev.record().unwrap()
    }

    fn entries(log: &mut FileLog, from: u64, n: u64) -> Chunk {
        (from..from + n)
            .map(|i| {
                let r = record(i);
                assert_eq!(log.append(&r).unwrap(), i);
                Arc::new(Entry::decode(i, &r).unwrap())
            })
            .collect()
    }

    fn positions(feed: &mut Feed<impl LogReader>, until: u64) -> Vec<u64> {
        let mut got = Vec::new();
        for _ in 0..100 {
            match feed.recv(Duration::from_millis(20)).unwrap() {
                Received::Events(c) => got.extend(c.iter().map(|e| e.pos)),
                Received::Idle | Received::Closed => {}
            }
            if got.last().is_some_and(|&p| p + 1 >= until) {
                break;
            }
        }
        got
    }

    #[test]
    fn a_consumer_behind_reads_the_log_then_follows_live() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path(), 1 << 20, &mut |_, _| {}).unwrap();
        let consumers = Consumers::default();
        // 100 events before the consumer exists.
        entries(&mut log, 0, 100);
        log.sync().unwrap();
        let mut feed = consumers.register("test", 40, log.reader());
        // Then 50 live ones.
        let live = entries(&mut log, 100, 50);
        log.sync().unwrap();
        consumers.publish(&live);
        let got = positions(&mut feed, 150);
        assert_eq!(got, (40..150).collect::<Vec<_>>());
        // A rewind hands everything out again, from the log.
        feed.rewind(120);
        assert_eq!(positions(&mut feed, 150), (120..150).collect::<Vec<_>>());
        feed.mark_done(150);
        assert_eq!(consumers.slowest(), 150);
    }

    #[test]
    fn a_burst_within_the_window_is_handed_out_live_not_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path(), 64 << 20, &mut |_, _| {}).unwrap();
        let consumers = Consumers::default();
        let mut feed = consumers.register("test", 0, log.reader());
        // 20,000 events arrive before the consumer takes any (a burst it is slow to follow).
        let mut published = Vec::new();
        for k in 0..40 {
            let c = entries(&mut log, k * 500, 500);
            log.sync().unwrap();
            consumers.publish(&c);
            published.extend(c);
        }
        let mut got: Vec<Arc<Entry>> = Vec::new();
        while got.len() < published.len() {
            match feed.recv(Duration::from_millis(50)).unwrap() {
                Received::Events(c) => got.extend(c),
                Received::Idle | Received::Closed => break,
            }
        }
        assert_eq!(got.len(), published.len());
        // The very entries the committer handed over: none was dropped and decoded again.
        let read_back = got
            .iter()
            .zip(&published)
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .count();
        assert_eq!(
            read_back, 0,
            "events of the burst were read back from the log"
        );
    }

    #[test]
    fn live_events_dropped_while_failing_come_back_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path(), 1 << 20, &mut |_, _| {}).unwrap();
        let consumers = Consumers::default();
        let mut feed = consumers.register("test", 0, log.reader());
        for k in 0..5 {
            let c = entries(&mut log, k * 10, 10);
            log.sync().unwrap();
            consumers.publish(&c);
            if k == 2 {
                feed.discard_live();
            }
        }
        assert_eq!(positions(&mut feed, 50), (0..50).collect::<Vec<_>>());
        // The committer stops: the feed ends after the last durable event.
        consumers.close();
        drop(consumers);
        assert!(matches!(
            feed.recv(Duration::from_millis(10)).unwrap(),
            Received::Closed
        ));
    }
}
