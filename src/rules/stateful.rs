//! The stateful kinds: what each remembers per group key, and when it fires.
//!
//! Everything here is pure and synchronous: an observation (group key, event time, event id,
//! the values the kind needs) goes in, at most one firing comes out. Time is the events' own
//! timestamps, never the arrival time: two hours of events shipped late, in two seconds, are
//! two hours of events. State is kept per key in a [`Keyed`] map with a cap and
//! least-recently-used eviction, and it serializes (`serde`) so it survives restarts.
//!
//! | kind | per key | fires when |
//! |---|---|---|
//! | `event_count` | the newest `threshold` event times | `threshold` events fall within `window` |
//! | `value_count` | distinct values with their last time | `threshold` distinct values within `window` |
//! | `spike` | count of the current window, a moving baseline | the count reaches `factor` × baseline (and `min_count`) after `warmup` windows |
//! | `new_term` | the values seen | a value is new, after the rule's warm-up (in event time) |
//! | `change` | the last value | the value differs from the last one |
//! | `temporal_ordered` | which steps matched, with captures | every step matched in order within `window` |
//! | `absence` | last event time, event count | no event for `period` while others keep arriving |
//!
//! After firing, a key is quiet until its window has passed (counts) or until it fires on a
//! new value (terms, changes), so one burst is one finding, not one per event.

use std::collections::VecDeque;
use std::ops::ControlFlow;

/// Keys are group values from events (user, tool, conversation...), which clients choose: the
/// hash is seeded at random per process, so they cannot pick keys that collide. hashbrown's
/// map, whose `entry_ref` finds or adds a key with one lookup and copies the key only when it
/// is new (every event touches a key of each stateful rule).
pub(super) type HashMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;

use serde::{Deserialize, Serialize};

/// Microseconds since the epoch: the time unit of all state.
pub type Micros = i64;

/// A map of per-key state with a cap and least-recently-used eviction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Keyed<S> {
    map: HashMap<String, (S, u64)>,
    /// Logical clock of touches.
    tick: u64,
    cap: usize,
    /// Keys evicted since start (for `/metrics`).
    #[serde(skip)]
    pub evicted: u64,
}

