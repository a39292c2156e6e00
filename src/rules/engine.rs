//! The engine: a rule set and its state, evaluating one committed event at a time.
//!
//! `evaluate` is pure and synchronous: the same events in the same order from the same state
//! give the same findings with the same ids, which is what lets a restart replay the WAL from
//! the last saved state without duplicating or losing a finding. Each tenant's events only
//! ever touch that tenant's state (the tenant is part of every key).
//!
//! Time is event time. The newest event time seen (the watermark) drives `absence`; a caller
//! without events for a while may move it on with [`Engine::advance`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::select::{evaluated, MethodFilter};
use super::stateful::{self, Fired, Keyed, Micros, StepInput};
use super::{Finding, Kind, Rule};
use crate::event::fields::FieldValue;
use crate::event::StoredEvent;
use crate::query::{for_each_string, matches_in, ArgumentGuard, EventView, Expr, FieldRef};

/// Keys kept per rule by default (least recently used go first; see `/metrics`).
pub const DEFAULT_KEY_CAP: usize = 50_000;
/// How far the watermark moves before `absence` rules are checked again.
const ABSENCE_CHECK: Micros = 30_000_000;

/// The state of one rule.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum State {
    None,
    Count(Keyed<stateful::CountState>),
    Distinct(Keyed<stateful::DistinctState>),
    Spike(Keyed<stateful::SpikeState>),
    /// `started`: event time of the rule's first event per tenant (its warm-up starts there).
    Terms {
        keys: Keyed<stateful::TermsState>,
        started: stateful::HashMap<String, Micros>,
    },
    Change(Keyed<stateful::ChangeState>),
    Sequence(Keyed<stateful::SequenceState>),
    Presence(Keyed<stateful::PresenceState>),
}

impl State {
    fn for_kind(kind: &Kind, cap: usize) -> State {
        match kind {
            Kind::Match => State::None,
            Kind::EventCount { .. } => State::Count(Keyed::new(cap)),
            Kind::ValueCount { .. } => State::Distinct(Keyed::new(cap)),
            Kind::Spike { .. } => State::Spike(Keyed::new(cap)),
            Kind::NewTerm { .. } => State::Terms {
                keys: Keyed::new(cap),
                started: Default::default(),
            },
            Kind::Change { .. } => State::Change(Keyed::new(cap)),
            Kind::Sequence { .. } => State::Sequence(Keyed::new(cap)),
            Kind::Absence { .. } => State::Presence(Keyed::new(cap)),
        }
    }

    fn evicted(&self) -> u64 {
        match self {
            State::None => 0,
            State::Count(k) => k.evicted,
            State::Distinct(k) => k.evicted,
            State::Spike(k) => k.evicted,
            State::Terms { keys, .. } => keys.evicted,
            State::Change(k) => k.evicted,
            State::Sequence(k) => k.evicted,
            State::Presence(k) => k.evicted,
        }
    }

    fn keys(&self) -> usize {
        match self {
            State::None => 0,
            State::Count(k) => k.len(),
            State::Distinct(k) => k.len(),
            State::Spike(k) => k.len(),
            State::Terms { keys, .. } => keys.len(),
            State::Change(k) => k.len(),
            State::Sequence(k) => k.len(),
            State::Presence(k) => k.len(),
        }
    }
}

/// Everything the engine remembers, as saved and restored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EngineState {
    /// rule id → (rule fingerprint, state).
    rules: HashMap<String, (u64, State)>,
    watermark: Micros,
    last_absence_check: Micros,
}

/// What a rule has done since start, for `GET /api/v1/rules` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleStats {
    pub findings: u64,
    pub last_fired: Option<Micros>,
    pub keys: usize,
    pub evicted: u64,
}

pub struct Engine {
    rules: Vec<Arc<Rule>>,
    /// Parallel to `rules`.
    states: Vec<State>,
    /// Which rules look at an event of which method, so most rules skip most events at once.
    methods: MethodFilter,
    /// All the rules' regexes over every argument value, joined (see [`ArgumentGuard`]).
    guard: Option<ArgumentGuard>,
    stats: HashMap<String, RuleStats>,
    watermark: Micros,
    last_absence_check: Micros,
    key_cap: usize,
    /// Reused for building state keys.
    scratch: String,
}

