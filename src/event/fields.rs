//! The field registry: every field of a stored event, declared once, with its name, its type,
//! where it lives in the event and how to read it.
//!
//! The query language (`query/`), the index schema and documents (`index/`), the live tail,
//! the `terms` aggregation, validation and `GET /api/v1/fields` all read this table instead of
//! keeping their own lists of names. [`FieldDef::value`] is the one way to read a field's value
//! from a [`StoredEvent`]; [`for_each_leaf`] is the one walk over the arguments, so every
//! consumer sees the same values in the same order.
//!
//! It does not say how a field is indexed (that is `index/schema.rs`, from the field's
//! [`FieldType`]) nor how a wire format carries it (protobuf tag numbers stay in `ingest/`).
//! The order of [`FIELDS`] matters: the index adds its fields of each type in this order, and a
//! day index on disk only opens with the schema it was created with, so never reorder fields of
//! the same type (new fields go after the last of their type).

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::{Consent, Event, Outcome, StoredEvent, Transport};
use FieldType::{Enum, Exact, Hint, Json, Labels, Text, Time, U64};

/// What a field holds, and so how it is matched and indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A whole string, compared exactly and case-sensitively (`tool:delete_file`). Empty means
    /// not reported: it has no value.
    Exact,
    /// An exact string from a closed set (`outcome`, `consent`, `transport`).
    Enum(&'static [&'static str]),
    /// Words: letters-and-digits runs, lower-cased, words of 40 bytes or more left out; phrases
    /// match consecutive words.
    Text,
    /// A whole number (comparisons and ranges).
    U64,
    /// A point in time (RFC 3339 in queries; compared at microsecond precision).
    Time,
    /// An MCP annotation hint as it applies: an absent hint takes the MCP spec default.
    Hint,
    /// The tool arguments, a JSON value: `arguments.<path>` addresses inside it.
    Json,
    /// The string map of labels: `labels.<key>` addresses one label.
    Labels,
}

impl FieldType {
    /// The name `GET /api/v1/fields` gives this type.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Exact => "exact",
            FieldType::Enum(_) => "enum",
            FieldType::Text => "text",
            FieldType::U64 => "number",
            FieldType::Time => "time",
            FieldType::Hint => "bool",
            FieldType::Json => "json",
            FieldType::Labels => "labels",
        }
    }
}

/// Who sets a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client sends it (JSON and protobuf events).
    Client,
    /// The collector adds it to the stored event.
    Collector,
}

/// The value of one field of one event, borrowed from it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// An exact or text field; `""` means not reported.
    Str(&'a str),
    /// A multi-valued exact field (the distinct non-empty redaction kinds).
    Strs(Vec<&'a str>),
    U64(u64),
    Time(OffsetDateTime),
    Bool(bool),
    /// The arguments (`Null` when none were reported).
    Json(&'a serde_json::Value),
    Labels(&'a BTreeMap<String, String>),
}

#[derive(Clone, Copy)]
enum Get {
    /// Reads a field the client sent (works on an [`Event`] before it is stored).
    Event(for<'a> fn(&'a Event) -> FieldValue<'a>),
    /// Reads a field only a stored event has.
    Stored(for<'a> fn(&'a StoredEvent) -> FieldValue<'a>),
}

/// One field of the event.
pub struct FieldDef {
    /// The name in queries, `terms` and `GET /api/v1/fields`.
    pub name: &'static str,
    pub ty: FieldType,
    /// Where the value lives in the stored event's JSON form (`annotations.read_only`,
    /// `redactions[].kind`).
    pub path: &'static str,
    pub origin: Origin,
    /// Whether queries may name it. `tenant` never: isolation is the caller's filter.
    pub searchable: bool,
    /// Whether `terms` can count its values.
    pub aggregatable: bool,
    /// One line for people (the dashboard's autocomplete).
    pub description: &'static str,
    get: Get,
}

impl FieldDef {
    /// The field's value in `ev`.
    pub fn value<'a>(&self, ev: &'a StoredEvent) -> FieldValue<'a> {
        match self.get {
            Get::Event(f) => f(&ev.event),
            Get::Stored(f) => f(ev),
        }
    }

    /// The field's value in an event not stored yet; `None` for the collector's fields.
    pub fn event_value<'a>(&self, ev: &'a Event) -> Option<FieldValue<'a>> {
        match self.get {
            Get::Event(f) => Some(f(ev)),
            Get::Stored(_) => None,
        }
    }

    /// The top-level key of the field in the event's JSON form (`annotations` for the hints).
    pub fn json_key(&self) -> &'static str {
        let end = self.path.find(['.', '[']).unwrap_or(self.path.len());
        &self.path[..end]
    }
}

