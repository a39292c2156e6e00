//! OTLP/JSON: the JSON encoding of the trace and logs export requests, decoded into the same
//! protobuf types as OTLP/protobuf, and the JSON answers.
//!
//! OTLP/JSON is the protobuf JSON mapping with the OTLP exceptions, all followed here:
//! keys are lowerCamelCase field names (the original snake_case names are not keys); unknown
//! keys are ignored; `traceId`, `spanId` and `parentSpanId` are hex strings (either case), not
//! base64; enum fields (`kind`, `code`, `severityNumber`) are integers only; 64-bit integers
//! may be JSON numbers or decimal strings; `bytesValue` is base64; `null` is the field's
//! default. Only the fields the mapping reads (and their neighbours needed to keep a span's
//! size honest) are decoded: span events and links are skipped.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Decodes an OTLP/JSON trace export; the error names where the body is wrong.
pub fn traces(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    let req: TracesRequest = decode(body)?;
    Ok(ExportTraceServiceRequest {
        resource_spans: req.resource_spans.into_iter().map(Into::into).collect(),
    })
}

/// Decodes an OTLP/JSON logs export.
pub fn logs(body: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    let req: LogsRequest = decode(body)?;
    Ok(ExportLogsServiceRequest {
        resource_logs: req.resource_logs.into_iter().map(Into::into).collect(),
    })
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("the body is not OTLP/JSON: {inner}")
        } else {
            format!("the body is not OTLP/JSON: at `{path}`: {inner}")
        }
    })?;
    de.end()
        .map_err(|e| format!("the body is not OTLP/JSON: {e}"))?;
    Ok(value)
}

/// The JSON answer to a trace export: `{}` on full success, else `partialSuccess`.
pub fn traces_response(rejected: u64, message: &str) -> Vec<u8> {
    response("rejectedSpans", rejected, message)
}

/// The JSON answer to a logs export.
pub fn logs_response(rejected: u64, message: &str) -> Vec<u8> {
    response("rejectedLogRecords", rejected, message)
}

fn response(field: &str, rejected: u64, message: &str) -> Vec<u8> {
    let body = if rejected == 0 && message.is_empty() {
        serde_json::json!({})
    } else {
        // int64 is a decimal string in the protobuf JSON mapping.
        serde_json::json!({ "partialSuccess": { field: rejected.to_string(), "errorMessage": message } })
    };
    body.to_string().into_bytes()
}

