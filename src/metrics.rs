//! Prometheus metrics of the whole pipeline, in one registry served at `/metrics`.
//!
//! Label values are fixed vocabularies (rejection codes, redaction kinds, routes), never event
//! content, so no secret or user data can reach a metric.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram as PromHistogram};
use prometheus_client::registry::Registry;

/// A latency histogram in seconds, 50µs to ~50s.
#[derive(Clone)]
pub struct Histogram(PromHistogram);

impl Default for Histogram {
    fn default() -> Self {
        Self(PromHistogram::new(exponential_buckets(0.00005, 2.0, 21)))
    }
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        self.0.observe(seconds)
    }
}

type Labeled = Family<Vec<(String, String)>, Counter>;

#[derive(Default)]
pub struct Metrics {
    pub ingested: Counter,
    pub duplicates: Counter,
    pub rejected: Labeled,
    pub redactions: Labeled,
    pub wal_fsync: Histogram,
    pub index_commit: Histogram,
    pub search: Histogram,
    pub ack: Histogram,
    pub wal_queue: Gauge,
    pub index_queue: Gauge,
    pub index_lag_events: Gauge,
    pub index_docs: Gauge,
    pub http_requests: Labeled,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn reject(&self, code: &str) {
        self.rejected
            .get_or_create(&vec![("reason".into(), code.into())])
            .inc();
    }

    pub fn redacted(&self, kind: &str, count: u64) {
        self.redactions
            .get_or_create(&vec![("kind".into(), kind.into())])
            .inc_by(count);
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut r = Registry::with_prefix("mcp_audit");
        r.register(
            "ingested_events",
            "Events stored (new, not duplicates)",
            self.ingested.clone(),
        );
        r.register(
            "duplicate_events",
            "Re-sent events acknowledged without storing them again",
            self.duplicates.clone(),
        );
        r.register(
            "rejected_events",
            "Events rejected at ingest, by reason",
            self.rejected.clone(),
        );
        r.register(
            "redactions",
            "Secrets removed by the scrubber, by kind",
            self.redactions.clone(),
        );
        r.register(
            "wal_fsync_seconds",
            "WAL group-commit fsync latency",
            self.wal_fsync.0.clone(),
        );
        r.register(
            "index_commit_seconds",
            "Index commit latency",
            self.index_commit.0.clone(),
        );
        r.register(
            "search_seconds",
            "Search API latency",
            self.search.0.clone(),
        );
        r.register(
            "ingest_ack_seconds",
            "Time from receiving a batch to acknowledging it",
            self.ack.0.clone(),
        );
        r.register(
            "wal_queue_batches",
            "Batches waiting for the WAL committer",
            self.wal_queue.clone(),
        );
        r.register(
            "index_queue_chunks",
            "Committed chunks waiting for the indexer",
            self.index_queue.clone(),
        );
        r.register(
            "index_lag_events",
            "Acknowledged events not yet searchable",
            self.index_lag_events.clone(),
        );
        r.register(
            "index_docs",
            "Committed documents in the index",
            self.index_docs.clone(),
        );
        r.register(
            "http_requests",
            "HTTP API requests by route and status",
            self.http_requests.clone(),
        );
        let rss: Gauge = Gauge::default();
        rss.set(resident_bytes());
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the collector",
            rss,
        );
        let mut out = String::new();
        if encode(&mut out, &r).is_err() {
            out.clear();
        }
        out
    }
}

/// Resident set size from `/proc/self/statm` (0 where unavailable).
fn resident_bytes() -> i64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<i64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}
