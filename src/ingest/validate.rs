//! Semantic checks shared by every wire format: required fields, time window, sizes.
//! Format-level problems (bad JSON, unknown enum numbers) are found by the decoders.

use std::time::Duration;

use time::OffsetDateTime;

use crate::event::fields::{self, FieldType, FieldValue};
use crate::event::{Event, SCHEMA_VERSION};

/// Why one event of a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the event in its batch (line number for NDJSON, from 0).
    pub index: u32,
    pub event_id: String,
    /// Stable category for metrics (`missing_field`, `invalid_json`, `timestamp`, ...).
    pub code: &'static str,
    /// Human-readable reason naming the field.
    pub reason: String,
}

/// A reason without its position yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub reason: String,
}

impl Invalid {
    pub fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    pub fn at(self, index: u32, event_id: &str) -> Rejection {
        Rejection {
            index,
            event_id: event_id.to_string(),
            code: self.code,
            reason: self.reason,
        }
    }
}

/// Checked ingest limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_event_bytes: usize,
    pub max_future: Duration,
    pub retention_days: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: 1 << 20,
            max_future: Duration::from_secs(3600),
            retention_days: 30,
        }
    }
}

const MAX_ID_LEN: usize = 256;
const MAX_NAME_LEN: usize = 1024;
const MAX_LABELS: usize = 64;
/// Deepest nesting of `arguments` accepted (`{"a":{"b":1}}` is 2). A stored record holds the
/// arguments one level down, and its readers (search hits, WAL replay) parse it with
/// serde_json's limit of 128 levels. Arguments sent as JSON text (`arguments_json`, or a JSON
/// string in NDJSON) are parsed on their own, so without this limit an event could be accepted
/// whose record cannot be read back: every search that found it failed. No tool's arguments
/// come near it.
const MAX_ARGUMENTS_DEPTH: usize = 64;

/// Methods whose `tool` field names the thing acted on and must be present.
fn needs_tool(method: &str) -> bool {
    matches!(
        method,
        "tools/call"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "prompts/get"
    )
}

fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}

