//! Rate limits: failed attempts per address, and quotas per credential (token buckets).
//!
//! Both maps are bounded: when full, entries that no longer matter (an address whose window
//! and lockout have passed, a bucket that refilled) are dropped first, then the map is
//! cleared, which errs on the side of letting a caller through rather than growing memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Addresses or credentials tracked at most.
const MAX_KEYS: usize = 100_000;

/// A rate and the burst above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_sec: f64,
    pub burst: f64,
}

/// Failed attempts per address in the current minute, and lockouts.
pub struct Failures {
    max_per_minute: u32,
    lockout: Duration,
    by_addr: Mutex<HashMap<IpAddr, Window>>,
}

struct Window {
    started: Instant,
    count: u32,
    locked_until: Option<Instant>,
}

impl Failures {
    pub fn new(max_per_minute: u32, lockout: Duration) -> Self {
        Self {
            max_per_minute,
            lockout,
            by_addr: Mutex::new(HashMap::new()),
        }
    }

    /// How long `addr` is still locked out, if it is.
    pub fn locked(&self, addr: IpAddr) -> Option<Duration> {
        let map = self.by_addr.lock().ok()?;
        let until = map.get(&addr)?.locked_until?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failure; the one over the limit locks the address out.
    pub fn record(&self, addr: IpAddr) {
        let Ok(mut map) = self.by_addr.lock() else {
            return;
        };
        let now = Instant::now();
        if map.len() >= MAX_KEYS && !map.contains_key(&addr) {
            map.retain(|_, w| {
                now.duration_since(w.started) < Duration::from_secs(60)
                    || w.locked_until.is_some_and(|u| u > now)
            });
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let w = map.entry(addr).or_insert(Window {
            started: now,
            count: 0,
            locked_until: None,
        });
        if now.duration_since(w.started) >= Duration::from_secs(60) {
            w.started = now;
            w.count = 0;
        }
        w.count += 1;
        if w.count > self.max_per_minute {
            w.locked_until = Some(now + self.lockout);
            tracing::warn!(%addr, failures = w.count, lockout = ?self.lockout, "auth: address locked out after too many failed attempts");
        }
    }
}

/// One token bucket per credential.
pub struct Buckets {
    limit: RateLimit,
    by_key: Mutex<HashMap<Arc<str>, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Buckets {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            by_key: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes `n` from `key`'s bucket, or says how long until `n` are there. A request larger
    /// than the burst is let through when the bucket is full, so it can never wait forever.
    pub fn take(&self, key: &Arc<str>, n: u32) -> Result<(), Duration> {
        let Ok(mut map) = self.by_key.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.clear();
        }
        let b = map.entry(key.clone()).or_insert(Bucket {
            tokens: self.limit.burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * self.limit.per_sec;
        b.tokens = (b.tokens + refill).min(self.limit.burst);
        b.at = now;
        let want = f64::from(n).min(self.limit.burst);
        if b.tokens >= want {
            b.tokens -= f64::from(n);
            return Ok(());
        }
        let wait = (want - b.tokens) / self.limit.per_sec;
        Err(Duration::from_secs_f64(wait.clamp(0.001, 86_400.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let b = Buckets::new(RateLimit {
            per_sec: 10.0,
            burst: 20.0,
        });
        let k: Arc<str> = Arc::from("token:a");
        assert!(b.take(&k, 20).is_ok());
        let wait = b.take(&k, 10).unwrap_err();
        assert!(
            wait > Duration::from_millis(800) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another credential has its own bucket.
        assert!(b.take(&Arc::from("token:b"), 5).is_ok());
    }

    #[test]
    fn an_address_is_locked_out_after_too_many_failures() {
        let f = Failures::new(3, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            f.record(a);
        }
        assert!(f.locked(a).is_none());
        f.record(a);
        assert!(f.locked(a).is_some());
        assert!(f.locked("192.0.2.2".parse().unwrap()).is_none());
    }
}
