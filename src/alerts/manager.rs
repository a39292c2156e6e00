//! The alert state machine, without I/O: findings in, notifications (outbox entries) out.
//!
//! An alert is the findings of one tenant with the same grouping values (by default rule and
//! group key) while it is open. Timing follows Alertmanager: the first notification
//! `group_wait` after the alert opened, notifications of new findings at most every
//! `group_interval`, a reminder every `repeat_interval` while it fires. Findings that arrive
//! between notifications are counted, and the next notification carries how many
//! (`suppressed_count`) with `first_seen` and `last_seen`. An acknowledged alert keeps counting
//! but notifies no more; an alert without findings for `resolve_after` resolves itself (and
//! says so to the destinations it notified). Silenced alerts count too, and notify nothing.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{webhook, AlertsConfig, GroupBy, WebhookConfig};
use crate::rules::{Finding, Severity};

/// Evidence kept per alert (the newest); counts are kept in full.
pub const KEEP_FINDINGS: usize = 50;
pub const KEEP_EVENTS: usize = 100;
/// Open alerts at most: beyond, the longest quiet are resolved (`resolved_by: capacity`), so
/// memory stays bounded under a flood of distinct alerts.
pub const MAX_OPEN: usize = 20_000;
/// Resolved alerts kept for the API (oldest dropped first).
pub const KEEP_RESOLVED: usize = 10_000;
/// Delivered or failed outbox entries kept for the API (oldest dropped first).
pub const KEEP_DONE: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Acknowledged,
    Resolved,
}

impl AlertStatus {
    pub const NAMES: &'static [&'static str] = &["firing", "acknowledged", "resolved"];

    pub fn parse(s: &str) -> Option<AlertStatus> {
        Some(match s {
            "firing" => AlertStatus::Firing,
            "acknowledged" => AlertStatus::Acknowledged,
            "resolved" => AlertStatus::Resolved,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub tenant: String,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub tags: Vec<String>,
    /// The findings' group key when alerts group by it (else empty).
    pub group_key: String,
    pub status: AlertStatus,
    /// Event time of the first and the newest finding.
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Wall-clock time of the newest finding (drives `resolve_after`).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Findings in all.
    pub count: u64,
    /// Findings since the previous notification that had none of their own.
    pub suppressed_count: u64,
    /// Findings since the previous notification (or since the alert opened).
    #[serde(default)]
    pub unnotified: u64,
    /// Findings that arrived while a silence matched.
    #[serde(default)]
    pub silenced_count: u64,
    /// The silence that holds the alert's notifications back now, if one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
    pub finding_ids: VecDeque<String>,
    pub event_ids: VecDeque<String>,
    /// The newest findings' explanations (at most five).
    pub explanations: VecDeque<String>,
    pub notifications: u64,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_notified: Option<OffsetDateTime>,
    /// When the next notification is due (none: nothing to send).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_notify: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// `timeout` (quiet for `resolve_after`) or who resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}

/// One silence matcher: `name` is `rule`, `severity`, `tag`, or a group-key field (`user`,
/// `server`...); the value is matched whole, or as a regex when `regex` is set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub regex: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub tenant: String,
    pub matchers: Vec<Matcher>,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
    pub created_by: String,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Silence {
    pub fn active(&self, now: OffsetDateTime) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn matches(&self, a: &Alert) -> bool {
        self.tenant == a.tenant && self.matchers.iter().all(|m| matcher_holds(m, a))
    }
}

fn matcher_holds(m: &Matcher, a: &Alert) -> bool {
    let test = |v: &str| {
        if m.regex {
            regex::Regex::new(&format!("^(?:{})$", m.value)).is_ok_and(|re| re.is_match(v))
        } else {
            v == m.value
        }
    };
    match m.name.as_str() {
        "rule" => test(&a.rule),
        "severity" => test(a.severity.as_str()),
        "tag" => a.tags.iter().any(|t| test(t)),
        field => group_values(&a.group_key)
            .filter(|(k, _)| *k == field)
            .any(|(_, v)| test(v)),
    }
}

/// The `field=value` pairs of a group key (`user=dave tool=x`).
pub fn group_values(key: &str) -> impl Iterator<Item = (&str, &str)> {
    key.split(' ').filter_map(|p| p.split_once('='))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Gave up (attempts exhausted, or the destination answered 410 Gone).
    Failed,
}

/// One outbox entry: a rendered, signed-on-send notification to one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// The `webhook-id`: the same on every attempt.
    pub id: String,
    pub destination: String,
    pub alert_id: String,
    pub tenant: String,
    /// `firing`, `resolved` or `test`.
    pub kind: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub done_at: Option<OffsetDateTime>,
}

/// A destination's delivery state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DestinationState {
    /// The URL it had when last started (a changed URL enables a disabled destination).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    pub delivered: u64,
    pub failed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Everything the alerter saves, atomically.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Findings at WAL positions below this are applied.
    pub cursor: u64,
    pub alerts: BTreeMap<String, Alert>,
    pub silences: BTreeMap<String, Silence>,
    pub outbox: BTreeMap<String, Delivery>,
    pub destinations: BTreeMap<String, DestinationState>,
}

/// What changed since the last save (the journal records only that).
#[derive(Debug, Default)]
pub struct Dirty {
    pub alerts: HashSet<String>,
    pub removed_alerts: Vec<String>,
    pub outbox: HashSet<String>,
    pub removed_outbox: Vec<String>,
    pub silences: HashSet<String>,
    pub destinations: bool,
    pub cursor: bool,
}

impl Dirty {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.removed_alerts.is_empty()
            && self.outbox.is_empty()
            && self.removed_outbox.is_empty()
            && self.silences.is_empty()
            && !self.destinations
            && !self.cursor
    }
}