/// Checks an event decoded from any wire format and fills server defaults (event id,
/// schema version). `wire_bytes` is its encoded size.
pub fn check(
    ev: &mut Event,
    wire_bytes: usize,
    limits: &Limits,
    now: OffsetDateTime,
) -> Result<(), Invalid> {
    if wire_bytes > limits.max_event_bytes {
        let (field, size) = largest_field(ev);
        return Err(Invalid::new(
            "too_large",
            format!(
                "event is {}, over the {} limit (`ingest.max_event_bytes`); its largest field is `{field}` ({}): truncate it at the gateway",
                human_bytes(wire_bytes),
                human_bytes(limits.max_event_bytes),
                human_bytes(size)
            ),
        ));
    }
    if ev.schema_version == 0 {
        ev.schema_version = SCHEMA_VERSION;
    }
    if ev.schema_version > SCHEMA_VERSION {
        return Err(Invalid::new(
            "schema_version",
            format!("`schema_version` {} is newer than this collector supports ({SCHEMA_VERSION}); upgrade the collector", ev.schema_version),
        ));
    }
    if ev.event_id.is_empty() {
        ev.event_id = uuid::Uuid::now_v7().to_string();
    }
    if ev.event_id.len() > MAX_ID_LEN
        || ev
            .event_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Invalid::new("event_id", format!("`event_id` must be at most {MAX_ID_LEN} bytes without spaces or control characters")));
    }
    if ev.method.trim().is_empty() {
        return Err(Invalid::new(
            "missing_field",
            "`method` is required (e.g. tools/call, resources/read)",
        ));
    }
    if ev.tool.trim().is_empty() && needs_tool(&ev.method) {
        return Err(Invalid::new(
            "missing_field",
            format!("`tool` is required for method {}", ev.method),
        ));
    }
    // Every exact string the client sends, but the id (checked above) and the enums.
    for def in fields::FIELDS
        .iter()
        .filter(|f| f.ty == FieldType::Exact && f.name != "event_id")
    {
        let Some(FieldValue::Str(value)) = def.event_value(ev) else {
            continue;
        };
        if value.len() > MAX_NAME_LEN {
            return Err(Invalid::new(
                "too_large",
                format!(
                    "`{}` is {} bytes, over the {MAX_NAME_LEN} byte limit for names",
                    def.name,
                    value.len()
                ),
            ));
        }
    }
    if !(ev.arguments.is_null() || ev.arguments.is_object()) {
        return Err(Invalid::new(
            "invalid_arguments",
            "`arguments` must be a JSON object (MCP tool arguments are named)",
        ));
    }
    if nested_deeper_than(&ev.arguments, MAX_ARGUMENTS_DEPTH) {
        return Err(Invalid::new(
            "invalid_arguments",
            format!("`arguments` nests deeper than {MAX_ARGUMENTS_DEPTH} levels of objects and arrays; flatten them at the gateway"),
        ));
    }
    if ev.labels.len() > MAX_LABELS {
        return Err(Invalid::new(
            "too_large",
            format!(
                "`labels` has {} entries, over the limit of {MAX_LABELS}",
                ev.labels.len()
            ),
        ));
    }
    if let Some(k) = ev.labels.keys().find(|k| k.is_empty() || k.len() > 128) {
        return Err(Invalid::new(
            "invalid_label",
            format!("label key {k:?} must be 1 to 128 bytes"),
        ));
    }
    let ahead = ev.timestamp - now;
    if ahead > limits.max_future {
        return Err(Invalid::new(
            "timestamp",
            format!(
                "`timestamp` is {} in the future (more than {} allowed); check the sender's clock",
                human_duration(ahead),
                human_duration(limits.max_future.try_into().unwrap_or_default())
            ),
        ));
    }
    let behind = now - ev.timestamp;
    if behind > time::Duration::days(limits.retention_days as i64) {
        return Err(Invalid::new(
            "timestamp",
            format!(
                "`timestamp` is {} old, beyond the {}-day retention (`retention_days`)",
                human_duration(behind),
                limits.retention_days
            ),
        ));
    }
    Ok(())
}

/// Whether objects and arrays nest more than `limit` levels deep in `v`; stops at the first
/// value too deep, without recursion.
fn nested_deeper_than(v: &serde_json::Value, limit: usize) -> bool {
    use serde_json::Value;
    let mut stack = vec![(v, 0)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Array(_) | Value::Object(_) if depth == limit => return true,
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|c| (c, depth + 1))),
            _ => {}
        }
    }
    false
}

fn human_duration(d: time::Duration) -> String {
    let s = d.whole_seconds();
    if s >= 2 * 86_400 {
        format!("{} days", s / 86_400)
    } else if s >= 2 * 3600 {
        format!("{} hours", s / 3600)
    } else if s >= 120 {
        format!("{} minutes", s / 60)
    } else {
        format!("{s} seconds")
    }
}

