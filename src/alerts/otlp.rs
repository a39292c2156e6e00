//! The `otlp` webhook format: an alert notification as an OTLP/JSON logs export, so that a
//! `[[webhooks]]` destination can be an OpenTelemetry collector's (or any OTLP backend's)
//! `/v1/logs`, delivered from the same durable outbox, with the same retries, as the other
//! formats.
//!
//! One log record per notification, shaped as the GenAI guardrail result event of
//! semantic-conventions-genai (`gen_ai.guardrail.result`, "Development" stability): the
//! component is `mcp-audit`, the policy is the rule, the provider-native result is the rule's
//! severity, the reason its title; `security.policy.rule.id` names the rule too. When the
//! newest event of the alert came in over OTLP (its id is `otel-{trace}-{span}`), the record
//! carries that trace and span id, so the finding shows up on the trace of the tool call.
//! Everything mcp-audit specific is under `mcp_audit.*`. The explanation (already scrubbed,
//! as every stored string) is the body; `gen_ai.guardrail.result.reason` stays the rule's
//! title, a low-cardinality string as the conventions ask.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::Alert;
use crate::rules::Severity;

/// OTel `SeverityNumber` of a rule severity (INFO, INFO2, WARN, ERROR, FATAL).
fn severity_number(s: Severity) -> u8 {
    match s {
        Severity::Informational => 9,
        Severity::Low => 10,
        Severity::Medium => 13,
        Severity::High => 17,
        Severity::Critical => 21,
    }
}

fn nanos(t: OffsetDateTime) -> String {
    t.unix_timestamp_nanos().max(0).to_string()
}

fn attr(key: &str, value: Value) -> Value {
    let value = match value {
        Value::String(s) => json!({ "stringValue": s }),
        Value::Number(n) => json!({ "intValue": n.to_string() }),
        Value::Array(items) => json!({ "arrayValue": { "values": items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => json!({ "stringValue": s }),
                other => json!({ "stringValue": other.to_string() }),
            })
            .collect::<Vec<_>>() } }),
        other => json!({ "stringValue": other.to_string() }),
    };
    json!({ "key": key, "value": value })
}

/// The trace and span id in an event id that the OTLP receiver made (`otel-{32 hex}-{16 hex}`).
fn trace_of(event_id: &str) -> Option<(&str, &str)> {
    let rest = event_id.strip_prefix("otel-")?;
    let (trace, span) = rest.split_once('-')?;
    let hex = |s: &str, n| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(trace, 32) && hex(span, 16)).then_some((trace, span))
}

/// The OTLP/JSON body of a notification of `a` (`kind`: `firing`, `resolved` or `test`).
pub fn render(a: &Alert, kind: &str, link: &str, now: OffsetDateTime) -> Value {
    let status = if kind == "resolved" {
        "resolved"
    } else {
        "firing"
    };
    let mut record = json!({
        "timeUnixNano": nanos(a.last_seen),
        "observedTimeUnixNano": nanos(now),
        "severityNumber": severity_number(a.severity),
        "severityText": a.severity.as_str().to_uppercase(),
        "eventName": "gen_ai.guardrail.result",
        "body": { "stringValue": a.explanations.back().cloned().unwrap_or_else(|| a.title.clone()) },
        "attributes": [
            attr("gen_ai.guardrail.component.name", json!("mcp-audit")),
            attr("gen_ai.guardrail.policy.id", json!(a.rule)),
            attr("gen_ai.guardrail.result.type", json!("severity")),
            attr("gen_ai.guardrail.result.value", json!(a.severity.as_str())),
            attr("gen_ai.guardrail.result.reason", json!(a.title)),
            attr("gen_ai.guardrail.source", json!("tool_call")),
            attr("security.policy.rule.id", json!(a.rule)),
            attr("mcp_audit.alert.id", json!(a.id)),
            attr("mcp_audit.alert.status", json!(status)),
            attr("mcp_audit.notification", json!(kind)),
            attr("mcp_audit.tenant", json!(a.tenant)),
            attr("mcp_audit.group_key", json!(a.group_key)),
            attr("mcp_audit.tags", json!(a.tags)),
            attr("mcp_audit.finding.count", json!(a.count)),
            attr("mcp_audit.event_ids", json!(a.event_ids)),
            attr("mcp_audit.link", json!(link)),
        ],
    });
    if let Some((trace, span)) = a.event_ids.back().and_then(|id| trace_of(id)) {
        record["traceId"] = json!(trace);
        record["spanId"] = json!(span);
    }
    json!({
        "resourceLogs": [{
            "resource": { "attributes": [attr("service.name", json!("mcp-audit"))] },
            "scopeLogs": [{
                "scope": { "name": "mcp-audit.rules" },
                "logRecords": [record],
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::otlp::json as otlp_json;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;

    #[test]
    fn ids_of_otlp_events_only() {
        let (t, s) = ("ab".repeat(16), "cd".repeat(8));
        assert_eq!(
            trace_of(&format!("otel-{t}-{s}")),
            Some((t.as_str(), s.as_str()))
        );
        assert_eq!(trace_of("otel-xyz-12"), None);
        assert_eq!(trace_of("01J9Z0A"), None);
    }

    #[test]
    fn a_notification_is_a_valid_otlp_json_logs_export() {
        let mut a: Alert = serde_json::from_value(json!({
            "id": "al-1", "tenant": "acme", "rule": "mcp-path-traversal", "title": "Path traversal in tool arguments",
            "severity": "high", "tags": ["attack.t1083"], "group_key": "user=dave", "status": "firing",
            "first_seen": "2026-11-27T10:00:00Z", "last_seen": "2026-11-27T10:05:00Z",
            "updated_at": "2026-11-27T10:05:00Z", "count": 3, "suppressed_count": 0,
            "finding_ids": ["f1"], "event_ids": [], "explanations": ["dave read ../../etc/shadow"],
            "notifications": 0
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        a.event_ids
            .push_back(format!("otel-{}-{}", "0a".repeat(16), "0b".repeat(8)));
        let body = render(
            &a,
            "firing",
            "http://x/#/alerts/al-1",
            OffsetDateTime::UNIX_EPOCH,
        );
        // It decodes as OTLP/JSON by our own receiver's strict rules.
        let req = otlp_json::logs(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let r = &req.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(r.event_name, "gen_ai.guardrail.result");
        assert_eq!(r.severity_number, 17);
        assert_eq!(hex::encode(&r.trace_id), "0a".repeat(16));
        assert_eq!(hex::encode(&r.span_id), "0b".repeat(8));
        let get = |k: &str| {
            r.attributes
                .iter()
                .find(|kv| kv.key == k)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        assert_eq!(
            get("security.policy.rule.id"),
            Some(Any::StringValue("mcp-path-traversal".into()))
        );
        assert_eq!(
            get("gen_ai.guardrail.result.value"),
            Some(Any::StringValue("high".into()))
        );
        assert_eq!(get("mcp_audit.finding.count"), Some(Any::IntValue(3)));
        assert!(
            matches!(get("mcp_audit.event_ids"), Some(Any::ArrayValue(v)) if v.values.len() == 1)
        );
    }
}
