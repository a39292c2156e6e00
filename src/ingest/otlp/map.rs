//! From OTLP spans and log records to tool-call [`Event`]s, following the MCP and GenAI
//! semantic conventions (semantic-conventions-genai v0.1.0, "Development" stability; the
//! table is in the README under "OpenTelemetry (OTLP) in").
//!
//! Pure and synchronous: no I/O, no clock, no metrics. What is an audit event is decided here:
//! a span or log record that carries `mcp.method.name` (an MCP request), or one whose
//! `gen_ai.operation.name` is `execute_tool` (a tool execution an agent framework traced
//! without MCP attributes). Everything else (database, HTTP client, model calls...) and MCP
//! notifications are dropped with a [`DropReason`] for the caller to count; nothing is
//! stored by accident. A record that is an audit event but cannot become one (no start time)
//! is returned as an [`Invalid`] so that the export's `partial_success` reports it.
//!
//! Checks on the resulting event (sizes, time window, names) are not made here: they are
//! `validate::check`'s, shared with every other front door.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use time::OffsetDateTime;

use crate::event::{Event, Outcome, Transport, SCHEMA_VERSION};
use crate::ingest::{Incoming, Invalid};

/// The semantic-conventions release this mapping follows (also in the README table).
pub const SEMCONV: &str = "semantic-conventions-genai v0.1.0";

/// Attribute names this mapping reads (the rest become labels).
pub mod attr {
    pub const MCP_METHOD: &str = "mcp.method.name";
    pub const MCP_SESSION: &str = "mcp.session.id";
    pub const MCP_RESOURCE_URI: &str = "mcp.resource.uri";
    pub const OPERATION: &str = "gen_ai.operation.name";
    pub const TOOL: &str = "gen_ai.tool.name";
    pub const PROMPT: &str = "gen_ai.prompt.name";
    pub const CONVERSATION: &str = "gen_ai.conversation.id";
    pub const ARGUMENTS: &str = "gen_ai.tool.call.arguments";
    pub const RESULT: &str = "gen_ai.tool.call.result";
    pub const ERROR_TYPE: &str = "error.type";
    pub const NETWORK_TRANSPORT: &str = "network.transport";
    pub const SERVER_ADDRESS: &str = "server.address";
    pub const CLIENT_ADDRESS: &str = "client.address";
    pub const CLIENT_PORT: &str = "client.port";
    pub const USER_ID: &str = "user.id";
    /// Deprecated in favour of `user.id`, still emitted by older instrumentations.
    pub const ENDUSER_ID: &str = "enduser.id";
    pub const SERVICE_NAME: &str = "service.name";
}

/// The `gen_ai.operation.name` of a tool execution.
const EXECUTE_TOOL: &str = "execute_tool";

/// Resource attributes kept as labels (the rest describe the SDK or the host and would crowd
/// out the span's own attributes).
const RESOURCE_LABELS: &[&str] = &[
    "service.namespace",
    "service.version",
    "service.instance.id",
    "deployment.environment.name",
    "host.name",
];

/// Labels an event may carry (`validate::check` refuses more).
const MAX_LABELS: usize = 64;
/// Longest label key `validate::check` accepts.
const MAX_LABEL_KEY: usize = 128;

/// Why a span or log record was not turned into an event (a metric label: a fixed vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// Neither an MCP request nor a tool execution.
    NotMcp,
    /// An MCP notification (`notifications/...`): not a request, nothing was called.
    Notification,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::NotMcp => "not_mcp",
            DropReason::Notification => "mcp_notification",
        }
    }
}

/// The events of one export, and what was dropped.
#[derive(Default)]
pub struct Mapped {
    /// One entry per audit span or record, in request order; a record that could not be
    /// mapped is an `Err` here, to be rejected by ingest with its reason.
    pub events: Vec<Incoming>,
    /// Dropped spans or records per reason.
    pub dropped: BTreeMap<DropReason, u64>,
}

impl Mapped {
    fn push(&mut self, r: Result<Event, Invalid>, wire_bytes: usize) {
        let id_hint = match &r {
            Ok(ev) => ev.event_id.clone(),
            Err(_) => String::new(),
        };
        self.events.push(Incoming {
            decoded: r,
            wire_bytes,
            id_hint,
        });
    }

