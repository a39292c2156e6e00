//! The OTLP receiver against a real collector on loopback: OTLP/gRPC through the client
//! generated from the official OTLP protos (opentelemetry-proto), OTLP/HTTP with protobuf,
//! JSON and gzip bodies through reqwest.

use std::io::Write;
use std::time::Duration;

use crate::common::{self, mcp_audit, Server};
use mcp_audit::ingest::otlp::pb::collector::logs::v1::ExportLogsServiceRequest;
use mcp_audit::ingest::otlp::pb::collector::trace::v1::trace_service_client::TraceServiceClient;
use mcp_audit::ingest::otlp::pb::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use mcp_audit::ingest::otlp::pb::common::v1::{
    any_value, AnyValue, InstrumentationScope, KeyValue,
};
use mcp_audit::ingest::otlp::pb::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use mcp_audit::ingest::otlp::pb::resource::v1::Resource;
use mcp_audit::ingest::otlp::pb::trace::v1::span::SpanKind;
use mcp_audit::ingest::otlp::pb::trace::v1::status::StatusCode;
use mcp_audit::ingest::otlp::pb::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use mcp_audit::ingest::otlp::RpcStatus;
use prost::Message;
use serde_json::Value;
use tonic::codec::CompressionEncoding;
use tonic::Request;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64
}

/// A tool-call span as an MCP server built with the Python SDK emits it, with its own ids.
fn tool_span(trace: u8, span: u8, tool: &str) -> Span {
    let start = now_ns() - 60_000_000_000;
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![span; 8],
        name: format!("tools/call {tool}"),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_250_000_000,
        attributes: vec![
            kv("mcp.method.name", "tools/call"),
            kv("gen_ai.operation.name", "execute_tool"),
            kv("gen_ai.tool.name", tool),
            kv("jsonrpc.request.id", "4"),
            kv("mcp.protocol.version", "2025-11-25"),
        ],
        ..Default::default()
    }
}

/// A span that is not an audit event (a database query made inside a tool).
fn db_span(trace: u8) -> Span {
    let start = now_ns() - 60_000_000_000;
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![0xdd; 8],
        name: "SELECT orders".into(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000,
        attributes: vec![kv("db.system.name", "postgresql")],
        ..Default::default()
    }
}

fn export(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
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

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

async fn post(
    s: &Server,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", s.http))
        .header("content-type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let h = |name| {
        r.headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string())
    };
    let ct = h("content-type").unwrap_or_default();
    let retry_after = h("retry-after");
    (status, ct, r.bytes().await.unwrap().to_vec(), retry_after)
}