fn largest_field(ev: &Event) -> (&'static str, usize) {
    let args = if ev.arguments.is_null() {
        0
    } else {
        ev.arguments.to_string().len()
    };
    let labels: usize = ev.labels.iter().map(|(k, v)| k.len() + v.len()).sum();
    [
        ("result", ev.result.len()),
        ("arguments", args),
        ("error", ev.error.len()),
        ("labels", labels),
    ]
    .into_iter()
    .max_by_key(|(_, n)| *n)
    .unwrap_or(("result", 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_event() -> Event {
        Event::new("e1", "tools/call", "read_file")
    }

    #[test]
    fn fills_defaults() {
        let mut e = ok_event();
        e.event_id.clear();
        e.schema_version = 0;
        check(&mut e, 100, &Limits::default(), OffsetDateTime::now_utc()).unwrap();
        assert_eq!(e.schema_version, 1);
        assert_eq!(e.event_id.len(), 36);
    }

    #[test]
    fn reasons_name_the_field() {
        let now = OffsetDateTime::now_utc();
        let l = Limits::default();
        type Mutation<'a> = Box<dyn Fn(&mut Event) + 'a>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|e| e.method.clear()), "`method` is required"),
            (Box::new(|e| e.tool.clear()), "`tool` is required"),
            (
                Box::new(|e| e.timestamp = now + time::Duration::hours(3)),
                "in the future",
            ),
            (
                Box::new(|e| e.timestamp = now - time::Duration::days(40)),
                "retention",
            ),
            (
                Box::new(|e| e.arguments = serde_json::json!([1])),
                "`arguments` must be a JSON object",
            ),
            (Box::new(|e| e.schema_version = 9), "`schema_version` 9"),
            (Box::new(|e| e.event_id = "a b".into()), "`event_id`"),
        ];
        for (mutate, want) in cases {
            let mut e = ok_event();
            mutate(&mut e);
            let err = check(&mut e, 100, &l, now).unwrap_err();
            assert!(
                err.reason.contains(want),
                "{} does not contain {want}",
                err.reason
            );
        }
        let mut e = ok_event();
        e.result = "x".repeat(2 << 20);
        let err = check(&mut e, 2 << 20, &l, now).unwrap_err();
        assert!(
            err.reason.contains("`result`") && err.reason.contains("1.0 MiB limit"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn every_name_has_a_length_limit() {
        let now = OffsetDateTime::now_utc();
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let mut checked = Vec::new();
        for def in fields::FIELDS.iter().filter(|f| f.ty == FieldType::Exact) {
            let mut e = ok_event();
            let slot = match def.name {
                "method" => &mut e.method,
                "tool" => &mut e.tool,
                "server" => &mut e.server,
                "source" => &mut e.source,
                "user" => &mut e.user,
                "client" => &mut e.client,
                "conversation_id" => &mut e.conversation_id,
                "session_id" => &mut e.session_id,
                "trace_id" => &mut e.trace_id,
                "span_id" => &mut e.span_id,
                "remote_addr" => &mut e.remote_addr,
                "tool_description_hash" => &mut e.tool_description_hash,
                _ => continue,
            };
            *slot = long.clone();
            let err = check(&mut e, 100, &Limits::default(), now).unwrap_err();
            assert!(
                err.reason.contains(&format!("`{}`", def.name)),
                "{}",
                err.reason
            );
            checked.push(def.name);
        }
        assert_eq!(checked.len(), 12, "{checked:?}");
    }

    /// `{"a":{"a":…1}}`, `depth` objects deep, parsed on its own as `arguments_json` is.
    fn nested(depth: usize) -> serde_json::Value {
        let text = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        serde_json::from_str(&text).unwrap()
    }

    /// Found by the `event_json` fuzz target's record check (an input 127 levels deep): arguments
    /// sent as JSON text that deep were accepted, and their record could not be read back.
    #[test]
    fn arguments_too_deep_for_their_record_are_refused() {
        let now = OffsetDateTime::now_utc();
        let mut e = ok_event();
        e.arguments = nested(127);
        let err = check(&mut e, 100, &Limits::default(), now).unwrap_err();
        assert_eq!(err.code, "invalid_arguments");
        assert!(
            err.reason
                .starts_with("`arguments` nests deeper than 64 levels"),
            "{}",
            err.reason
        );
        let mut e = ok_event();
        e.arguments = serde_json::json!({ "list": [nested(MAX_ARGUMENTS_DEPTH - 1)] });
        assert!(check(&mut e, 100, &Limits::default(), now).is_err());

        // At the limit: accepted, and the stored record reads back.
        let mut e = ok_event();
        e.arguments = nested(MAX_ARGUMENTS_DEPTH);
        check(&mut e, 100, &Limits::default(), now).unwrap();
        let stored = crate::event::StoredEvent {
            event: e,
            tenant: "t".into(),
            received_at: now,
            seq: 1,
            hash: "00".repeat(32),
            redactions: Vec::new(),
        };
        let back = crate::event::StoredEvent::from_record(&stored.record().unwrap()).unwrap();
        assert_eq!(back, stored);
    }

    #[test]
    fn tools_list_needs_no_tool() {
        let mut e = Event::new("e", "tools/list", "");
        check(&mut e, 10, &Limits::default(), OffsetDateTime::now_utc()).unwrap();
    }
}