/// The state and what it is driven by.
pub struct Manager {
    pub state: State,
    pub config: AlertsConfig,
    pub webhooks: Vec<WebhookConfig>,
    /// Open alert by (tenant, grouping values): rebuilt from `state` on load.
    open: HashMap<(String, String), String>,
    /// What changed since the last save.
    pub dirty: Dirty,
    /// Ids of the outbox entries still to deliver (the deliverer looks only at these).
    pub pending: HashSet<String>,
    ticks: u64,
    capacity_warned: Option<OffsetDateTime>,
}

/// `t + d`, saturating at the largest time instead of overflowing.
fn micros_add(t: OffsetDateTime, d: std::time::Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc())
}

fn push_capped<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    q.push_back(v);
    while q.len() > cap {
        q.pop_front();
    }
}

impl Manager {
    pub fn new(state: State, config: AlertsConfig, webhooks: Vec<WebhookConfig>) -> Manager {
        let mut m = Manager {
            state,
            config,
            webhooks,
            open: HashMap::new(),
            dirty: Dirty::default(),
            pending: HashSet::new(),
            ticks: 0,
            capacity_warned: None,
        };
        m.pending = m
            .state
            .outbox
            .values()
            .filter(|d| d.state == DeliveryState::Pending)
            .map(|d| d.id.clone())
            .collect();
        for a in m.state.alerts.values() {
            if a.status != AlertStatus::Resolved {
                let key = (
                    a.tenant.clone(),
                    grouping(&m.config.group_by, &a.rule, a.severity, &a.group_key),
                );
                m.open.insert(key, a.id.clone());
            }
        }
        for w in &m.webhooks {
            let d = m.state.destinations.entry(w.name.clone()).or_default();
            // A destination disabled by a 410 comes back when its URL changed.
            if d.disabled && d.url.as_deref() != Some(w.url.as_str()) {
                d.disabled = false;
                d.disabled_reason = None;
            }
            d.url = Some(w.url.clone());
        }
        m.dirty.destinations = true;
        m
    }

    /// Takes what changed since the last call.
    pub fn take_dirty(&mut self) -> Dirty {
        std::mem::take(&mut self.dirty)
    }

