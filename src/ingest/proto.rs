//! Conversion between the protobuf `ToolCallEvent` and the domain [`Event`].

use time::OffsetDateTime;

use super::validate::Invalid;
use crate::event::{Annotations, Consent, Event, Outcome, Transport};
use crate::proto;

fn enum_value<T: Copy>(
    field: &str,
    n: i32,
    table: &[(i32, T)],
    names: &[&str],
) -> Result<Option<T>, Invalid> {
    if n == 0 {
        return Ok(None);
    }
    table
        .iter()
        .find(|(k, _)| *k == n)
        .map(|(_, v)| Some(*v))
        .ok_or_else(|| {
            Invalid::new(
                "unknown_enum",
                format!("`{field}` {n} is not a known value ({})", names.join(", ")),
            )
        })
}

/// Decodes a protobuf event (format-level checks only; see `validate::check`).
pub fn decode(p: proto::ToolCallEvent) -> Result<Event, Invalid> {
    use proto::{Consent as C, Outcome as O, Transport as T};
    let outcome = enum_value(
        "outcome",
        p.outcome,
        &[
            (O::Ok as i32, Outcome::Ok),
            (O::Error as i32, Outcome::Error),
            (O::Denied as i32, Outcome::Denied),
            (O::ConsentDenied as i32, Outcome::ConsentDenied),
            (O::Timeout as i32, Outcome::Timeout),
        ],
        Outcome::NAMES,
    )?;
    let consent = enum_value(
        "consent",
        p.consent,
        &[
            (C::NotRequired as i32, Consent::NotRequired),
            (C::AllowedOnce as i32, Consent::AllowedOnce),
            (C::AllowedAlways as i32, Consent::AllowedAlways),
            (C::AutoApproved as i32, Consent::AutoApproved),
            (C::Denied as i32, Consent::Denied),
        ],
        Consent::NAMES,
    )?;
    let transport = enum_value(
        "transport",
        p.transport,
        &[
            (T::Stdio as i32, Transport::Stdio),
            (T::StreamableHttp as i32, Transport::StreamableHttp),
            (T::Sse as i32, Transport::Sse),
        ],
        &Transport::NAMES[1..],
    )?;
    let timestamp = if p.timestamp_unix_micros == 0 {
        OffsetDateTime::now_utc()
    } else {
        OffsetDateTime::from_unix_timestamp_nanos(p.timestamp_unix_micros as i128 * 1000).map_err(
            |_| {
                Invalid::new(
                    "timestamp",
                    format!(
                        "`timestamp_unix_micros` {} is out of range",
                        p.timestamp_unix_micros
                    ),
                )
            },
        )?
    };
    let arguments = if p.arguments_json.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&p.arguments_json).map_err(|e| {
            Invalid::new(
                "invalid_arguments",
                format!("`arguments_json` is not valid JSON: {e}"),
            )
        })?
    };
    let a = p.annotations.unwrap_or_default();
    Ok(Event {
        schema_version: p.schema_version,
        event_id: p.event_id,
        timestamp,
        source: p.source,
        method: p.method,
        server: p.server,
        tool: p.tool,
        user: p.user,
        client: p.client,
        conversation_id: p.conversation_id,
        session_id: p.session_id,
        trace_id: p.trace_id,
        span_id: p.span_id,
        arguments,
        result: p.result,
        result_bytes: p.result_bytes,
        outcome: outcome.unwrap_or_default(),
        error: p.error,
        duration_ms: p.duration_ms,
        annotations: Annotations {
            read_only: a.read_only,
            destructive: a.destructive,
            idempotent: a.idempotent,
            open_world: a.open_world,
        },
        consent: consent.unwrap_or_default(),
        transport: transport.unwrap_or_default(),
        remote_addr: p.remote_addr,
        tool_description_hash: p.tool_description_hash,
        labels: p.labels.into_iter().collect(),
    })
}