/// A `google.rpc.Status` as JSON, the body of an OTLP/HTTP error answered in JSON.
pub fn status(code: i32, message: &str) -> Vec<u8> {
    serde_json::json!({ "code": code, "message": message })
        .to_string()
        .into_bytes()
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct TracesRequest {
    #[serde(deserialize_with = "list")]
    resource_spans: Vec<JResourceSpans>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LogsRequest {
    #[serde(deserialize_with = "list")]
    resource_logs: Vec<JResourceLogs>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JResourceSpans {
    resource: Option<JResource>,
    #[serde(deserialize_with = "list")]
    scope_spans: Vec<JScopeSpans>,
    #[serde(deserialize_with = "string")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JResourceLogs {
    resource: Option<JResource>,
    #[serde(deserialize_with = "list")]
    scope_logs: Vec<JScopeLogs>,
    #[serde(deserialize_with = "string")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JResource {
    #[serde(deserialize_with = "list")]
    attributes: Vec<JKeyValue>,
    #[serde(deserialize_with = "int")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JScope {
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(deserialize_with = "string")]
    version: String,
    #[serde(deserialize_with = "list")]
    attributes: Vec<JKeyValue>,
    #[serde(deserialize_with = "int")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JScopeSpans {
    scope: Option<JScope>,
    #[serde(deserialize_with = "list")]
    spans: Vec<JSpan>,
    #[serde(deserialize_with = "string")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JScopeLogs {
    scope: Option<JScope>,
    #[serde(deserialize_with = "list")]
    log_records: Vec<JLogRecord>,
    #[serde(deserialize_with = "string")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JSpan {
    #[serde(deserialize_with = "hex_id")]
    trace_id: Vec<u8>,
    #[serde(deserialize_with = "hex_id")]
    span_id: Vec<u8>,
    #[serde(deserialize_with = "string")]
    trace_state: String,
    #[serde(deserialize_with = "hex_id")]
    parent_span_id: Vec<u8>,
    #[serde(deserialize_with = "int")]
    flags: u32,
    #[serde(deserialize_with = "string")]
    name: String,
    #[serde(deserialize_with = "int")]
    kind: i32,
    #[serde(deserialize_with = "int")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "int")]
    end_time_unix_nano: u64,
    #[serde(deserialize_with = "list")]
    attributes: Vec<JKeyValue>,
    #[serde(deserialize_with = "int")]
    dropped_attributes_count: u32,
    status: Option<JStatus>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JStatus {
    #[serde(deserialize_with = "string")]
    message: String,
    #[serde(deserialize_with = "int")]
    code: i32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JLogRecord {
    #[serde(deserialize_with = "int")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "int")]
    observed_time_unix_nano: u64,
    #[serde(deserialize_with = "int")]
    severity_number: i32,
    #[serde(deserialize_with = "string")]
    severity_text: String,
    body: Option<JAnyValue>,
    #[serde(deserialize_with = "list")]
    attributes: Vec<JKeyValue>,
    #[serde(deserialize_with = "int")]
    dropped_attributes_count: u32,
    #[serde(deserialize_with = "int")]
    flags: u32,
    #[serde(deserialize_with = "hex_id")]
    trace_id: Vec<u8>,
    #[serde(deserialize_with = "hex_id")]
    span_id: Vec<u8>,
    #[serde(deserialize_with = "string")]
    event_name: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JKeyValue {
    #[serde(deserialize_with = "string")]
    key: String,
    value: Option<JAnyValue>,
}

/// `AnyValue` is a oneof: at most one of these keys is set.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct JAnyValue {
    string_value: Option<String>,
    bool_value: Option<bool>,
    #[serde(deserialize_with = "opt_int")]
    int_value: Option<i64>,
    #[serde(deserialize_with = "opt_double")]
    double_value: Option<f64>,
    array_value: Option<JArray>,
    kvlist_value: Option<JKvList>,
    #[serde(deserialize_with = "opt_bytes")]
    bytes_value: Option<Vec<u8>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JArray {
    #[serde(deserialize_with = "list")]
    values: Vec<JAnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct JKvList {
    #[serde(deserialize_with = "list")]
    values: Vec<JKeyValue>,
}

impl From<JResourceSpans> for ResourceSpans {
    fn from(j: JResourceSpans) -> Self {
        ResourceSpans {
            resource: j.resource.map(Into::into),
            scope_spans: j.scope_spans.into_iter().map(Into::into).collect(),
            schema_url: j.schema_url,
        }
    }
}

impl From<JResourceLogs> for ResourceLogs {
    fn from(j: JResourceLogs) -> Self {
        ResourceLogs {
            resource: j.resource.map(Into::into),
            scope_logs: j.scope_logs.into_iter().map(Into::into).collect(),
            schema_url: j.schema_url,
        }
    }
}

impl From<JResource> for Resource {
    fn from(j: JResource) -> Self {
        Resource {
            attributes: key_values(j.attributes),
            dropped_attributes_count: j.dropped_attributes_count,
            ..Default::default()
        }
    }
}

impl From<JScope> for InstrumentationScope {
    fn from(j: JScope) -> Self {
        InstrumentationScope {
            name: j.name,
            version: j.version,
            attributes: key_values(j.attributes),
            dropped_attributes_count: j.dropped_attributes_count,
        }
    }
}

impl From<JScopeSpans> for ScopeSpans {
    fn from(j: JScopeSpans) -> Self {
        ScopeSpans {
            scope: j.scope.map(Into::into),
            spans: j.spans.into_iter().map(Into::into).collect(),
            schema_url: j.schema_url,
        }
    }
}

impl From<JScopeLogs> for ScopeLogs {
    fn from(j: JScopeLogs) -> Self {
        ScopeLogs {
            scope: j.scope.map(Into::into),
            log_records: j.log_records.into_iter().map(Into::into).collect(),
            schema_url: j.schema_url,
        }
    }
}

impl From<JSpan> for Span {
    fn from(j: JSpan) -> Self {
        Span {
            trace_id: j.trace_id,
            span_id: j.span_id,
            trace_state: j.trace_state,
            parent_span_id: j.parent_span_id,
            flags: j.flags,
            name: j.name,
            kind: j.kind,
            start_time_unix_nano: j.start_time_unix_nano,
            end_time_unix_nano: j.end_time_unix_nano,
            attributes: key_values(j.attributes),
            dropped_attributes_count: j.dropped_attributes_count,
            status: j.status.map(|s| Status {
                message: s.message,
                code: s.code,
            }),
            ..Default::default()
        }
    }
}

impl From<JLogRecord> for LogRecord {
    fn from(j: JLogRecord) -> Self {
        LogRecord {
            time_unix_nano: j.time_unix_nano,
            observed_time_unix_nano: j.observed_time_unix_nano,
            severity_number: j.severity_number,
            severity_text: j.severity_text,
            body: j.body.map(Into::into),
            attributes: key_values(j.attributes),
            dropped_attributes_count: j.dropped_attributes_count,
            flags: j.flags,
            trace_id: j.trace_id,
            span_id: j.span_id,
            event_name: j.event_name,
        }
    }
}

fn key_values(list: Vec<JKeyValue>) -> Vec<KeyValue> {
    list.into_iter()
        .map(|kv| KeyValue {
            key: kv.key,
            value: kv.value.map(Into::into),
            ..Default::default()
        })
        .collect()
}

impl From<JAnyValue> for AnyValue {
    fn from(j: JAnyValue) -> Self {
        use any_value::Value;
        let value = if let Some(s) = j.string_value {
            Some(Value::StringValue(s))
        } else if let Some(b) = j.bool_value {
            Some(Value::BoolValue(b))
        } else if let Some(i) = j.int_value {
            Some(Value::IntValue(i))
        } else if let Some(d) = j.double_value {
            Some(Value::DoubleValue(d))
        } else if let Some(a) = j.array_value {
            Some(Value::ArrayValue(ArrayValue {
                values: a.values.into_iter().map(Into::into).collect(),
            }))
        } else if let Some(kv) = j.kvlist_value {
            Some(Value::KvlistValue(KeyValueList {
                values: key_values(kv.values),
            }))
        } else {
            j.bytes_value.map(Value::BytesValue)
        };
        AnyValue { value }
    }
}

/// A repeated field: an array, or `null` for none.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A string field: a string, or `null` for empty.
fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A trace or span id: hex of either case (an OTLP/JSON rule, unlike protobuf JSON's base64).
fn hex_id<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    hex::decode(&s).map_err(|_| {
        de::Error::custom(format!(
            "{s:?} is not a hex id (OTLP/JSON writes trace and span ids as hex, not base64)"
        ))
    })
}

/// An integer given as a JSON number or as a decimal string, `null` being 0.
fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128> + Default,
{
    Ok(opt_int(d)?.unwrap_or_default())
}

fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    struct Int;
    impl<'de> Visitor<'de> for Int {
        type Value = Option<i128>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an integer (a JSON number or a decimal string)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(i128::from(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(i128::from(v)))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // `1e3` is a valid integer in the protobuf JSON mapping.
            if v.fract() == 0.0 && v.abs() < 1e38 {
                Ok(Some(v as i128))
            } else {
                Err(E::custom(format!("{v} is not an integer")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.trim()
                .parse::<i128>()
                .map(Some)
                .map_err(|_| E::custom(format!("{v:?} is not an integer")))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Int)
        }
    }
    match d.deserialize_any(Int)? {
        None => Ok(None),
        Some(n) => T::try_from(n)
            .map(Some)
            .map_err(|_| de::Error::custom(format!("{n} is out of range for this field"))),
    }
}

/// A double: a JSON number, or a string (`"NaN"`, `"Infinity"`, `"-Infinity"` or a number).
fn opt_double<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct Double;
    impl<'de> Visitor<'de> for Double {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v {
                "NaN" => Ok(Some(f64::NAN)),
                "Infinity" => Ok(Some(f64::INFINITY)),
                "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
                _ => v
                    .parse()
                    .map(Some)
                    .map_err(|_| E::custom(format!("{v:?} is not a number"))),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Double)
}

/// Base64 of the standard or URL-safe alphabet, padded or not (the protobuf JSON mapping).
fn opt_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    const B64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let standard: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    B64.decode(standard.as_bytes())
        .map(Some)
        .map_err(|_| de::Error::custom("`bytesValue` is not base64"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    const SPAN: &str = r#"{
      "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "calc"}}]},
        "scopeSpans": [{
          "scope": {"name": "mcp-python-sdk", "futureField": 1},
          "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "",
            "name": "tools/call add",
            "kind": 2,
            "startTimeUnixNano": "1764000000000000000",
            "endTimeUnixNano": 1764000000042000000,
            "attributes": [
              {"key": "mcp.method.name", "value": {"stringValue": "tools/call"}},
              {"key": "n", "value": {"intValue": "-12"}},
              {"key": "m", "value": {"intValue": 12}},
              {"key": "d", "value": {"doubleValue": "NaN"}},
              {"key": "b", "value": {"bytesValue": "AQL_"}},
              {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": true}}]}}},
              {"key": "arr", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {}]}}}
            ],
            "events": [{"name": "ignored"}],
            "status": {"code": 2, "message": "bad"}
          }]
        }]
      }]
    }"#;

    #[test]
    fn decodes_by_the_otlp_json_rules() {
        let req = traces(SPAN.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let rs = &req.resource_spans[0];
        let span = &rs.scope_spans[0].spans[0];
        assert_eq!(
            hex::encode(&span.trace_id),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(hex::encode(&span.span_id), "eee19b7ec3c1b174");
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.kind, 2);
        assert_eq!(span.start_time_unix_nano, 1_764_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_764_000_000_042_000_000);
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        let value = |i: usize| {
            span.attributes[i]
                .value
                .as_ref()
                .and_then(|v| v.value.clone())
        };
        assert_eq!(value(1), Some(Value::IntValue(-12)));
        assert_eq!(value(2), Some(Value::IntValue(12)));
        assert!(matches!(value(3), Some(Value::DoubleValue(d)) if d.is_nan()));
        assert_eq!(value(4), Some(Value::BytesValue(vec![1, 2, 0xff])));
        assert!(matches!(value(5), Some(Value::KvlistValue(_))));
        assert!(matches!(value(6), Some(Value::ArrayValue(a)) if a.values.len() == 2));
    }

    #[test]
    fn refuses_what_otlp_json_does_not_allow() {
        let cases = [
            ("{", "EOF"),
            (r#"{"resourceSpans": {}}"#, "resourceSpans"),
            // Ids are hex in OTLP/JSON, not the base64 of the protobuf JSON mapping.
            (
                r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA=="}]}]}]}"#,
                "not a hex id",
            ),
            // Enums are integers.
            (
                r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}"#,
                "kind",
            ),
            (r#"{"resourceSpans":[]} trailing"#, "trailing"),
        ];
        for (body, needle) in cases {
            let err = traces(body.as_bytes()).err().unwrap_or_default();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn snake_case_keys_are_unknown_and_ignored() {
        let req = traces(br#"{"resource_spans": [{}]}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(req.resource_spans.is_empty());
        let req = traces(br#"{"resourceSpans": null}"#).unwrap_or_else(|e| panic!("{e}"));
        assert!(req.resource_spans.is_empty());
    }

    #[test]
    fn logs_decode() {
        let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"5","eventName":"e","traceId":"00000000000000000000000000000001","attributes":[{"key":"mcp.method.name","value":{"stringValue":"tools/call"}}],"body":{"stringValue":"hi"}}]}]}]}"#;
        let req = logs(body).unwrap_or_else(|e| panic!("{e}"));
        let r = &req.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!((r.time_unix_nano, r.event_name.as_str()), (5, "e"));
        assert_eq!(r.trace_id.len(), 16);
    }

    #[test]
    fn answers() {
        assert_eq!(traces_response(0, ""), b"{}");
        let v: serde_json::Value =
            serde_json::from_slice(&logs_response(2, "why")).unwrap_or_default();
        assert_eq!(v["partialSuccess"]["rejectedLogRecords"], "2");
        assert_eq!(v["partialSuccess"]["errorMessage"], "why");
    }
}