impl std::fmt::Debug for FieldDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FieldDef({})", self.name)
    }
}

impl PartialEq for FieldDef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for FieldDef {}

const fn def(
    name: &'static str,
    ty: FieldType,
    description: &'static str,
    get: for<'a> fn(&'a Event) -> FieldValue<'a>,
) -> FieldDef {
    FieldDef {
        name,
        ty,
        path: name,
        origin: Origin::Client,
        searchable: true,
        aggregatable: false,
        description,
        get: Get::Event(get),
    }
}

impl FieldDef {
    const fn aggregatable(mut self) -> Self {
        self.aggregatable = true;
        self
    }

    const fn at(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }

    const fn hidden(mut self) -> Self {
        self.searchable = false;
        self
    }

    const fn stored(mut self, get: for<'a> fn(&'a StoredEvent) -> FieldValue<'a>) -> Self {
        self.origin = Origin::Collector;
        self.get = Get::Stored(get);
        self
    }
}

fn no_value(_: &Event) -> FieldValue<'_> {
    FieldValue::Str("")
}

/// The distinct non-empty redaction kinds of an event, in first-seen order.
fn redaction_kinds(ev: &StoredEvent) -> FieldValue<'_> {
    let mut kinds: Vec<&str> = Vec::new();
    for r in &ev.redactions {
        if !r.kind.is_empty() && !kinds.contains(&r.kind.as_str()) {
            kinds.push(&r.kind);
        }
    }
    FieldValue::Strs(kinds)
}