fn micros(t: time::OffsetDateTime) -> Micros {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn from_micros(us: Micros) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The first string value of a field in an event, borrowed where the event holds it as text.
fn first_value<'a>(field: &FieldRef, ev: &'a StoredEvent) -> Option<Cow<'a, str>> {
    if let FieldRef::Field(def) = field {
        match def.value(ev) {
            FieldValue::Str(s) => return (!s.is_empty()).then_some(Cow::Borrowed(s)),
            FieldValue::Strs(list) => return list.first().map(|s| Cow::Borrowed(*s)),
            _ => {}
        }
    }
    let mut out = None;
    for_each_string(field, ev, &mut |s| {
        if out.is_none() {
            out = Some(Cow::Owned(s.to_string()));
        }
    });
    out
}

/// All string values of a field, joined (what `carries` and captures look at).
fn all_text(field: &FieldRef, ev: &StoredEvent) -> String {
    let mut out = String::new();
    for_each_string(field, ev, &mut |s| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(s);
    });
    out
}

/// The group of an event: its values per group field, `None` when one has no value (stateful
/// kinds do not count such events).
fn group_values<'a>(
    fields: &[(String, FieldRef)],
    ev: &'a StoredEvent,
) -> Option<Vec<Cow<'a, str>>> {
    fields.iter().map(|(_, f)| first_value(f, ev)).collect()
}

/// Writes the state key of an event's group into `out` (the tenant first, then the values,
/// unit-separated) without allocating; false when a group field has no value.
fn group_into(fields: &[(String, FieldRef)], ev: &StoredEvent, out: &mut String) -> bool {
    out.clear();
    out.push_str(&ev.tenant);
    for (_, f) in fields {
        let Some(v) = first_value(f, ev) else {
            return false;
        };
        out.push('\u{1f}');
        out.push_str(&v);
    }
    true
}

/// The state key of a group: the tenant first, then the values (unit-separated).
fn group_key(tenant: &str, values: &[Cow<'_, str>], out: &mut String) {
    out.clear();
    out.push_str(tenant);
    for v in values {
        out.push('\u{1f}');
        out.push_str(v);
    }
}

/// The `field=value` pairs of a group, for findings.
fn pairs(fields: &[(String, FieldRef)], values: &[Cow<'_, str>]) -> Vec<(String, String)> {
    fields
        .iter()
        .zip(values)
        .map(|((n, _), v)| (n.clone(), v.to_string()))
        .collect()
}

/// The group of an event as key and pairs.
fn group(
    fields: &[(String, FieldRef)],
    ev: &StoredEvent,
) -> Option<(String, Vec<(String, String)>)> {
    let values = group_values(fields, ev)?;
    let mut key = String::new();
    group_key(&ev.tenant, &values, &mut key);
    Some((key, pairs(fields, &values)))
}

/// The value a term or change rule follows: its fields' values joined (borrowed when there
/// is one field, as nearly always); `None` when one has no value.
fn joined<'a>(fields: &[(String, FieldRef)], ev: &'a StoredEvent) -> Option<Cow<'a, str>> {
    match fields {
        [(_, one)] => first_value(one, ev),
        many => Some(Cow::Owned(
            group_values(many, ev)?
                .iter()
                .map(|v| v.as_ref())
                .collect::<Vec<_>>()
                .join(" / "),
        )),
    }
}

fn passes(input: &Option<Expr>, exceptions: &Option<Expr>, ev: &EventView<'_>) -> bool {
    input.as_ref().is_some_and(|e| matches_in(e, ev))
        && !exceptions.as_ref().is_some_and(|e| matches_in(e, ev))
}