impl<S> Keyed<S> {
    pub fn new(cap: usize) -> Self {
        Keyed {
            map: HashMap::default(),
            tick: 0,
            cap: cap.max(1),
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The state of `key`, created with `init` if absent.
    pub fn entry(&mut self, key: &str, init: impl FnOnce() -> S) -> &mut S {
        self.tick += 1;
        let tick = self.tick;
        if self.map.len() >= self.cap && !self.map.contains_key(key) {
            self.shrink_to(self.cap - self.cap / 10 - 1);
        }
        let slot = self.map.entry_ref(key).or_insert_with(|| (init(), tick));
        slot.1 = tick;
        &mut slot.0
    }

    pub fn get(&self, key: &str) -> Option<&S> {
        self.map.get(key).map(|(s, _)| s)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut S)> {
        self.map.iter_mut().map(|(k, (s, _))| (k, s))
    }

    /// Evicts the least recently touched keys down to `n`.
    fn shrink_to(&mut self, n: usize) {
        if self.map.len() <= n {
            return;
        }
        let mut ticks: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
        let drop = self.map.len() - n;
        let (_, cut, _) = ticks.select_nth_unstable(drop - 1);
        let cut = *cut;
        let before = self.map.len();
        self.map.retain(|_, (_, t)| *t > cut);
        self.evicted += (before - self.map.len()) as u64;
    }
}

/// What a firing reports, for the finding's explanation and evidence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fired {
    /// Events that make the case, oldest first (at most [`EVIDENCE`]).
    pub event_ids: Vec<String>,
    /// Values for the explanation template (`count`, `value`, `previous`...).
    pub values: Vec<(&'static str, String)>,
}

/// Most event ids a finding cites.
pub const EVIDENCE: usize = 20;

// ---------------------------------------------------------------------------------------
// event_count

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CountState {
    /// (time, event id) of the newest events, sorted by time, at most `threshold`.
    events: VecDeque<(Micros, String)>,
    /// Quiet until this time (the window of the last firing).
    quiet_until: Micros,
}

/// `threshold` events of a key within `window` microseconds.
pub fn event_count(
    s: &mut CountState,
    threshold: usize,
    window: Micros,
    at: Micros,
    event_id: &str,
) -> Option<Fired> {
    let threshold = threshold.max(1);
    // Reuse the buffer of the entry that leaves (no allocation per event once the window is
    // full).
    let mut id = if s.events.len() >= threshold && s.events.front().is_some_and(|(t, _)| *t <= at) {
        s.events.pop_front().map(|(_, id)| id).unwrap_or_default()
    } else {
        String::new()
    };
    id.clear();
    id.push_str(event_id);
    // Events of one key come in time order or a little late (several streams, several
    // sources): look for the place from the newest end.
    let i = s
        .events
        .iter()
        .rposition(|(t, _)| *t <= at)
        .map_or(0, |i| i + 1);
    s.events.insert(i, (at, id));
    while s.events.len() > threshold {
        s.events.pop_front();
    }
    if s.events.len() < threshold || at < s.quiet_until {
        return None;
    }
    let first = s.events.front().map_or(at, |e| e.0);
    let last = s.events.back().map_or(at, |e| e.0);
    if last - first > window {
        return None;
    }
    s.quiet_until = first + window;
    let took = last - first;
    Some(Fired {
        event_ids: evidence(s.events.iter().map(|(_, id)| id)),
        values: vec![("count", threshold.to_string()), ("span", human(took))],
    })
}

fn evidence<'a>(ids: impl DoubleEndedIterator<Item = &'a String>) -> Vec<String> {
    // The newest ones: the last of them is the event that tipped it over.
    let mut v: Vec<String> = ids.rev().take(EVIDENCE).cloned().collect();
    v.reverse();
    v
}

// ---------------------------------------------------------------------------------------
// value_count

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DistinctState {
    /// value → (last time, event id), at most `threshold` values (the most recent).
    values: HashMap<String, (Micros, String)>,
    quiet_until: Micros,
}

/// `threshold` distinct values of a field for a key within `window`.
pub fn value_count(
    s: &mut DistinctState,
    threshold: usize,
    window: Micros,
    at: Micros,
    value: &str,
    event_id: &str,
) -> Option<Fired> {
    let threshold = threshold.max(1);
    s.values.retain(|_, (t, _)| *t >= at - window);
    let e = s
        .values
        .entry(value.to_string())
        .or_insert((at, event_id.to_string()));
    if at >= e.0 {
        *e = (at, event_id.to_string());
    }
    if s.values.len() > threshold {
        // Keep the most recent `threshold`.
        let mut times: Vec<Micros> = s.values.values().map(|(t, _)| *t).collect();
        times.sort_unstable();
        let cut = times[times.len() - threshold];
        s.values.retain(|_, (t, _)| *t >= cut);
    }
    if s.values.len() < threshold || at < s.quiet_until {
        return None;
    }
    let first = s.values.values().map(|(t, _)| *t).min().unwrap_or(at);
    s.quiet_until = first + window;
    let mut seen: Vec<(&Micros, &String, &String)> =
        s.values.iter().map(|(v, (t, id))| (t, v, id)).collect();
    seen.sort();
    let sample: Vec<&str> = seen.iter().take(5).map(|(_, v, _)| v.as_str()).collect();
    Some(Fired {
        event_ids: evidence(seen.iter().map(|(_, _, id)| *id)),
        values: vec![
            ("count", s.values.len().to_string()),
            ("values", sample.join(", ")),
        ],
    })
}

// ---------------------------------------------------------------------------------------
// spike

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpikeState {
    /// Start of the current window.
    window_start: Micros,
    count: u64,
    /// Exponentially weighted mean count per window of the past windows.
    baseline: f64,
    /// Windows seen (the baseline is trusted after `warmup`).
    windows: u64,
    fired_in_window: bool,
    recent: VecDeque<String>,
}

/// Parameters of `spike`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikeParams {
    pub window: Micros,
    pub factor: f64,
    pub min_count: u64,
    pub warmup: u64,
}