    fn count_drop(&mut self, why: DropReason) {
        *self.dropped.entry(why).or_default() += 1;
    }

    /// Maps the spans or log records of one resource, scope by scope; `record` says what
    /// one of them offers the mapping.
    fn add_resource<'a, T: Message + 'a>(
        &mut self,
        resource: Option<&'a Resource>,
        scopes: impl Iterator<Item = (Option<&'a InstrumentationScope>, &'a [T])>,
        record: impl Fn(&'a T, &'a str, &'a [KeyValue], &'a str) -> Record<'a>,
    ) {
        let resource = resource_attributes(resource);
        let service = service_name(resource);
        for (scope, items) in scopes {
            let scope = scope.map_or("", |s| s.name.as_str());
            for item in items {
                match map(&record(item, service, resource, scope)) {
                    Err(why) => self.count_drop(why),
                    Ok(r) => self.push(r, item.encoded_len()),
                }
            }
        }
    }
}

/// Who reported the record: a span's kind decides whether the resource is the MCP server or
/// the client (host or gateway) that called one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// What every source record (span or log record) offers the mapping.
struct Record<'a> {
    service: &'a str,
    resource: &'a [KeyValue],
    scope: &'a str,
    name: &'a str,
    side: Side,
    kind: &'static str,
    attributes: &'a [KeyValue],
    trace_id: &'a [u8],
    span_id: &'a [u8],
    start_ns: u64,
    end_ns: Option<u64>,
    /// The span status: `Some(message)` when it is ERROR.
    status_error: Option<&'a str>,
}

/// The events of a trace export.
pub fn traces(req: &ExportTraceServiceRequest) -> Mapped {
    let mut out = Mapped::default();
    for rs in &req.resource_spans {
        let scopes = rs
            .scope_spans
            .iter()
            .map(|ss| (ss.scope.as_ref(), ss.spans.as_slice()));
        out.add_resource(rs.resource.as_ref(), scopes, span_record);
    }
    out
}

/// The events of a logs export: log records carrying the same attributes as the spans.
pub fn logs(req: &ExportLogsServiceRequest) -> Mapped {
    let mut out = Mapped::default();
    for rl in &req.resource_logs {
        let scopes = rl
            .scope_logs
            .iter()
            .map(|sl| (sl.scope.as_ref(), sl.log_records.as_slice()));
        out.add_resource(rl.resource.as_ref(), scopes, log_record);
    }
    out
}

fn resource_attributes(r: Option<&Resource>) -> &[KeyValue] {
    r.map_or(&[], |r| r.attributes.as_slice())
}

fn service_name(resource: &[KeyValue]) -> &str {
    find(resource, attr::SERVICE_NAME)
        .and_then(as_str)
        .unwrap_or("")
}

fn span_record<'a>(
    span: &'a Span,
    service: &'a str,
    resource: &'a [KeyValue],
    scope: &'a str,
) -> Record<'a> {
    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
    let side = match kind {
        SpanKind::Server | SpanKind::Consumer => Side::Server,
        SpanKind::Client | SpanKind::Producer => Side::Client,
        // INTERNAL or unspecified: a tool execution inside an agent is the caller's side, as
        // is anything naming the server it called; MCP attributes without one are a server's.
        SpanKind::Internal | SpanKind::Unspecified => {
            if find(&span.attributes, attr::SERVER_ADDRESS).is_none()
                && find(&span.attributes, attr::MCP_METHOD).is_some()
            {
                Side::Server
            } else {
                Side::Client
            }
        }
    };
    let kind_name = match kind {
        SpanKind::Server => "server",
        SpanKind::Client => "client",
        SpanKind::Internal => "internal",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
        SpanKind::Unspecified => "unspecified",
    };
    let status_error = span
        .status
        .as_ref()
        .filter(|s| s.code == StatusCode::Error as i32)
        .map(|s| s.message.as_str());
    Record {
        service,
        resource,
        scope,
        name: &span.name,
        side,
        kind: kind_name,
        attributes: &span.attributes,
        trace_id: &span.trace_id,
        span_id: &span.span_id,
        start_ns: span.start_time_unix_nano,
        end_ns: Some(span.end_time_unix_nano),
        status_error,
    }
}