/// Encodes an event for sending (used by `demo` and `bench`, which keep their events).
pub fn encode(e: &Event) -> proto::ToolCallEvent {
    proto::ToolCallEvent {
        event_id: e.event_id.clone(),
        source: e.source.clone(),
        method: e.method.clone(),
        server: e.server.clone(),
        tool: e.tool.clone(),
        user: e.user.clone(),
        client: e.client.clone(),
        conversation_id: e.conversation_id.clone(),
        session_id: e.session_id.clone(),
        trace_id: e.trace_id.clone(),
        span_id: e.span_id.clone(),
        arguments_json: arguments_json(&e.arguments),
        result: e.result.clone(),
        error: e.error.clone(),
        remote_addr: e.remote_addr.clone(),
        tool_description_hash: e.tool_description_hash.clone(),
        labels: e.labels.clone().into_iter().collect(),
        ..scalars(e)
    }
}

/// [`encode`] for a caller done with the event (`ship`): its strings move, none is copied.
pub fn into_proto(e: Event) -> proto::ToolCallEvent {
    let scalars = scalars(&e);
    proto::ToolCallEvent {
        event_id: e.event_id,
        source: e.source,
        method: e.method,
        server: e.server,
        tool: e.tool,
        user: e.user,
        client: e.client,
        conversation_id: e.conversation_id,
        session_id: e.session_id,
        trace_id: e.trace_id,
        span_id: e.span_id,
        arguments_json: arguments_json(&e.arguments),
        result: e.result,
        error: e.error,
        remote_addr: e.remote_addr,
        tool_description_hash: e.tool_description_hash,
        labels: e.labels.into_iter().collect(),
        ..scalars
    }
}

fn arguments_json(arguments: &serde_json::Value) -> String {
    if arguments.is_null() {
        String::new()
    } else {
        arguments.to_string()
    }
}

/// The fields of the protobuf form that are not strings, lists or maps.
fn scalars(e: &Event) -> proto::ToolCallEvent {
    use proto::{Consent as C, Outcome as O, Transport as T};
    let outcome = match e.outcome {
        Outcome::Ok => O::Ok,
        Outcome::Error => O::Error,
        Outcome::Denied => O::Denied,
        Outcome::ConsentDenied => O::ConsentDenied,
        Outcome::Timeout => O::Timeout,
    };
    let consent = match e.consent {
        Consent::NotRequired => C::NotRequired,
        Consent::AllowedOnce => C::AllowedOnce,
        Consent::AllowedAlways => C::AllowedAlways,
        Consent::AutoApproved => C::AutoApproved,
        Consent::Denied => C::Denied,
    };
    let transport = match e.transport {
        Transport::Unknown => T::Unspecified,
        Transport::Stdio => T::Stdio,
        Transport::StreamableHttp => T::StreamableHttp,
        Transport::Sse => T::Sse,
    };
    let a = e.annotations;
    proto::ToolCallEvent {
        schema_version: e.schema_version,
        timestamp_unix_micros: (e.timestamp.unix_timestamp_nanos() / 1000) as i64,
        result_bytes: e.result_bytes,
        outcome: outcome as i32,
        duration_ms: e.duration_ms,
        annotations: if a.is_empty() {
            None
        } else {
            Some(proto::Annotations {
                read_only: a.read_only,
                destructive: a.destructive,
                idempotent: a.idempotent,
                open_world: a.open_world,
            })
        },
        consent: consent as i32,
        transport: transport as i32,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut e = Event::new("e1", "tools/call", "x");
        e.timestamp = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        e.arguments = serde_json::json!({"k": [1, 2]});
        e.outcome = Outcome::Timeout;
        e.consent = Consent::Denied;
        e.transport = Transport::StreamableHttp;
        e.annotations.destructive = Some(false);
        e.labels.insert("a".into(), "b".into());
        assert_eq!(decode(encode(&e)).unwrap(), e);
        assert_eq!(into_proto(e.clone()), encode(&e));
        let start = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        for e in crate::demo::demo_day(3, start, time::Duration::hours(2), 40) {
            assert_eq!(into_proto(e.clone()), encode(&e));
        }
    }

    #[test]
    fn unknown_enum_number_is_named() {
        let p = proto::ToolCallEvent {
            outcome: 42,
            method: "m".into(),
            ..Default::default()
        };
        assert!(decode(p)
            .unwrap_err()
            .reason
            .contains("`outcome` 42 is not a known value"));
    }
}
