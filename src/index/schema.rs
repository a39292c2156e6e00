//! The schema of a day index, and the values of a [`StoredEvent`] it indexes (`doc.rs` hands
//! them to tantivy).
//!
//! Every day index has the same schema, built by [`Fields::new`]; field handles are therefore
//! valid in every day and a query compiled once runs against all of them. Only `_source` (the
//! stored event as JSON) is stored: hits are rebuilt from it, every other field exists only to
//! be searched, sorted or aggregated on.
//!
//! | field | how |
//! |---|---|
//! | `tenant` and the exact-match fields ([`RAW_FIELDS`]) | raw token, indexed + fast |
//! | `redaction` | raw, one value per distinct redaction kind |
//! | `timestamp` | date, fast (microseconds): ranges are answered from the column |
//! | `duration_ms`, `result_bytes`, `seq` | u64, fast (exact values are one-value ranges) |
//! | `pos` (WAL position), `id_hi`/`id_lo` (halves of [`id_key`]) | u64, fast |
//! | `read_only`, `destructive`, `idempotent`, `open_world` | bool, indexed (effective hints) |
//! | `arguments` | JSON, default tokenizer with positions |
//! | `_arguments_text` | every leaf value of `arguments` as text: free text over arguments |
//! | `labels` | JSON, raw tokenizer |
//! | `result`, `error` | text, default tokenizer with positions |
//! | `_source` | stored bytes: the event's record ([`StoredEvent::record`]), as in the WAL |

use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, JsonObjectOptions, NumericOptions,
    Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED,
};
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};
use time::OffsetDateTime;

use crate::event::{Annotations, Consent, Outcome, StoredEvent, Transport};

pub(crate) const TENANT: &str = "tenant";
pub(crate) const TIMESTAMP: &str = "timestamp";
pub(crate) const POS: &str = "pos";
pub(crate) const ID_HI: &str = "id_hi";
pub(crate) const ID_LO: &str = "id_lo";
pub(crate) const SOURCE: &str = "_source";
const ARGUMENTS_TEXT: &str = "_arguments_text";

/// Exact-match fields: raw token (the whole value), indexed and fast, case-sensitive.
pub(crate) const RAW_FIELDS: &[&str] = &[
    "source",
    "method",
    "server",
    "tool",
    "user",
    "client",
    "conversation_id",
    "session_id",
    "trace_id",
    "span_id",
    "outcome",
    "consent",
    "transport",
    "event_id",
    "remote_addr",
    "tool_description_hash",
    "redaction",
];

const U64_FIELDS: &[&str] = &["duration_ms", "result_bytes", "seq"];
const BOOL_FIELDS: &[&str] = &["read_only", "destructive", "idempotent", "open_world"];

/// Every field name a query may use, in the order error messages list them. `arguments.<path>`
/// and `labels.<key>` address inside the two JSON fields.
pub(crate) const QUERY_FIELDS: &[&str] = &[
    "tool",
    "user",
    "server",
    "method",
    "source",
    "client",
    "outcome",
    "consent",
    "transport",
    "event_id",
    "conversation_id",
    "session_id",
    "trace_id",
    "span_id",
    "remote_addr",
    "tool_description_hash",
    "redaction",
    "timestamp",
    "duration_ms",
    "result_bytes",
    "seq",
    "read_only",
    "destructive",
    "idempotent",
    "open_world",
    "arguments",
    "arguments.<path>",
    "labels.<key>",
    "result",
    "error",
];

/// How a query field is matched.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldKind {
    /// Whole-value match on a raw field.
    Raw(Field),
    /// A raw field whose values come from a closed set (outcome, consent, transport).
    Enum(Field, &'static [&'static str]),
    U64(Field),
    Date(Field),
    Bool(Field),
    /// Tokenized text: `result`, `error`, and `arguments` without a path (all argument values).
    Text(Field),
    /// `arguments.<path>`: tokenized text inside the arguments JSON.
    ArgumentsPath(Field),
    /// `labels.<key>`: whole-value match of one label.
    LabelsKey(Field),
}