fn log_record<'a>(
    log: &'a LogRecord,
    service: &'a str,
    resource: &'a [KeyValue],
    scope: &'a str,
) -> Record<'a> {
    // A log record has no kind: one that names the server it called is a client's.
    let side = if find(&log.attributes, attr::SERVER_ADDRESS).is_some() {
        Side::Client
    } else {
        Side::Server
    };
    let start_ns = if log.time_unix_nano != 0 {
        log.time_unix_nano
    } else {
        log.observed_time_unix_nano
    };
    Record {
        service,
        resource,
        scope,
        name: &log.event_name,
        side,
        kind: "log",
        attributes: &log.attributes,
        trace_id: &log.trace_id,
        span_id: &log.span_id,
        start_ns,
        end_ns: None,
        status_error: None,
    }
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn as_str(v: &AnyValue) -> Option<&str> {
    match &v.value {
        Some(Value::StringValue(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// An attribute as text: strings as they are, scalars printed, arrays and maps as JSON.
fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        None => String::new(),
        Some(_) => match json(v) {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
    }
}

/// An attribute as JSON (bytes as lowercase hex: OTLP attributes rarely carry them and
/// text survives scrubbing and search).
pub fn json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.value {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(J::Number)
            .unwrap_or_else(|| J::String(d.to_string())),
        Some(Value::BytesValue(b)) => J::String(hex::encode(b)),
        // An index into a profiles dictionary: meaningless outside a profiles export.
        Some(Value::StringValueStrindex(_)) => J::Null,
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(json).collect()),
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, json)))
                .collect(),
        ),
    }
}

/// Whether an id is present: the right length and not all zero (the OTLP "invalid" id).
fn valid_id(id: &[u8], len: usize) -> bool {
    id.len() == len && id.iter().any(|b| *b != 0)
}

/// The event of one record, or why it is not one.
fn map(r: &Record<'_>) -> Result<Result<Event, Invalid>, DropReason> {
    let attrs = r.attributes;
    let get = |key| find(attrs, key).and_then(as_str).filter(|s| !s.is_empty());
    let method = match get(attr::MCP_METHOD) {
        Some(m) if m.starts_with("notifications/") => return Err(DropReason::Notification),
        Some(m) => m.to_string(),
        None if get(attr::OPERATION) == Some(EXECUTE_TOOL) => "tools/call".to_string(),
        None => return Err(DropReason::NotMcp),
    };
    Ok(event(r, method))
}

