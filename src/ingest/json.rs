//! The JSON form of an event (one object per line for `ship` and `POST /api/v1/ingest`).
//!
//! Decoded by hand from a JSON map rather than by serde derive, so every error names the
//! field at fault ("`duration_ms` must be a non-negative integer") instead of a column.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::validate::Invalid;
use super::Incoming;
use crate::event::{Annotations, Consent, Event, Outcome, Transport};

mod direct;

/// The keys of an event object, in the order of the event schema; a test checks that they are
/// the JSON keys of the registry's client fields ([`crate::event::fields`]).
const FIELDS: &[&str] = &[
    "schema_version",
    "event_id",
    "timestamp",
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
    "arguments",
    "result",
    "result_bytes",
    "outcome",
    "error",
    "duration_ms",
    "annotations",
    "consent",
    "transport",
    "remote_addr",
    "tool_description_hash",
    "labels",
];

/// Fields a stored event has beyond the input; accepted and ignored, so a search hit or an
/// exported log can be shipped again (the collector assigns them afresh). A test checks them
/// against the registry's collector fields.
const STORED_FIELDS: &[&str] = &["tenant", "received_at", "seq", "hash", "redactions"];

fn invalid(field: &str, what: &str) -> Invalid {
    Invalid::new("invalid_field", format!("`{field}` {what}"))
}

fn string(map: &mut Map<String, Value>, key: &str) -> Result<String, Invalid> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(key, "must be a string")),
    }
}

fn uint(map: &mut Map<String, Value>, key: &str) -> Result<u64, Invalid> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| invalid(key, "must be a non-negative integer")),
        Some(_) => Err(invalid(key, "must be a non-negative integer")),
    }
}

fn named<T>(
    map: &mut Map<String, Value>,
    key: &str,
    parse: fn(&str) -> Option<T>,
    names: &[&str],
) -> Result<Option<T>, Invalid> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse(&s).map(Some).ok_or_else(|| {
            Invalid::new(
                "unknown_enum",
                format!("`{key}` {s:?} is not one of {}", names.join(", ")),
            )
        }),
        Some(_) => Err(invalid(
            key,
            &format!("must be one of {}", names.join(", ")),
        )),
    }
}

/// Parses an RFC 3339 timestamp, naming the field on error.
pub fn parse_timestamp(s: &str) -> Result<OffsetDateTime, Invalid> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .map_err(|e| {
            Invalid::new(
                "timestamp",
                format!(
                    "`timestamp` {s:?} is not an RFC 3339 time like 2026-11-24T10:00:00Z ({e})"
                ),
            )
        })
}

/// Decodes one JSON line into an event (format-level checks only; see `validate::check`).
pub fn decode_line(line: &str) -> Result<Event, Invalid> {
    // Most lines go straight into the event; the rest, and every invalid line, are decoded
    // again through a map, which words the error.
    direct::decode(line).map_or_else(|| decode_line_map(line), Ok)
}

/// [`decode_line`] through a `serde_json::Value` map: the reference the direct path must
/// agree with, and the one that explains a refusal.
fn decode_line_map(line: &str) -> Result<Event, Invalid> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| Invalid::new("invalid_json", format!("line is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Invalid::new(
            "invalid_json",
            "line must be a JSON object (one event per line)",
        ));
    };
    decode_object(map)
}

