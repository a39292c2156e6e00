//! The indexer: the index as a durable consumer of the WAL.
//!
//! One thread takes committed events from its [`Feed`], adds them to the day indexes and
//! commits on a timer, or as soon as the stream pauses; each commit records the WAL position
//! it covers, and only then does the indexer publish that position (so the WAL keeps every
//! segment the index still needs).
//!
//! When adding or committing fails (a full disk, too many open files, a damaged WAL record),
//! the index is marked failing in `/readyz` and `/metrics` with the cause, everything not
//! committed is dropped, and after a growing pause the writers are reopened and the feed
//! rewinds to the index's checkpoint: it replays exactly what is missing, from the WAL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::name_os_errors;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::wal::{Feed, LogReader, Received};

use super::Indexes;

/// First pause after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// A pause in the stream this long commits what was added without waiting for the commit
/// interval: the end of a burst or a backfill is searchable at once, and a trickle of events
/// soon, while a steady stream (events at least every 200 ms) still commits once per interval.
const QUIET: Duration = Duration::from_millis(200);

/// Runs the indexer until the WAL's committer stops and everything durable is committed.
pub fn run<R: LogReader>(
    index: &Indexes,
    mut feed: Feed<R>,
    interval: Duration,
    health: &Health,
    metrics: &Metrics,
    retention_generation: &AtomicU64,
) {
    let mut next_commit = Instant::now() + interval;
    let mut next_retention = Instant::now();
    let mut pending = 0u64;
    let mut retry_at: Option<Instant> = None;
    let mut backoff = FIRST_BACKOFF;
    let mut closed = false;
    let mut last_event = Instant::now();
    let fail = |what: &str, e: String, backoff: &mut Duration| -> Instant {
        let reason = name_os_errors(&format!("{what}: {e}"));
        tracing::error!(error = %reason, retry_in = ?*backoff, "index writer failed; dropping what it had not committed and replaying from its checkpoint");
        health.fail("index", reason);
        let at = Instant::now() + *backoff;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        at
    };
    loop {
        if let Some(at) = retry_at {
            // Failing: never make the committer wait; the WAL keeps what is dropped here.
            feed.discard_live();
            if feed.is_closed() {
                // Shutting down while failing: what is not committed stays in the WAL.
                return;
            }
            let now = Instant::now();
            if now < at {
                std::thread::sleep((at - now).min(Duration::from_millis(100)));
                continue;
            }
            tracing::info!("index: reopening its writers");
            index.reset_writers();
            let from = index.checkpoint().wal_next;
            tracing::info!(from, "index: replaying from its checkpoint");
            feed.rewind(from);
            pending = 0;
            retry_at = None;
        }
        let due = if pending > 0 {
            next_commit.min(last_event + QUIET)
        } else {
            next_commit
        };
        match feed.recv(due.saturating_duration_since(Instant::now())) {
            Ok(Received::Events(chunk)) => {
                last_event = Instant::now();
                for entry in chunk {
                    if let Err(e) = index.add_entry(entry) {
                        retry_at = Some(fail("cannot add an event", e.to_string(), &mut backoff));
                        break;
                    }
                    pending += 1;
                }
            }
            Ok(Received::Idle) => {}
            Ok(Received::Closed) => closed = true,
            Err(e) => {
                retry_at = Some(fail("cannot read the WAL", e.to_string(), &mut backoff));
            }
        }
        if retry_at.is_some() {
            continue;
        }
        // Erasures whose events are all added: delete and commit now, so the caller hears
        // back once the deletion is durable.
        let due = index.take_due_erasures(feed.position());
        if !due.is_empty() {
            let position = feed.position();
            match index
                .delete_erased(&due)
                .and_then(|days| index.commit(position).map(|()| days))
            {
                Ok(days) => {
                    feed.mark_done(position);
                    pending = 0;
                    index.compact(&days);
                    Indexes::finish_erasures(due, Ok(()));
                }
                Err(e) => {
                    Indexes::finish_erasures(due, Err(e.to_string()));
                    retry_at = Some(fail("cannot erase", e.to_string(), &mut backoff));
                    continue;
                }
            }
        }
        let quiet = last_event.elapsed() >= QUIET;
        if (Instant::now() >= next_commit || closed || quiet) && pending > 0 {
            let started = Instant::now();
            let position = feed.position();
            match index.commit(position) {
                Ok(()) => {
                    feed.mark_done(position);
                    metrics
                        .index_commit
                        .observe(started.elapsed().as_secs_f64());
                    metrics.index_docs.set(index.num_docs() as i64);
                    pending = 0;
                    backoff = FIRST_BACKOFF;
                    health.recover("index");
                }
                Err(e) => {
                    retry_at = Some(fail("cannot commit", e.to_string(), &mut backoff));
                    continue;
                }
            }
        }
        metrics.index_lag_events.set(feed.lag() as i64);
        if Instant::now() >= next_commit {
            next_commit = Instant::now() + interval;
        }
        if Instant::now() >= next_retention {
            match index.apply_retention(time::OffsetDateTime::now_utc()) {
                Ok(days) if !days.is_empty() => {
                    tracing::info!(days = ?days, "retention: dropped old day indexes");
                    retention_generation.fetch_add(1, Ordering::AcqRel);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention failed"),
            }
            next_retention = Instant::now() + RETENTION_EVERY;
        }
        if closed {
            return;
        }
    }
}
