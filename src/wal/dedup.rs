//! The duplicate filter: is an event (tenant, event id) already stored?
//!
//! Resident memory must not grow with stored history, yet a re-sent event id must never be
//! stored twice within retention, also across restarts. Three layers answer:
//! 1. **recent**: the exact keys of events committed at positions the index does not cover yet
//!    (seconds of traffic; capped, see [`RECENT_MAX`]);
//! 2. **a blocked Bloom filter** over every key the index holds, ~2 bytes per stored event: a
//!    "no" is certain, which is the answer for almost every new event;
//! 3. **the index itself** ([`IdLookup`]), asked only when the Bloom filter says "maybe": it
//!    holds every committed event of every retained day, so the answer is exact.
//!
//! The filter is rebuilt from the index in the background when it fills up or when retention
//! drops days; keys inserted meanwhile are replayed into the new one before it is swapped in.
//! Keys are [`crate::event::id_key`]s: 128 uniformly random bits, so the filter uses them as
//! they are instead of hashing again.

use std::collections::{HashSet, VecDeque};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

/// Where the filter checks a "maybe": the index, which holds every committed event.
pub trait IdLookup: Send + Sync + 'static {
    /// Whether a committed, searchable event of `tenant` has this id.
    fn contains(&self, tenant: &str, event_id: &str) -> Result<bool, String>;
    /// Calls `f` with the [`crate::event::id_key`] of every event it holds.
    fn for_each_key(&self, f: &mut dyn FnMut(u128)) -> Result<(), String>;
    /// How many events it holds (to size the filter).
    fn stored(&self) -> u64;
}

/// Bits of filter per key at the capacity it was sized for (~0.1% false positives).
const BITS_PER_KEY: u64 = 16;
/// The smallest filter (2 MiB): small installations never rebuild.
const MIN_CAPACITY: u64 = 1 << 20;
/// Keys the index does not cover yet, beyond which commits wait (the index is failing or far
/// behind, and the exact set would otherwise grow without bound).
pub const RECENT_MAX: usize = 4_000_000;

/// A blocked Bloom filter: each key sets 7 bits inside one 512-bit block (one cache line).
pub struct Bloom {
    blocks: Vec<[u64; 8]>,
    capacity: u64,
}

impl Bloom {
    pub fn with_capacity(keys: u64) -> Self {
        let keys = keys.max(MIN_CAPACITY);
        let n = (keys * BITS_PER_KEY).div_ceil(512).max(1);
        Bloom {
            blocks: vec![[0u64; 8]; n as usize],
            capacity: keys,
        }
    }

    fn slots(&self, key: u128) -> (usize, [u16; 7]) {
        let hi = (key >> 64) as u64;
        let lo = key as u64;
        let block = ((u128::from(hi) * self.blocks.len() as u128) >> 64) as usize;
        let mut bits = [0u16; 7];
        for (i, b) in bits.iter_mut().enumerate() {
            *b = ((lo >> (9 * i)) & 511) as u16;
        }
        (block, bits)
    }

    pub fn insert(&mut self, key: u128) {
        let (block, bits) = self.slots(key);
        let b = &mut self.blocks[block];
        for bit in bits {
            b[usize::from(bit / 64)] |= 1 << (bit % 64);
        }
    }

    pub fn may_contain(&self, key: u128) -> bool {
        let (block, bits) = self.slots(key);
        let b = &self.blocks[block];
        bits.iter()
            .all(|&bit| b[usize::from(bit / 64)] & (1 << (bit % 64)) != 0)
    }

    pub fn bytes(&self) -> usize {
        self.blocks.len() * 64
    }
}

struct Rebuilding {
    done: Receiver<Result<Bloom, String>>,
    /// Keys that must go into the new filter too: the exact set when the rebuild started, and
    /// every key inserted since.
    since: Vec<u128>,
}

/// What the committer asks; owned by the committer thread.
pub struct Dedup {
    bloom: Bloom,
    /// Keys inserted since `bloom` was built.
    inserted: u64,
    /// The keys of `order`, and possibly some the index covers since (see [`Dedup::prune`]).
    recent: HashSet<u128>,
    /// `(position, key)` of the keys the index does not cover yet, oldest first.
    order: VecDeque<(u64, u128)>,
    lookup: Arc<dyn IdLookup>,
    rebuilding: Option<Rebuilding>,
    /// The retention generation the filter was last built for.
    generation: u64,
    /// "Maybe" answers checked against the index (for metrics and tests).
    pub lookups: u64,
}