impl Engine {
    pub fn new(rules: Vec<Rule>, key_cap: usize) -> Engine {
        let rules: Vec<Arc<Rule>> = rules
            .into_iter()
            .filter(|r| r.enabled)
            .map(Arc::new)
            .collect();
        let states = rules
            .iter()
            .map(|r| State::for_kind(&r.kind, key_cap))
            .collect();
        let methods = MethodFilter::new(&rules);
        let guard = ArgumentGuard::new(rules.iter().flat_map(|r| evaluated(r)));
        Engine {
            rules,
            states,
            methods,
            guard,
            stats: HashMap::new(),
            watermark: 0,
            last_absence_check: 0,
            key_cap,
            scratch: String::new(),
        }
    }

    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// Swaps in a new rule set. A rule whose definition did not change keeps its state; a new
    /// or changed one starts empty.
    pub fn replace_rules(&mut self, rules: Vec<Rule>) {
        let mut old: HashMap<String, (u64, State)> = self
            .rules
            .iter()
            .zip(std::mem::take(&mut self.states))
            .map(|(r, s)| (r.id.clone(), (r.fingerprint, s)))
            .collect();
        self.rules = rules
            .into_iter()
            .filter(|r| r.enabled)
            .map(Arc::new)
            .collect();
        self.states = self
            .rules
            .iter()
            .map(|r| match old.remove(&r.id) {
                Some((fp, s)) if fp == r.fingerprint => s,
                _ => State::for_kind(&r.kind, self.key_cap),
            })
            .collect();
        self.methods = MethodFilter::new(&self.rules);
        self.guard = ArgumentGuard::new(self.rules.iter().flat_map(|r| evaluated(r)));
    }

    /// Forgets every rule's state and statistics, as a new engine with the same rules would
    /// start, but keeps the compiled rules (and what their regexes have learnt: a clone of a
    /// rule starts its automata cold).
    pub fn reset(&mut self) {
        self.states = self
            .rules
            .iter()
            .map(|r| State::for_kind(&r.kind, self.key_cap))
            .collect();
        self.stats.clear();
        self.watermark = 0;
        self.last_absence_check = 0;
    }

    /// The state to save.
    pub fn state(&self) -> EngineState {
        EngineState {
            rules: self
                .rules
                .iter()
                .zip(&self.states)
                .map(|(r, s)| (r.id.clone(), (r.fingerprint, s.clone())))
                .collect(),
            watermark: self.watermark,
            last_absence_check: self.last_absence_check,
        }
    }

    /// Takes back saved state: each rule whose definition is the same gets its own.
    pub fn restore(&mut self, mut saved: EngineState) {
        for (r, s) in self.rules.iter().zip(self.states.iter_mut()) {
            if let Some((fp, state)) = saved.rules.remove(&r.id) {
                if fp == r.fingerprint
                    && std::mem::discriminant(&state) == std::mem::discriminant(s)
                {
                    *s = state;
                }
            }
        }
        self.watermark = saved.watermark;
        self.last_absence_check = saved.last_absence_check;
    }

    pub fn stats(&self) -> HashMap<String, RuleStats> {
        let mut out = self.stats.clone();
        for (r, s) in self.rules.iter().zip(&self.states) {
            let e = out.entry(r.id.clone()).or_default();
            e.keys = s.keys();
            e.evicted = s.evicted();
        }
        out
    }

    /// Evaluates every rule on one committed event (at WAL position `pos`).
    pub fn evaluate(&mut self, ev: &StoredEvent, pos: u64) -> Vec<Finding> {
        let at = micros(ev.event.timestamp);
        self.watermark = self.watermark.max(at);
        let mut out = Vec::new();
        let view = EventView::guarded(ev, self.guard.as_ref());
        let method = self.methods.bit(&ev.event.method);
        for (((rule, state), mask), input) in self
            .rules
            .iter()
            .zip(self.states.iter_mut())
            .zip(&self.methods.masks)
            .zip(&self.methods.inputs)
        {
            if mask.is_some_and(|m| m & method == 0) {
                continue;
            }
            let fired = evaluate_rule(rule, input, state, &mut self.scratch, &view, at);
            for (pairs, f) in fired {
                out.push(make_finding(
                    &mut self.stats,
                    rule,
                    &ev.tenant,
                    ev.event.timestamp,
                    pos,
                    &pairs,
                    f,
                ));
            }
        }
        if self.watermark - self.last_absence_check >= ABSENCE_CHECK {
            out.extend(self.check_absence(pos));
        }
        out
    }