    /// Enables a destination a 410 disabled; false when there is none of that name.
    pub fn enable(&mut self, name: &str) -> bool {
        if !self.webhooks.iter().any(|w| w.name == name) {
            return false;
        }
        let d = self.state.destinations.entry(name.to_string()).or_default();
        d.disabled = false;
        d.disabled_reason = None;
        self.dirty.destinations = true;
        true
    }

    pub fn add_silence(&mut self, s: Silence) {
        self.dirty.silences.insert(s.id.clone());
        self.state.silences.insert(s.id.clone(), s);
    }

    /// Ends a silence now; `None` when the tenant has none with this id.
    pub fn expire_silence(
        &mut self,
        tenant: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Option<Silence> {
        let s = self
            .state
            .silences
            .get_mut(id)
            .filter(|s| s.tenant == tenant)?;
        if s.ends_at > now {
            s.ends_at = now.max(s.starts_at);
        }
        self.dirty.silences.insert(id.to_string());
        Some(s.clone())
    }

    /// Marks an outbox entry changed (the deliverer recorded an attempt).
    pub fn delivery_changed(&mut self, id: &str) {
        if self
            .state
            .outbox
            .get(id)
            .is_some_and(|d| d.state != DeliveryState::Pending)
        {
            self.pending.remove(id);
        }
        self.dirty.outbox.insert(id.to_string());
        self.dirty.destinations = true;
    }

    /// Adds one finding to its alert (opening one if none is open).
    pub fn apply(&mut self, f: &Finding, now: OffsetDateTime) {
        let group_key = if self.config.group_by.contains(&GroupBy::GroupKey) {
            f.group_key.clone()
        } else {
            String::new()
        };
        let key = (
            f.tenant.clone(),
            grouping(&self.config.group_by, &f.rule, f.severity, &group_key),
        );
        let id = match self.open.get(&key) {
            Some(id) => id.clone(),
            None => {
                let id = uuid::Uuid::now_v7().simple().to_string();
                let alert = Alert {
                    id: id.clone(),
                    tenant: f.tenant.clone(),
                    rule: f.rule.clone(),
                    title: f.title.clone(),
                    severity: f.severity,
                    tags: f.tags.clone(),
                    group_key,
                    status: AlertStatus::Firing,
                    first_seen: f.time,
                    last_seen: f.time,
                    updated_at: now,
                    count: 0,
                    suppressed_count: 0,
                    unnotified: 0,
                    silenced_count: 0,
                    silenced_by: None,
                    finding_ids: VecDeque::new(),
                    event_ids: VecDeque::new(),
                    explanations: VecDeque::new(),
                    notifications: 0,
                    last_notified: None,
                    next_notify: Some(micros_add(now, self.config.group_wait)),
                    acknowledged_by: None,
                    acknowledged_at: None,
                    resolved_at: None,
                    resolved_by: None,
                };
                self.state.alerts.insert(id.clone(), alert);
                self.open.insert(key, id.clone());
                id
            }
        };
        let silenced = self.silence_for(&id, now);
        let group_interval = self.config.group_interval;
        let Some(a) = self.state.alerts.get_mut(&id) else {
            return;
        };
        self.dirty.alerts.insert(id.clone());
        a.count += 1;
        a.unnotified += 1;
        a.updated_at = now;
        a.first_seen = a.first_seen.min(f.time);
        a.last_seen = a.last_seen.max(f.time);
        a.severity = a.severity.max(f.severity);
        if silenced.is_some() {
            a.silenced_count += 1;
        }
        a.silenced_by = silenced;
        push_capped(&mut a.finding_ids, f.id.clone(), KEEP_FINDINGS);
        for e in &f.event_ids {
            if !a.event_ids.contains(e) {
                push_capped(&mut a.event_ids, e.clone(), KEEP_EVENTS);
            }
        }
        push_capped(&mut a.explanations, f.explanation.clone(), 5);
        if a.status == AlertStatus::Firing {
            if let Some(last) = a.last_notified {
                let due = micros_add(last, group_interval);
                a.next_notify = Some(a.next_notify.map_or(due, |n| n.min(due)));
            }
        }
    }

    fn silence_for(&self, alert_id: &str, now: OffsetDateTime) -> Option<String> {
        let a = self.state.alerts.get(alert_id)?;
        self.state
            .silences
            .values()
            .find(|s| s.active(now) && s.matches(a))
            .map(|s| s.id.clone())
    }

    /// Resolves quiet alerts and queues the notifications that are due; returns how many
    /// outbox entries it added.
    pub fn tick(&mut self, now: OffsetDateTime) -> usize {
        let mut added = 0;
        // Only the alerts with something due: most open alerts are waiting, and this runs
        // every few milliseconds.
        let resolve_after = self.config.resolve_after;
        let due: Vec<String> = self
            .open
            .values()
            .filter(|id| {
                self.state.alerts.get(*id).is_some_and(|a| {
                    now >= micros_add(a.updated_at, resolve_after)
                        || (a.status == AlertStatus::Firing
                            && a.next_notify.is_some_and(|t| t <= now))
                })
            })
            .cloned()
            .collect();
        for id in due {
            let Some(a) = self.state.alerts.get(&id) else {
                continue;
            };
            if now >= micros_add(a.updated_at, self.config.resolve_after) {
                added += self.resolve_inner(&id, now, "timeout");
                continue;
            }
            if a.status != AlertStatus::Firing || a.next_notify.is_none_or(|t| t > now) {
                continue;
            }
            let silenced = self.silence_for(&id, now);
            let repeat = self.config.repeat_interval;
            let Some(a) = self.state.alerts.get_mut(&id) else {
                continue;
            };
            self.dirty.alerts.insert(id.clone());
            a.silenced_by = silenced.clone();
            if silenced.is_some() {
                // Checked again when it would be due next.
                a.next_notify = Some(micros_add(
                    now,
                    repeat.min(std::time::Duration::from_secs(60)),
                ));
                continue;
            }
            a.suppressed_count = a.unnotified.saturating_sub(1);
            a.unnotified = 0;
            a.notifications += 1;
            a.last_notified = Some(now);
            a.next_notify = Some(micros_add(now, repeat));
            let snapshot = a.clone();
            added += self.enqueue(&snapshot, "firing", now);
        }
        if self.open.len() > MAX_OPEN {
            let mut quiet: Vec<(OffsetDateTime, String)> = self
                .open
                .values()
                .filter_map(|id| {
                    self.state
                        .alerts
                        .get(id)
                        .map(|a| (a.updated_at, id.clone()))
                })
                .collect();
            quiet.sort();
            let excess = self.open.len() - MAX_OPEN;
            if self
                .capacity_warned
                .is_none_or(|t| now - t > time::Duration::MINUTE)
            {
                tracing::warn!(
                    open = self.open.len(),
                    resolved = excess,
                    "more than {MAX_OPEN} open alerts: resolving the longest quiet (`resolved_by: capacity`)"
                );
                self.capacity_warned = Some(now);
            }
            for (_, id) in quiet.into_iter().take(excess) {
                added += self.resolve_inner(&id, now, "capacity");
            }
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(50) {
            self.prune(now);
        }
        added
    }

    /// Queues a notification of `a` for every destination that wants it.
    fn enqueue(&mut self, a: &Alert, kind: &str, now: OffsetDateTime) -> usize {
        let mut n = 0;
        for w in &self.webhooks {
            if !w.wants(&a.rule, a.severity, &a.tags) {
                continue;
            }
            let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
            self.dirty.outbox.insert(id.clone());
            self.pending.insert(id.clone());
            let body = webhook::render(w, a, kind, &self.config.external_url, now);
            self.state.outbox.insert(
                id.clone(),
                Delivery {
                    id,
                    destination: w.name.clone(),
                    alert_id: a.id.clone(),
                    tenant: a.tenant.clone(),
                    kind: kind.to_string(),
                    body,
                    created_at: now,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt: now,
                    last_error: None,
                    last_status: None,
                    done_at: None,
                },
            );
            n += 1;
        }
        n
    }

    /// Acknowledges an open alert: it keeps counting findings and notifies no more.
    pub fn acknowledge(
        &mut self,
        tenant: &str,
        id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Option<Alert> {
        let a = self
            .state
            .alerts
            .get_mut(id)
            .filter(|a| a.tenant == tenant)?;
        if a.status == AlertStatus::Firing {
            self.dirty.alerts.insert(id.to_string());
            a.status = AlertStatus::Acknowledged;
            a.acknowledged_by = Some(by.to_string());
            a.acknowledged_at = Some(now);
            a.next_notify = None;
        }
        Some(a.clone())
    }

    /// Resolves an alert by hand; the destinations it notified hear of it.
    pub fn resolve(
        &mut self,
        tenant: &str,
        id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Option<Alert> {
        let a = self.state.alerts.get(id).filter(|a| a.tenant == tenant)?;
        if a.status != AlertStatus::Resolved {
            self.resolve_inner(id, now, by);
        }
        self.state.alerts.get(id).cloned()
    }

    fn resolve_inner(&mut self, id: &str, now: OffsetDateTime, by: &str) -> usize {
        let group_by = self.config.group_by.clone();
        let Some(a) = self.state.alerts.get_mut(id) else {
            return 0;
        };
        self.dirty.alerts.insert(id.to_string());
        a.status = AlertStatus::Resolved;
        a.resolved_at = Some(now);
        a.resolved_by = Some(by.to_string());
        a.next_notify = None;
        let key = (
            a.tenant.clone(),
            grouping(&group_by, &a.rule, a.severity, &a.group_key),
        );
        let snapshot = a.clone();
        self.open.remove(&key);
        if snapshot.notifications > 0 && snapshot.silenced_by.is_none() {
            self.enqueue(&snapshot, "resolved", now)
        } else {
            0
        }
    }

    /// Keeps the resolved alerts and finished deliveries within their caps.
    fn prune(&mut self, now: OffsetDateTime) {
        let resolved: Vec<String> = self
            .state
            .alerts
            .values()
            .filter(|a| a.status == AlertStatus::Resolved)
            .map(|a| a.id.clone())
            .collect();
        // Ids are UUIDv7 (time-ordered): the first are the oldest.
        if resolved.len() > KEEP_RESOLVED {
            for id in &resolved[..resolved.len() - KEEP_RESOLVED] {
                self.state.alerts.remove(id);
                self.dirty.alerts.remove(id);
                self.dirty.removed_alerts.push(id.clone());
            }
        }
        let done: Vec<String> = self
            .state
            .outbox
            .values()
            .filter(|d| d.state != DeliveryState::Pending)
            .map(|d| d.id.clone())
            .collect();
        if done.len() > KEEP_DONE {
            for id in &done[..done.len() - KEEP_DONE] {
                self.state.outbox.remove(id);
                self.dirty.outbox.remove(id);
                self.dirty.removed_outbox.push(id.clone());
            }
        }
        let old: Vec<String> = self
            .state
            .silences
            .values()
            .filter(|s| now >= micros_add(s.ends_at, std::time::Duration::from_secs(7 * 86400)))
            .map(|s| s.id.clone())
            .collect();
        for id in old {
            // Dropped from memory; the next compaction drops it from disk.
            self.state.silences.remove(&id);
        }
    }
}

/// The grouping values of an alert, joined.
fn grouping(group_by: &[GroupBy], rule: &str, severity: Severity, group_key: &str) -> String {
    let mut out = String::new();
    for g in group_by {
        match g {
            GroupBy::Rule => out.push_str(rule),
            GroupBy::GroupKey => out.push_str(group_key),
            GroupBy::Severity => out.push_str(severity.as_str()),
        }
        out.push('\u{1f}');
    }
    out
}