/// The count of the current window reaches `factor` × the key's own baseline.
pub fn spike(s: &mut SpikeState, p: SpikeParams, at: Micros, event_id: &str) -> Option<Fired> {
    let window = p.window.max(1);
    let start = at - at.rem_euclid(window);
    if s.windows == 0 && s.count == 0 {
        s.window_start = start;
    }
    if start < s.window_start {
        // A late event of an earlier window: it only counts towards the baseline, not to a spike.
        return None;
    }
    if start > s.window_start {
        // Close the current window and every empty one since.
        let closed = ((start - s.window_start) / window).max(1) as u64;
        const ALPHA: f64 = 0.2;
        s.baseline = if s.windows == 0 {
            s.count as f64
        } else {
            ALPHA * s.count as f64 + (1.0 - ALPHA) * s.baseline
        };
        for _ in 1..closed.min(64) {
            s.baseline *= 1.0 - ALPHA;
        }
        s.windows += closed;
        s.window_start = start;
        s.count = 0;
        s.fired_in_window = false;
        s.recent.clear();
    }
    s.count += 1;
    let mut id = if s.recent.len() >= EVIDENCE {
        s.recent.pop_front().unwrap_or_default()
    } else {
        String::new()
    };
    id.clear();
    id.push_str(event_id);
    s.recent.push_back(id);
    if s.fired_in_window || s.windows < p.warmup {
        return None;
    }
    let limit = (p.factor * s.baseline.max(1.0)).max(p.min_count as f64);
    if (s.count as f64) < limit {
        return None;
    }
    s.fired_in_window = true;
    Some(Fired {
        event_ids: s.recent.iter().cloned().collect(),
        values: vec![
            ("count", s.count.to_string()),
            ("baseline", format!("{:.1}", s.baseline)),
        ],
    })
}

// ---------------------------------------------------------------------------------------
// new_term

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TermsState {
    /// Values seen for the key (capped; least recently seen go first, see `new_term`).
    seen: HashMap<String, Micros>,
}

/// Most values remembered per key.
const TERMS_PER_KEY: usize = 4096;

/// A value never seen for the key. `learning`: during the rule's warm-up, values are learnt
/// without firing. `min_existing`: fire only when the key already had that many values (1 for
/// "a second server starts offering a tool").
pub fn new_term(
    s: &mut TermsState,
    value: &str,
    at: Micros,
    event_id: &str,
    learning: bool,
    min_existing: usize,
) -> Option<Fired> {
    if let Some(t) = s.seen.get_mut(value) {
        *t = (*t).max(at);
        return None;
    }
    let existing = s.seen.len();
    if existing >= TERMS_PER_KEY {
        if let Some(oldest) = s
            .seen
            .iter()
            .min_by_key(|(_, t)| **t)
            .map(|(v, _)| v.clone())
        {
            s.seen.remove(&oldest);
        }
    }
    let known: Vec<String> = {
        let mut k: Vec<&String> = s.seen.keys().collect();
        k.sort();
        k.into_iter().take(5).cloned().collect()
    };
    s.seen.insert(value.to_string(), at);
    if learning || existing < min_existing {
        return None;
    }
    Some(Fired {
        event_ids: vec![event_id.to_string()],
        values: vec![("value", value.to_string()), ("known", known.join(", "))],
    })
}

// ---------------------------------------------------------------------------------------
// change

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChangeState {
    last: Option<(String, Micros, String)>,
}

/// The value of a key differs from its last one (events out of order: only a newer event
/// moves the value on, an older one is compared but does not replace it).
pub fn change(s: &mut ChangeState, value: &str, at: Micros, event_id: &str) -> Option<Fired> {
    let Some((prev, t, prev_id)) = &s.last else {
        s.last = Some((value.to_string(), at, event_id.to_string()));
        return None;
    };
    if prev == value {
        if at > *t {
            if let Some(last) = &mut s.last {
                last.1 = at;
                last.2.clear();
                last.2.push_str(event_id);
            }
        }
        return None;
    }
    let fired = Fired {
        event_ids: vec![prev_id.clone(), event_id.to_string()],
        values: vec![("value", value.to_string()), ("previous", prev.clone())],
    };
    if at >= *t {
        s.last = Some((value.to_string(), at, event_id.to_string()));
    }
    Some(fired)
}

// ---------------------------------------------------------------------------------------
// temporal_ordered

/// Distinctive pieces of text a step captured, to recognise it later in another step.
///
/// Winnowing (Schleimer, Wilkerson and Aiken, 2003): hashes of every [`GRAM`]-byte window,
/// keeping the minimum of every [`WINNOW`] consecutive ones. Any common run of at least
/// `GRAM + WINNOW - 1` bytes shares a kept hash, so "the sink's arguments carry text the
/// private read returned" is decided without keeping the text itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint(pub Vec<u64>);

