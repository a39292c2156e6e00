//! `GET /api/v1/tail?q=`: Server-Sent Events of live events as they are acknowledged.
//!
//! The filter is the search language (`q`), evaluated in memory by [`crate::query::matches`]:
//! a query means the same in the tail as in a search.
//!
//! Memory is bounded in bytes, whatever clients do: each subscriber has a queue of at most
//! [`SUBSCRIBER_BYTES`] of events (shared with the rest of the collector, never copied), and
//! at most [`MAX_SUBSCRIBERS`] subscribers exist. A subscriber that does not keep up loses its
//! oldest queued events and is told so with a `lagged` event carrying how many it missed; one
//! that reads nothing for [`STALLED`] is disconnected. The committer only appends references
//! (matching runs on each subscriber's own task), so a slow client never slows ingest down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::Notify;

use super::{Caller, Params, Problem};
use crate::app::Shared;
use crate::error::ErrorKind;
use crate::metrics::Metrics;
use crate::query;
use crate::wal::{Chunk, Entry};

/// Bytes of events (their stored size) one subscriber may have waiting.
pub const SUBSCRIBER_BYTES: usize = 4 << 20;
/// Live-tail clients at once.
pub const MAX_SUBSCRIBERS: usize = 32;
/// A subscriber whose queue stays full this long is disconnected.
pub const STALLED: Duration = Duration::from_secs(60);

struct Queue {
    items: VecDeque<Arc<Entry>>,
    bytes: usize,
    /// Events dropped since the subscriber last read.
    dropped: u64,
    /// Since when the queue has been full without the subscriber reading.
    full_since: Option<Instant>,
}

struct Subscriber {
    id: u64,
    tenant: Arc<str>,
    queue: Mutex<Queue>,
    notify: Notify,
    closed: AtomicBool,
}

impl Subscriber {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Fans committed events out to live-tail subscribers.
pub struct TailHub {
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    count: AtomicUsize,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

impl TailHub {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(TailHub {
            subscribers: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Subscriber>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the WAL committer with every committed chunk: appends references to the
    /// queues of the subscribers of the events' tenants. Never blocks.
    pub fn publish(&self, chunk: &Chunk) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let subscribers = self.lock().clone();
        let now = Instant::now();
        let mut queued = 0usize;
        for sub in subscribers {
            let mut q = sub.lock();
            let mut added = false;
            for entry in chunk.iter().filter(|e| *e.event.tenant == *sub.tenant) {
                let size = entry.record.len();
                while q.bytes + size > SUBSCRIBER_BYTES {
                    let Some(old) = q.items.pop_front() else {
                        break;
                    };
                    q.bytes -= old.record.len();
                    q.dropped += 1;
                    self.metrics.tail_dropped.inc();
                    q.full_since.get_or_insert(now);
                }
                if size > SUBSCRIBER_BYTES {
                    q.dropped += 1;
                    self.metrics.tail_dropped.inc();
                    continue;
                }
                q.bytes += size;
                q.items.push_back(entry.clone());
                added = true;
            }
            let stalled = q
                .full_since
                .is_some_and(|t| now.duration_since(t) > STALLED);
            queued += q.bytes;
            drop(q);
            if stalled {
                tracing::info!(
                    subscriber = sub.id,
                    "live-tail client read nothing for {STALLED:?}; disconnecting it"
                );
                self.remove(sub.id);
            } else if added {
                sub.notify.notify_one();
            }
        }
        self.metrics.tail_queued_bytes.set(queued as i64);
    }

    fn subscribe(self: &Arc<Self>, tenant: Arc<str>) -> Option<Arc<Subscriber>> {
        let mut subs = self.lock();
        if subs.len() >= MAX_SUBSCRIBERS {
            return None;
        }
        let sub = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            tenant,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                bytes: 0,
                dropped: 0,
                full_since: None,
            }),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
        });
        subs.push(sub.clone());
        self.count.store(subs.len(), Ordering::Release);
        self.metrics.tail_subscribers.set(subs.len() as i64);
        Some(sub)
    }

    fn remove(&self, id: u64) {
        let mut subs = self.lock();
        if let Some(i) = subs.iter().position(|s| s.id == id) {
            let sub = subs.swap_remove(i);
            sub.closed.store(true, Ordering::Release);
            let mut q = sub.lock();
            q.items.clear();
            q.bytes = 0;
            drop(q);
            sub.notify.notify_one();
        }
        self.count.store(subs.len(), Ordering::Release);
        self.metrics.tail_subscribers.set(subs.len() as i64);
    }
}

