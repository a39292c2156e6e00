//! Alerting: findings grouped into alerts, silences, and signed webhooks delivered from a
//! durable outbox.
//!
//! The alerter ([`run_alerter`], one thread) follows the findings store by WAL position: the
//! rules consumer stages every finding of the events below a position before publishing it
//! (commits make them durable later; a replay after a crash makes the same ones again), and
//! the alerter applies those it has not applied yet (`State::cursor`) to its alerts, queues
//! notifications for due alerts, and saves its whole state (alerts, silences, outbox, cursor)
//! atomically before anything is sent. A kill -9 anywhere replays exactly the
//! findings the saved state had not seen, and resends the notifications it had not marked
//! delivered, with the same `webhook-id` (receivers de-duplicate on it).
//!
//! The deliverer ([`deliver::run`], a tokio task) sends due outbox entries with retries;
//! [`webhook`] holds the wire side: formats, Standard Webhooks signing, the SSRF guard.

pub mod deliver;
pub mod manager;
pub mod otlp;
pub mod store;
pub mod webhook;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use manager::{Alert, AlertStatus, Delivery, DeliveryState, Manager, Matcher, Silence, State};
pub use store::Alerts;

use crate::rules::Severity;

/// What makes two findings the same alert (besides the tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Rule,
    GroupKey,
    Severity,
}

impl GroupBy {
    pub const NAMES: &'static [&'static str] = &["rule", "group_key", "severity"];

    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s {
            "rule" => GroupBy::Rule,
            "group_key" => GroupBy::GroupKey,
            "severity" => GroupBy::Severity,
            _ => return None,
        })
    }
}

/// `[alerts]`: grouping and notification timing, as Alertmanager users know them.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub group_by: Vec<GroupBy>,
    /// How long a new alert waits for more findings before its first notification.
    pub group_wait: Duration,
    /// How long after a notification new findings of the same alert are notified.
    pub group_interval: Duration,
    /// How often a firing alert without new findings is notified again.
    pub repeat_interval: Duration,
    /// An alert without a new finding for this long resolves itself.
    pub resolve_after: Duration,
    /// The wait before the first retry of a failed delivery (doubling up to 24 h).
    pub first_retry: Duration,
    /// Base of the dashboard links in notifications (`http://<http.listen>` by default).
    pub external_url: String,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            group_by: vec![GroupBy::Rule, GroupBy::GroupKey],
            group_wait: Duration::ZERO,
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
            resolve_after: Duration::from_secs(3600),
            first_retry: Duration::from_secs(5),
            external_url: String::new(),
        }
    }
}

/// The body shape a destination receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Generic,
    Alertmanager,
    Slack,
    /// An OTLP/JSON logs export (`url` is an OTLP/HTTP `/v1/logs`), see [`otlp`].
    Otlp,
}

impl Format {
    pub const NAMES: &'static [&'static str] = &["generic", "alertmanager", "slack", "otlp"];

    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "generic" => Format::Generic,
            "alertmanager" => Format::Alertmanager,
            "slack" => Format::Slack,
            "otlp" => Format::Otlp,
            _ => return None,
        })
    }
}

/// One `[[webhooks]]` destination.
#[derive(Clone)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    pub format: Format,
    /// Signing keys (the bytes behind `whsec_`): the current one first, then those being
    /// rotated out. Every delivery carries one signature per key.
    pub secrets: Vec<Vec<u8>>,
    pub min_severity: Severity,
    /// Only these rules (empty: all).
    pub rules: Vec<String>,
    /// Only alerts with at least one of these tags (empty: all).
    pub tags: Vec<String>,
    pub timeout: Duration,
    /// Loopback and private-range targets are refused unless this is set.
    pub allow_private: bool,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("format", &self.format)
            .field("secrets", &format!("<{} secrets>", self.secrets.len()))
            .field("min_severity", &self.min_severity)
            .field("rules", &self.rules)
            .field("tags", &self.tags)
            .field("timeout", &self.timeout)
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

impl WebhookConfig {
    /// Whether an alert of this rule, severity and tags goes to this destination.
    pub fn wants(&self, rule: &str, severity: Severity, tags: &[String]) -> bool {
        severity >= self.min_severity
            && (self.rules.is_empty() || self.rules.iter().any(|r| r == rule))
            && (self.tags.is_empty() || self.tags.iter().any(|t| tags.contains(t)))
    }
}
