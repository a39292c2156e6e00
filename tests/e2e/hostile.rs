//! Slow, stalled and hostile clients: bad messages on a `Ship` stream end it with a status that
//! names the reason (after the batches before it are answered), a live-tail client that never
//! reads holds a bounded amount of memory, an event too large for one WAL record is refused
//! alone, as are arguments nested too deep for a record, and stored text cannot drive an
//! auditor's terminal.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::{self, generated, test_config, Server};
use bytes::BufMut;
use mcp_audit::ingest::proto as convert;
use mcp_audit::proto::{ShipRequest, ShipResponse};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Status;

/// Sends raw bytes as gRPC messages and decodes `ShipResponse`s.
#[derive(Default)]
struct Raw;

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

struct ResponseDecoder;

impl Decoder for ResponseDecoder {
    type Item = ShipResponse;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<ShipResponse>, Status> {
        ShipResponse::decode(buf)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = ShipResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

fn batch(prefix: &str, n: usize) -> Vec<u8> {
    ShipRequest {
        events: generated(prefix, n, 9)
            .iter()
            .map(convert::encode)
            .collect(),
    }
    .encode_to_vec()
}

/// Ships raw messages on one `Ship` stream; returns the responses and how the stream ended.
async fn ship_raw(s: &Server, messages: Vec<Vec<u8>>) -> (Vec<ShipResponse>, Option<Status>) {
    let channel = tonic::transport::Channel::from_shared(s.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(64 << 20);
    grpc.ready().await.unwrap();
    let path = PathAndQuery::from_static("/mcpaudit.v1.Ingest/Ship");
    let resp = grpc
        .streaming(tonic::Request::new(tokio_stream::iter(messages)), path, Raw)
        .await;
    let mut stream = match resp {
        Ok(r) => r.into_inner(),
        Err(status) => return (Vec::new(), Some(status)),
    };
    let mut got = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.message()).await {
            Ok(Ok(Some(r))) => got.push(r),
            Ok(Ok(None)) => return (got, None),
            Ok(Err(status)) => return (got, Some(status)),
            Err(_) => panic!("the stream hung"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_end_a_ship_stream_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.grpc_max_message_bytes = 1 << 20;
    let s = Server::start_with(config).await;

    // Two good batches, then bytes that are not protobuf.
    let (got, end) = ship_raw(
        &s,
        vec![batch("a", 10), batch("b", 10), vec![0xff, 0xff, 0xff, 0x0f]],
    )
    .await;
    assert_eq!(got.len(), 2, "the batches before it are answered");
    let status = end.expect("the stream ends with an error, not OK");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("message 3"), "{status:?}");

    // A good batch, then one over `grpc.max_message_bytes`.
    let (got, end) = ship_raw(&s, vec![batch("c", 10), batch("d", 1500)]).await;
    assert_eq!(got.len(), 1);
    let status = end.expect("the stream ends with an error, not OK");
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("grpc.max_message_bytes"),
        "{status:?}"
    );

    // Unary `Send` with bytes that are not protobuf is the client's fault too.
    let channel = tonic::transport::Channel::from_shared(s.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            tonic::Request::new(vec![0xff, 0xff, 0xff, 0x0f]),
            PathAndQuery::from_static("/mcpaudit.v1.Ingest/Send"),
            Raw,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    s.wait_for("", 30).await;
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_too_large_for_a_wal_record_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.max_event_bytes = 16 << 20;
    config.grpc_max_message_bytes = 64 << 20;
    let s = Server::start_with(config).await;
    // 11 MiB of control characters: 66 MiB once escaped in the stored JSON.
    let mut big = common::full_event("big");
    big.result = "\u{1}".repeat(11 << 20);
    let small = common::full_event("small");
    let resp = s.send(&[big, small]).await;
    assert_eq!(resp.accepted, vec!["small"]);
    assert_eq!(resp.rejected.len(), 1);
    assert!(
        resp.rejected[0].reason.contains("WAL record"),
        "{:?}",
        resp.rejected
    );
    // The WAL still works for everyone.
    let resp = s.send(&[common::full_event("after")]).await;
    assert_eq!(resp.accepted, vec!["after"]);
    s.wait_for("", 2).await;
    s.stop().await.unwrap();
}

/// Arguments sent as JSON text nested deeper than a stored record can hold are refused. Before
/// they were (a finding of the fuzz targets' record check), such an event was stored and every
/// search that found it failed with a 500: its record could not be read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_nested_too_deep_for_a_record_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let mut deep = convert::encode(&common::full_event("deep"));
    deep.arguments_json = format!("{}1{}", r#"{"a":"#.repeat(127), "}".repeat(127));
    let fine = convert::encode(&common::full_event("fine"));
    let resp = s
        .client()
        .await
        .send(ShipRequest {
            events: vec![deep, fine],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.accepted, vec!["fine"]);
    assert_eq!(resp.rejected.len(), 1, "{:?}", resp.rejected);
    assert!(
        resp.rejected[0]
            .reason
            .contains("`arguments` nests deeper than"),
        "{:?}",
        resp.rejected
    );
    let found = s.wait_for("", 1).await;
    assert_eq!(found["hits"][0]["event_id"], "fine");
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_client_that_never_reads_holds_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let addr = s.http.trim_start_matches("http://").to_string();
    // A subscriber that sends its request and then never reads.
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    stalled
        .write_all(b"GET /api/v1/tail HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut subscribed = false;
    for _ in 0..100 {
        let (_, m) = s.get_text("/metrics").await;
        if m.contains("mcp_audit_tail_subscribers 1") {
            subscribed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(subscribed);
    // 40 MiB of events while it reads nothing.
    for round in 0..40 {
        let events: Vec<_> = (0..4)
            .map(|i| {
                let mut e = common::full_event(&format!("huge-{round}-{i}"));
                e.result = "x".repeat(250 << 10);
                e
            })
            .collect();
        assert_eq!(s.send(&events).await.accepted.len(), 4);
    }
    let (_, m) = s.get_text("/metrics").await;
    let value = |name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    let queued = value("mcp_audit_tail_queued_bytes");
    assert!(
        queued >= 0.0 && queued <= (5 << 20) as f64,
        "{queued} bytes queued"
    );
    assert!(value("mcp_audit_tail_dropped_events") > 0.0);
    // When it reads again, it is told what it missed.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut seen = String::new();
    for _ in 0..200 {
        let n = stalled.read(&mut buf).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if seen.contains("event: lagged") {
            break;
        }
    }
    assert!(seen.contains("event: lagged"), "no gap notice");
    drop(stalled);
    s.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_output_cannot_drive_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let mut e = common::full_event("esc");
    e.user = "mallory\u{1b}[2J\u{1b}]0;pwned\u{7}".into();
    e.arguments = serde_json::json!({"path": "\u{1b}[31mred\u{202e}gpj.exe"});
    s.send(&[e]).await;
    s.wait_for("", 1).await;
    let (code, out, err) =
        common::mcp_audit(&["search", "--endpoint", &s.http, "--since", "1d", ""]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("mallory"), "{out}");
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n') && !out.contains('\u{202e}'),
        "raw control characters reached the terminal: {out:?}"
    );
    s.stop().await.unwrap();
}
