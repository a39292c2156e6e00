//! The schema of a day index, built from the field registry ([`crate::event::fields`]), and how
//! each field type is indexed (`doc.rs` hands the values to tantivy).
//!
//! Every day index has the same schema, built by [`Fields::new`]; field handles are therefore
//! valid in every day and a query compiled once runs against all of them. Only `_source` (the
//! stored event as JSON) is stored: hits are rebuilt from it, every other field exists only to
//! be searched, sorted or aggregated on.
//!
//! | field | how |
//! |---|---|
//! | `tenant` and the exact fields (`Exact`, `Enum`) | raw token, indexed; fast (a column) if aggregatable, and `event_id` |
//! | `redaction` | the same, one value per distinct redaction kind |
//! | `timestamp` | date, fast (microseconds): ranges are answered from the column |
//! | number fields (`duration_ms`, `result_bytes`, `seq`) | u64, fast (exact values are one-value ranges) |
//! | `pos` (WAL position), `id_hi`/`id_lo` (halves of [`id_key`]) | u64, fast |
//! | hints (`read_only`, `destructive`, `idempotent`, `open_world`) | bool, indexed (effective hints) |
//! | `arguments` | JSON, default tokenizer with positions |
//! | `_arguments_text` | every leaf value of `arguments` as text: free text over arguments |
//! | `labels` | JSON, raw tokenizer |
//! | text fields (`result`, `error`) | text, default tokenizer with positions |
//! | `_source` | stored bytes: the event's record ([`StoredEvent::record`]), as in the WAL |
//!
//! Fields are added type by type, in registry order within a type: a day index opens only with
//! the schema it was created with (see the note in `event/fields.rs`).

use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, JsonObjectOptions, NumericOptions,
    Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED,
};
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};
use time::OffsetDateTime;

use crate::event::fields::{self, FieldDef, FieldType};
#[cfg(doc)]
use crate::event::{id_key, StoredEvent};

pub(crate) const TENANT: &str = "tenant";
pub(crate) const TIMESTAMP: &str = "timestamp";
pub(crate) const POS: &str = "pos";
pub(crate) const ID_HI: &str = "id_hi";
pub(crate) const ID_LO: &str = "id_lo";
pub(crate) const SOURCE: &str = "_source";
const ARGUMENTS_TEXT: &str = "_arguments_text";

/// The schema and its field handles.
pub(crate) struct Fields {
    pub schema: Schema,
    pub tenant: Field,
    /// Every searchable registry field with its tantivy field, in schema order.
    indexed: Vec<(&'static FieldDef, Field)>,
    /// Names of the fields with a column.
    fast: Vec<&'static str>,
    pub timestamp: Field,
    pub pos: Field,
    pub arguments: Field,
    pub arguments_text: Field,
    pub labels: Field,
    pub id_hi: Field,
    pub id_lo: Field,
    pub source: Field,
    /// The tokenizer of `arguments`, `result` and `error` (tantivy's `default`), for queries.
    pub analyzer: TextAnalyzer,
}

fn of_type(pred: impl Fn(FieldType) -> bool) -> impl Iterator<Item = &'static FieldDef> {
    fields::searchable().filter(move |f| pred(f.ty))
}