/// Decodes a JSON object into an event.
pub fn decode_object(mut map: Map<String, Value>) -> Result<Event, Invalid> {
    if let Some(k) = map
        .keys()
        .find(|k| !FIELDS.contains(&k.as_str()) && !STORED_FIELDS.contains(&k.as_str()))
    {
        return Err(Invalid::new(
            "unknown_field",
            format!("unknown field `{k}`; known fields: {}", FIELDS.join(", ")),
        ));
    }
    let schema_version = uint(&mut map, "schema_version")?;
    let timestamp = match map.remove("timestamp") {
        None | Some(Value::Null) => OffsetDateTime::now_utc(),
        Some(Value::String(s)) => parse_timestamp(&s)?,
        Some(_) => {
            return Err(Invalid::new(
                "timestamp",
                "`timestamp` must be an RFC 3339 string like 2026-11-24T10:00:00Z",
            ))
        }
    };
    let arguments = match map.remove("arguments") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        // Arguments given as JSON text, as in the protobuf form.
        Some(Value::String(s)) => serde_json::from_str(&s).map_err(|e| {
            Invalid::new(
                "invalid_arguments",
                format!("`arguments` is not valid JSON: {e}"),
            )
        })?,
        Some(v) => v,
    };
    let result = match map.remove("result") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(v) => v.to_string(),
    };
    let annotations = match map.remove("annotations") {
        None | Some(Value::Null) => Annotations::default(),
        Some(Value::Object(mut a)) => {
            let mut hint = |k: &str| match a.remove(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(b)),
                Some(_) => Err(invalid(
                    &format!("annotations.{k}"),
                    "must be true or false",
                )),
            };
            let out = Annotations {
                read_only: hint("read_only")?,
                destructive: hint("destructive")?,
                idempotent: hint("idempotent")?,
                open_world: hint("open_world")?,
            };
            if let Some(k) = a.keys().next() {
                return Err(Invalid::new("unknown_field", format!("unknown field `annotations.{k}`; known: read_only, destructive, idempotent, open_world")));
            }
            out
        }
        Some(_) => return Err(invalid("annotations", "must be an object")),
    };
    let labels = match map.remove("labels") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(l)) => {
            let mut out = std::collections::BTreeMap::new();
            for (k, v) in l {
                let v = match v {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(invalid(&format!("labels.{k}"), "must be a string")),
                };
                out.insert(k, v);
            }
            out
        }
        Some(_) => return Err(invalid("labels", "must be an object of strings")),
    };
    Ok(Event {
        schema_version: u32::try_from(schema_version).unwrap_or(u32::MAX),
        event_id: string(&mut map, "event_id")?,
        timestamp,
        source: string(&mut map, "source")?,
        method: string(&mut map, "method")?,
        server: string(&mut map, "server")?,
        tool: string(&mut map, "tool")?,
        user: string(&mut map, "user")?,
        client: string(&mut map, "client")?,
        conversation_id: string(&mut map, "conversation_id")?,
        session_id: string(&mut map, "session_id")?,
        trace_id: string(&mut map, "trace_id")?,
        span_id: string(&mut map, "span_id")?,
        arguments,
        result,
        result_bytes: uint(&mut map, "result_bytes")?,
        outcome: named(&mut map, "outcome", Outcome::parse, Outcome::NAMES)?.unwrap_or_default(),
        error: string(&mut map, "error")?,
        duration_ms: uint(&mut map, "duration_ms")?,
        annotations,
        consent: named(&mut map, "consent", Consent::parse, Consent::NAMES)?.unwrap_or_default(),
        transport: named(&mut map, "transport", Transport::parse, Transport::NAMES)?
            .unwrap_or_default(),
        remote_addr: string(&mut map, "remote_addr")?,
        tool_description_hash: string(&mut map, "tool_description_hash")?,
        labels,
    })
}

/// An NDJSON body decoded line by line: one [`Incoming`] per non-blank line, and that line's
/// index in the body, so a rejection names the line the sender wrote.
pub struct NdjsonBody {
    pub events: Vec<Incoming>,
    /// `line_of[i]` is the 0-based line of `events[i]`.
    pub line_of: Vec<u32>,
}

/// Decodes an NDJSON body (`POST /api/v1/ingest`): at most `max_events` lines, each event on
/// its own line. Blank lines keep their number but are not events. A bad line is an event
/// rejected with its reason; only a body that is not UTF-8 or has too many lines is refused
/// whole, with a reason about the body.
pub fn decode_body(body: &[u8], max_events: usize) -> Result<NdjsonBody, String> {
    let text = utf8_lines(body)?;
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() > max_events {
        return Err(format!(
            "{} lines, over the limit of {max_events} events per request (`ingest.max_batch_events`)",
            lines.len()
        ));
    }
    let mut batch = Vec::with_capacity(lines.len());
    let mut line_of = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        line_of.push(i as u32);
        batch.push(Incoming {
            decoded: decode_line(line),
            wire_bytes: line.len(),
            id_hint: event_id_hint(line),
        });
    }
    Ok(NdjsonBody {
        events: batch,
        line_of,
    })
}