pub const GRAM: usize = 24;
pub const WINNOW: usize = 16;
/// Most text fingerprinted per capture, and most hashes kept (about the first 8 KB of text,
/// 8 KB of memory): what bounds a sequence rule's memory per key.
const CAPTURE_BYTES: usize = 10 << 10;
const CAPTURE_HASHES: usize = 1024;
/// Captures kept per step and key (the most recent).
const CAPTURES_PER_STEP: usize = 4;

/// Most text of a sink looked at for carried text.
const SINK_BYTES: usize = 256 << 10;

/// Calls `f` with the hash of every `GRAM`-byte window of `text` normalised (lower-case ASCII,
/// whitespace runs as one space, leading whitespace dropped: formatting does not hide copied
/// text), its first `limit` bytes, until `f` breaks. One pass with a rolling (Rabin-Karp) hash
/// and a ring of the window's bytes: nothing is allocated, and a sink stops at its first hit.
fn for_each_gram(text: &str, limit: usize, mut f: impl FnMut(u64) -> ControlFlow<()>) {
    const BASE: u64 = 0x100_0000_01b3;
    // BASE^(GRAM-1), to take the outgoing byte off.
    const TOP: u64 = {
        let mut p = 1u64;
        let mut i = 1;
        while i < GRAM {
            p = p.wrapping_mul(BASE);
            i += 1;
        }
        p
    };
    let mut ring = [0u8; GRAM];
    // Bytes taken, and where the next goes in the ring (`n % GRAM`, kept without dividing).
    let (mut n, mut slot) = (0usize, 0usize);
    let mut h = 0u64;
    let mut space = false;
    for &b in text.as_bytes().iter().take(limit) {
        let b = if b.is_ascii_whitespace() {
            let skip = space || n == 0;
            space = true;
            if skip {
                continue;
            }
            b' '
        } else {
            space = false;
            b.to_ascii_lowercase()
        };
        if n >= GRAM {
            h = h.wrapping_sub((u64::from(ring[slot]) + 1).wrapping_mul(TOP));
        }
        h = h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1);
        ring[slot] = b;
        n += 1;
        slot = if slot + 1 == GRAM { 0 } else { slot + 1 };
        if n >= GRAM && f(mix(h)).is_break() {
            return;
        }
    }
}

/// Spreads a polynomial hash's bits (winnowing keeps minima, which want uniform values).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