/// Every field of a stored event. Queries list the searchable ones in this order.
pub static FIELDS: &[FieldDef] = &[
    def(
        "source",
        Exact,
        "the gateway or agent that observed the call",
        |e| FieldValue::Str(&e.source),
    )
    .aggregatable(),
    def(
        "method",
        Exact,
        "MCP method: tools/call, tools/list, resources/read, prompts/get...",
        |e| FieldValue::Str(&e.method),
    )
    .aggregatable(),
    def("server", Exact, "MCP server name, e.g. github", |e| {
        FieldValue::Str(&e.server)
    })
    .aggregatable(),
    def(
        "tool",
        Exact,
        "tool name; resource URI or prompt name for other methods",
        |e| FieldValue::Str(&e.tool),
    )
    .aggregatable(),
    def("user", Exact, "the principal who made the call", |e| {
        FieldValue::Str(&e.user)
    })
    .aggregatable(),
    def(
        "client",
        Exact,
        "the host application, e.g. claude-desktop",
        |e| FieldValue::Str(&e.client),
    )
    .aggregatable(),
    def(
        "conversation_id",
        Exact,
        "conversation the call belongs to",
        |e| FieldValue::Str(&e.conversation_id),
    )
    .aggregatable(),
    def(
        "session_id",
        Exact,
        "MCP session, when the transport has one",
        |e| FieldValue::Str(&e.session_id),
    )
    .aggregatable(),
    def("trace_id", Exact, "trace id, for correlation", |e| {
        FieldValue::Str(&e.trace_id)
    }),
    def("span_id", Exact, "span id, for correlation", |e| {
        FieldValue::Str(&e.span_id)
    }),
    def(
        "outcome",
        Enum(Outcome::NAMES),
        "how the call ended: ok, error, denied (policy), consent_denied, timeout",
        |e| FieldValue::Str(e.outcome.as_str()),
    )
    .aggregatable(),
    def(
        "consent",
        Enum(Consent::NAMES),
        "whether and how the user consented",
        |e| FieldValue::Str(e.consent.as_str()),
    )
    .aggregatable(),
    def(
        "transport",
        Enum(Transport::NAMES),
        "how the client talked to the server: stdio, streamable_http, sse",
        |e| FieldValue::Str(e.transport.as_str()),
    )
    .aggregatable(),
    def("event_id", Exact, "the event's unique id", |e| {
        FieldValue::Str(&e.event_id)
    }),
    def("remote_addr", Exact, "the caller's address", |e| {
        FieldValue::Str(&e.remote_addr)
    })
    .aggregatable(),
    def(
        "tool_description_hash",
        Exact,
        "hash of the tool's description and schema as the gateway saw it",
        |e| FieldValue::Str(&e.tool_description_hash),
    ),
    def(
        "redaction",
        Exact,
        "kind of a secret the collector removed, e.g. github_token",
        no_value,
    )
    .at("redactions[].kind")
    .stored(redaction_kinds)
    .aggregatable(),
    def("timestamp", Time, "when the call started", |e| {
        FieldValue::Time(e.timestamp)
    }),
    def("duration_ms", U64, "call latency in milliseconds", |e| {
        FieldValue::U64(e.duration_ms)
    }),
    def(
        "result_bytes",
        U64,
        "size of the full result as the gateway saw it",
        |e| FieldValue::U64(e.result_bytes),
    ),
    def(
        "seq",
        U64,
        "the event's sequence number in its tenant's chain",
        no_value,
    )
    .stored(|s| FieldValue::U64(s.seq)),
    def(
        "read_only",
        Hint,
        "the tool does not modify its environment (absent: false)",
        |e| FieldValue::Bool(e.annotations.effective_read_only()),
    )
    .at("annotations.read_only"),
    def(
        "destructive",
        Hint,
        "the tool may destroy data (absent: true)",
        |e| FieldValue::Bool(e.annotations.effective_destructive()),
    )
    .at("annotations.destructive"),
    def(
        "idempotent",
        Hint,
        "repeating the call has no further effect (absent: false)",
        |e| FieldValue::Bool(e.annotations.effective_idempotent()),
    )
    .at("annotations.idempotent"),
    def(
        "open_world",
        Hint,
        "the tool reaches outside entities, e.g. the web (absent: true)",
        |e| FieldValue::Bool(e.annotations.effective_open_world()),
    )
    .at("annotations.open_world"),
    def(
        "arguments",
        Json,
        "tool arguments (JSON); arguments.<path> searches one of them",
        |e| FieldValue::Json(&e.arguments),
    ),
    def(
        "labels",
        Labels,
        "free string map; labels.<key> is one label",
        |e| FieldValue::Labels(&e.labels),
    ),
    def(
        "result",
        Text,
        "result text or JSON, possibly truncated by the gateway",
        |e| FieldValue::Str(&e.result),
    ),
    def("error", Text, "error message, if any", |e| {
        FieldValue::Str(&e.error)
    }),
    def("schema_version", U64, "event schema version", |e| {
        FieldValue::U64(u64::from(e.schema_version))
    })
    .hidden(),
    def("tenant", Exact, "the tenant the event belongs to", no_value)
        .stored(|s| FieldValue::Str(&s.tenant))
        .hidden(),
    def(
        "received_at",
        Time,
        "when the collector received the event",
        no_value,
    )
    .stored(|s| FieldValue::Time(s.received_at))
    .hidden(),
    def(
        "hash",
        Exact,
        "the event's chain hash (hex SHA-256)",
        no_value,
    )
    .stored(|s| FieldValue::Str(&s.hash))
    .hidden(),
];

/// The field named `name`, searchable or not.
pub fn field(name: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The fields queries may name, in listing order.
pub fn searchable() -> impl Iterator<Item = &'static FieldDef> {
    FIELDS.iter().filter(|f| f.searchable)
}

/// The fields `terms` can count values of.
pub fn aggregatable() -> impl Iterator<Item = &'static FieldDef> {
    FIELDS.iter().filter(|f| f.aggregatable)
}