impl Fields {
    pub fn new() -> Self {
        let mut b = Schema::builder();
        let mut indexed = Vec::new();
        let mut fast = Vec::new();
        // Hits are sorted by time, never scored: no field needs field norms.
        let raw_indexing = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic);
        let raw_text = TextOptions::default().set_indexing_options(raw_indexing.clone());
        let tenant = b.add_text_field(TENANT, raw_text.clone().set_fast("raw"));
        // Fast (columnar) only where a column is read: `terms`, and the ids the issue asks for.
        // Columns of unique values (trace and span ids) cost indexing time for nothing.
        for def in of_type(|t| matches!(t, FieldType::Exact | FieldType::Enum(_))) {
            let options = if def.aggregatable || def.name == "event_id" {
                fast.push(def.name);
                raw_text.clone().set_fast("raw")
            } else {
                raw_text.clone()
            };
            indexed.push((def, b.add_text_field(def.name, options)));
        }
        // Times and numbers are columns only: tantivy answers ranges (and our exact matches,
        // which are one-value ranges) from the column, so terms for them would cost indexing
        // time (`seq` alone adds a unique term per event) and serve no query.
        for def in of_type(|t| t == FieldType::Time) {
            let options = DateOptions::default()
                .set_fast()
                .set_precision(DateTimePrecision::Microseconds);
            fast.push(def.name);
            indexed.push((def, b.add_date_field(def.name, options)));
        }
        for def in of_type(|t| t == FieldType::U64) {
            fast.push(def.name);
            indexed.push((
                def,
                b.add_u64_field(def.name, NumericOptions::default().set_fast()),
            ));
        }
        let pos = b.add_u64_field(POS, FAST);
        for def in of_type(|t| t == FieldType::Hint) {
            indexed.push((def, b.add_bool_field(def.name, INDEXED)));
        }
        let positions = TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let text = TextOptions::default().set_indexing_options(positions.clone());
        let mut arguments = None;
        let mut arguments_text = None;
        for def in of_type(|t| t == FieldType::Json) {
            let f = b.add_json_field(
                def.name,
                JsonObjectOptions::default().set_indexing_options(positions.clone()),
            );
            arguments = Some(f);
            indexed.push((def, f));
            arguments_text = Some(b.add_text_field(ARGUMENTS_TEXT, text.clone()));
        }
        let mut labels = None;
        for def in of_type(|t| t == FieldType::Labels) {
            let f = b.add_json_field(
                def.name,
                JsonObjectOptions::default().set_indexing_options(raw_indexing.clone()),
            );
            labels = Some(f);
            indexed.push((def, f));
        }
        for def in of_type(|t| t == FieldType::Text) {
            indexed.push((def, b.add_text_field(def.name, text.clone())));
        }
        let id_hi = b.add_u64_field(ID_HI, FAST);
        let id_lo = b.add_u64_field(ID_LO, FAST);
        let source = b.add_bytes_field(SOURCE, STORED);
        let schema = b.build();
        // The registry has exactly one time, one JSON and one labels field; the search code
        // needs their handles. A registry without them is a programming error caught by every
        // index test, not something input can cause.
        let handle = |name: &str| {
            schema
                .get_field(name)
                .unwrap_or_else(|_| panic!("the registry lost the `{name}` field"))
        };
        let timestamp = handle(TIMESTAMP);
        // Every tantivy index registers `default` with this same analyzer.
        let analyzer = TokenizerManager::default()
            .get("default")
            .unwrap_or_else(|| TextAnalyzer::from(tantivy::tokenizer::SimpleTokenizer::default()));
        Fields {
            tenant,
            indexed,
            fast,
            timestamp,
            pos,
            arguments: arguments.unwrap_or_else(|| handle("arguments")),
            arguments_text: arguments_text.unwrap_or_else(|| handle(ARGUMENTS_TEXT)),
            labels: labels.unwrap_or_else(|| handle("labels")),
            id_hi,
            id_lo,
            source,
            analyzer,
            schema,
        }
    }

    /// The tantivy field of a registry field (`None` for fields queries cannot name).
    pub fn field(&self, def: &FieldDef) -> Option<Field> {
        self.indexed
            .iter()
            .find(|(d, _)| d.name == def.name)
            .map(|(_, f)| *f)
    }

    /// Whether the field has a column (`field:*` and `terms` read columns).
    pub fn is_fast(&self, name: &str) -> bool {
        self.fast.contains(&name)
    }

    /// Every searchable registry field with its tantivy field, in schema order.
    pub fn indexed(&self) -> impl Iterator<Item = (&'static FieldDef, Field)> + '_ {
        self.indexed.iter().copied()
    }

    /// The fields bare words and phrases search: every argument value, then the text fields.
    pub fn free_text(&self) -> Vec<Field> {
        std::iter::once(self.arguments_text)
            .chain(
                self.indexed
                    .iter()
                    .filter(|(d, _)| d.ty == FieldType::Text)
                    .map(|(_, f)| *f),
            )
            .collect()
    }
}

