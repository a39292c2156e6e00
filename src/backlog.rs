//! The memory bound of the ingest path: bytes of events taken in but not yet indexed.
//!
//! A batch is charged its events' wire size before any of it is scrubbed or queued, and waits
//! for the whole charge at once (so waiting batches never hold part of the budget). Each
//! accepted event carries its share ([`Charge`]) through the WAL committer and the indexer
//! queue into its tantivy document, and through the rules consumer; the share returns to the
//! budget when both are done with the event (or a consumer far behind drops it to read it
//! back from the WAL later), or as soon as the event is dropped (rejected, duplicate, indexing
//! failed). So a slow indexer slows acknowledgements down instead of growing memory, however
//! large the events are.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Wire bytes that may be in flight between ingest and the index. Events take about three
/// times their wire size in memory on the way (decoded, serialized, in the document), and
/// the WAL's consumers keep live events until they reach them (`wal::consumer`), so this is
/// what bounds their queues. With 64 MiB a 1M-event burst peaked at 791–1,000 MiB RSS, with
/// 32 MiB at 616–696 MiB and the same throughput (README, "collector RSS").
pub const BACKLOG_BYTES: usize = 32 << 20;

pub struct Backlog {
    budget: Arc<Semaphore>,
    limit: usize,
}

/// Bytes of the budget held until dropped. `Charge::default()` holds nothing (replay, tests).
#[derive(Debug, Default)]
pub struct Charge(Option<OwnedSemaphorePermit>);

impl Backlog {
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Backlog {
            budget: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// Waits until `bytes` fit in the budget. A charge larger than the whole budget waits for
    /// an empty backlog instead, so one oversized batch still goes through (alone).
    pub async fn charge(&self, bytes: usize) -> Charge {
        let n = bytes.clamp(1, self.limit);
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        // The semaphore is never closed, so acquiring cannot fail.
        Charge(self.budget.clone().acquire_many_owned(n).await.ok())
    }

    /// Bytes charged and not yet released.
    pub fn held(&self) -> usize {
        self.limit.saturating_sub(self.budget.available_permits())
    }
}

impl Charge {
    /// Splits off `bytes` of this charge (or what is left of it).
    pub fn take(&mut self, bytes: usize) -> Charge {
        let Some(permit) = &mut self.0 else {
            return Charge(None);
        };
        let n = bytes.min(permit.num_permits());
        Charge(permit.split(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_charge_waits_until_enough_is_released() {
        let backlog = Backlog::new(1000);
        let mut batch = backlog.charge(800).await;
        let first = batch.take(300);
        let rest = batch.take(10_000);
        drop(batch);
        assert_eq!(backlog.held(), 800);
        // 300 more do not fit while 800 are held.
        let waiting = tokio::time::timeout(Duration::from_millis(50), backlog.charge(300)).await;
        assert!(waiting.is_err(), "charged beyond the budget");
        drop(first);
        assert_eq!(backlog.held(), 500);
        let next = tokio::time::timeout(Duration::from_secs(5), backlog.charge(300))
            .await
            .expect("fits after a release");
        assert_eq!(backlog.held(), 800);
        drop((rest, next));
        assert_eq!(backlog.held(), 0);
    }

    #[tokio::test]
    async fn an_oversized_charge_goes_alone() {
        let backlog = Backlog::new(1000);
        let small = backlog.charge(10).await;
        let big = tokio::spawn({
            let backlog = Arc::new(backlog);
            let b = backlog.clone();
            async move {
                let c = b.charge(5000).await;
                (b.held(), c)
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!big.is_finished(), "went in beside another charge");
        drop(small);
        let (held, _c) = tokio::time::timeout(Duration::from_secs(5), big)
            .await
            .expect("goes once the backlog is empty")
            .unwrap();
        assert_eq!(held, 1000);
    }
}
