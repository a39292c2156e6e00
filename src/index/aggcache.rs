//! Per-segment aggregation results, kept between requests.
//!
//! A segment never changes once written (only its deletions can grow), so what a histogram
//! (or a terms count) counted in it for a tenant, a query and an interval (or a field) stays
//! true: the next request merges the kept counts instead of rescanning the segment. Buckets
//! are aligned to the epoch, so a moving range (`-24h`) keeps hitting; a range that cuts a
//! segment takes what it holds whole from the kept counts and counts only its edges (see
//! `search.rs`). The aggregations asked for lately are counted on new segments (a commit's, a
//! merge's) at commit, before anyone asks (`Indexes::warm`). Segments gone (merged away,
//! dropped by retention) are never asked for again and age out. The cache is bounded by
//! entry count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries kept at most; past it the cache starts over (simple, bounded, and a miss only
/// costs the scan it would have cost anyway).
const MAX_ENTRIES: usize = 20_000;

#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub segment: tantivy::index::SegmentId,
    /// Deletions change what a segment holds (erasure).
    pub deleted: u32,
    pub tenant: String,
    pub query: String,
    /// The aggregation: `histogram <interval µs>` or `terms <field>`.
    pub what: String,
}

/// Sparse histogram counts: (bucket number since the epoch, count).
pub(crate) type Counts = Arc<Vec<(i128, u64)>>;
/// Terms counts: (value, count).
pub(crate) type TermCounts = Arc<Vec<(String, u64)>>;

pub(crate) struct AggCache<V> {
    entries: Mutex<HashMap<Key, V>>,
}

impl<V> Default for AggCache<V> {
    fn default() -> Self {
        AggCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> AggCache<V> {
    pub fn get(&self, key: &Key) -> Option<V> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// The kept value of `key`, or `compute`'s, kept (a failure is not kept).
    pub fn get_or_compute(
        &self,
        key: Key,
        compute: impl FnOnce() -> super::Result<V>,
    ) -> super::Result<V> {
        if let Some(kept) = self.get(&key) {
            return Ok(kept);
        }
        let fresh = compute()?;
        self.put(key, fresh.clone());
        Ok(fresh)
    }

    pub fn put(&self, key: Key, counts: V) {
        let mut m = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(key, counts);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}