    /// Moves event time on without an event (a quiet collector still notices silence).
    pub fn advance(&mut self, now: Micros, pos: u64) -> Vec<Finding> {
        if now <= self.watermark {
            return Vec::new();
        }
        self.watermark = now;
        self.check_absence(pos)
    }
}

/// Evaluates one rule on one event, with its state; what fired, with the group's pairs.
fn evaluate_rule(
    rule: &Rule,
    input: &Option<Expr>,
    state: &mut State,
    key: &mut String,
    view: &EventView<'_>,
    at: Micros,
) -> Vec<(Vec<(String, String)>, Fired)> {
    let ev = view.event();
    let exceptions = &rule.exceptions;
    // The group of the event and what a kind makes of it: the key is built in a reused
    // buffer, the `field=value` pairs only when the rule fires.
    let mut keyed = |group_by: &[(String, FieldRef)], f: &mut dyn FnMut(&str) -> Option<Fired>| {
        if !group_into(group_by, ev, key) {
            return Vec::new();
        }
        match f(key) {
            // The pairs are read again only when the rule fires.
            Some(fired) => group(group_by, ev)
                .map(|(_, pairs)| vec![(pairs, fired)])
                .unwrap_or_default(),
            None => Vec::new(),
        }
    };
    match (&rule.kind, state) {
        (Kind::Match, _) => {
            if !rule.generate || !passes(input, exceptions, view) {
                return Vec::new();
            }
            let pairs = group(&rule.group_by, ev).map(|g| g.1).unwrap_or_default();
            vec![(
                pairs,
                Fired {
                    event_ids: vec![ev.event.event_id.clone()],
                    values: Vec::new(),
                },
            )]
        }
        (
            Kind::EventCount {
                group_by,
                threshold,
                window,
                ..
            },
            State::Count(keys),
        ) => {
            if !passes(input, exceptions, view) {
                return Vec::new();
            }
            keyed(group_by, &mut |key| {
                stateful::event_count(
                    keys.entry(key, Default::default),
                    *threshold,
                    *window,
                    at,
                    &ev.event.event_id,
                )
            })
        }
        (
            Kind::ValueCount {
                group_by,
                field,
                threshold,
                window,
                ..
            },
            State::Distinct(keys),
        ) => {
            if !passes(input, exceptions, view) {
                return Vec::new();
            }
            let Some(value) = first_value(&field.1, ev) else {
                return Vec::new();
            };
            keyed(group_by, &mut |key| {
                stateful::value_count(
                    keys.entry(key, Default::default),
                    *threshold,
                    *window,
                    at,
                    &value,
                    &ev.event.event_id,
                )
            })
        }
        (
            Kind::Spike {
                group_by, params, ..
            },
            State::Spike(keys),
        ) => {
            if !passes(input, exceptions, view) {
                return Vec::new();
            }
            keyed(group_by, &mut |key| {
                stateful::spike(
                    keys.entry(key, Default::default),
                    *params,
                    at,
                    &ev.event.event_id,
                )
            })
        }
        (
            Kind::NewTerm {
                group_by,
                fields,
                warmup,
                min_existing,
                ..
            },
            State::Terms { keys, started },
        ) => {
            if !passes(input, exceptions, view) {
                return Vec::new();
            }
            let Some(value) = joined(fields, ev) else {
                return Vec::new();
            };
            let start = match started.get(ev.tenant.as_str()) {
                Some(t) => *t,
                None => {
                    started.insert(ev.tenant.clone(), at);
                    at
                }
            };
            let learning = at < start + *warmup;
            keyed(group_by, &mut |key| {
                stateful::new_term(
                    keys.entry(key, Default::default),
                    &value,
                    at,
                    &ev.event.event_id,
                    learning,
                    *min_existing,
                )
            })
        }
        (
            Kind::Change {
                group_by, fields, ..
            },
            State::Change(keys),
        ) => {
            if !passes(input, exceptions, view) {
                return Vec::new();
            }
            let Some(value) = joined(fields, ev) else {
                return Vec::new();
            };
            keyed(group_by, &mut |key| {
                stateful::change(
                    keys.entry(key, Default::default),
                    &value,
                    at,
                    &ev.event.event_id,
                )
            })
        }
        (
            Kind::Sequence {
                group_by,
                steps,
                window,
            },
            State::Sequence(keys),
        ) => {
            if exceptions.as_ref().is_some_and(|e| matches_in(e, view)) {
                return Vec::new();
            }
            // Only events matching a step touch the state; find the step first.
            let Some(index) = steps.iter().rposition(|s| matches_in(&s.detection, view)) else {
                return Vec::new();
            };
            let step = &steps[index];
            keyed(group_by, &mut |key| {
                if index > 0 && !keys.get(key).is_some_and(|st| st.can_take(index)) {
                    return None;
                }
                let capture = step.capture.as_ref().map(|f| all_text(f, ev));
                let carries = step
                    .carries
                    .as_ref()
                    .map(|(from, f)| (*from, all_text(f, ev)));
                let input = StepInput {
                    index,
                    capture: capture.as_deref(),
                    carries: carries.as_ref().map(|(f, t)| (*f, t.as_str())),
                    same: step
                        .same
                        .iter()
                        .map(|f| first_value(f, ev).map(Cow::into_owned))
                        .collect(),
                };
                stateful::sequence(
                    keys.entry(key, Default::default),
                    steps.len(),
                    *window,
                    at,
                    &ev.event.event_id,
                    &input,
                )
            })
        }
        (Kind::Absence { group_by, .. }, State::Presence(keys)) => {
            if passes(input, exceptions, view) {
                keyed(group_by, &mut |key| {
                    stateful::present(keys.entry(key, Default::default), at, &ev.event.event_id);
                    None
                });
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

impl Engine {
    fn check_absence(&mut self, pos: u64) -> Vec<Finding> {
        self.last_absence_check = self.watermark;
        let now = self.watermark;
        let mut out = Vec::new();
        for i in 0..self.rules.len() {
            let rule = self.rules[i].clone();
            let (
                Kind::Absence {
                    group_by,
                    period,
                    steady_minutes,
                    ..
                },
                State::Presence(keys),
            ) = (&rule.kind, &mut self.states[i])
            else {
                continue;
            };
            let mut fired = Vec::new();
            for (key, s) in keys.iter_mut() {
                if let Some(f) = stateful::absent(s, *period, *steady_minutes, now) {
                    let mut parts = key.split('\u{1f}');
                    let tenant = parts.next().unwrap_or_default().to_string();
                    let pairs: Vec<(String, String)> = group_by
                        .iter()
                        .map(|(n, _)| n.clone())
                        .zip(parts.map(str::to_string))
                        .collect();
                    fired.push((tenant, pairs, f));
                }
            }
            fired.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            for (tenant, pairs, f) in fired {
                out.push(make_finding(
                    &mut self.stats,
                    &rule,
                    &tenant,
                    from_micros(now),
                    pos,
                    &pairs,
                    f,
                ));
            }
        }
        out
    }
}

/// A finding of `rule` (its id is stable for the same rule, tenant, group and evidence).
fn make_finding(
    stats: &mut HashMap<String, RuleStats>,
    rule: &Rule,
    tenant: &str,
    time: time::OffsetDateTime,
    pos: u64,
    pairs: &[(String, String)],
    f: Fired,
) -> Finding {
    let group_key = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let explanation = explain(rule, pairs, &f);
    let mut h = Sha256::new();
    for part in [rule.id.as_str(), tenant, group_key.as_str()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for id in &f.event_ids {
        h.update((id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
    }
    let id = hex::encode(&h.finalize()[..12]);
    let st = stats.entry(rule.id.clone()).or_default();
    st.findings += 1;
    st.last_fired = Some(micros(time));
    Finding {
        id,
        tenant: tenant.to_string(),
        rule: rule.id.clone(),
        title: rule.title.clone(),
        severity: rule.severity,
        tags: rule.tags.clone(),
        group_key,
        event_ids: f.event_ids,
        explanation,
        time,
        pos,
    }
}

/// The finding's text: the rule's template, or the kind's default.
fn explain(rule: &Rule, pairs: &[(String, String)], f: &Fired) -> String {
    let window = |w: i64| stateful::human(w);
    let (template, mut extra): (String, Vec<(&str, String)>) = match &rule.kind {
        Kind::Match => (
            if pairs.is_empty() {
                rule.title.clone()
            } else {
                format!("{}: {{group}}", rule.title)
            },
            Vec::new(),
        ),
        Kind::EventCount { threshold, window: w, .. } => (
            "{group} made {count} matching calls within {span} (threshold {threshold} per {window})".into(),
            vec![("threshold", threshold.to_string()), ("window", window(*w))],
        ),
        Kind::ValueCount { field, threshold, window: w, .. } => (
            "{group} used {count} distinct {field} within {window} (threshold {threshold}): {values}".into(),
            vec![("field", field.0.clone()), ("threshold", threshold.to_string()), ("window", window(*w))],
        ),
        Kind::Spike { params, .. } => (
            "{group}: {count} matching events in one {window}, against a usual {baseline}".into(),
            vec![("window", window(params.window))],
        ),
        Kind::NewTerm { fields, .. } => (
            if pairs.is_empty() {
                "first {fields}: {value}".into()
            } else {
                "first {fields} for {group}: {value} (known: {known})".into()
            },
            vec![("fields", fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join("/"))],
        ),
        Kind::Change { fields, .. } => (
            "{fields} of {group} changed from {previous} to {value}".into(),
            vec![("fields", fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join("/"))],
        ),
        Kind::Sequence { steps, .. } => (
            "{group}: {steps}, in this order within {span}".into(),
            vec![("steps", steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" → "))],
        ),
        Kind::Absence { period, .. } => (
            "{group} sent nothing for {silent_for} (allowed {period})".into(),
            vec![("period", window(*period))],
        ),
    };
    let template = rule.explanation.clone().unwrap_or(template);
    let group_text = pairs
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    extra.push(("group", group_text));
    let mut out = template;
    for (k, v) in pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .chain(f.values.iter().map(|(k, v)| (*k, v.clone())))
        .chain(extra)
    {
        out = out.replace(&format!("{{{k}}}"), &v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::compile::compile_file;

    fn stored(method: &str, tool: &str) -> StoredEvent {
        let mut e = crate::event::Event::new(format!("{method}-{tool}"), method, tool);
        e.timestamp = time::macros::datetime!(2026-11-02 00:00 UTC);
        StoredEvent {
            event: e,
            tenant: "default".into(),
            received_at: time::macros::datetime!(2026-11-02 00:00 UTC),
            seq: 1,
            hash: String::new(),
            redactions: Vec::new(),
        }
    }

    #[test]
    fn rules_see_only_the_methods_they_require_compared_without_case() {
        let text = r#"
title: calls
id: calls
detection:
  sel:
    method: [tools/call, Resources/Read]
    tool: x
  condition: sel
---
title: lists
id: lists
detection:
  sel:
    method: tools/list
  condition: sel
---
title: any
id: any
detection:
  sel:
    tool: x
  condition: sel
"#;
        let mut engine = Engine::new(compile_file("t.yml", text, false).unwrap(), 10);
        // Past the mask, the rules test the rest of their input only.
        let described: Vec<String> = engine
            .methods
            .inputs
            .iter()
            .map(|i| format!("{i:?}"))
            .collect();
        assert!(
            described.iter().all(|d| !d.contains("FieldDef(method)")),
            "{described:?}"
        );
        assert!(described[0].contains("\"x\""), "{described:?}");
        assert!(described[2].contains("\"x\""), "{described:?}");
        let mut fired = |method: &str| {
            let mut ids: Vec<String> = engine
                .evaluate(&stored(method, "x"), 0)
                .into_iter()
                .map(|f| f.rule)
                .collect();
            ids.sort();
            ids
        };
        assert_eq!(fired("tools/call"), ["any", "calls"]);
        assert_eq!(fired("TOOLS/CALL"), ["any", "calls"]);
        assert_eq!(fired("resources/read"), ["any", "calls"]);
        assert_eq!(fired("tools/list"), ["any", "lists"]);
        assert_eq!(fired("Tools/List"), ["any", "lists"]);
        assert_eq!(fired("initialize"), ["any"]);
    }
}