/// Removes its subscriber when the response stream is dropped (the client went away).
struct Subscription {
    hub: Arc<TailHub>,
    sub: Arc<Subscriber>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.sub.id);
    }
}

/// What the subscriber's stream hands out next.
enum Next {
    Event(Arc<Entry>),
    Lagged(u64),
    End,
}

impl Subscription {
    async fn next(&self) -> Next {
        loop {
            {
                let mut q = self.sub.lock();
                if q.dropped > 0 {
                    let n = std::mem::take(&mut q.dropped);
                    q.full_since = None;
                    return Next::Lagged(n);
                }
                if let Some(e) = q.items.pop_front() {
                    q.bytes -= e.record.len();
                    q.full_since = None;
                    return Next::Event(e);
                }
            }
            if self.sub.closed.load(Ordering::Acquire) {
                return Next::End;
            }
            self.sub.notify.notified().await;
        }
    }
}

pub async fn tail(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: super::RawParams,
) -> Result<Response, Problem> {
    let tenant = caller.tenant();
    let p = Params::new(raw, &["q"])?;
    let filter = query::parse(p.str("q")).map_err(|e| Problem::param("q", e.reason()))?;
    let Some(sub) = s.tail.subscribe(tenant) else {
        return Err(Problem::new(
            ErrorKind::Unavailable,
            "too many live-tail clients",
            format!("{MAX_SUBSCRIBERS} clients are following the live tail already; close one and retry"),
        ));
    };
    let subscription = Subscription {
        hub: s.tail.clone(),
        sub,
    };
    let stream = futures::stream::unfold(
        (subscription, filter),
        |(subscription, filter)| async move {
            loop {
                match subscription.next().await {
                    Next::End => return None,
                    Next::Lagged(n) => {
                        let ev = Sse::default().event("lagged").data(n.to_string());
                        return Some((Ok::<_, Infallible>(ev), (subscription, filter)));
                    }
                    Next::Event(e) if query::matches(&filter, &e.event) => {
                        let Ok(json) = serde_json::to_string(&e.event) else {
                            continue;
                        };
                        let ev = Sse::default().event("event").data(json);
                        return Some((Ok(ev), (subscription, filter)));
                    }
                    Next::Event(_) => {}
                }
            }
        },
    );
    let mut stop = s.shutdown.clone();
    let stream = stream.take_until(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    Ok(axum::response::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use crate::event::{Event, StoredEvent};
    use crate::query::{matches, parse};

    #[test]
    fn the_filter_is_the_search_language() {
        let mut e = Event::new("1", "tools/call", "delete_file");
        e.user = "alice".into();
        e.labels.insert("env".into(), "prod".into());
        e.error = "Permission DENIED".into();
        e.duration_ms = 1500;
        let ev = StoredEvent {
            event: e,
            tenant: "t".into(),
            received_at: time::OffsetDateTime::now_utc(),
            seq: 1,
            hash: String::new(),
            redactions: vec![],
        };
        let m = |q: &str| matches(&parse(q).unwrap(), &ev);
        assert!(m("tool:delete_file user:alice"));
        assert!(m("labels.env:prod -user:bob"));
        assert!(m("tool:x OR (user:alice AND NOT user:bob)"));
        assert!(m("\"permission denied\" duration_ms:>1000"));
        assert!(!m("user:bob"));
        assert!(!m("tool:delete"), "exact fields match whole values");
        assert!(m(""));
        assert!(parse("bogus:x").is_err());
    }
}
