//! Rules: detection over the event stream, Sigma-style.
//!
//! ```text
//! rule files (YAML) ─▶ file (read, positions) ─▶ compile (selections → query AST) ─▶ Rule
//! committed events ─▶ Engine::evaluate (pure, synchronous; state per rule and group key) ─▶ Finding
//! ```
//! - `file`: rule documents as written (Sigma keys and ours), with line and column of values;
//! - `condition`: Sigma's `condition` grammar;
//! - `compile`: selections and modifiers into [`crate::query`] expressions (the same language
//!   as search and the live tail), correlations into stateful kinds, errors with their place;
//! - `stateful`: what each stateful kind remembers per key and when it fires;
//! - `engine`: the rule set and its state, evaluating one event at a time, snapshot/restore;
//! - `pack`: the built-in MCP rule pack, compiled into the binary;
//! - `consumer`: the rules as a durable consumer of the WAL (findings stored, state saved).
//!
//! This module does not group findings into alerts or notify anyone (that is `alerts`), and it
//! never reads the index: a rule sees only the events, in WAL order.

mod compile;
mod condition;
pub mod consumer;
mod engine;
pub(crate) mod file;
pub mod pack;
#[cfg(test)]
mod pack_tests;
mod select;
mod stateful;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use compile::{compile_file, resolve_field, RuleError};
pub use engine::{Engine, EngineState, DEFAULT_KEY_CAP};

/// The default number of group keys per stateful rule (for the config's default).
pub const fn engine_key_cap() -> usize {
    DEFAULT_KEY_CAP
}
pub use file::Pos;
pub use stateful::SpikeParams;

use crate::query::{Expr, FieldRef};

/// How serious a finding is (Sigma's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const NAMES: &'static [&'static str] =
        &["informational", "low", "medium", "high", "critical"];

    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Severity::Informational,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    pub enabled: bool,
    /// Shipped in the binary (as opposed to read from the rules dir).
    pub builtin: bool,
    /// The file it came from (`builtin:<file>` for the pack).
    pub origin: String,
    /// Identifies the rule's definition: state is kept across a reload only when it is equal.
    pub fingerprint: u64,
    /// What a detection rule matches (for correlations, see the kind's input).
    pub detection: Option<Expr>,
    /// Allow-list: matching events never count towards a finding.
    pub exceptions: Option<Expr>,
    /// Detection rules: fields that name the finding's group (for alert grouping).
    pub group_by: Vec<(String, FieldRef)>,
    pub kind: Kind,
    pub explanation: Option<String>,
    /// Whether its own matches become findings (false for a detection that only feeds a
    /// correlation, as Sigma's `generate: false`).
    pub generate: bool,
}

/// What a rule does with the events it matches.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Every match is a finding.
    Match,
    EventCount {
        input: Option<Expr>,
        group_by: Vec<(String, FieldRef)>,
        threshold: usize,
        window: i64,
    },
    ValueCount {
        input: Option<Expr>,
        group_by: Vec<(String, FieldRef)>,
        field: (String, FieldRef),
        threshold: usize,
        window: i64,
    },
    Spike {
        input: Option<Expr>,
        group_by: Vec<(String, FieldRef)>,
        params: SpikeParams,
    },
    NewTerm {
        input: Option<Expr>,
        group_by: Vec<(String, FieldRef)>,
        fields: Vec<(String, FieldRef)>,
        /// Learning time from the rule's first event, in event time.
        warmup: i64,
        /// Fire only when the key already had this many values.
        min_existing: usize,
    },
    Change {
        input: Option<Expr>,
        group_by: Vec<(String, FieldRef)>,
        fields: Vec<(String, FieldRef)>,
    },
    Sequence {
        group_by: Vec<(String, FieldRef)>,
        steps: Vec<SeqStep>,
        window: i64,
    },
    Absence {
        input: Option<Expr>,
        group_by: Vec<(String, FieldRef)>,
        period: i64,
        /// Minutes with events among the 60 before the last, for a source to count as steady.
        steady_minutes: u32,
    },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Match => "detection",
            Kind::EventCount { .. } => "event_count",
            Kind::ValueCount { .. } => "value_count",
            Kind::Spike { .. } => "spike",
            Kind::NewTerm { .. } => "new_term",
            Kind::Change { .. } => "change",
            Kind::Sequence { .. } => "temporal_ordered",
            Kind::Absence { .. } => "absence",
        }
    }

    /// The expression a correlation matches events with (`None` for a detection, whose rule's
    /// `detection` does, and a sequence, whose steps do).
    pub fn input(&self) -> Option<&Expr> {
        match self {
            Kind::EventCount { input, .. }
            | Kind::ValueCount { input, .. }
            | Kind::Spike { input, .. }
            | Kind::NewTerm { input, .. }
            | Kind::Change { input, .. }
            | Kind::Absence { input, .. } => input.as_ref(),
            Kind::Match | Kind::Sequence { .. } => None,
        }
    }
}

/// One step of a `temporal_ordered` rule.
#[derive(Debug, Clone)]
pub struct SeqStep {
    pub name: String,
    pub detection: Expr,
    /// Text this step keeps for a later step to carry.
    pub capture: Option<FieldRef>,
    /// This step counts only if this field carries the text step `.0` captured.
    pub carries: Option<(usize, FieldRef)>,
    /// Fields captured with the text (on the capturing step) and compared (on the carrying
    /// step): equal values mean the text went back where it came from, which does not count.
    pub same: Vec<FieldRef>,
}

/// A rule's match: what a person reads, and what alerting groups on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable for the same rule, tenant, group and evidence: a replay makes the same id.
    pub id: String,
    pub tenant: String,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `field=value` pairs of the group, e.g. `user=dave tool=expensive_analysis`.
    pub group_key: String,
    /// The events that make the case; the last one triggered the finding.
    pub event_ids: Vec<String>,
    pub explanation: String,
    /// Event time of the triggering event.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// WAL position of the triggering event (orders findings; replays skip what is stored).
    pub pos: u64,
}