/// The schema and its field handles.
pub(crate) struct Fields {
    pub schema: Schema,
    pub tenant: Field,
    raw: Vec<(&'static str, Field)>,
    pub timestamp: Field,
    u64s: Vec<(&'static str, Field)>,
    pub pos: Field,
    bools: Vec<(&'static str, Field)>,
    pub arguments: Field,
    pub arguments_text: Field,
    pub labels: Field,
    pub result: Field,
    pub error: Field,
    pub id_hi: Field,
    pub id_lo: Field,
    pub source: Field,
    /// The tokenizer of `arguments`, `result` and `error` (tantivy's `default`), for queries.
    pub analyzer: TextAnalyzer,
}

impl Fields {
    pub fn new() -> Self {
        let mut b = Schema::builder();
        // Hits are sorted by time, never scored: no field needs field norms.
        let raw_indexing = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic);
        let raw_text = TextOptions::default().set_indexing_options(raw_indexing.clone());
        let tenant = b.add_text_field(TENANT, raw_text.clone().set_fast("raw"));
        // Fast (columnar) only where a column is read: `terms`, and the ids the issue asks for.
        // Columns of unique values (trace and span ids) cost indexing time for nothing.
        let raw = RAW_FIELDS
            .iter()
            .map(|name| {
                let fast = crate::index::TERM_FIELDS.contains(name) || *name == "event_id";
                let options = if fast {
                    raw_text.clone().set_fast("raw")
                } else {
                    raw_text.clone()
                };
                (*name, b.add_text_field(name, options))
            })
            .collect();
        // Times and numbers are columns only: tantivy answers ranges (and our exact matches,
        // which are one-value ranges) from the column, so terms for them would cost indexing
        // time (`seq` alone adds a unique term per event) and serve no query.
        let timestamp = b.add_date_field(
            TIMESTAMP,
            DateOptions::default()
                .set_fast()
                .set_precision(DateTimePrecision::Microseconds),
        );
        let u64s = U64_FIELDS
            .iter()
            .map(|name| {
                (
                    *name,
                    b.add_u64_field(name, NumericOptions::default().set_fast()),
                )
            })
            .collect();
        let pos = b.add_u64_field(POS, FAST);
        let bools = BOOL_FIELDS
            .iter()
            .map(|name| (*name, b.add_bool_field(name, INDEXED)))
            .collect();
        let positions = TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let arguments = b.add_json_field(
            "arguments",
            JsonObjectOptions::default().set_indexing_options(positions.clone()),
        );
        let text = TextOptions::default().set_indexing_options(positions);
        let arguments_text = b.add_text_field(ARGUMENTS_TEXT, text.clone());
        let labels = b.add_json_field(
            "labels",
            JsonObjectOptions::default().set_indexing_options(raw_indexing),
        );
        let result = b.add_text_field("result", text.clone());
        let error = b.add_text_field("error", text);
        let id_hi = b.add_u64_field(ID_HI, FAST);
        let id_lo = b.add_u64_field(ID_LO, FAST);
        let source = b.add_bytes_field(SOURCE, STORED);
        // Every tantivy index registers `default` with this same analyzer.
        let analyzer = TokenizerManager::default()
            .get("default")
            .unwrap_or_else(|| TextAnalyzer::from(tantivy::tokenizer::SimpleTokenizer::default()));
        Fields {
            schema: b.build(),
            tenant,
            raw,
            timestamp,
            u64s,
            pos,
            bools,
            arguments,
            arguments_text,
            labels,
            result,
            error,
            id_hi,
            id_lo,
            source,
            analyzer,
        }
    }

    fn raw(&self, name: &str) -> Option<Field> {
        self.raw.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// How to match the query field `name` (without any `arguments.`/`labels.` path), or
    /// `None` if it is not a query field.
    pub fn kind(&self, name: &str) -> Option<FieldKind> {
        let enum_names: Option<&'static [&'static str]> = match name {
            "outcome" => Some(Outcome::NAMES),
            "consent" => Some(Consent::NAMES),
            "transport" => Some(Transport::NAMES),
            _ => None,
        };
        if let Some(f) = self.raw(name) {
            return Some(match enum_names {
                Some(names) => FieldKind::Enum(f, names),
                None => FieldKind::Raw(f),
            });
        }
        if let Some((_, f)) = self.u64s.iter().find(|(n, _)| *n == name) {
            return Some(FieldKind::U64(*f));
        }
        if let Some((_, f)) = self.bools.iter().find(|(n, _)| *n == name) {
            return Some(FieldKind::Bool(*f));
        }
        match name {
            TIMESTAMP => Some(FieldKind::Date(self.timestamp)),
            "result" => Some(FieldKind::Text(self.result)),
            "error" => Some(FieldKind::Text(self.error)),
            "arguments" => Some(FieldKind::Text(self.arguments_text)),
            _ => None,
        }
    }

    /// The fields bare words and phrases search.
    pub fn free_text(&self) -> [Field; 3] {
        [self.arguments_text, self.result, self.error]
    }

    /// The exact-match fields, `redaction` among them.
    pub fn raw_fields(&self) -> impl Iterator<Item = (&'static str, Field)> + '_ {
        self.raw.iter().copied()
    }

    pub fn u64_fields(&self) -> impl Iterator<Item = (&'static str, Field)> + '_ {
        self.u64s.iter().copied()
    }

    pub fn bool_fields(&self) -> impl Iterator<Item = (&'static str, Field)> + '_ {
        self.bools.iter().copied()
    }
}

/// The value of the single-valued raw field `name` ("" for none).
pub(super) fn raw_value<'a>(name: &str, stored: &'a StoredEvent) -> &'a str {
    stored.event.text_field(name).unwrap_or("")
}

pub(super) fn u64_value(name: &str, stored: &StoredEvent) -> u64 {
    match name {
        "duration_ms" => stored.event.duration_ms,
        "result_bytes" => stored.event.result_bytes,
        "seq" => stored.seq,
        _ => 0,
    }
}

/// The effective annotation hint `name` (absent hints take the MCP defaults).
pub(super) fn hint_value(name: &str, a: &Annotations) -> bool {
    match name {
        "read_only" => a.effective_read_only(),
        "destructive" => a.effective_destructive(),
        "idempotent" => a.effective_idempotent(),
        "open_world" => a.effective_open_world(),
        _ => false,
    }
}

/// Microseconds since the epoch (floor), the precision of the `timestamp` fast field.
pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    let us = t.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX })
}

