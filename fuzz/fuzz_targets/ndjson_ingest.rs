//! An NDJSON request body (`POST /api/v1/ingest`), bytes as they arrive: split into lines and
//! decoded by `ingest::json::decode_body`, then every event through the ingest path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_audit::ingest::json::decode_body;

/// Small, so that bodies over the limit are found too; the default limit is far larger.
const MAX_EVENTS: usize = 64;

fuzz_target!(|body: &[u8]| {
    let Ok(decoded) = decode_body(body, MAX_EVENTS) else {
        return;
    };
    assert_eq!(decoded.events.len(), decoded.line_of.len());
    assert!(decoded.events.len() <= MAX_EVENTS);
    assert!(
        decoded.line_of.windows(2).all(|w| w[0] < w[1]),
        "line numbers out of order: {:?}",
        decoded.line_of
    );
    for item in decoded.events {
        mcp_audit_fuzz::ingest(item);
    }
});