impl Dedup {
    /// A filter over what `lookup` holds now (built here, on the caller's thread).
    pub fn build(lookup: Arc<dyn IdLookup>, generation: u64) -> Result<Self, String> {
        let bloom = build_bloom(&*lookup)?;
        Ok(Dedup {
            bloom,
            inserted: 0,
            recent: HashSet::new(),
            order: VecDeque::new(),
            lookup,
            rebuilding: None,
            generation,
            lookups: 0,
        })
    }

    /// Whether (tenant, id) with this key is already stored.
    pub fn contains(&mut self, tenant: &str, event_id: &str, key: u128) -> bool {
        if self.recent.contains(&key) {
            return true;
        }
        if !self.bloom.may_contain(key) {
            return false;
        }
        self.lookups += 1;
        match self.lookup.contains(tenant, event_id) {
            Ok(found) => found,
            Err(e) => {
                // Refusing the event would be worse (an ack for nothing stored); a duplicate is
                // the lesser harm, and this needs a failing index read to happen.
                tracing::error!(error = %e, "duplicate check could not read the index; storing the event");
                false
            }
        }
    }

    /// Records a key committed at `pos`.
    pub fn insert(&mut self, pos: u64, key: u128) {
        self.recent.insert(key);
        self.order.push_back((pos, key));
        self.bloom.insert(key);
        self.inserted += 1;
        if let Some(r) = &mut self.rebuilding {
            r.since.push(key);
        }
    }

    /// Forgets the exact keys below `covered`: the index answers for them now.
    ///
    /// A covered key left in `recent` still gets the right answer (it is stored), so they are
    /// not taken out one by one: after a burst the index caught up with, that was millions of
    /// removals on the committing thread at the next commit (≈ 18% of the collector's CPU in
    /// the second it took, delaying that commit's acks and every search beside it). The set is
    /// dropped when nothing is left uncovered, and rebuilt from `order` when covered keys are
    /// most of it, which keeps the work in proportion to the keys inserted.
    pub fn prune(&mut self, covered: u64) {
        let before = self.order.len();
        while self.order.front().is_some_and(|&(pos, _)| pos < covered) {
            self.order.pop_front();
        }
        if self.order.len() == before {
            return;
        }
        if self.order.is_empty() {
            self.recent = HashSet::new();
        } else if self.order.len() * 2 < self.recent.len() {
            self.recent = self.order.iter().map(|&(_, key)| key).collect();
        }
    }

    /// Keys the index does not cover yet.
    pub fn recent_len(&self) -> usize {
        self.order.len()
    }

    pub fn bloom_bytes(&self) -> usize {
        self.bloom.bytes()
    }

    /// Swaps in a finished rebuild, and starts one when the filter is full or retention has
    /// moved on (`generation` changed). Cheap when there is nothing to do.
    pub fn maintain(&mut self, generation: u64) {
        if let Some(r) = &mut self.rebuilding {
            match r.done.try_recv() {
                Ok(Ok(mut bloom)) => {
                    for &k in &r.since {
                        bloom.insert(k);
                    }
                    tracing::debug!(bytes = bloom.bytes(), "duplicate filter rebuilt");
                    self.inserted = r.since.len() as u64;
                    self.bloom = bloom;
                    self.rebuilding = None;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "rebuilding the duplicate filter failed; keeping the current one");
                    self.rebuilding = None;
                }
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => self.rebuilding = None,
            }
        }
        let full = self.inserted > self.bloom.capacity;
        if !full && generation == self.generation {
            return;
        }
        self.generation = generation;
        let (tx, rx) = std::sync::mpsc::channel();
        let lookup = self.lookup.clone();
        let spawned = std::thread::Builder::new()
            .name("dedup-rebuild".into())
            .spawn(move || {
                let _ = tx.send(build_bloom(&*lookup));
            });
        match spawned {
            Ok(_) => {
                self.rebuilding = Some(Rebuilding {
                    done: rx,
                    since: self.recent.iter().copied().collect(),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a thread to rebuild the duplicate filter")
            }
        }
    }
}

fn build_bloom(lookup: &dyn IdLookup) -> Result<Bloom, String> {
    let mut bloom = Bloom::with_capacity(lookup.stored().saturating_mul(2));
    lookup.for_each_key(&mut |k| bloom.insert(k))?;
    Ok(bloom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::id_key;
    use std::sync::Mutex;

    /// The index stand-in: a set of (tenant, id).
    #[derive(Default)]
    struct Stored(Mutex<Vec<(String, String)>>);

    impl IdLookup for Stored {
        fn contains(&self, tenant: &str, event_id: &str) -> Result<bool, String> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .iter()
                .any(|(t, i)| t == tenant && i == event_id))
        }
        fn for_each_key(&self, f: &mut dyn FnMut(u128)) -> Result<(), String> {
            for (t, i) in self.0.lock().unwrap().iter() {
                f(id_key(t, i));
            }
            Ok(())
        }
        fn stored(&self) -> u64 {
            self.0.lock().unwrap().len() as u64
        }
    }

