//! One JSON event line (`ship`, `POST /api/v1/ingest`) through the whole ingest path:
//! decoding, validation, scrubbing, the stored record and reading it back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &str| {
    mcp_audit_fuzz::ingest(mcp_audit_fuzz::incoming_line(line));
});
