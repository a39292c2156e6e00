//! The fast path of [`super::decode_line`]: one pass of serde_json from the line's text
//! straight into an [`Event`], with no `serde_json::Value` map for the top level (the
//! `arguments` and a non-string `result` are still built as values: the event holds the one,
//! and the other is rendered the way the map path renders it).
//!
//! It accepts a subset of what the map path accepts and, for every line it accepts, builds
//! the same event (a test in the parent module checks this on demo traffic and edge cases).
//! It does not report errors: any line it cannot take, whether invalid or merely unusual
//! (a string with escapes where a name is expected, a refused type), returns `None`, and the
//! map path decodes it again and words the error. Duplicate keys keep the last value, as a map
//! does; stored fields are parsed as values, not skipped, so serde_json's nesting limit and
//! number checks apply to them exactly as on the map path.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use time::OffsetDateTime;

use super::{parse_timestamp, STORED_FIELDS};
use crate::event::{Annotations, Consent, Event, Outcome, Transport};

/// Decodes `line`, or `None` when the map path must decode it (it may still be valid).
pub(super) fn decode(line: &str) -> Option<Event> {
    let mut de = serde_json::Deserializer::from_str(line);
    let wire = Wire::deserialize(&mut de).ok()?;
    de.end().ok()?;
    wire.into_event()
}

/// The top-level keys as read, before the conversions the map path applies.
#[derive(Default)]
struct Wire<'a> {
    schema_version: Option<u64>,
    event_id: Option<String>,
    timestamp: Option<Text<'a>>,
    source: Option<String>,
    method: Option<String>,
    server: Option<String>,
    tool: Option<String>,
    user: Option<String>,
    client: Option<String>,
    conversation_id: Option<String>,
    session_id: Option<String>,
    trace_id: Option<String>,
    span_id: Option<String>,
    arguments: Option<Value>,
    result: Option<Value>,
    result_bytes: Option<u64>,
    outcome: Option<Text<'a>>,
    error: Option<String>,
    duration_ms: Option<u64>,
    annotations: Option<Hints>,
    consent: Option<Text<'a>>,
    transport: Option<Text<'a>>,
    remote_addr: Option<String>,
    tool_description_hash: Option<String>,
    labels: Option<Labels>,
}

impl Wire<'_> {
    /// The conversions of [`super::decode_object`], in terms of what was read.
    fn into_event(self) -> Option<Event> {
        let timestamp = match self.timestamp {
            None => OffsetDateTime::now_utc(),
            Some(Text(s)) => parse_timestamp(&s).ok()?,
        };
        let arguments = match self.arguments {
            None => Value::Null,
            Some(Value::String(s)) if s.is_empty() => Value::Null,
            Some(Value::String(s)) => serde_json::from_str(&s).ok()?,
            Some(v) => v,
        };
        let result = match self.result {
            None => String::new(),
            Some(Value::String(s)) => s,
            Some(v) => v.to_string(),
        };
        let outcome = named(self.outcome, Outcome::parse)?;
        let consent = named(self.consent, Consent::parse)?;
        let transport = named(self.transport, Transport::parse)?;
        Some(Event {
            schema_version: u32::try_from(self.schema_version.unwrap_or(0)).unwrap_or(u32::MAX),
            event_id: self.event_id.unwrap_or_default(),
            timestamp,
            source: self.source.unwrap_or_default(),
            method: self.method.unwrap_or_default(),
            server: self.server.unwrap_or_default(),
            tool: self.tool.unwrap_or_default(),
            user: self.user.unwrap_or_default(),
            client: self.client.unwrap_or_default(),
            conversation_id: self.conversation_id.unwrap_or_default(),
            session_id: self.session_id.unwrap_or_default(),
            trace_id: self.trace_id.unwrap_or_default(),
            span_id: self.span_id.unwrap_or_default(),
            arguments,
            result,
            result_bytes: self.result_bytes.unwrap_or(0),
            outcome: outcome.unwrap_or_default(),
            error: self.error.unwrap_or_default(),
            duration_ms: self.duration_ms.unwrap_or(0),
            annotations: self.annotations.map(|h| h.0).unwrap_or_default(),
            consent: consent.unwrap_or_default(),
            transport: transport.unwrap_or_default(),
            remote_addr: self.remote_addr.unwrap_or_default(),
            tool_description_hash: self.tool_description_hash.unwrap_or_default(),
            labels: self.labels.map(|l| l.0).unwrap_or_default(),
        })
    }
}