/// The time of a microsecond timestamp (clamped to what `time` can represent).
pub(crate) fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).unwrap_or(if us < 0 {
        time::macros::datetime!(-9999-01-01 0:00 UTC)
    } else {
        time::macros::datetime!(9999-12-31 23:59:59.999999 UTC)
    })
}

pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The UTC day (days since the epoch) of a microsecond timestamp.
pub(crate) fn day_of_micros(us: i64) -> i32 {
    i32::try_from(us.div_euclid(MICROS_PER_DAY)).unwrap_or(if us < 0 { i32::MIN } else { i32::MAX })
}

pub(crate) fn split_key(key: u128) -> (u64, u64) {
    ((key >> 64) as u64, key as u64)
}

pub(crate) fn join_key(hi: u64, lo: u64) -> u128 {
    (u128::from(hi) << 64) | u128::from(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::id_key;

    #[test]
    fn every_query_field_has_a_kind() {
        let f = Fields::new();
        for name in QUERY_FIELDS.iter().filter(|n| !n.contains('<')) {
            assert!(f.kind(name).is_some(), "{name}");
        }
        assert!(f.kind("tenant").is_none());
        assert!(f.kind(SOURCE).is_none());
        assert!(f.kind(POS).is_none());
        for name in crate::index::TERM_FIELDS {
            assert!(
                matches!(f.kind(name), Some(FieldKind::Raw(_) | FieldKind::Enum(..))),
                "{name}"
            );
        }
    }

    #[test]
    fn every_raw_field_has_a_value_getter() {
        let mut s = StoredEvent {
            event: crate::event::Event::new("id", "m", "t"),
            tenant: "x".into(),
            received_at: OffsetDateTime::UNIX_EPOCH,
            seq: 1,
            hash: String::new(),
            redactions: vec![],
        };
        let e = &mut s.event;
        for f in [
            &mut e.source,
            &mut e.server,
            &mut e.user,
            &mut e.client,
            &mut e.conversation_id,
            &mut e.session_id,
            &mut e.trace_id,
            &mut e.span_id,
            &mut e.remote_addr,
            &mut e.tool_description_hash,
        ] {
            *f = "v".into();
        }
        for name in RAW_FIELDS.iter().filter(|n| **n != "redaction") {
            assert!(!raw_value(name, &s).is_empty(), "{name}");
        }
        for name in U64_FIELDS {
            assert_eq!(
                u64_value(name, &s),
                if *name == "seq" { 1 } else { 0 },
                "{name}"
            );
        }
        let a = Annotations {
            read_only: Some(true),
            destructive: Some(true),
            idempotent: Some(true),
            open_world: Some(true),
        };
        for name in BOOL_FIELDS {
            assert!(hint_value(name, &a), "{name}");
        }
    }

    #[test]
    fn key_halves_round_trip() {
        let k = id_key("t", "e");
        let (hi, lo) = split_key(k);
        assert_eq!(join_key(hi, lo), k);
    }

    #[test]
    fn micros_floor_and_day() {
        assert_eq!(micros(OffsetDateTime::UNIX_EPOCH), 0);
        let t = from_micros(-1);
        assert_eq!(micros(t), -1);
        assert_eq!(day_of_micros(-1), -1);
        assert_eq!(day_of_micros(MICROS_PER_DAY), 1);
    }
}