/// Microseconds since the epoch (floor), the precision of the `timestamp` fast field.
pub(crate) use crate::event::unix_micros as micros;

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
/// A tantivy date from microseconds. tantivy keeps dates as i64 nanoseconds (years 1677 to
/// 2262); a time beyond (a query bound such as `timestamp:>3000-01-01`) is clamped to the
/// edge, past every event the collector stores, instead of overflowing.
pub(crate) fn tantivy_date(us: i64) -> tantivy::DateTime {
    tantivy::DateTime::from_timestamp_micros(us.clamp(i64::MIN / 1000, i64::MAX / 1000))
}

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

    /// The schema as it was before it came from the registry: every day index on disk was
    /// created with it, and tantivy opens an index only with an equal schema.
    fn legacy_schema() -> Schema {
        let mut b = Schema::builder();
        let raw_indexing = TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::Basic);
        let raw_text = TextOptions::default().set_indexing_options(raw_indexing.clone());
        b.add_text_field("tenant", raw_text.clone().set_fast("raw"));
        let fast = [
            "source",
            "method",
            "server",
            "tool",
            "user",
            "client",
            "conversation_id",
            "session_id",
            "outcome",
            "consent",
            "transport",
            "remote_addr",
            "redaction",
            "event_id",
        ];
        for name in [
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
        ] {
            let options = if fast.contains(&name) {
                raw_text.clone().set_fast("raw")
            } else {
                raw_text.clone()
            };
            b.add_text_field(name, options);
        }
        b.add_date_field(
            "timestamp",
            DateOptions::default()
                .set_fast()
                .set_precision(DateTimePrecision::Microseconds),
        );
        for name in ["duration_ms", "result_bytes", "seq"] {
            b.add_u64_field(name, NumericOptions::default().set_fast());
        }
        b.add_u64_field("pos", FAST);
        for name in ["read_only", "destructive", "idempotent", "open_world"] {
            b.add_bool_field(name, INDEXED);
        }
        let positions = TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_fieldnorms(false)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        b.add_json_field(
            "arguments",
            JsonObjectOptions::default().set_indexing_options(positions.clone()),
        );
        let text = TextOptions::default().set_indexing_options(positions);
        b.add_text_field("_arguments_text", text.clone());
        b.add_json_field(
            "labels",
            JsonObjectOptions::default().set_indexing_options(raw_indexing),
        );
        b.add_text_field("result", text.clone());
        b.add_text_field("error", text);
        b.add_u64_field("id_hi", FAST);
        b.add_u64_field("id_lo", FAST);
        b.add_bytes_field("_source", STORED);
        b.build()
    }

    #[test]
    fn the_schema_from_the_registry_is_the_one_on_disk() {
        assert_eq!(
            serde_json::to_string_pretty(&Fields::new().schema).unwrap(),
            serde_json::to_string_pretty(&legacy_schema()).unwrap()
        );
    }

    #[test]
    fn every_searchable_field_is_indexed() {
        let f = Fields::new();
        for def in fields::searchable() {
            assert!(f.field(def).is_some(), "{}", def.name);
        }
        for name in ["tenant", "hash", "received_at", "schema_version"] {
            assert!(f.field(fields::field(name).unwrap()).is_none(), "{name}");
        }
        for def in fields::aggregatable() {
            assert!(f.is_fast(def.name), "{}", def.name);
        }
        assert_eq!(f.free_text().len(), 3);
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