    #[test]
    fn bloom_has_no_false_negatives_and_few_false_positives() {
        let mut b = Bloom::with_capacity(100_000);
        for i in 0..100_000u32 {
            b.insert(id_key("t", &i.to_string()));
        }
        for i in 0..100_000u32 {
            assert!(b.may_contain(id_key("t", &i.to_string())));
        }
        let fp = (0..200_000u32)
            .filter(|i| b.may_contain(id_key("other", &i.to_string())))
            .count();
        // At 1/10 of capacity; at full capacity it is ~0.1%.
        assert!(fp < 200, "{fp} false positives in 200k");
    }

    #[test]
    fn exact_across_recent_filter_and_index() {
        let stored = Arc::new(Stored::default());
        stored.0.lock().unwrap().push(("t".into(), "old".into()));
        let mut d = Dedup::build(stored.clone(), 0).unwrap();
        assert!(d.contains("t", "old", id_key("t", "old")), "in the index");
        assert!(!d.contains("u", "old", id_key("u", "old")), "per tenant");
        assert!(!d.contains("t", "new", id_key("t", "new")));
        d.insert(10, id_key("t", "new"));
        assert!(d.contains("t", "new", id_key("t", "new")), "recent");
        // The index catches up; the exact key goes, the filter and the index answer.
        stored.0.lock().unwrap().push(("t".into(), "new".into()));
        d.prune(11);
        assert_eq!(d.recent_len(), 0);
        assert!(d.contains("t", "new", id_key("t", "new")));
    }

    #[test]
    fn pruning_keeps_exact_answers_for_uncovered_keys_and_counts_only_them() {
        let stored = Arc::new(Stored::default());
        let mut d = Dedup::build(stored.clone(), 0).unwrap();
        let key = |i: u64| id_key("t", &i.to_string());
        for i in 0..1000u64 {
            d.insert(i, key(i));
        }
        // The index covers the first 300, then most, then all; what it covers it holds.
        for (covered, left) in [(300u64, 700usize), (990, 10), (1000, 0)] {
            for i in 0..covered {
                stored.0.lock().unwrap().push(("t".into(), i.to_string()));
            }
            d.prune(covered);
            assert_eq!(d.recent_len(), left, "after covering {covered}");
            let lookups = d.lookups;
            for i in covered..1000 {
                assert!(d.contains("t", &i.to_string(), key(i)), "{i} uncovered");
            }
            assert_eq!(
                d.lookups, lookups,
                "uncovered keys answer from the exact set"
            );
            for i in 0..covered {
                assert!(d.contains("t", &i.to_string(), key(i)), "{i} covered");
            }
            assert!(!d.contains("t", "never", id_key("t", "never")));
        }
        // Nothing uncovered: the exact set is gone, not kept full of covered keys.
        assert!(d.recent.is_empty());
    }

    #[test]
    fn a_rebuild_keeps_keys_inserted_while_it_ran() {
        let stored = Arc::new(Stored::default());
        let mut d = Dedup::build(stored.clone(), 0).unwrap();
        d.insert(0, id_key("t", "a"));
        d.maintain(1); // retention moved: rebuild from the index (which lacks "a")
        d.insert(1, id_key("t", "b"));
        for _ in 0..500 {
            d.maintain(1);
            if d.rebuilding.is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(d.rebuilding.is_none());
        d.prune(2); // both covered by the "index" now, as far as the exact set goes
        stored.0.lock().unwrap().push(("t".into(), "a".into()));
        stored.0.lock().unwrap().push(("t".into(), "b".into()));
        assert!(d.contains("t", "a", id_key("t", "a")));
        assert!(d.contains("t", "b", id_key("t", "b")));
        assert!(
            d.lookups >= 2,
            "answers came through the filter and the index"
        );
    }
}