/// An enum given by name: `Some(None)` when absent, `None` when the name is unknown.
fn named<T>(t: Option<Text>, parse: fn(&str) -> Option<T>) -> Option<Option<T>> {
    match t {
        None => Some(None),
        Some(Text(s)) => parse(&s).map(Some),
    }
}

/// A string borrowed from the line when it has no escapes (names, times), owned otherwise.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Wire<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Wire<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an event object")
            }
            // Only a map: a derived struct would also take an array, which the map path refuses.
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut w = Wire::default();
                while let Some(Text(key)) = map.next_key::<Text>()? {
                    match &*key {
                        "schema_version" => w.schema_version = map.next_value()?,
                        "event_id" => w.event_id = map.next_value()?,
                        "timestamp" => w.timestamp = map.next_value()?,
                        "source" => w.source = map.next_value()?,
                        "method" => w.method = map.next_value()?,
                        "server" => w.server = map.next_value()?,
                        "tool" => w.tool = map.next_value()?,
                        "user" => w.user = map.next_value()?,
                        "client" => w.client = map.next_value()?,
                        "conversation_id" => w.conversation_id = map.next_value()?,
                        "session_id" => w.session_id = map.next_value()?,
                        "trace_id" => w.trace_id = map.next_value()?,
                        "span_id" => w.span_id = map.next_value()?,
                        "arguments" => w.arguments = map.next_value()?,
                        "result" => w.result = map.next_value()?,
                        "result_bytes" => w.result_bytes = map.next_value()?,
                        "outcome" => w.outcome = map.next_value()?,
                        "error" => w.error = map.next_value()?,
                        "duration_ms" => w.duration_ms = map.next_value()?,
                        "annotations" => w.annotations = map.next_value()?,
                        "consent" => w.consent = map.next_value()?,
                        "transport" => w.transport = map.next_value()?,
                        "remote_addr" => w.remote_addr = map.next_value()?,
                        "tool_description_hash" => w.tool_description_hash = map.next_value()?,
                        "labels" => w.labels = map.next_value()?,
                        // Parsed, not skipped: see the module doc.
                        k if STORED_FIELDS.contains(&k) => drop(map.next_value::<Value>()?),
                        _ => return Err(de::Error::custom("unknown field")),
                    }
                }
                Ok(w)
            }
        }
        d.deserialize_map(V)
    }
}

/// The `annotations` object: booleans or nulls under the four hint names.
struct Hints(Annotations);

impl<'de> Deserialize<'de> for Hints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Hints;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an annotations object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Hints, A::Error> {
                let mut a = Annotations::default();
                while let Some(Text(key)) = map.next_key::<Text>()? {
                    let slot = match &*key {
                        "read_only" => &mut a.read_only,
                        "destructive" => &mut a.destructive,
                        "idempotent" => &mut a.idempotent,
                        "open_world" => &mut a.open_world,
                        _ => return Err(de::Error::custom("unknown annotation")),
                    };
                    *slot = map.next_value()?;
                }
                Ok(Hints(a))
            }
        }
        d.deserialize_map(V)
    }
}