impl Fingerprint {
    pub fn of(text: &str) -> Fingerprint {
        const MASK: usize = WINNOW - 1;
        const _: () = assert!(WINNOW.is_power_of_two());
        let mut kept: Vec<u64> = Vec::new();
        // The minimum of every window of WINNOW hashes (the rightmost on ties), with a
        // monotonic queue of (index, hash) in a ring of WINNOW slots: linear in the text.
        let mut ring = [(0usize, 0u64); WINNOW];
        let (mut head, mut len) = (0usize, 0usize);
        let mut last: Option<usize> = None;
        let mut i = 0usize;
        for_each_gram(text, CAPTURE_BYTES, |h| {
            // What left the window first, so the ring never holds more than WINNOW.
            if len > 0 && ring[head].0 + WINNOW <= i {
                head = (head + 1) & MASK;
                len -= 1;
            }
            while len > 0 && ring[(head + len - 1) & MASK].1 >= h {
                len -= 1;
            }
            ring[(head + len) & MASK] = (i, h);
            len += 1;
            if i + 1 >= WINNOW {
                let (m, h) = ring[head];
                if last != Some(m) {
                    kept.push(h);
                    last = Some(m);
                }
            }
            i += 1;
            if kept.len() >= CAPTURE_HASHES {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        // Fewer windows than WINNOW: their minimum stands for them all.
        if i > 0 && i < WINNOW {
            kept.push(ring[head].1);
        }
        kept.sort_unstable();
        kept.dedup();
        Fingerprint(kept)
    }

    /// Whether `text` carries a run of at least `GRAM + WINNOW - 1` bytes of what was captured.
    pub fn carried_by(&self, text: &str) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let mut hit = false;
        for_each_gram(text, SINK_BYTES, |h| {
            hit = self.0.binary_search(&h).is_ok();
            if hit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        hit
    }
}

/// A capture: the step's text as a fingerprint, its event, and the values a carrying step
/// must not share (see `unless_same`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Capture {
    event_id: String,
    fingerprint: Fingerprint,
    same: Vec<Option<String>>,
}

/// The last match of one step for a key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StepMatch {
    at: Micros,
    event_id: String,
    /// When the sequence this match belongs to began (its step 0's time).
    began: Micros,
    /// The event ids of the steps before it that it builds on.
    chain: Vec<String>,
    /// Recent captures of this step (capturing steps only).
    captures: Vec<Capture>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SequenceState {
    /// Per step, its last match that continues a sequence.
    steps: Vec<Option<StepMatch>>,
}

impl SequenceState {
    /// Whether an event matching step `index` could count now (step 0 always can).
    pub fn can_take(&self, index: usize) -> bool {
        index == 0 || self.steps.get(index - 1).is_some_and(Option::is_some)
    }
}

/// One step of a sequence, as the engine evaluated it for an event.
pub struct StepInput<'a> {
    pub index: usize,
    /// Text to capture for later steps (when the step captures).
    pub capture: Option<&'a str>,
    /// Text that must carry an earlier step's capture: (that step's index, the text).
    pub carries: Option<(usize, &'a str)>,
    /// Values kept with a capture, or compared with the captured ones: when every one is
    /// present and equal, the carrying step does not count (text written back where it came
    /// from).
    pub same: Vec<Option<String>>,
}

/// Advances a key's sequence with an event matching step `input.index`: a step counts when
/// the step before it matched earlier, within `window` of where that sequence began. Several
/// events may match a step (several private reads); each later step builds on the latest, and a
/// carrying step looks at every recent capture. Returns a firing when the last step counts.
pub fn sequence(
    s: &mut SequenceState,
    steps: usize,
    window: Micros,
    at: Micros,
    event_id: &str,
    input: &StepInput<'_>,
) -> Option<Fired> {
    if s.steps.len() != steps {
        s.steps = vec![None; steps];
    }
    let k = input.index;
    let (began, mut chain) = if k == 0 {
        (at, Vec::new())
    } else {
        let prev = s.steps.get(k - 1)?.as_ref()?;
        if prev.at > at || at - prev.began > window {
            return None;
        }
        let mut chain = prev.chain.clone();
        chain.push(prev.event_id.clone());
        (prev.began, chain)
    };
    if let Some((from, text)) = input.carries {
        let source = s.steps.get(from)?.as_ref()?;
        let carried = source.captures.iter().rev().find(|c| {
            let same_place = !input.same.is_empty()
                && input.same.len() == c.same.len()
                && input
                    .same
                    .iter()
                    .zip(&c.same)
                    .all(|(a, b)| a.is_some() && a == b);
            !same_place && c.fingerprint.carried_by(text)
        })?;
        // Cite the read whose text moved, not merely the latest read.
        if let Some(slot) = chain.get_mut(from) {
            *slot = carried.event_id.clone();
        }
    }
    if k + 1 == steps {
        let mut ids = chain;
        ids.push(event_id.to_string());
        let took = at - began;
        s.steps = vec![None; steps];
        return Some(Fired {
            event_ids: ids,
            values: vec![("span", human(took))],
        });
    }
    let mut captures = s.steps[k].take().map(|m| m.captures).unwrap_or_default();
    if let Some(text) = input.capture {
        let fingerprint = Fingerprint::of(text);
        if !fingerprint.0.is_empty() {
            captures.push(Capture {
                event_id: event_id.to_string(),
                fingerprint,
                same: input.same.clone(),
            });
            if captures.len() > CAPTURES_PER_STEP {
                captures.remove(0);
            }
        }
    }
    s.steps[k] = Some(StepMatch {
        at,
        event_id: event_id.to_string(),
        began,
        chain,
        captures,
    });
    None
}

// ---------------------------------------------------------------------------------------
// absence

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PresenceState {
    last: Micros,
    last_id: String,
    /// Minutes with an event, as bits: bit `i` is the minute `minute - i`.
    active: u64,
    /// The minute (since the epoch) of bit 0.
    minute: i64,
    /// Silence already reported for the current silence.
    reported: bool,
}

const MINUTE: Micros = 60_000_000;

/// Records an event of a key (a source).
pub fn present(s: &mut PresenceState, at: Micros, event_id: &str) {
    let m = at.div_euclid(MINUTE);
    if m > s.minute {
        let shift = m - s.minute;
        s.active = if shift >= 64 { 0 } else { s.active << shift };
        s.minute = m;
    }
    let back = s.minute - m;
    if (0..64).contains(&back) {
        s.active |= 1 << back;
    }
    if at >= s.last {
        s.last = at;
        s.last_id.clear();
        s.last_id.push_str(event_id);
        s.reported = false;
    }
}

/// Minutes with an event among the `n` minutes up to and including the last event's.
fn active_minutes(s: &PresenceState, n: u32) -> u32 {
    let last_minute = s.last.div_euclid(MINUTE);
    let back = s.minute - last_minute;
    if !(0..64).contains(&back) {
        return 0;
    }
    let bits = s.active >> back;
    let mask = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    (bits & mask).count_ones()
}

/// Whether a key has been silent for `period` as of `now` (the newest event time of all keys),
/// after being steady: events in at least `steady` of the 60 minutes before its last event.
/// Fires once per silence.
pub fn absent(s: &mut PresenceState, period: Micros, steady: u32, now: Micros) -> Option<Fired> {
    if s.reported || now - s.last < period || active_minutes(s, 60) < steady {
        return None;
    }
    s.reported = true;
    Some(Fired {
        event_ids: vec![s.last_id.clone()],
        values: vec![("silent_for", human(now - s.last))],
    })
}

/// A duration as people write it: `45s`, `12m`, `3h`, `2d`.
pub fn human(us: Micros) -> String {
    let s = us / 1_000_000;
    if s < 120 {
        format!("{s}s")
    } else if s < 7200 {
        format!("{}m", s / 60)
    } else if s < 172_800 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Micros = 1_000_000;
    const MIN: Micros = 60 * S;

    #[test]
    fn event_count_fires_once_per_window_on_event_time() {
        let mut s = CountState::default();
        let mut fired = 0;
        for i in 0..25 {
            if event_count(&mut s, 10, MIN, i * S, &format!("e{i}")).is_some() {
                fired += 1;
            }
        }
        assert_eq!(fired, 1, "one burst, one finding");
        // The same number of events spread over two hours (shipped late, all at once) is no
        // burst.
        let mut s = CountState::default();
        assert!((0..25).all(|i| event_count(&mut s, 10, MIN, i * 5 * MIN, "x").is_none()));
        // Out of order within the window still counts.
        let mut s = CountState::default();
        let order = [5, 1, 9, 3, 7, 2, 8, 4, 6, 0];
        let hits: Vec<bool> = order
            .iter()
            .map(|i| event_count(&mut s, 10, MIN, i * S, "x").is_some())
            .collect();
        assert_eq!(hits.iter().filter(|h| **h).count(), 1);
        assert!(hits[9]);
    }

    #[test]
    fn value_count_counts_distinct_values_in_the_window() {
        let mut s = DistinctState::default();
        for i in 0..4 {
            assert!(value_count(&mut s, 5, MIN, i * S, "v0", "x").is_none());
        }
        for i in 1..4 {
            assert!(value_count(&mut s, 5, MIN, 10 * S + i * S, &format!("v{i}"), "x").is_none());
        }
        let f = value_count(&mut s, 5, MIN, 20 * S, "v4", "last").unwrap();
        assert_eq!(f.event_ids.last().map(String::as_str), Some("last"));
        // Old values leave the window.
        let mut s = DistinctState::default();
        assert!((0..10)
            .all(|i| value_count(&mut s, 5, MIN, i * 2 * MIN, &i.to_string(), "x").is_none()));
    }

    #[test]
    fn spike_needs_a_baseline_and_a_real_jump() {
        let p = SpikeParams {
            window: MIN,
            factor: 5.0,
            min_count: 20,
            warmup: 10,
        };
        let mut s = SpikeState::default();
        let mut fired = 0;
        // 20 quiet minutes with 4 events each.
        for m in 0..20 {
            for k in 0..4 {
                fired += spike(&mut s, p, m * MIN + k * S, "x").is_some() as usize;
            }
        }
        assert_eq!(fired, 0);
        // A minute with 40: fires once.
        for k in 0..40 {
            fired += spike(&mut s, p, 20 * MIN + k * S, "x").is_some() as usize;
        }
        assert_eq!(fired, 1);
        // A busy key from the start is not a spike during warm-up.
        let mut s = SpikeState::default();
        assert!((0..200).all(|k| spike(&mut s, p, k * S, "x").is_none()));
    }

    #[test]
    fn new_term_learns_then_fires_and_shadowing_needs_an_existing_value() {
        let mut s = TermsState::default();
        assert!(
            new_term(&mut s, "github", 0, "a", true, 0).is_none(),
            "warm-up"
        );
        assert!(
            new_term(&mut s, "github", 1, "b", false, 0).is_none(),
            "known"
        );
        let f = new_term(&mut s, "evil", 2, "c", false, 0).unwrap();
        assert_eq!(f.event_ids, vec!["c"]);
        assert!(new_term(&mut s, "evil", 3, "d", false, 0).is_none(), "once");
        let mut shadow = TermsState::default();
        assert!(
            new_term(&mut shadow, "server-a", 0, "a", false, 1).is_none(),
            "first server"
        );
        assert!(
            new_term(&mut shadow, "server-b", 1, "b", false, 1).is_some(),
            "second"
        );
    }

    #[test]
    fn change_reports_old_and_new() {
        let mut s = ChangeState::default();
        assert!(change(&mut s, "h1", 10, "a").is_none());
        assert!(change(&mut s, "h1", 20, "b").is_none());
        let f = change(&mut s, "h2", 30, "c").unwrap();
        assert_eq!(f.event_ids, vec!["b", "c"]);
        assert!(f.values.contains(&("previous", "h1".to_string())));
        assert!(change(&mut s, "h2", 40, "d").is_none());
    }

    #[test]
    fn fingerprints_find_copied_text_not_common_words() {
        let secret = "customer_id,email,plan\n4411,jane.doe@example.com,enterprise\n4412,ari@example.org,pro\n";
        let fp = Fingerprint::of(secret);
        assert!(fp.carried_by(
            "{\"body\": \"Here you go: 4411,JANE.DOE@example.com,enterprise\\n   4412,ari@example.org ...\"}"
        ));
        assert!(!fp.carried_by(
            "{\"title\": \"Weekly report\", \"body\": \"numbers look fine, see the email\"}"
        ));
        assert!(!Fingerprint::of("short").carried_by("short"));
    }

    /// The fingerprint as first written (normalise into a buffer, hash every window into a
    /// vector, then winnow it): saved state holds fingerprints, so the one-pass version must
    /// give the same hashes for the same text.
    fn two_pass_fingerprint(text: &str) -> Vec<u64> {
        let mut norm = Vec::new();
        let mut space = false;
        for &b in text.as_bytes().iter().take(CAPTURE_BYTES) {
            if b.is_ascii_whitespace() {
                if !space && !norm.is_empty() {
                    norm.push(b' ');
                }
                space = true;
            } else {
                norm.push(b.to_ascii_lowercase());
                space = false;
            }
        }
        if norm.len() < GRAM {
            return Vec::new();
        }
        const BASE: u64 = 0x100_0000_01b3;
        let top = (1..GRAM).fold(1u64, |p, _| p.wrapping_mul(BASE));
        let mut h = norm[..GRAM].iter().fold(0u64, |h, &b| {
            h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1)
        });
        let mut hashes = vec![mix(h)];
        for i in GRAM..norm.len() {
            h = h
                .wrapping_sub((u64::from(norm[i - GRAM]) + 1).wrapping_mul(top))
                .wrapping_mul(BASE)
                .wrapping_add(u64::from(norm[i]) + 1);
            hashes.push(mix(h));
        }
        let w = WINNOW.min(hashes.len());
        let mut kept = Vec::new();
        let mut last = None;
        for i in (w - 1)..hashes.len() {
            // The rightmost minimum of the window ending at i.
            let m = (i + 1 - w..=i).rev().min_by_key(|&j| hashes[j]).unwrap();
            if last != Some(m) {
                kept.push(hashes[m]);
                last = Some(m);
            }
            if kept.len() >= CAPTURE_HASHES {
                break;
            }
        }
        kept.sort_unstable();
        kept.dedup();
        kept
    }

    proptest::proptest! {
        #[test]
        fn one_pass_fingerprints_are_the_two_pass_ones(
            text in "[ \n\tA-Za-z0-9,.é]{0,300}",
            repeat in 1usize..4,
        ) {
            let text = text.repeat(repeat);
            proptest::prop_assert_eq!(Fingerprint::of(&text).0, two_pass_fingerprint(&text));
        }
    }

    #[test]
    fn one_pass_fingerprints_of_long_texts_stop_where_the_two_pass_ones_did() {
        let long: String = (0..40_000u32)
            .map(|i| format!("{} ", i.wrapping_mul(2654435761)))
            .collect();
        assert_eq!(Fingerprint::of(&long).0, two_pass_fingerprint(&long));
        let fp = Fingerprint::of(&long);
        assert!(fp.carried_by(&format!("xx {} yy", &long[2000..2100])));
    }

    #[test]
    fn sequences_complete_in_order_within_the_window() {
        let step = |index, capture, carries| StepInput {
            index,
            capture,
            carries,
            same: Vec::new(),
        };
        let mut s = SequenceState::default();
        let private =
            "DB_HOST=prod-db.internal\nAPI_KEY=[REDACTED:k:1] quarterly revenue 4.2M for EMEA";
        let other = "README: how to build the project with cargo and run the tests locally";
        assert!(sequence(&mut s, 3, 30 * MIN, 0, "fetch", &step(0, None, None)).is_none());
        assert!(sequence(
            &mut s,
            3,
            30 * MIN,
            MIN,
            "read",
            &step(1, Some(private), None)
        )
        .is_none());
        // A later read of something else does not hide the first one.
        assert!(sequence(
            &mut s,
            3,
            30 * MIN,
            MIN + S,
            "read2",
            &step(1, Some(other), None)
        )
        .is_none());
        // A write that does not carry a read's text does not complete it.
        assert!(sequence(
            &mut s,
            3,
            30 * MIN,
            2 * MIN,
            "w1",
            &step(2, None, Some((1, "{\"text\":\"summary of the page\"}")))
        )
        .is_none());
        let f = sequence(
            &mut s,
            3,
            30 * MIN,
            3 * MIN,
            "w2",
            &step(
                2,
                None,
                Some((
                    1,
                    "{\"text\":\"db is prod-db.internal, quarterly revenue 4.2M for EMEA\"}",
                )),
            ),
        )
        .unwrap();
        assert_eq!(
            f.event_ids,
            vec!["fetch", "read", "w2"],
            "cites the read whose text moved"
        );
        // Steps out of order do not count; too slow starts over.
        let mut s = SequenceState::default();
        assert!(sequence(&mut s, 2, MIN, 0, "b", &step(1, None, None)).is_none());
        sequence(&mut s, 2, MIN, 0, "a", &step(0, None, None));
        assert!(sequence(&mut s, 2, MIN, 5 * MIN, "b", &step(1, None, None)).is_none());
        assert!(sequence(&mut s, 2, MIN, 5 * MIN, "a2", &step(0, None, None)).is_none());
        assert!(sequence(&mut s, 2, MIN, 5 * MIN + S, "b2", &step(1, None, None)).is_some());
    }

    #[test]
    fn absence_fires_once_per_silence_for_steady_sources() {
        let mut s = PresenceState::default();
        for i in 0..60 {
            present(&mut s, 1000 * MIN + i * MIN + 7 * S, "x");
        }
        let last = 1000 * MIN + 59 * MIN;
        assert!(absent(&mut s, 15 * MIN, 54, last + 10 * MIN).is_none());
        let f = absent(&mut s, 15 * MIN, 54, last + 16 * MIN).unwrap();
        assert_eq!(f.event_ids, vec!["x"]);
        assert!(
            absent(&mut s, 15 * MIN, 54, last + 30 * MIN).is_none(),
            "once"
        );
        // Not steady: an event every other minute.
        let mut patchy = PresenceState::default();
        for i in 0..30 {
            present(&mut patchy, 2000 * MIN + i * 2 * MIN, "y");
        }
        assert!(absent(&mut patchy, 15 * MIN, 54, 2000 * MIN + 200 * MIN).is_none());
    }

    #[test]
    fn keyed_state_is_capped_by_recency() {
        let mut k: Keyed<u32> = Keyed::new(100);
        for i in 0..1000 {
            *k.entry(&format!("k{i}"), || 0) += 1;
            *k.entry("hot", || 0) += 1;
        }
        assert!(k.len() <= 100);
        assert!(k.get("hot").is_some(), "the key touched all along stays");
        assert!(k.evicted >= 900);
    }
}