/// Names of the fields, joined by ", " (for error messages).
pub fn names(fields: impl Iterator<Item = &'static FieldDef>) -> String {
    fields.map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// One scalar of the arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Leaf<'a> {
    Str(&'a str),
    Number(&'a serde_json::Number),
    Bool(bool),
}

/// Calls `f` with every scalar of `v`, depth first, objects in key order, nulls left out: the
/// one walk over the arguments, so the index's free text and the matcher see the same values
/// in the same order (phrases never span two values, and that depends on the order).
pub fn for_each_leaf<'a>(v: &'a serde_json::Value, f: &mut impl FnMut(Leaf<'a>)) {
    match v {
        serde_json::Value::Null => {}
        serde_json::Value::Bool(b) => f(Leaf::Bool(*b)),
        serde_json::Value::Number(n) => f(Leaf::Number(n)),
        serde_json::Value::String(s) => f(Leaf::Str(s)),
        serde_json::Value::Array(items) => items.iter().for_each(|i| for_each_leaf(i, f)),
        serde_json::Value::Object(map) => map.values().for_each(|i| for_each_leaf(i, f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Annotations, Redaction};

    fn stored() -> StoredEvent {
        StoredEvent {
            event: Event::new("id", "m", "t"),
            tenant: "x".into(),
            received_at: OffsetDateTime::UNIX_EPOCH,
            seq: 7,
            hash: "h".into(),
            redactions: vec![],
        }
    }

    #[test]
    fn names_are_unique_and_every_getter_reads_its_own_field() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FIELDS {
            assert!(seen.insert(f.name), "{} twice", f.name);
            assert!(f.description.len() > 10, "{}", f.name);
        }
        // Every exact field reads a different string of the event.
        let mut s = stored();
        let e = &mut s.event;
        for (i, v) in [
            &mut e.source,
            &mut e.method,
            &mut e.server,
            &mut e.tool,
            &mut e.user,
            &mut e.client,
            &mut e.conversation_id,
            &mut e.session_id,
            &mut e.trace_id,
            &mut e.span_id,
            &mut e.event_id,
            &mut e.remote_addr,
            &mut e.tool_description_hash,
        ]
        .into_iter()
        .enumerate()
        {
            *v = format!("v{i}");
        }
        let mut values = std::collections::BTreeSet::new();
        for f in FIELDS
            .iter()
            .filter(|f| f.ty == FieldType::Exact && f.searchable)
        {
            match f.value(&s) {
                FieldValue::Str(v) => assert!(values.insert(v.to_string()), "{}", f.name),
                FieldValue::Strs(v) => assert!(v.is_empty(), "{}", f.name),
                other => panic!("{}: {other:?}", f.name),
            }
        }
        assert_eq!(values.len(), 13);
        assert_eq!(field("seq").unwrap().value(&s), FieldValue::U64(7));
        assert_eq!(field("tenant").unwrap().value(&s), FieldValue::Str("x"));
        assert_eq!(field("hash").unwrap().value(&s), FieldValue::Str("h"));
        assert!(field("seq").unwrap().event_value(&s.event).is_none());
        assert_eq!(
            field("tool").unwrap().event_value(&s.event),
            Some(FieldValue::Str("v3"))
        );
    }

    #[test]
    fn hints_take_the_mcp_defaults_and_redactions_are_distinct() {
        fn hint<'a>(s: &'a StoredEvent, name: &str) -> FieldValue<'a> {
            field(name).unwrap().value(s)
        }
        let mut s = stored();
        assert_eq!(hint(&s, "read_only"), FieldValue::Bool(false));
        assert_eq!(hint(&s, "destructive"), FieldValue::Bool(true));
        assert_eq!(hint(&s, "idempotent"), FieldValue::Bool(false));
        assert_eq!(hint(&s, "open_world"), FieldValue::Bool(true));
        s.event.annotations = Annotations {
            read_only: Some(true),
            destructive: Some(false),
            idempotent: Some(true),
            open_world: Some(false),
        };
        assert_eq!(hint(&s, "read_only"), FieldValue::Bool(true));
        assert_eq!(hint(&s, "destructive"), FieldValue::Bool(false));
        assert_eq!(hint(&s, "idempotent"), FieldValue::Bool(true));
        assert_eq!(hint(&s, "open_world"), FieldValue::Bool(false));
        let r = |kind: &str| Redaction {
            kind: kind.into(),
            path: "result".into(),
            count: 1,
        };
        s.redactions = vec![r("b"), r(""), r("a"), r("b")];
        assert_eq!(
            field("redaction").unwrap().value(&s),
            FieldValue::Strs(vec!["b", "a"])
        );
        assert_eq!(field("redaction").unwrap().json_key(), "redactions");
        assert_eq!(field("open_world").unwrap().json_key(), "annotations");
    }

    #[test]
    fn leaves_in_key_order() {
        let v = serde_json::json!({"b": [1, {"c": true}], "a": "x", "n": null});
        let mut out = Vec::new();
        for_each_leaf(&v, &mut |l| {
            out.push(match l {
                Leaf::Str(s) => s.to_string(),
                Leaf::Number(n) => n.to_string(),
                Leaf::Bool(b) => b.to_string(),
            })
        });
        assert_eq!(out, vec!["x", "1", "true"]);
    }
}