fn event(r: &Record<'_>, method: String) -> Result<Event, Invalid> {
    let attrs = r.attributes;
    let get = |key| find(attrs, key).and_then(as_str).filter(|s| !s.is_empty());
    let timestamp = if r.start_ns == 0 {
        return Err(Invalid::new(
            "missing_field",
            if r.end_ns.is_some() {
                "span `startTimeUnixNano` is 0: the exporter must set the span's start time"
            } else {
                "log record has neither `timeUnixNano` nor `observedTimeUnixNano`: the exporter must set one"
            },
        ));
    } else {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.start_ns)).map_err(|_| {
            Invalid::new(
                "timestamp",
                "the start time is beyond the year 9999: check the exporter's clock",
            )
        })?
    };
    let duration_ms = match r.end_ns {
        Some(end) if end > r.start_ns => (end - r.start_ns) / 1_000_000,
        _ => 0,
    };
    let (trace_id, span_id) = if valid_id(r.trace_id, 16) && valid_id(r.span_id, 8) {
        (hex::encode(r.trace_id), hex::encode(r.span_id))
    } else {
        (String::new(), String::new())
    };
    // A span is reported once per exporter retry; its ids make the retry a duplicate, never a
    // second event. A log record has no identity of its own (several may share a span), so
    // the server assigns its id.
    let event_id = if r.end_ns.is_some() && !span_id.is_empty() {
        format!("otel-{trace_id}-{span_id}")
    } else {
        String::new()
    };
    let tool = get(attr::TOOL)
        .or_else(|| get(attr::PROMPT))
        .or_else(|| get(attr::MCP_RESOURCE_URI))
        .map(str::to_string)
        .unwrap_or_else(|| target_from_name(r.name, &method));
    let (server, client, remote_addr) = match r.side {
        Side::Server => {
            let addr = match (get(attr::CLIENT_ADDRESS), find(attrs, attr::CLIENT_PORT)) {
                (Some(a), Some(p)) => format!("{a}:{}", text(p)),
                (Some(a), None) => a.to_string(),
                _ => String::new(),
            };
            (r.service.to_string(), String::new(), addr)
        }
        Side::Client => (
            get(attr::SERVER_ADDRESS).unwrap_or("").to_string(),
            r.service.to_string(),
            String::new(),
        ),
    };
    let transport = match get(attr::NETWORK_TRANSPORT) {
        Some("pipe") => Transport::Stdio,
        // MCP's only network transport is HTTP (streamable HTTP, or SSE on old servers, which
        // spans do not tell apart).
        Some("tcp" | "quic") => Transport::StreamableHttp,
        _ => Transport::Unknown,
    };
    let arguments = match find(attrs, attr::ARGUMENTS) {
        None => serde_json::Value::Null,
        Some(v) => arguments(v),
    };
    let result = match find(attrs, attr::RESULT) {
        None => String::new(),
        Some(v) => match json(v) {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
    };
    let error_type = get(attr::ERROR_TYPE);
    let (outcome, error) = match (error_type, r.status_error) {
        (None, None) => (Outcome::Ok, String::new()),
        (kind, message) => {
            let message = message.filter(|m| !m.is_empty());
            let outcome = if kind == Some("timeout") {
                Outcome::Timeout
            } else {
                Outcome::Error
            };
            let error = match (kind, message) {
                (Some(k), Some(m)) => format!("{k}: {m}"),
                (Some(k), None) => k.to_string(),
                (None, Some(m)) => m.to_string(),
                (None, None) => "span status is ERROR".to_string(),
            };
            (outcome, error)
        }
    };
    let mut ev = Event::new(event_id, &method, &tool);
    ev.schema_version = SCHEMA_VERSION;
    ev.timestamp = timestamp;
    ev.source = r.service.to_string();
    ev.server = server;
    ev.client = client;
    ev.user = get(attr::USER_ID)
        .or_else(|| get(attr::ENDUSER_ID))
        .unwrap_or("")
        .to_string();
    ev.conversation_id = get(attr::CONVERSATION).unwrap_or("").to_string();
    ev.session_id = get(attr::MCP_SESSION).unwrap_or("").to_string();
    ev.trace_id = trace_id;
    ev.span_id = span_id;
    ev.result_bytes = result.len() as u64;
    ev.result = result;
    ev.arguments = arguments;
    ev.outcome = outcome;
    ev.error = error;
    ev.duration_ms = duration_ms;
    ev.transport = transport;
    ev.remote_addr = remote_addr;
    ev.labels = labels(r);
    Ok(ev)
}

/// `gen_ai.tool.call.arguments`: an object as it is, a JSON text of an object parsed (the
/// conventions allow either), anything else kept under `value` (events hold named arguments).
fn arguments(v: &AnyValue) -> serde_json::Value {
    let value = match json(v) {
        serde_json::Value::String(s) => {
            serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s))
        }
        other => other,
    };
    match value {
        serde_json::Value::Object(_) | serde_json::Value::Null => value,
        other => serde_json::json!({ "value": other }),
    }
}

/// The target of a span named `{mcp.method.name} {target}` (clients may prefix it, as the
/// Python SDK's `MCP send tools/call add`) or `execute_tool {gen_ai.tool.name}`, for
/// producers that leave `gen_ai.tool.name` off their spans.
fn target_from_name(name: &str, method: &str) -> String {
    let after = |op: &str| {
        let at = name.find(op)?;
        name[at + op.len()..].strip_prefix(' ').map(str::trim)
    };
    after(method)
        .or_else(|| after(EXECUTE_TOOL))
        .unwrap_or("")
        .to_string()
}

/// Attributes the event has fields for; every other attribute becomes a label.
const MAPPED: &[&str] = &[
    attr::MCP_METHOD,
    attr::MCP_SESSION,
    attr::TOOL,
    attr::CONVERSATION,
    attr::ARGUMENTS,
    attr::RESULT,
    attr::NETWORK_TRANSPORT,
    attr::USER_ID,
    attr::ENDUSER_ID,
];

