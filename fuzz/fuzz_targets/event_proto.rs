//! One protobuf `ToolCallEvent` (the gRPC `Ship` and `Send` calls), bytes as they arrive:
//! prost decoding, conversion to the domain event, then the ingest path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_audit::ingest::{proto as convert, Incoming};
use mcp_audit::proto::ToolCallEvent;
use prost::Message;

fuzz_target!(|bytes: &[u8]| {
    let Ok(p) = ToolCallEvent::decode(bytes) else {
        return;
    };
    // As the gRPC service takes it (`ingest::grpc::decode_batch`).
    let wire_bytes = p.encoded_len();
    let id_hint = p.event_id.clone();
    let decoded = convert::decode(p);
    if let Ok(event) = &decoded {
        // Whatever converts must convert back: `ship` and `demo` send with `encode`.
        let again = convert::decode(convert::encode(event));
        assert!(
            again.is_ok(),
            "a decoded event does not re-encode: {again:?}"
        );
    }
    mcp_audit_fuzz::ingest(Incoming {
        decoded,
        wire_bytes,
        id_hint,
    });
});
