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
    pub index_lag_events: Gauge,
    pub index_docs: Gauge,
    pub http_requests: Labeled,
    /// 1 while a stage works, 0 while it fails (label `component`).
    pub up: Family<Vec<(String, String)>, Gauge>,
    pub failures: Labeled,
    pub dedup_filter_bytes: Gauge,
    pub dedup_recent_keys: Gauge,
    pub dedup_index_lookups: Counter,
    /// WAL positions found missing at start (the newest records were lost; the index had them).
    pub wal_lost_positions: Counter,
    pub tail_subscribers: Gauge,
    pub tail_dropped: Counter,
    pub tail_queued_bytes: Gauge,
    /// Findings stored, by rule and severity.
    pub findings: Family<Vec<(String, String)>, Counter>,
    /// Rule evaluation time per event (all rules).
    pub rules_eval: Histogram,
    /// Durable events the rules have not evaluated yet.
    pub rules_lag_events: Gauge,
    /// Errors of the last rules load or reload (0 when it was good).
    pub rules_load_errors: Gauge,
    /// Group keys held per rule, and keys evicted because a rule reached its cap.
    pub rule_keys: Family<Vec<(String, String)>, Gauge>,
    pub rule_evictions: Family<Vec<(String, String)>, Gauge>,
    /// Alerts by status.
    pub alerts: Family<Vec<(String, String)>, Gauge>,
    /// Webhook attempts by destination and result (delivered, retry, failed, gone).
    pub webhook_attempts: Family<Vec<(String, String)>, Counter>,
    /// Outbox entries waiting, per destination.
    pub webhook_pending: Family<Vec<(String, String)>, Gauge>,
    /// 1 while a destination is disabled (it answered 410).
    pub webhook_disabled: Family<Vec<(String, String)>, Gauge>,
    /// When the served TLS certificate expires (Unix seconds; 0 without TLS).
    pub tls_cert_expiry: Gauge,
    /// TLS reloads (SIGHUP) by outcome (ok, error).
    pub tls_reloads: Labeled,
    /// TLS handshakes that failed or timed out, by listener.
    pub tls_handshake_failures: Labeled,
    /// Requests refused by authentication or quotas, by reason.
    pub auth_refusals: Labeled,
    /// OTLP spans and log records turned into events, by signal.
    pub otlp_accepted: Labeled,
    /// OTLP spans and log records that are not audit events, by signal and reason.
    pub otlp_dropped: Labeled,
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

    pub fn component_up(&self, component: &str, up: bool) {
        self.up
            .get_or_create(&vec![("component".into(), component.into())])
            .set(i64::from(up));
    }

    pub fn component_failed(&self, component: &str) {
        self.failures
            .get_or_create(&vec![("component".into(), component.into())])
            .inc();
    }

    pub fn otlp_accepted(&self, signal: &str, n: u64) {
        self.otlp_accepted
            .get_or_create(&vec![("signal".into(), signal.into())])
            .inc_by(n);
    }

    pub fn otlp_dropped(&self, signal: &str, reason: &str, n: u64) {
        self.otlp_dropped
            .get_or_create(&vec![
                ("signal".into(), signal.into()),
                ("reason".into(), reason.into()),
            ])
            .inc_by(n);
    }

    pub fn auth_refused(&self, reason: &str) {
        self.auth_refusals
            .get_or_create(&vec![("reason".into(), reason.into())])
            .inc();
    }

    pub fn webhook_attempt(&self, destination: &str, result: &str) {
        self.webhook_attempts
            .get_or_create(&vec![
                ("destination".into(), destination.into()),
                ("result".into(), result.into()),
            ])
            .inc();
    }

    /// Publishes the alert and outbox gauges.
    pub fn alerts_observe(&self, s: &crate::alerts::State) {
        use crate::alerts::{AlertStatus, DeliveryState};
        let mut by_status = [0i64; 3];
        for a in s.alerts.values() {
            by_status[a.status as usize] += 1;
        }
        for (i, name) in AlertStatus::NAMES.iter().enumerate() {
            self.alerts
                .get_or_create(&vec![("status".into(), (*name).into())])
                .set(by_status[i]);
        }
        let mut pending: std::collections::BTreeMap<&str, i64> =
            s.destinations.keys().map(|k| (k.as_str(), 0)).collect();
        for d in s.outbox.values() {
            if d.state == DeliveryState::Pending {
                *pending.entry(d.destination.as_str()).or_default() += 1;
            }
        }
        for (dest, n) in pending {
            let label = vec![("destination".to_string(), dest.to_string())];
            self.webhook_pending.get_or_create(&label).set(n);
            let disabled = s.destinations.get(dest).is_some_and(|d| d.disabled);
            self.webhook_disabled
                .get_or_create(&label)
                .set(i64::from(disabled));
        }
    }

    pub fn finding(&self, rule: &str, severity: &str) {
        self.findings
            .get_or_create(&vec![
                ("rule".into(), rule.into()),
                ("severity".into(), severity.into()),
            ])
            .inc();
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
        r.register(
            "component_up",
            "1 while a stage (wal, index) works, 0 while it is failing",
            self.up.clone(),
        );
        r.register(
            "component_failures",
            "Times a stage started failing",
            self.failures.clone(),
        );
        r.register(
            "dedup_filter_bytes",
            "Memory of the duplicate filter",
            self.dedup_filter_bytes.clone(),
        );
        r.register(
            "dedup_recent_keys",
            "Event ids kept exactly because the index does not cover them yet",
            self.dedup_recent_keys.clone(),
        );
        r.register(
            "dedup_index_lookups",
            "Possible duplicates checked against the index",
            self.dedup_index_lookups.clone(),
        );
        r.register(
            "wal_lost_positions",
            "WAL positions found missing at start and skipped (already indexed)",
            self.wal_lost_positions.clone(),
        );
        r.register(
            "tail_subscribers",
            "Live-tail clients connected",
            self.tail_subscribers.clone(),
        );
        r.register(
            "tail_queued_bytes",
            "Bytes of events waiting for live-tail clients",
            self.tail_queued_bytes.clone(),
        );
        r.register("alerts", "Alerts by status", self.alerts.clone());
        r.register(
            "webhook_attempts",
            "Webhook delivery attempts by destination and result",
            self.webhook_attempts.clone(),
        );
        r.register(
            "webhook_pending",
            "Webhook notifications waiting in the outbox, per destination",
            self.webhook_pending.clone(),
        );
        r.register(
            "auth_refusals",
            "Requests refused by authentication, lockouts or quotas, by reason",
            self.auth_refusals.clone(),
        );
        r.register(
            "otlp_accepted",
            "OTLP spans and log records stored as events, by signal",
            self.otlp_accepted.clone(),
        );
        r.register(
            "otlp_dropped",
            "OTLP spans and log records dropped as not audit events (neither MCP requests nor tool executions), by signal and reason",
            self.otlp_dropped.clone(),
        );
        r.register(
            "webhook_disabled",
            "1 while a webhook destination is disabled (it answered 410 Gone)",
            self.webhook_disabled.clone(),
        );
        r.register(
            "tail_dropped_events",
            "Live-tail events skipped for clients that did not keep up",
            self.tail_dropped.clone(),
        );
        r.register(
            "findings",
            "Findings made (stored, or staged for the next commit), by rule and severity",
            self.findings.clone(),
        );
        r.register(
            "rules_eval_seconds",
            "Time to evaluate every rule on one event",
            self.rules_eval.0.clone(),
        );
        r.register(
            "rules_lag_events",
            "Acknowledged events the rules have not evaluated yet (grows while the findings store fails: the WAL keeps them)",
            self.rules_lag_events.clone(),
        );
        r.register(
            "rules_load_errors",
            "Errors of the last rules load or reload; the running rules are the last good set",
            self.rules_load_errors.clone(),
        );
        r.register(
            "rule_state_keys",
            "Group keys a stateful rule holds",
            self.rule_keys.clone(),
        );
        r.register(
            "rule_state_evictions",
            "Group keys a stateful rule evicted at its cap (least recently used first)",
            self.rule_evictions.clone(),
        );
        r.register(
            "tls_cert_expiry_timestamp_seconds",
            "When the served TLS certificate expires (Unix time; 0 without TLS)",
            self.tls_cert_expiry.clone(),
        );
        r.register(
            "tls_reloads",
            "TLS certificate reloads (SIGHUP) by outcome; a failed one keeps the old certificate",
            self.tls_reloads.clone(),
        );
        r.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out, by listener",
            self.tls_handshake_failures.clone(),
        );
        let (rss, anon) = resident_bytes();
        let g: Gauge = Gauge::default();
        g.set(rss);
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the collector (includes index files mapped into memory)",
            g,
        );
        let g: Gauge = Gauge::default();
        g.set(anon);
        r.register(
            "process_resident_anonymous_memory_bytes",
            "Resident memory of the collector that is not a mapped file (heap, stacks)",
            g,
        );
        let mut out = String::new();
        if encode(&mut out, &r).is_err() {
            out.clear();
        }
        out
    }
}

/// Resident set size and its anonymous part, from `/proc/self/status` (0 where unavailable).
fn resident_bytes() -> (i64, i64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(0, |v| v * 1024)
    };
    (kb("VmRSS:"), kb("RssAnon:"))
}
