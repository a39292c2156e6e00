//! The signer: a thread that signs every tenant's chain head that moved, every
//! `checkpoint_every_events` events or `checkpoint_every` at the latest, and appends the
//! checkpoints to `checkpoints.jsonl` (fsynced).
//!
//! The WAL committer reports each durable group's new heads to [`Tips`] (a lock and a few map
//! entries, never a wait); the signing and the fsync happen here, off the ingest path. Only
//! durable heads are ever signed. On shutdown, after the committer's last group, a final round
//! signs whatever moved since the last one; after a crash, the heads recovered at start that
//! were never signed are signed in the first round.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use time::OffsetDateTime;

use super::checkpoints::{self, SignedCheckpoint};
use super::jsonl::Appender;
use super::key::SigningKey;
use super::{ChainConfig, ChainError};
use crate::health::Health;
use crate::wal::{Heads, HeadsMoved};

#[derive(Debug, Clone, Copy)]
struct Tip {
    seq: u64,
    hash: [u8; 32],
    wal_next: u64,
}

#[derive(Default)]
struct TipsState {
    heads: HashMap<Arc<str>, Tip>,
    /// Events made durable since the last round.
    events: u64,
    /// A head moved since the last round.
    dirty: bool,
    stopping: bool,
}

/// The durable chain heads, as the committer reports them.
pub struct Tips {
    state: Mutex<TipsState>,
    wake: Condvar,
    every_events: u64,
}

impl Tips {
    /// The heads recovered at start (every event of them below `wal_next`).
    pub fn new(heads: &Heads, wal_next: u64, config: &ChainConfig) -> Arc<Self> {
        let heads = heads
            .0
            .iter()
            .map(|(t, (seq, hash))| {
                (
                    t.clone(),
                    Tip {
                        seq: *seq,
                        hash: *hash,
                        wal_next,
                    },
                )
            })
            .collect();
        Arc::new(Tips {
            state: Mutex::new(TipsState {
                heads,
                dirty: true,
                ..TipsState::default()
            }),
            wake: Condvar::new(),
            every_events: config.checkpoint_every_events,
        })
    }

    fn lock(&self) -> MutexGuard<'_, TipsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the committer after each durable group.
    pub fn moved(&self, m: &HeadsMoved<'_>) {
        let mut st = self.lock();
        for (tenant, seq, hash) in m.heads {
            st.heads.insert(
                tenant.clone(),
                Tip {
                    seq: *seq,
                    hash: *hash,
                    wal_next: m.wal_next,
                },
            );
        }
        st.events += m.events as u64;
        st.dirty = true;
        if st.events >= self.every_events {
            self.wake.notify_one();
        }
    }

    /// Ends the signer after one last round.
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_one();
    }
}

/// Signs checkpoints into the checkpoint file.
pub struct Signer {
    key: Arc<SigningKey>,
    file: Appender,
    /// The seq of each tenant's newest signed checkpoint.
    signed: HashMap<String, u64>,
    config: ChainConfig,
}

impl Signer {
    /// Opens the checkpoint file of `chain_dir` (cutting a torn last line) with `key`.
    pub fn open(
        chain_dir: &std::path::Path,
        key: Arc<SigningKey>,
        config: ChainConfig,
    ) -> Result<Self, ChainError> {
        let file = Appender::open(&checkpoints::path(chain_dir))?;
        let mut signed: HashMap<String, u64> = HashMap::new();
        for (_, cp) in checkpoints::read_all(chain_dir)?.lines {
            if let Ok(cp) = cp {
                let s = signed.entry(cp.tenant).or_default();
                *s = (*s).max(cp.seq);
            }
        }
        Ok(Self {
            key,
            file,
            signed,
            config,
        })
    }

    /// Signs every head that differs from its last signed checkpoint; returns how many.
    fn round(&mut self, heads: &[(Arc<str>, Tip)]) -> Result<usize, ChainError> {
        let now = OffsetDateTime::now_utc();
        let fresh: Vec<SignedCheckpoint> = heads
            .iter()
            .filter(|(t, tip)| self.signed.get(t.as_ref()) != Some(&tip.seq))
            .map(|(t, tip)| {
                SignedCheckpoint::sign(&self.key, t, tip.seq, &tip.hash, tip.wal_next, now)
            })
            .collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        self.file.append(&fresh)?;
        for cp in &fresh {
            self.signed.insert(cp.tenant.clone(), cp.seq);
        }
        Ok(fresh.len())
    }
}

/// Runs the signer until [`Tips::stop`], then signs one last time.
pub fn run(mut signer: Signer, tips: Arc<Tips>, health: Arc<Health>) {
    let every = signer.config.checkpoint_every;
    // Heads recovered at start that were never signed are signed at once.
    let mut last_round: Option<Instant> = None;
    loop {
        let (heads, stopping) = {
            let mut st = tips.lock();
            loop {
                if st.stopping || st.events >= tips.every_events {
                    break;
                }
                let since = last_round.map_or(every, |t| t.elapsed());
                if st.dirty && since >= every {
                    break;
                }
                let wait = if st.dirty { every - since } else { every };
                st = tips
                    .wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            st.events = 0;
            st.dirty = false;
            let heads: Vec<(Arc<str>, Tip)> =
                st.heads.iter().map(|(t, tip)| (t.clone(), *tip)).collect();
            (heads, st.stopping)
        };
        match signer.round(&heads) {
            Ok(n) => {
                if n > 0 {
                    tracing::debug!(checkpoints = n, "chain: signed checkpoints");
                }
                health.recover("chain");
            }
            Err(e) => {
                tracing::error!(error = %e, "chain: cannot write signed checkpoints; retrying at the next round");
                health.fail("chain", format!("cannot write signed checkpoints: {e}"));
                tips.lock().dirty = true;
            }
        }
        last_round = Some(Instant::now());
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn moved_heads_are_signed_after_n_events_and_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let key = Arc::new(SigningKey::from_seed([1; 32]));
        let config = ChainConfig {
            checkpoint_every_events: 10,
            checkpoint_every: std::time::Duration::from_secs(3600),
        };
        let signer = Signer::open(dir.path(), key.clone(), config.clone()).unwrap();
        let tips = Tips::new(&Heads::default(), 0, &config);
        let health = Health::new(Metrics::new());
        let thread = {
            let (tips, health) = (tips.clone(), health.clone());
            std::thread::spawn(move || run(signer, tips, health))
        };
        let t: Arc<str> = Arc::from("acme");
        let count = || {
            checkpoints::read_all(dir.path())
                .unwrap()
                .lines
                .into_iter()
                .map(|(_, c)| c.unwrap())
                .collect::<Vec<_>>()
        };
        tips.moved(&HeadsMoved {
            heads: &[(t.clone(), 10, [10; 32])],
            wal_next: 10,
            events: 10,
        });
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while count().is_empty() && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(count().len(), 1, "ten events make a round");
        tips.moved(&HeadsMoved {
            heads: &[(t.clone(), 12, [12; 32])],
            wal_next: 12,
            events: 2,
        });
        tips.stop();
        thread.join().unwrap();
        let all = count();
        assert_eq!(all.len(), 2, "the last heads are signed at stop");
        assert_eq!(all[1].seq, 12);
        assert_eq!(all[1].wal_next, 12);
        all[1].verify(&key.public()).unwrap();
        // Reopened: nothing new to sign for the same heads.
        let mut again = Signer::open(dir.path(), key, config).unwrap();
        let tip = Tip {
            seq: 12,
            hash: [12; 32],
            wal_next: 12,
        };
        assert_eq!(again.round(&[(t, tip)]).unwrap(), 0);
    }
}