/// The body as text, or a reason naming the first line that is not UTF-8.
fn utf8_lines(body: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        let line = body[..at].iter().filter(|b| **b == b'\n').count();
        let line_start = body[..at]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        format!(
            "line {} (index {line}) is not UTF-8 at byte {} of the line; send events as UTF-8 JSON",
            line + 1,
            at - line_start + 1
        )
    })
}

/// The event id of a line, if it can be read, for reporting a rejection of it.
pub fn event_id_hint(line: &str) -> String {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| {
            v.get("event_id")
                .and_then(|id| id.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_field() {
        let line = r#"{"schema_version":1,"event_id":"e1","timestamp":"2026-11-24T10:00:00+01:00","source":"gw","method":"tools/call","server":"github","tool":"create_issue","user":"alice","client":"claude-desktop","conversation_id":"c","session_id":"s","trace_id":"t","span_id":"sp","arguments":{"a":1},"result":{"ok":true},"result_bytes":5,"outcome":"consent_denied","error":"e","duration_ms":12,"annotations":{"read_only":true},"consent":"auto_approved","transport":"sse","remote_addr":"1.2.3.4","tool_description_hash":"h","labels":{"env":"prod","n":3}}"#;
        let e = decode_line(line).unwrap();
        assert_eq!(e.timestamp.hour(), 9, "normalised to UTC");
        assert_eq!(e.result, r#"{"ok":true}"#);
        assert_eq!(e.outcome, Outcome::ConsentDenied);
        assert_eq!(e.consent, Consent::AutoApproved);
        assert_eq!(e.transport, Transport::Sse);
        assert_eq!(e.annotations.read_only, Some(true));
        assert_eq!(e.labels["n"], "3");
        assert_eq!(e.arguments["a"], 1);
    }

    #[test]
    fn the_keys_are_those_of_the_registry() {
        use crate::event::fields::{Origin, FIELDS as REGISTRY};
        let keys = |origin| {
            let mut k: Vec<&str> = REGISTRY
                .iter()
                .filter(|f| f.origin == origin)
                .map(|f| f.json_key())
                .collect();
            k.sort_unstable();
            k.dedup();
            k
        };
        let sorted = |list: &[&'static str]| {
            let mut v = list.to_vec();
            v.sort_unstable();
            v
        };
        assert_eq!(keys(Origin::Client), sorted(FIELDS));
        assert_eq!(keys(Origin::Collector), sorted(STORED_FIELDS));
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let Err(e) = decode_body(b"{}\n{}\n{\"a\":\"\xff\"}\n", 10) else {
            panic!("a body that is not UTF-8 was decoded")
        };
        assert_eq!(
            e,
            "line 3 (index 2) is not UTF-8 at byte 7 of the line; send events as UTF-8 JSON"
        );
    }

    #[test]
    fn blank_lines_keep_their_number() {
        let body = decode_body(b"\n{\"event_id\":\"a\"}\n  \nnope\n", 10).unwrap();
        assert_eq!(body.line_of, [1, 3]);
        assert_eq!(body.events[0].id_hint, "a");
        assert!(body.events[1].decoded.is_err());
        let Err(e) = decode_body(b"{}\n{}\n{}", 2) else {
            panic!("a body over the limit was decoded")
        };
        assert!(e.starts_with("3 lines, over the limit of 2"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        for (line, want) in [
            ("nope", "not valid JSON"),
            ("[1]", "JSON object"),
            (r#"{"tool":"x","bogus":1}"#, "unknown field `bogus`"),
            (
                r#"{"outcome":"fine"}"#,
                "`outcome` \"fine\" is not one of ok",
            ),
            (r#"{"duration_ms":-1}"#, "`duration_ms`"),
            (
                r#"{"timestamp":"yesterday"}"#,
                "`timestamp` \"yesterday\" is not an RFC 3339",
            ),
            (
                r#"{"arguments":"{not json"}"#,
                "`arguments` is not valid JSON",
            ),
            (r#"{"labels":{"a":[1]}}"#, "`labels.a`"),
            (
                r#"{"annotations":{"read_only":"yes"}}"#,
                "`annotations.read_only`",
            ),
        ] {
            let err = decode_line(line).unwrap_err();
            assert!(
                err.reason.contains(want),
                "{line}: {} lacks {want}",
                err.reason
            );
        }
    }
}
