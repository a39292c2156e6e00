//! Generated MCP traffic: a realistic benign day of a company's agent use, and labelled
//! attack scenarios with their near misses. Rule tests, the README's false-positive table,
//! `mcp-audit demo` and `serve --demo` draw from here; `bench` and the integration tests use
//! the fixed-size events of [`Generator`].
//!
//! - [`benign_day`] / [`benign_conversations`]: conversations of 36 people, CI and nightly
//!   jobs across 15 MCP servers, with sessions, `tools/list`, consent, errors and rate shapes
//!   a real day has (see `conversations.rs` for what it holds on purpose).
//! - [`attacks`]: one [`Scenario`] per attack variant, each naming the rule that must fire
//!   and the events its findings must cite, plus near misses that must not fire.
//! - [`demo_day`]: both, interleaved, the attacks placed after the warm-up.
//!
//! Everything is deterministic for a seed. The thresholds and windows the scenarios are built
//! around are the constants below; `TRAFFIC.md` next to this file explains them and the
//! decisions a rule author needs (what counts as untrusted, private and open-world, what the
//! toxic-flow rule exempts, which near misses are ambiguous).
//!
//! This module generates events; it does not evaluate rules, and nothing here is sent
//! anywhere except by the callers (`seed`, the `demo` command).

mod attacks;
mod calls;
pub mod catalog;
mod content;
mod conversations;
mod load;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::event::Event;
use crate::ingest::{Incoming, Ingestor};

pub use attacks::{attacks, rule};
pub use catalog::EXPENSIVE_TOOLS;
pub use conversations::{benign_conversations, benign_day, Conversation, Shape};
pub use load::Generator;

/// How long novelty rules (`mcp-new-*`, `mcp-tool-shadowing`) learn before they fire: every
/// server, tool and client of a benign day appears within its first 45 minutes, and novelty
/// scenarios reach their trigger 10+ minutes after their own warm-up of this length.
pub const WARM_UP: Duration = Duration::hours(1);
/// A source that sent steadily and then nothing for longer than this is silent
/// (`mcp-source-silent`). Steady means busy nearly every minute: events in at least
/// [`STEADY_MINUTES`] of the 60 minutes before its last event. A small company's own
/// traffic is too bursty for less: its gateways and laptop wrappers go quiet for 15–60
/// minutes on ordinary evenings, and the benign day shows it.
pub const SILENCE: Duration = Duration::minutes(15);
pub const STEADY_MINUTES: usize = 54;
/// More calls than this within 60 s is a burst: per user and tool (`mcp-burst-user-tool`),
/// per remote address (`mcp-burst-remote-addr`, every method counted).
pub const BURST_LIMIT: usize = 100;
/// More calls than this within 60 s of one of [`EXPENSIVE_TOOLS`] by one user is a burst
/// (`mcp-burst-expensive-tool`). The benign day stays under it even counted over all users.
pub const EXPENSIVE_LIMIT: usize = 10;
/// At least this many `denied` or `consent_denied` calls by one user within
/// [`DENIED_WINDOW`] is probing (`mcp-denied-flood`).
pub const DENIED_LIMIT: usize = 10;
pub const DENIED_WINDOW: Duration = Duration::minutes(5);
/// A write carries text of a private read when it contains a run of at least this many
/// characters of the read's result (`mcp-toxic-flow`); benign writes share less.
pub const MOVED_TEXT_MIN_CHARS: usize = 24;
/// A realistic number of conversations for a 24-hour day of the catalog's people.
pub const DAY_CONVERSATIONS: usize = 1200;

/// One labelled scenario: an attack (one expected rule) or a near miss (none).
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Unique, kebab-case; near misses start with `near-` or `ambiguous-`. Every event id
    /// of the scenario starts with it.
    pub name: &'static str,
    /// The rule that must fire (at most one); empty for a near miss.
    pub expect: &'static [&'static str],
    /// Rules that may also fire on these events without it being a false positive: a
    /// neighbouring family that legitimately co-fires, or the rule an ambiguous near miss
    /// could reasonably trip. Any other firing is a false positive.
    pub tolerate: &'static [&'static str],
    /// What the scenario shows, and the intended verdict.
    pub about: &'static str,
    /// In time order.
    pub events: Vec<Event>,
    /// Event ids that findings of the expected rule must cite: each one by at least one
    /// finding. Empty for a near miss.
    pub trigger: Vec<String>,
}

impl Scenario {
    /// Moves every event by `by` (to place the scenario in a longer stream).
    pub fn shift(&mut self, by: Duration) {
        for e in &mut self.events {
            e.timestamp += by;
        }
    }

    /// From its first event to its last.
    pub fn length(&self) -> Duration {
        match (self.events.first(), self.events.last()) {
            (Some(a), Some(b)) => b.timestamp - a.timestamp,
            _ => Duration::ZERO,
        }
    }
}

/// A benign day with every scenario (attacks and near misses) placed in it after the
/// warm-up, spread between 35% of the span and its end, sorted by timestamp.
pub fn demo_day(
    seed: u64,
    start: OffsetDateTime,
    span: Duration,
    conversations: usize,
) -> Vec<Event> {
    let mut events = benign_day(seed, start, span, conversations);
    let mut scenarios = attacks(seed, start);
    let first = start + std::cmp::max(span * 0.35, WARM_UP * 1.5);
    let last = scenarios
        .iter()
        .map(Scenario::length)
        .max()
        .unwrap_or_default();
    let end: OffsetDateTime = start + span - last;
    let room = std::cmp::max(end - first, Duration::ZERO);
    let n = scenarios.len().max(1) as f64;
    for (k, s) in scenarios.iter_mut().enumerate() {
        s.shift(first - start + room * (k as f64 / n));
        events.append(&mut s.events);
    }
    events.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    events
}

/// About how many events a benign conversation makes (its `tools/list` calls included), to
/// size a day for a wanted number of events.
pub const EVENTS_PER_CONVERSATION: usize = 6;

/// The conversations for a [`demo_day`] of about `events` events in total.
pub fn conversations_for(events: usize) -> usize {
    let scenario_events: usize = attacks(0, OffsetDateTime::UNIX_EPOCH)
        .iter()
        .map(|s| s.events.len())
        .sum();
    (events.saturating_sub(scenario_events) / EVENTS_PER_CONVERSATION).max(20)
}

/// Fills the collector with a [`demo_day`] of about `n` events over the last 24 hours,
/// through the real ingest path (validation, scrubbing, WAL). Returns how many were stored.
pub async fn seed(ingestor: &Arc<Ingestor>, n: usize) -> Result<usize, crate::wal::WalError> {
    let now = OffsetDateTime::now_utc();
    let events = demo_day(
        42,
        now - Duration::hours(24),
        Duration::hours(23),
        conversations_for(n),
    );
    let mut stored = 0;
    for chunk in events.chunks(500) {
        let batch = chunk
            .iter()
            .map(|e| Incoming {
                wire_bytes: serde_json::to_vec(e).map(|v| v.len()).unwrap_or(1000),
                decoded: Ok(e.clone()),
                id_hint: e.event_id.clone(),
            })
            .collect();
        stored += ingestor
            .ingest(Arc::from(crate::ingest::DEFAULT_TENANT), batch)
            .await?
            .accepted
            .len();
    }
    Ok(stored)
}