fn labels(r: &Record<'_>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("otel.span.kind".to_string(), r.kind.to_string());
    if !r.scope.is_empty() {
        labels.insert("otel.scope.name".to_string(), r.scope.to_string());
    }
    if !r.name.is_empty() {
        let key = if r.end_ns.is_some() {
            "otel.span.name"
        } else {
            "otel.event.name"
        };
        labels.insert(key.to_string(), r.name.to_string());
    }
    for key in RESOURCE_LABELS {
        if let Some(v) = find(r.resource, key) {
            labels.insert((*key).to_string(), text(v));
        }
    }
    let mut left_out = 0usize;
    for kv in r.attributes {
        if MAPPED.contains(&kv.key.as_str()) || kv.key.is_empty() || kv.key.len() > MAX_LABEL_KEY {
            continue;
        }
        // One slot stays free to say how many were left out.
        if labels.len() >= MAX_LABELS - 1 && !labels.contains_key(&kv.key) {
            left_out += 1;
            continue;
        }
        let value = kv.value.as_ref().map(text).unwrap_or_default();
        labels.insert(kv.key.clone(), value);
    }
    if left_out > 0 {
        labels.insert("otel.labels_left_out".to_string(), left_out.to_string());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};

    fn s(v: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(Value::StringValue(v.to_string())),
        })
    }

    fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: k.to_string(),
            value: v,
            ..Default::default()
        }
    }

    const START: u64 = 1_764_000_000_000_000_000;

    fn span(kind: SpanKind, name: &str, attrs: Vec<KeyValue>) -> Span {
        Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
            name: name.to_string(),
            kind: kind as i32,
            start_time_unix_nano: START,
            end_time_unix_nano: START + 42_500_000,
            attributes: attrs,
            ..Default::default()
        }
    }

    fn export(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s(service)),
                        kv("service.version", s("1.2.3")),
                        kv("telemetry.sdk.language", s("python")),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "mcp-python-sdk".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn one(req: &ExportTraceServiceRequest) -> Event {
        let mut m = traces(req);
        assert_eq!(m.events.len(), 1, "dropped: {:?}", m.dropped);
        match m.events.remove(0).decoded {
            Ok(ev) => ev,
            Err(e) => panic!("not mapped: {e:?}"),
        }
    }

    /// A server span as the Python SDK 2.x emits it for a tool call.
    fn sdk_server_span() -> Span {
        span(
            SpanKind::Server,
            "tools/call add",
            vec![
                kv("mcp.method.name", s("tools/call")),
                kv("mcp.protocol.version", s("2025-11-25")),
                kv("jsonrpc.request.id", s("7")),
                kv("gen_ai.operation.name", s("execute_tool")),
                kv("gen_ai.tool.name", s("add")),
            ],
        )
    }

    #[test]
    fn server_span_of_the_python_sdk() {
        let ev = one(&export("calc-server", vec![sdk_server_span()]));
        assert_eq!(ev.method, "tools/call");
        assert_eq!(ev.tool, "add");
        assert_eq!(ev.server, "calc-server");
        assert_eq!(ev.source, "calc-server");
        assert_eq!(ev.client, "");
        assert_eq!(ev.outcome, Outcome::Ok);
        assert_eq!(ev.duration_ms, 42);
        assert_eq!(ev.timestamp.unix_timestamp_nanos(), i128::from(START));
        assert_eq!(ev.trace_id, "ab".repeat(16));
        assert_eq!(ev.span_id, "0102030405060708");
        assert_eq!(
            ev.event_id,
            format!("otel-{}-0102030405060708", "ab".repeat(16))
        );
        assert_eq!(ev.labels["jsonrpc.request.id"], "7");
        assert_eq!(ev.labels["mcp.protocol.version"], "2025-11-25");
        assert_eq!(ev.labels["gen_ai.operation.name"], "execute_tool");
        assert_eq!(ev.labels["otel.span.kind"], "server");
        assert_eq!(ev.labels["otel.scope.name"], "mcp-python-sdk");
        assert_eq!(ev.labels["service.version"], "1.2.3");
        assert!(!ev.labels.contains_key("telemetry.sdk.language"));
        assert!(!ev.labels.contains_key("gen_ai.tool.name"));
    }

    #[test]
    fn client_span_names_the_server_by_address_and_the_tool_by_span_name() {
        // The Python SDK's client span carries no gen_ai.tool.name.
        let mut sp = span(
            SpanKind::Client,
            "MCP send tools/call search_repos",
            vec![
                kv("mcp.method.name", s("tools/call")),
                kv("jsonrpc.request.id", s("3")),
                kv("server.address", s("github-mcp.internal")),
                kv("network.transport", s("tcp")),
                kv("mcp.session.id", s("191c4850af6c49e0")),
                kv("gen_ai.conversation.id", s("conv-9")),
            ],
        );
        sp.status = Some(Status {
            code: StatusCode::Error as i32,
            message: "Invalid params".into(),
        });
        sp.attributes.push(kv("error.type", s("-32602")));
        let ev = one(&export("claude-desktop", vec![sp]));
        assert_eq!(ev.tool, "search_repos");
        assert_eq!(ev.server, "github-mcp.internal");
        assert_eq!(ev.client, "claude-desktop");
        assert_eq!(ev.transport, Transport::StreamableHttp);
        assert_eq!(ev.session_id, "191c4850af6c49e0");
        assert_eq!(ev.conversation_id, "conv-9");
        assert_eq!(ev.outcome, Outcome::Error);
        assert_eq!(ev.error, "-32602: Invalid params");
        assert_eq!(ev.labels["error.type"], "-32602");
        assert_eq!(ev.labels["server.address"], "github-mcp.internal");
    }

    #[test]
    fn tool_error_and_timeout() {
        let mut sp = sdk_server_span();
        sp.attributes.push(kv("error.type", s("tool_error")));
        sp.status = Some(Status {
            code: StatusCode::Error as i32,
            message: String::new(),
        });
        let ev = one(&export("s", vec![sp]));
        assert_eq!(
            (ev.outcome, ev.error.as_str()),
            (Outcome::Error, "tool_error")
        );

        let mut sp = sdk_server_span();
        sp.attributes.push(kv("error.type", s("timeout")));
        let ev = one(&export("s", vec![sp]));
        assert_eq!(ev.outcome, Outcome::Timeout);

        // An ERROR status alone is an error too.
        let mut sp = sdk_server_span();
        sp.status = Some(Status {
            code: StatusCode::Error as i32,
            message: "boom".into(),
        });
        let ev = one(&export("s", vec![sp]));
        assert_eq!((ev.outcome, ev.error.as_str()), (Outcome::Error, "boom"));
    }

    #[test]
    fn opted_in_arguments_and_result() {
        let mut sp = sdk_server_span();
        sp.attributes.push(kv(
            "gen_ai.tool.call.arguments",
            s(r#"{"a": 1, "token": "x"}"#),
        ));
        sp.attributes.push(kv("gen_ai.tool.call.result", s("3")));
        let ev = one(&export("s", vec![sp]));
        assert_eq!(ev.arguments, serde_json::json!({"a": 1, "token": "x"}));
        assert_eq!((ev.result.as_str(), ev.result_bytes), ("3", 1));
        assert!(!ev.labels.contains_key("gen_ai.tool.call.arguments"));

        // Structured arguments (a kvlist), and a non-object kept under `value`.
        let mut sp = sdk_server_span();
        sp.attributes.push(kv(
            "gen_ai.tool.call.arguments",
            Some(AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![kv("path", s("/etc/passwd"))],
                })),
            }),
        ));
        sp.attributes.push(kv(
            "gen_ai.tool.call.result",
            Some(AnyValue {
                value: Some(Value::ArrayValue(ArrayValue {
                    values: vec![s("a").unwrap_or_default()],
                })),
            }),
        ));
        let ev = one(&export("s", vec![sp]));
        assert_eq!(ev.arguments, serde_json::json!({"path": "/etc/passwd"}));
        assert_eq!(ev.result, r#"["a"]"#);
        let mut sp = sdk_server_span();
        sp.attributes
            .push(kv("gen_ai.tool.call.arguments", s("not json")));
        let ev = one(&export("s", vec![sp]));
        assert_eq!(ev.arguments, serde_json::json!({"value": "not json"}));
    }

    #[test]
    fn other_methods_name_their_target() {
        let sp = span(
            SpanKind::Server,
            "resources/read",
            vec![
                kv("mcp.method.name", s("resources/read")),
                kv("mcp.resource.uri", s("file:///tmp/a.txt")),
                kv("network.transport", s("pipe")),
            ],
        );
        let ev = one(&export("fs", vec![sp]));
        assert_eq!(
            (ev.method.as_str(), ev.tool.as_str()),
            ("resources/read", "file:///tmp/a.txt")
        );
        assert_eq!(ev.transport, Transport::Stdio);
        let sp = span(
            SpanKind::Server,
            "prompts/get review",
            vec![
                kv("mcp.method.name", s("prompts/get")),
                kv("gen_ai.prompt.name", s("review")),
            ],
        );
        assert_eq!(one(&export("p", vec![sp])).tool, "review");
        let sp = span(
            SpanKind::Server,
            "tools/list",
            vec![kv("mcp.method.name", s("tools/list"))],
        );
        let ev = one(&export("p", vec![sp]));
        assert_eq!((ev.method.as_str(), ev.tool.as_str()), ("tools/list", ""));
    }

    #[test]
    fn execute_tool_spans_without_mcp_attributes_are_tool_calls() {
        let sp = span(
            SpanKind::Internal,
            "execute_tool get_weather",
            vec![
                kv("gen_ai.operation.name", s("execute_tool")),
                kv("gen_ai.tool.name", s("get_weather")),
                kv("gen_ai.tool.call.id", s("call_1")),
                kv("user.id", s("alice")),
            ],
        );
        let ev = one(&export("travel-agent", vec![sp]));
        assert_eq!(
            (ev.method.as_str(), ev.tool.as_str()),
            ("tools/call", "get_weather")
        );
        assert_eq!(ev.client, "travel-agent");
        assert_eq!(ev.server, "");
        assert_eq!(ev.user, "alice");
        assert_eq!(ev.labels["gen_ai.tool.call.id"], "call_1");
    }

    #[test]
    fn the_span_name_names_the_tool_when_no_attribute_does() {
        assert_eq!(
            target_from_name("MCP send tools/call add", "tools/call"),
            "add"
        );
        assert_eq!(target_from_name("tools/call add", "tools/call"), "add");
        assert_eq!(
            target_from_name("execute_tool get_weather", "tools/call"),
            "get_weather"
        );
        assert_eq!(target_from_name("tools/list", "tools/list"), "");
        assert_eq!(target_from_name("tools/callx y", "tools/call"), "");
        let sp = span(
            SpanKind::Internal,
            "execute_tool get_weather",
            vec![kv("gen_ai.operation.name", s("execute_tool"))],
        );
        assert_eq!(one(&export("agent", vec![sp])).tool, "get_weather");
    }

    #[test]
    fn other_spans_and_notifications_are_dropped_and_counted() {
        let db = span(
            SpanKind::Client,
            "SELECT users",
            vec![kv("db.system.name", s("postgresql"))],
        );
        let chat = span(
            SpanKind::Client,
            "chat gpt-5",
            vec![kv("gen_ai.operation.name", s("chat"))],
        );
        let note = span(
            SpanKind::Server,
            "notifications/initialized",
            vec![kv("mcp.method.name", s("notifications/initialized"))],
        );
        let m = traces(&export("s", vec![db, sdk_server_span(), chat, note]));
        assert_eq!(m.events.len(), 1);
        assert_eq!(m.dropped[&DropReason::NotMcp], 2);
        assert_eq!(m.dropped[&DropReason::Notification], 1);
    }

    #[test]
    fn a_span_without_start_time_is_an_invalid_event_not_a_drop() {
        let mut sp = sdk_server_span();
        sp.start_time_unix_nano = 0;
        let m = traces(&export("s", vec![sp]));
        let err = m.events[0].decoded.as_ref().err().map(|e| e.reason.clone());
        assert!(err.is_some_and(|r| r.contains("startTimeUnixNano")));
    }

    #[test]
    fn missing_or_zero_ids_leave_the_event_id_to_the_server() {
        let mut sp = sdk_server_span();
        sp.trace_id = vec![0; 16];
        let ev = one(&export("s", vec![sp]));
        assert_eq!((ev.event_id.as_str(), ev.trace_id.as_str()), ("", ""));
    }

    #[test]
    fn labels_stay_within_the_limit() {
        let mut sp = sdk_server_span();
        for i in 0..100 {
            sp.attributes.push(kv(&format!("custom.{i:03}"), s("v")));
        }
        sp.attributes.push(kv(&"k".repeat(200), s("v")));
        let ev = one(&export("s", vec![sp]));
        assert_eq!(ev.labels.len(), MAX_LABELS);
        assert!(ev.labels.keys().all(|k| k.len() <= MAX_LABEL_KEY));
        assert!(ev.labels["otel.labels_left_out"]
            .parse::<usize>()
            .is_ok_and(|n| n > 0));
    }

    #[test]
    fn log_records_with_mcp_attributes_become_events() {
        let record = |attrs| LogRecord {
            time_unix_nano: START,
            event_name: "mcp.tool.call".into(),
            attributes: attrs,
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("gateway"))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        record(vec![
                            kv("mcp.method.name", s("tools/call")),
                            kv("gen_ai.tool.name", s("delete_file")),
                            kv("server.address", s("fs")),
                            kv("error.type", s("tool_error")),
                        ]),
                        record(vec![kv("http.request.method", s("GET"))]),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let mut m = logs(&req);
        assert_eq!(m.dropped[&DropReason::NotMcp], 1);
        let ev = match m.events.remove(0).decoded {
            Ok(ev) => ev,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(
            (ev.tool.as_str(), ev.server.as_str(), ev.client.as_str()),
            ("delete_file", "fs", "gateway")
        );
        assert_eq!(ev.outcome, Outcome::Error);
        assert_eq!(ev.event_id, "");
        assert_eq!(ev.trace_id, "01".repeat(16));
        assert_eq!(ev.labels["otel.event.name"], "mcp.tool.call");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = Option<AnyValue>> {
            prop_oneof![
                Just(None),
                ".{0,40}".prop_map(|v| s(&v)),
                any::<i64>().prop_map(|i| Some(AnyValue {
                    value: Some(Value::IntValue(i))
                })),
                any::<f64>().prop_map(|d| Some(AnyValue {
                    value: Some(Value::DoubleValue(d))
                })),
                proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| Some(AnyValue {
                    value: Some(Value::BytesValue(b))
                })),
            ]
        }

        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::sample::select(vec![
                    attr::MCP_METHOD,
                    attr::OPERATION,
                    attr::TOOL,
                    attr::ARGUMENTS,
                    attr::RESULT,
                    attr::ERROR_TYPE,
                    attr::NETWORK_TRANSPORT,
                    attr::CLIENT_ADDRESS,
                    attr::CLIENT_PORT,
                    attr::SERVER_ADDRESS,
                ])
                .prop_map(str::to_string),
                ".{0,140}",
            ]
        }

        proptest! {
            /// Whatever a span holds, mapping it does not panic, and what it makes keeps to
            /// the label limits that ingest checks.
            #[test]
            fn any_span_maps_without_panicking(
                kind in -2i32..8,
                start in any::<u64>(),
                end in any::<u64>(),
                trace_id in proptest::collection::vec(any::<u8>(), 0..20),
                span_id in proptest::collection::vec(any::<u8>(), 0..10),
                name in ".{0,40}",
                attrs in proptest::collection::vec((key(), value()), 0..90),
                status in proptest::option::of((0i32..4, ".{0,20}")),
            ) {
                let span = Span {
                    trace_id,
                    span_id,
                    name,
                    kind,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes: attrs.iter().map(|(k, v)| kv(k, v.clone())).collect(),
                    status: status.map(|(code, message)| Status { code, message }),
                    ..Default::default()
                };
                for item in traces(&export("svc", vec![span])).events {
                    if let Ok(ev) = item.decoded {
                        prop_assert!(ev.labels.len() <= MAX_LABELS);
                        prop_assert!(ev.labels.keys().all(|k| !k.is_empty() && k.len() <= MAX_LABEL_KEY));
                        prop_assert!(ev.arguments.is_null() || ev.arguments.is_object());
                    }
                }
            }
        }
    }
}