async fn metrics(s: &Server) -> String {
    s.get_text("/metrics").await.1
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

const DROPPED: &str = "mcp_audit_otlp_dropped_total{signal=\"traces\",reason=\"not_mcp\"}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_spans_become_events_and_other_spans_are_only_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let mut client = TraceServiceClient::connect(s.grpc.clone()).await.unwrap();
    let mut failing = tool_span(0x11, 0x02, "charge_card");
    failing.attributes.push(kv("error.type", "tool_error"));
    failing.status = Some(Status {
        code: StatusCode::Error as i32,
        message: "card declined".into(),
    });
    let req = export(
        "payments-mcp",
        vec![tool_span(0x11, 0x01, "add"), db_span(0x11), failing],
    );
    let resp = client.export(req.clone()).await.unwrap().into_inner();
    assert_eq!(resp, ExportTraceServiceResponse::default(), "full success");

    let hits = s.wait_for("server:payments-mcp", 2).await;
    assert_eq!(hits["total"], 2, "{hits}");
    let id = format!("otel-{}-{}", "11".repeat(16), "01".repeat(8));
    let (status, ev) = s.get(&format!("/api/v1/events/{id}"), &[]).await;
    assert_eq!(status, 200, "{ev}");
    assert_eq!(ev["method"], "tools/call");
    assert_eq!(ev["tool"], "add");
    assert_eq!(ev["server"], "payments-mcp");
    assert_eq!(ev["outcome"], "ok");
    assert_eq!(ev["duration_ms"], 1250);
    assert_eq!(ev["trace_id"], "11".repeat(16));
    assert_eq!(ev["span_id"], "01".repeat(8));
    assert_eq!(ev["labels"]["jsonrpc.request.id"], "4");
    assert_eq!(ev["labels"]["mcp.protocol.version"], "2025-11-25");
    let failed = s.search("tool:charge_card").await;
    assert_eq!(failed["hits"][0]["outcome"], "error");
    assert_eq!(failed["hits"][0]["error"], "tool_error: card declined");
    // The database span made no event: two events in all, none mentioning it.
    assert_eq!(s.search("").await["total"], 2);
    assert_eq!(s.search("postgresql").await["total"], 0);
    let m = metrics(&s).await;
    assert_eq!(metric(&m, DROPPED), 1.0, "{m}");

    // The exporter retries the same spans, gzip-compressed: acknowledged, not stored twice.
    let mut gz = TraceServiceClient::connect(s.grpc.clone())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    let resp = gz.export(req).await.unwrap().into_inner();
    assert!(resp.partial_success.is_none());
    s.wait_indexed().await;
    assert_eq!(s.search("server:payments-mcp").await["total"], 2);
    assert_eq!(metric(&metrics(&s).await, DROPPED), 2.0);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_takes_protobuf_json_and_gzip_and_answers_in_kind() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    let body = export("proto-srv", vec![tool_span(0x21, 1, "read_file")]).encode_to_vec();
    let (status, ct, resp, _) =
        post(&s, "/v1/traces", "application/x-protobuf", None, None, body).await;
    assert_eq!((status, ct.as_str()), (200, "application/x-protobuf"));
    assert_eq!(
        ExportTraceServiceResponse::decode(resp.as_slice()).unwrap(),
        ExportTraceServiceResponse::default()
    );

    let body = export("gzip-srv", vec![tool_span(0x22, 1, "write_file")]).encode_to_vec();
    let (status, _, _, _) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        Some("gzip"),
        None,
        gzip(&body),
    )
    .await;
    assert_eq!(status, 200);

    // OTLP/JSON as exporters write it: hex ids, integer enums, 64-bit integers as strings.
    let start = now_ns() - 30_000_000_000;
    let json = serde_json::json!({
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-srv"}}]},
            "scopeSpans": [{"scope": {"name": "mcp-python-sdk"}, "spans": [{
                "traceId": "5B8EFFF798038103D269B633813FC60C",
                "spanId": "EEE19B7EC3C1B174",
                "name": "tools/call list_dir",
                "kind": 2,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + 7_000_000).to_string(),
                "attributes": [
                    {"key": "mcp.method.name", "value": {"stringValue": "tools/call"}},
                    {"key": "gen_ai.tool.name", "value": {"stringValue": "list_dir"}},
                    {"key": "network.transport", "value": {"stringValue": "pipe"}},
                    {"key": "retries", "value": {"intValue": "2"}}
                ]
            }]}]
        }]
    });
    let (status, ct, resp, _) = post(
        &s,
        "/v1/traces",
        "application/json; charset=utf-8",
        Some("gzip"),
        None,
        gzip(json.to_string().as_bytes()),
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&resp).unwrap(),
        serde_json::json!({})
    );

    // A log record carrying the same attributes is an event too; one without is dropped.
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "log-gateway")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord {
                        time_unix_nano: now_ns() - 10_000_000_000,
                        attributes: vec![
                            kv("mcp.method.name", "tools/call"),
                            kv("gen_ai.tool.name", "send_email"),
                            kv("server.address", "mail-mcp"),
                        ],
                        ..Default::default()
                    },
                    LogRecord {
                        time_unix_nano: now_ns(),
                        attributes: vec![kv("http.request.method", "GET")],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (status, ct, _, _) = post(
        &s,
        "/v1/logs",
        "application/x-protobuf",
        None,
        None,
        logs.encode_to_vec(),
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, "application/x-protobuf"));

    s.wait_for("", 4).await;
    assert_eq!(
        s.search("server:proto-srv AND tool:read_file").await["total"],
        1
    );
    assert_eq!(
        s.search("server:gzip-srv AND tool:write_file").await["total"],
        1
    );
    let j = s.search("server:json-srv").await;
    let hit = &j["hits"][0];
    assert_eq!(hit["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(hit["span_id"], "eee19b7ec3c1b174");
    assert_eq!(hit["duration_ms"], 7);
    assert_eq!(hit["transport"], "stdio");
    assert_eq!(hit["labels"]["retries"], "2");
    let l = s.search("tool:send_email").await;
    assert_eq!(l["hits"][0]["server"], "mail-mcp");
    assert_eq!(l["hits"][0]["client"], "log-gateway");
    let m = metrics(&s).await;
    assert_eq!(
        metric(
            &m,
            "mcp_audit_otlp_dropped_total{signal=\"logs\",reason=\"not_mcp\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "mcp_audit_otlp_accepted_total{signal=\"traces\"}"),
        3.0
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_exports_get_the_status_the_otlp_spec_prescribes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    // OTLP/HTTP: 400 with a google.rpc.Status in the request's encoding.
    let (status, ct, body, _) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        None,
        None,
        vec![0x0a, 0xff, 0xff],
    )
    .await;
    assert_eq!((status, ct.as_str()), (400, "application/x-protobuf"));
    let st = RpcStatus::decode(body.as_slice()).unwrap();
    assert!(st.message.contains("ExportTraceServiceRequest"), "{st:?}");

    let (status, ct, body, _) = post(
        &s,
        "/v1/traces",
        "application/json",
        None,
        None,
        b"{\"resourceSpans\": [".to_vec(),
    )
    .await;
    assert_eq!((status, ct.as_str()), (400, "application/json"));
    let st: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        st["message"].as_str().unwrap().contains("not OTLP/JSON"),
        "{st}"
    );
    assert_eq!(st["code"], 3);

    // Ids in base64 (the generic protobuf JSON mapping) are not OTLP/JSON.
    let b64 = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA=="}]}]}]}"#;
    let (status, _, body, _) = post(
        &s,
        "/v1/traces",
        "application/json",
        None,
        None,
        b64.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("hex"));

    let (status, _, body, _) = post(
        &s,
        "/v1/logs",
        "application/json",
        Some("gzip"),
        None,
        b"plain".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("gzip"));

    let (status, ct, body, _) =
        post(&s, "/v1/traces", "text/plain", None, None, b"hi".to_vec()).await;
    assert_eq!((status, ct.as_str()), (415, "application/x-protobuf"));
    assert!(RpcStatus::decode(body.as_slice())
        .unwrap()
        .message
        .contains("application/x-protobuf"));
    let (status, _, _, _) = post(
        &s,
        "/v1/traces",
        "application/json",
        Some("br"),
        None,
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 415);

    // An empty export is a success.
    let (status, _, _, _) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        None,
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(status, 200);

    // OTLP/gRPC: bytes that are not an ExportTraceServiceRequest are INVALID_ARGUMENT (not
    // INTERNAL, which exporters would retry forever). Field 1 sent as a varint is one.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Bogus {
        #[prost(uint64, tag = "1")]
        resource_spans: u64,
    }
    let channel = tonic::transport::Endpoint::from_shared(s.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let err = grpc
        .unary(
            Request::new(Bogus { resource_spans: 7 }),
            tonic::codegen::http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            ),
            tonic_prost::ProstCodec::<Bogus, ExportTraceServiceResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("OTLP"), "{err:?}");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_spans_are_counted_in_partial_success_with_their_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let mut no_start = tool_span(0x31, 1, "a");
    no_start.start_time_unix_nano = 0;
    let mut too_old = tool_span(0x31, 2, "b");
    too_old.start_time_unix_nano = now_ns() - 40 * 86_400 * 1_000_000_000;
    too_old.end_time_unix_nano = too_old.start_time_unix_nano + 1;
    let req = export(
        "partial",
        vec![no_start, db_span(0x31), too_old, tool_span(0x31, 3, "c")],
    );
    let mut client = TraceServiceClient::connect(s.grpc.clone()).await.unwrap();
    let resp = client.export(req.clone()).await.unwrap().into_inner();
    let partial = resp.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 2, "{partial:?}");
    assert!(
        partial
            .error_message
            .starts_with("2 of 3 audit spans rejected"),
        "{partial:?}"
    );
    assert!(
        partial.error_message.contains("startTimeUnixNano"),
        "{partial:?}"
    );
    assert!(partial.error_message.contains("retention"), "{partial:?}");

    // The same over OTLP/HTTP JSON: `rejectedSpans` is an int64, a string in JSON.
    let body = export(
        "partial-http",
        vec![tool_span(0x32, 1, "x"), {
            let mut sp = tool_span(0x32, 2, "y");
            sp.start_time_unix_nano = 0;
            sp
        }],
    );
    let (status, _, resp, _) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        None,
        None,
        body.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let resp = ExportTraceServiceResponse::decode(resp.as_slice()).unwrap();
    assert_eq!(resp.partial_success.unwrap().rejected_spans, 1);
    s.wait_for("server:partial OR server:partial-http", 2).await;
    assert_eq!(s.search("server:partial").await["total"], 1);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_opted_in_arguments_are_scrubbed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let secret = "AKIAZ3MHQ7VWXR4TPL2N";
    let mut span = tool_span(0x41, 1, "deploy");
    span.attributes.push(kv(
        "gen_ai.tool.call.arguments",
        &format!(r#"{{"region": "eu-west-1", "aws_key": "{secret}"}}"#),
    ));
    span.attributes.push(kv(
        "gen_ai.tool.call.result",
        &format!("deployed with {secret}"),
    ));
    let mut client = TraceServiceClient::connect(s.grpc.clone()).await.unwrap();
    client.export(export("deployer", vec![span])).await.unwrap();
    let hits = s.wait_for("tool:deploy", 1).await;
    let hit = &hits["hits"][0];
    assert_eq!(hit["arguments"]["region"], "eu-west-1");
    let text = hit.to_string();
    assert!(!text.contains(secret), "{text}");
    assert!(
        hit["arguments"]["aws_key"]
            .as_str()
            .unwrap()
            .starts_with("[REDACTED:"),
        "{hit}"
    );
    assert!(
        hit["result"].as_str().unwrap().contains("[REDACTED:"),
        "{hit}"
    );
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_need_an_ingest_credential_once_tokens_exist() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let make = |role: &str| {
        let (code, out, err) = mcp_audit(&[
            "token",
            "create",
            "--tenant",
            "acme",
            "--role",
            role,
            "--data-dir",
            d,
        ]);
        assert_eq!(code, Some(0), "{err}");
        out.trim().to_string()
    };
    let ingest = make("ingest");
    let read = make("read");
    let s = Server::start(dir.path()).await;
    let req = export("authed", vec![tool_span(0x51, 1, "t")]);

    let mut client = TraceServiceClient::connect(s.grpc.clone()).await.unwrap();
    let err = client.export(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let mut r = Request::new(req.clone());
    r.metadata_mut()
        .insert("authorization", format!("Bearer {read}").parse().unwrap());
    assert_eq!(
        client.export(r).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let mut r = Request::new(req.clone());
    r.metadata_mut()
        .insert("authorization", format!("Bearer {ingest}").parse().unwrap());
    client.export(r).await.unwrap();

    let body = req.encode_to_vec();
    // Refusals on OTLP routes are google.rpc.Status bodies in the request's encoding.
    let (status, ct, refused, _) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        None,
        None,
        body.clone(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(ct, "application/x-protobuf");
    let st = RpcStatus::decode(refused.as_slice()).unwrap();
    assert_eq!(st.code, tonic::Code::Unauthenticated as i32, "{st:?}");
    let (status, ct, refused, _) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        None,
        Some(&read),
        body.clone(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(ct, "application/x-protobuf");
    let st = RpcStatus::decode(refused.as_slice()).unwrap();
    assert_eq!(st.code, tonic::Code::PermissionDenied as i32, "{st:?}");
    assert!(st.message.contains("ingest"), "{st:?}");
    let (status, ct, refused, _) = post(
        &s,
        "/v1/traces",
        "application/json",
        None,
        None,
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(ct, "application/json");
    let st: Value = serde_json::from_slice(&refused).unwrap();
    assert_eq!(st["code"], tonic::Code::Unauthenticated as i32, "{st}");
    let (status, _, _, _) = post(
        &s,
        "/v1/traces",
        "application/x-protobuf",
        None,
        Some(&ingest),
        body,
    )
    .await;
    assert_eq!(status, 200);

    // Stored under the token's tenant.
    let found = async {
        for _ in 0..200 {
            let r = reqwest::Client::new()
                .get(format!("{}/api/v1/search", s.http))
                .query(&[("q", "server:authed"), ("start", "-7d")])
                .bearer_auth(&read)
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap();
            if v["total"] == 1 {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the authenticated export never became searchable");
    }
    .await;
    assert_eq!(found["hits"][0]["tenant"], "acme");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_ingest_quota_exports_are_throttled_with_a_retry_delay() {
    use mcp_audit::ingest::otlp::RetryInfo;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let (code, token, err) = mcp_audit(&[
        "token",
        "create",
        "--tenant",
        "acme",
        "--role",
        "ingest",
        "--data-dir",
        d,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let token = token.trim().to_string();
    let c = common::Collector::start(
        &data,
        &[
            ("MCP_AUDIT_AUTH_INGEST_EVENTS_PER_SEC", "1"),
            ("MCP_AUDIT_AUTH_INGEST_BURST", "2"),
        ],
    )
    .await;
    let with_token = |req: ExportTraceServiceRequest| {
        let mut r = Request::new(req);
        r.metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{}", c.grpc))
        .await
        .unwrap();
    let two = export(
        "quota",
        vec![tool_span(0x61, 1, "a"), tool_span(0x61, 2, "b")],
    );
    client.export(with_token(two)).await.unwrap();

    // OTLP/gRPC: RESOURCE_EXHAUSTED carrying google.rpc.RetryInfo, the spec's retryable form.
    let one = export("quota", vec![tool_span(0x61, 3, "c")]);
    let err = client.export(with_token(one.clone())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    let details = RpcStatus::decode(err.details()).unwrap();
    let retry = details
        .details
        .iter()
        .find(|a| a.type_url == "type.googleapis.com/google.rpc.RetryInfo")
        .map(|a| RetryInfo::decode(a.value.as_slice()).unwrap())
        .and_then(|r| r.retry_delay)
        .unwrap();
    assert!((1..=2).contains(&retry.seconds), "{retry:?}");

    // OTLP/HTTP: 429 with Retry-After and a google.rpc.Status body.
    let r = reqwest::Client::new()
        .post(c.url("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .bearer_auth(&token)
        .body(one.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&after), "{after}");
    let st = RpcStatus::decode(r.bytes().await.unwrap()).unwrap();
    assert!(st.message.contains("auth.ingest_events_per_sec"), "{st:?}");
    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_reach_an_otlp_logs_endpoint_through_an_otlp_webhook() {
    // The OTLP backend: a second collector's OTLP/HTTP `/v1/logs`.
    let backend_dir = tempfile::tempdir().unwrap();
    let backend = Server::start(backend_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("otlp-out.toml");
    std::fs::write(
        &cfg,
        format!(
            "[alerts]\ngroup_wait_secs = 0\n\n[[webhooks]]\nname = \"otel\"\nurl = \"{}/v1/logs\"\nformat = \"otlp\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nallow_private = true\n",
            backend.http
        ),
    )
    .unwrap();
    let c = common::Collector::start(
        &dir.path().join("data"),
        &[("MCP_AUDIT_CONFIG", cfg.to_str().unwrap())],
    )
    .await;
    // A path traversal reported as an OTLP span with opted-in arguments: the built-in pack
    // flags it, and the alert goes out as an OTLP log record.
    let mut span = tool_span(0x71, 1, "read_file");
    span.attributes.push(kv(
        "gen_ai.tool.call.arguments",
        r#"{"path": "../../../../etc/shadow"}"#,
    ));
    let mut client = TraceServiceClient::connect(format!("http://127.0.0.1:{}", c.grpc))
        .await
        .unwrap();
    client
        .export(export("filesystem", vec![span]))
        .await
        .unwrap();
    // The backend answers 200 to the export; having no MCP attributes, the finding's record
    // is counted there, not stored as a tool call.
    let counted = "mcp_audit_otlp_dropped_total{signal=\"logs\",reason=\"not_mcp\"}";
    for _ in 0..200 {
        if metric(&metrics(&backend).await, counted) >= 1.0 {
            let (_, v) = backend.get("/api/v1/search", &[("start", "-7d")]).await;
            assert_eq!(v["total"], 0, "{v}");
            c.stop();
            backend.stop().await.unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the finding never reached the OTLP endpoint: {}",
        c.log_text()
    );
}