/// The `labels` object: values given as strings, numbers or booleans, kept as text.
struct Labels(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a labels object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let LabelValue(v) = map.next_value()?;
                    out.insert(key, v);
                }
                Ok(Labels(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One label value as text; numbers go through `serde_json::Number` so they print as the
/// map path prints them.
struct LabelValue(String);

impl<'de> Deserialize<'de> for LabelValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LabelValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LabelValue, E> {
                Ok(LabelValue(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<LabelValue, E> {
                Ok(LabelValue(s))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<LabelValue, E> {
                Ok(LabelValue(b.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<LabelValue, E> {
                Ok(LabelValue(serde_json::Number::from(n).to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<LabelValue, E> {
                Ok(LabelValue(serde_json::Number::from(n).to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<LabelValue, E> {
                serde_json::Number::from_f64(n)
                    .map(|n| LabelValue(n.to_string()))
                    .ok_or_else(|| E::custom("not a finite number"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use time::OffsetDateTime;

    use super::super::{decode_line, decode_line_map};
    use super::decode;
    use crate::event::Event;

    /// The direct path either declines or agrees with the map path, and `decode_line` says
    /// what the map path says. Returns whether the direct path took the line.
    fn same(line: &str) -> bool {
        let map = decode_line_map(line);
        let public = decode_line(line);
        match (&map, &public) {
            (Err(a), Err(b)) => assert_eq!((&a.code, &a.reason), (&b.code, &b.reason), "{line}"),
            (Ok(_), Ok(_)) => {}
            _ => panic!("{line}: map path {map:?}, decode_line {public:?}"),
        }
        let Some(mut direct) = decode(line) else {
            return false;
        };
        let Ok(mut map) = map else {
            panic!("{line}: the direct path took a line the map path refuses: {map:?}")
        };
        let mut public = public.unwrap_or_else(|e| panic!("{line}: {e:?}"));
        // Without a timestamp each decode takes the time it ran at.
        let has_time = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v.get("timestamp").filter(|t| !t.is_null()).cloned())
            .is_some();
        if !has_time {
            for e in [&mut direct, &mut map, &mut public] {
                assert!((OffsetDateTime::now_utc() - e.timestamp).whole_seconds() < 60);
                e.timestamp = OffsetDateTime::UNIX_EPOCH;
            }
        }
        assert_eq!(direct, map, "{line}");
        assert_eq!(public, map, "{line}");
        true
    }

    fn demo_events() -> Vec<Event> {
        let start = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let mut all = Vec::new();
        for seed in 0..6 {
            all.extend(crate::demo::demo_day(
                seed,
                start,
                time::Duration::hours(6),
                60,
            ));
            let mut load = crate::demo::Generator::new(seed);
            all.extend((0..50).map(|i| load.benign(start, 200 + 40 * i)));
        }
        all
    }

    #[test]
    fn demo_traffic_decodes_directly_to_the_same_event() {
        let events = demo_events();
        assert!(events.len() > 1000, "{}", events.len());
        for e in &events {
            let line = serde_json::to_string(e).unwrap();
            assert!(same(&line), "declined a demo event: {line}");
            // The forms a gateway may use: arguments as JSON text, pretty printed, stored.
            let mut v = serde_json::to_value(e).unwrap();
            if let Some(a) = v.get_mut("arguments") {
                *a = Value::String(a.to_string());
            }
            assert!(same(&v.to_string()));
            assert!(same(
                &serde_json::to_string_pretty(&v).unwrap().replace('\n', " ")
            ));
            let stored = crate::event::StoredEvent {
                event: e.clone(),
                tenant: "t".into(),
                received_at: e.timestamp,
                seq: 7,
                hash: "ab".repeat(32),
                redactions: Vec::new(),
            };
            assert!(same(&serde_json::to_string(&stored).unwrap()));
        }
    }

    /// `depth` arrays around a number.
    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn every_field_with_every_kind_of_value() {
        let base = json!({
            "schema_version": 1, "event_id": "e1", "timestamp": "2026-11-24T10:00:00+01:00",
            "source": "gw", "method": "tools/call", "server": "github", "tool": "create_issue",
            "user": "alice", "client": "c", "conversation_id": "c1", "session_id": "s",
            "trace_id": "t", "span_id": "sp", "arguments": {"a": [1, 2.5, "x"]},
            "result": {"ok": true}, "result_bytes": 5, "outcome": "consent_denied", "error": "e",
            "duration_ms": 12, "annotations": {"read_only": true, "open_world": null},
            "consent": "auto_approved", "transport": "sse", "remote_addr": "1.2.3.4",
            "tool_description_hash": "h", "labels": {"env": "prod", "n": 3, "f": -0.5, "b": true},
            "tenant": "x", "received_at": "2026-11-24T10:00:00Z", "seq": 3, "hash": "00",
            "redactions": [{"path": "arguments.a", "kind": "aws"}]
        });
        assert!(same(&base.to_string()), "declined the full event");
        let values = [
            "null",
            "true",
            "false",
            "0",
            "1",
            "-1",
            "1.0",
            "1.5",
            "-0",
            "1e2",
            "4294967296",
            "18446744073709551615",
            "18446744073709551616",
            "1e400",
            r#""""#,
            r#""x""#,
            r#""\u00e9\ud83d\ude00""#,
            r#""a\"b\\c\n""#,
            "[]",
            "{}",
            "[1]",
            r#"{"a":1}"#,
            r#"{"a":{"b":[null,1.25,"\u0041"]}}"#,
            r#""{\"a\":1}""#,
            r#""[1,2]""#,
            r#""{not""#,
            r#""2026-11-24T10:00:00Z""#,
            r#""2026-11-24T10:00:00.123456789-05:30""#,
            r#""yesterday""#,
            r#""ok""#,
            r#""error""#,
            r#""denied""#,
            r#""timeout""#,
            r#""stdio""#,
            r#""streamable_http""#,
            r#""unknown""#,
            r#""allowed_once""#,
            r#""Ok""#,
            r#""o\u006b""#,
            r#"{"read_only":false}"#,
            r#"{"destructive":1}"#,
            r#"{"bogus":true}"#,
            r#"{"k":"v","n":1e300,"m":18446744073709551615}"#,
            r#"{"k":null}"#,
            r#"{"k":[1]}"#,
            r#""   ""#,
            "[true,false]",
        ];
        let keys: Vec<String> = base.as_object().unwrap().keys().cloned().collect();
        let text = base.to_string();
        let mut taken = 0;
        for key in &keys {
            for value in values {
                let mut v = base.clone();
                let m = v.as_object_mut().unwrap();
                m.insert(key.clone(), Value::Null);
                // Put the value in as written, not as serde_json would print it.
                let line = m_to_line(&v, key, value);
                taken += usize::from(same(&line));
                m_remove(&text, key).map(|l| same(&l));
            }
        }
        assert!(taken > keys.len() * 10, "the direct path took only {taken}");
    }

    /// `v` with `key`'s value replaced by `raw` text.
    fn m_to_line(v: &Value, key: &str, raw: &str) -> String {
        let line = v.to_string();
        let needle = format!("{}:null", Value::String(key.into()));
        assert!(line.contains(&needle), "{line}");
        line.replacen(&needle, &format!("{}:{raw}", Value::String(key.into())), 1)
    }

    /// The line without `key`.
    fn m_remove(text: &str, key: &str) -> Option<String> {
        let mut v: Value = serde_json::from_str(text).ok()?;
        v.as_object_mut()?.remove(key);
        Some(v.to_string())
    }

    #[test]
    fn edge_cases() {
        let deep_ok = 126; // serde_json takes 127 levels, and the line's object is one
        for (line, direct) in [
            ("{}", true),
            ("  {\"tool\":\"x\"}  ", true),
            ("{\"tool\":\"x\"}\r", true),
            ("{\"t\\u006fol\":\"x\"}", true),
            ("{\"tool\":\"x\",\"tool\":null}", true),
            ("{\"tool\":5,\"tool\":\"x\"}", false),
            ("{\"arguments\":{\"a\":1},\"arguments\":\"\"}", true),
            (
                "{\"annotations\":{\"read_only\":true,\"read_only\":null}}",
                true,
            ),
            ("{\"labels\":{\"a\":[1],\"a\":\"x\"}}", false),
            ("{\"labels\":{\"a\":\"x\",\"a\":2}}", true),
            ("{\"annotations\":[true]}", false),
            ("{\"labels\":[\"a\"]}", false),
            ("[\"e1\"]", false),
            ("[]", false),
            ("null", false),
            ("\"{}\"", false),
            ("", false),
            ("{", false),
            ("{} {}", false),
            ("{}x", false),
            ("{\"bogus\":1}", false),
            ("{\"tool\":\"x\",\"Tool\":\"y\"}", false),
            ("{\"tenant\":{\"a\":[1e400]}}", false),
            ("{\"redactions\":1e400}", false),
            ("{\"arguments\":\"  \"}", false),
            ("{\"arguments\":\"{\\\"a\\\":1} \"}", true),
            ("{\"arguments\":\"7\"}", true),
            ("{\"result\":\"\\ud83d\\ude00\"}", true),
            ("{\"result\":[1,{\"b\":2,\"a\":1}]}", true),
            (
                "{\"timestamp\":null,\"outcome\":null,\"labels\":null,\"annotations\":null}",
                true,
            ),
            ("{\"timestamp\":\"2026-11-24T10:00:00\\u005a\"}", true),
        ] {
            assert_eq!(same(line), direct, "{line}");
        }
        // serde_json's nesting limit holds for the whole line, on both paths.
        for depth in [deep_ok, deep_ok + 1, deep_ok + 2, 300] {
            let ok = depth <= deep_ok;
            let arguments = format!("{{\"arguments\":{{\"a\":{}}}}}", nested(depth - 1));
            assert_eq!(same(&arguments), ok, "arguments {depth} deep");
            let stored = format!("{{\"redactions\":{}}}", nested(depth));
            assert_eq!(same(&stored), ok, "redactions {depth} deep");
            let result = format!("{{\"result\":{}}}", nested(depth));
            assert_eq!(same(&result), ok, "result {depth} deep");
            // As text, arguments are parsed on their own, with a limit of their own.
            let text = format!("{{\"arguments\":{}}}", Value::String(nested(depth)));
            assert_eq!(
                same(&text),
                depth <= deep_ok + 1,
                "arguments text {depth} deep"
            );
        }
    }
}
