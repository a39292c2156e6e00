//! Erasure markers: what an erased event's WAL record becomes.
//!
//! A marker keeps the erased event's place in its tenant's chain and nothing of its content:
//! ```text
//! hash: [u8; 32] | {"erased":"<erasure id>","tenant":"acme","seq":17}
//! ```
//! `hash` is the erased event's own chain hash, so `verify` checks the next event against it,
//! and the erasure id names the signed erasure record (`chain/erasures.jsonl`) that lists it.
//! An event record's JSON always starts with `{"schema_version":`, so the first bytes tell the
//! two apart. Consumers skip markers ([`crate::wal::Feed`]); start-up reads their tenant and
//! seq like any record's.

use serde::Serialize;

use crate::event::RECORD_HASH_LEN;

const PREFIX: &[u8] = b"{\"erased\":";

#[derive(Serialize)]
struct Marker<'a> {
    erased: &'a str,
    tenant: &'a str,
    seq: u64,
}

/// The marker record of an erased event.
pub fn marker(erasure_id: &str, tenant: &str, seq: u64, hash: &[u8; 32]) -> Vec<u8> {
    let mut out = hash.to_vec();
    // Strings and a number: serializing cannot fail.
    let _ = serde_json::to_writer(
        &mut out,
        &Marker {
            erased: erasure_id,
            tenant,
            seq,
        },
    );
    out
}

/// Whether a WAL record is an erasure marker.
pub fn is_marker(record: &[u8]) -> bool {
    record
        .get(RECORD_HASH_LEN..)
        .is_some_and(|json| json.starts_with(PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, StoredEvent};
    use crate::wal::RecordHead;

    #[test]
    fn a_marker_keeps_place_and_hash_and_is_told_from_an_event() {
        let m = marker("e1", "acme", 17, &[9; 32]);
        assert!(is_marker(&m));
        let head = RecordHead::decode(&m).unwrap();
        assert_eq!(
            (head.tenant.as_ref(), head.seq, head.hash),
            ("acme", 17, [9; 32])
        );
        assert_eq!(head.event_id, "");
        let ev = StoredEvent {
            event: Event::new("x", "tools/call", "t"),
            tenant: "acme".into(),
            received_at: time::OffsetDateTime::now_utc(),
            seq: 1,
            hash: hex::encode([0u8; 32]),
            redactions: vec![],
        };
        assert!(!is_marker(&ev.record().unwrap()));
        assert!(!is_marker(b"short"));
    }
}
