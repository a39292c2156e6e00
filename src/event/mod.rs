//! The tool-call event: the one domain type every stage speaks.
//!
//! [`Event`] is what a client sends (after ingest has validated and normalised it);
//! [`StoredEvent`] is what the WAL and the index hold: the scrubbed event plus what the
//! collector adds (tenant, receive time, per-tenant sequence number, chained hash, and the
//! list of redactions). JSON field names are the DESIGN.md names and are part of the external
//! contract (`ship` input, HTTP ingest, search hits). Wire formats (protobuf) live in
//! `ingest/`, never here. The field registry ([`fields`]) declares every field once, for the
//! query language, the index, the live tail and the API.

mod decode;
pub mod fields;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Earliest time the collector stores or searches (event times, `start`/`end`, query ranges).
pub const MIN_TIME: OffsetDateTime = time::macros::datetime!(1970-01-01 00:00:00 UTC);
/// Latest such time: the last that RFC 3339 can write with four digits.
pub const MAX_TIME: OffsetDateTime = time::macros::datetime!(9999-12-31 23:59:59.999_999_999 UTC);

/// The event schema version this collector writes.
pub const SCHEMA_VERSION: u32 = 1;

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Ok,
    Error,
    /// Refused by a gateway policy.
    Denied,
    /// The user refused consent.
    ConsentDenied,
    Timeout,
}

/// Whether and how the user consented to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    #[default]
    NotRequired,
    AllowedOnce,
    AllowedAlways,
    AutoApproved,
    Denied,
}

/// How the MCP client talked to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    #[default]
    Unknown,
    Stdio,
    StreamableHttp,
    Sse,
}

macro_rules! str_enum {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every accepted name, for error messages.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($name => Some(Self::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(Outcome { Ok => "ok", Error => "error", Denied => "denied", ConsentDenied => "consent_denied", Timeout => "timeout" });
str_enum!(Consent { NotRequired => "not_required", AllowedOnce => "allowed_once", AllowedAlways => "allowed_always", AutoApproved => "auto_approved", Denied => "denied" });
str_enum!(Transport { Unknown => "unknown", Stdio => "stdio", StreamableHttp => "streamable_http", Sse => "sse" });

/// MCP tool annotation hints. `None` means the gateway did not report the hint; the MCP
/// spec defaults then apply (see the `effective_*` methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Annotations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
}

impl Annotations {
    pub fn effective_read_only(&self) -> bool {
        self.read_only.unwrap_or(false)
    }
    pub fn effective_destructive(&self) -> bool {
        self.destructive.unwrap_or(true)
    }
    pub fn effective_idempotent(&self) -> bool {
        self.idempotent.unwrap_or(false)
    }
    pub fn effective_open_world(&self) -> bool {
        self.open_world.unwrap_or(true)
    }
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_null(v: &serde_json::Value) -> bool {
    v.is_null()
}

/// One tool call as observed by a gateway or agent, validated and normalised by ingest.
///
/// Empty strings mean "not reported" and are left out of the JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema_version: u32,
    /// Client-chosen unique id, the idempotency key (per tenant).
    pub event_id: String,
    /// When the call started.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    pub tool: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub conversation_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub span_id: String,
    /// Tool arguments; `Null` when none were reported.
    #[serde(default, skip_serializing_if = "is_null")]
    pub arguments: serde_json::Value,
    /// Result text or JSON text, possibly truncated by the gateway.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub result: String,
    /// Size of the full result as the gateway saw it (before any truncation).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub result_bytes: u64,
    #[serde(default)]
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations,
    #[serde(default)]
    pub consent: Consent,
    #[serde(default)]
    pub transport: Transport,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_addr: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_description_hash: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Event {
    /// A minimal valid event, for tests and generators.
    pub fn new(event_id: impl Into<String>, method: &str, tool: &str) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            event_id: event_id.into(),
            timestamp: OffsetDateTime::now_utc(),
            source: String::new(),
            method: method.to_string(),
            server: String::new(),
            tool: tool.to_string(),
            user: String::new(),
            client: String::new(),
            conversation_id: String::new(),
            session_id: String::new(),
            trace_id: String::new(),
            span_id: String::new(),
            arguments: serde_json::Value::Null,
            result: String::new(),
            result_bytes: 0,
            outcome: Outcome::Ok,
            error: String::new(),
            duration_ms: 0,
            annotations: Annotations::default(),
            consent: Consent::NotRequired,
            transport: Transport::Unknown,
            remote_addr: String::new(),
            tool_description_hash: String::new(),
            labels: BTreeMap::new(),
        }
    }
}

/// One secret removed by the scrubber: what kind, where, how many times.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Redaction {
    /// Detector kind, e.g. `github_token`, `aws_access_key_id`, `password_field`.
    pub kind: String,
    /// Field path inside the event, e.g. `arguments.headers.Authorization`, `result`, `labels.db`.
    pub path: String,
    pub count: u32,
}

/// An event as stored: scrubbed, bound to a tenant, sequenced and hash-chained.
///
/// Deserialized in one pass by `decode.rs` (the derived `flatten` buffered every field first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    #[serde(flatten)]
    pub event: Event,
    /// Bound from the caller's token; an event never chooses its own tenant.
    pub tenant: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// Per-tenant sequence number, starting at 1, without gaps.
    pub seq: u64,
    /// Hex SHA-256 of the previous event's hash (of the same tenant) and this event's
    /// canonical bytes; see [`StoredEvent::chain_hash`].
    pub hash: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redactions: Vec<Redaction>,
}

/// The hash that starts every tenant's chain.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// SHA-256(previous hash || canonical bytes): the one definition of the chain hash, for
/// events as they are stored and for records as the committer builds them.
pub fn chain_hash(previous: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(canonical);
    h.finalize().into()
}

/// A chain hash from its 64 hex digits; `None` for anything else.
pub fn decode_hash(hex_hash: &str) -> Option<[u8; 32]> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut h).ok()?;
    Some(h)
}

/// Length of the chain hash at the start of a stored record.
pub const RECORD_HASH_LEN: usize = 32;

/// Builds the stored records of one tenant's events received at one instant, from each
/// event's own JSON (`serde_json::to_vec(&event)`, made by ingest in parallel, off the single
/// committer thread). The collector's fields are the same for all of them but `seq` and
/// `redactions`, so their JSON is made once.
///
/// A record is `hash | canonical bytes` (see [`StoredEvent::record`]); the builder leaves the
/// hash zero for the caller to fill in once it has hashed the canonical bytes. The canonical
/// bytes equal [`StoredEvent::canonical_bytes`] (see the test): a flattened struct serializes
/// as the inner object's fields followed by the outer ones, in declaration order.
pub struct RecordBuilder {
    /// `"tenant":…,"received_at":…,"seq":`
    head: Vec<u8>,
}

impl RecordBuilder {
    pub fn new(tenant: &str, received_at: OffsetDateTime) -> Result<Self, String> {
        #[derive(Serialize)]
        struct Head<'a> {
            tenant: &'a str,
            #[serde(with = "time::serde::rfc3339")]
            received_at: OffsetDateTime,
        }
        let json = serde_json::to_vec(&Head {
            tenant,
            received_at,
        })
        .map_err(|e| format!("cannot serialize the stored fields: {e}"))?;
        // `{"tenant":…,"received_at":…}` → `"tenant":…,"received_at":…,"seq":`
        let mut head = json
            .strip_prefix(b"{")
            .and_then(|j| j.strip_suffix(b"}"))
            .ok_or("the stored fields did not serialize as a JSON object")?
            .to_vec();
        head.extend_from_slice(b",\"seq\":");
        Ok(Self { head })
    }

    /// The record of one event: zero hash, then its canonical bytes. `event_json` must be the
    /// event's JSON object (`serde_json::to_vec(&event)`).
    pub fn record(
        &self,
        event_json: &[u8],
        seq: u64,
        redactions: &[Redaction],
    ) -> Result<Vec<u8>, String> {
        let body = event_json
            .strip_suffix(b"}")
            .filter(|b| b.starts_with(b"{"))
            .ok_or("the event did not serialize as a JSON object")?;
        let mut out = Vec::with_capacity(RECORD_HASH_LEN + event_json.len() + self.head.len() + 40);
        out.extend_from_slice(&[0u8; RECORD_HASH_LEN]);
        // `{…event fields}` → `{…event fields,…collector fields}`
        out.extend_from_slice(body);
        out.push(b',');
        out.extend_from_slice(&self.head);
        out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
        out.extend_from_slice(b",\"hash\":\"\"");
        if !redactions.is_empty() {
            out.extend_from_slice(b",\"redactions\":");
            serde_json::to_writer(&mut out, redactions)
                .map_err(|e| format!("cannot serialize the redactions: {e}"))?;
        }
        out.push(b'}');
        Ok(out)
    }
}

impl StoredEvent {
    /// The bytes the chain hash covers: the JSON of the stored event with an empty `hash`.
    /// serde_json writes struct fields in declaration order and labels from a BTreeMap, so the
    /// bytes are deterministic for a given event. The stored bytes, not these, are what
    /// `verify` checks: a float in the arguments may not survive a round trip exactly.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, String> {
        let mut copy = self.clone();
        copy.hash.clear();
        serde_json::to_vec(&copy)
            .map_err(|e| format!("cannot serialize event {:?}: {e}", self.event.event_id))
    }

    /// The stored form of this event, as the WAL and the index keep it: the 32-byte chain hash,
    /// then the canonical bytes. `hash` must be 64 hex digits.
    pub fn record(&self) -> Result<Vec<u8>, String> {
        let hash = decode_hash(&self.hash).ok_or_else(|| {
            format!(
                "event {:?} has no valid hash ({:?})",
                self.event.event_id, self.hash
            )
        })?;
        let canonical = self.canonical_bytes()?;
        let mut out = Vec::with_capacity(RECORD_HASH_LEN + canonical.len());
        out.extend_from_slice(&hash);
        out.extend_from_slice(&canonical);
        Ok(out)
    }

    /// Decodes a stored record (see [`Self::record`]).
    pub fn from_record(bytes: &[u8]) -> Result<StoredEvent, String> {
        let Some((hash, canonical)) = bytes.split_at_checked(RECORD_HASH_LEN) else {
            return Err(format!(
                "{} bytes, shorter than the {RECORD_HASH_LEN}-byte hash that starts a record",
                bytes.len()
            ));
        };
        let mut ev: StoredEvent = serde_json::from_slice(canonical).map_err(|e| e.to_string())?;
        ev.hash = hex::encode(hash);
        Ok(ev)
    }

    /// SHA-256(previous hash || canonical bytes).
    pub fn chain_hash(&self, previous: &[u8; 32]) -> Result<[u8; 32], String> {
        Ok(chain_hash(previous, &self.canonical_bytes()?))
    }

    /// The UTC day (days since the Unix epoch) of the event's timestamp; the index partition.
    pub fn day(&self) -> i32 {
        day_of(self.event.timestamp)
    }
}

/// The idempotency key of an event: 128 bits of SHA-256 over tenant and event id. Collisions
/// are negligible (birthday bound ~2^64 events), which is what lets the committer keep a
/// compact in-memory duplicate filter.
pub fn id_key(tenant: &str, event_id: &str) -> u128 {
    let mut h = Sha256::new();
    h.update((tenant.len() as u64).to_le_bytes());
    h.update(tenant.as_bytes());
    h.update(event_id.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    u128::from_le_bytes(b)
}

/// Microseconds since the epoch (floor): the precision at which the index and the query
/// matcher compare event times.
pub fn unix_micros(t: OffsetDateTime) -> i64 {
    let us = t.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX })
}

/// Days since 1970-01-01 (UTC) of a timestamp.
pub fn day_of(t: OffsetDateTime) -> i32 {
    (t.unix_timestamp().div_euclid(86_400)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_every_field() {
        let mut e = Event::new("e1", "tools/call", "read_file");
        e.arguments = serde_json::json!({"path": "/etc/hosts"});
        e.annotations.read_only = Some(true);
        e.labels.insert("env".into(), "prod".into());
        e.outcome = Outcome::ConsentDenied;
        e.transport = Transport::StreamableHttp;
        let s = StoredEvent {
            event: e,
            tenant: "default".into(),
            received_at: OffsetDateTime::now_utc(),
            seq: 7,
            hash: "ab".into(),
            redactions: vec![Redaction {
                kind: "k".into(),
                path: "result".into(),
                count: 1,
            }],
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"outcome\":\"consent_denied\""), "{json}");
        assert!(json.contains("\"transport\":\"streamable_http\""), "{json}");
        let back: StoredEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn chain_hash_changes_with_content_and_previous() {
        let s = StoredEvent {
            event: Event::new("e1", "tools/call", "t"),
            tenant: "default".into(),
            received_at: OffsetDateTime::now_utc(),
            seq: 1,
            hash: String::new(),
            redactions: vec![],
        };
        let a = s.chain_hash(&GENESIS_HASH).unwrap();
        let mut t = s.clone();
        t.event.tool = "u".into();
        assert_ne!(a, t.chain_hash(&GENESIS_HASH).unwrap());
        assert_ne!(a, s.chain_hash(&[1u8; 32]).unwrap());
        let mut with_hash = s.clone();
        with_hash.hash = hex::encode(a);
        assert_eq!(
            a,
            with_hash.chain_hash(&GENESIS_HASH).unwrap(),
            "hash field is not covered"
        );
    }

    #[test]
    fn canonical_bytes_from_parts_equal_serde() {
        let mut e = Event::new("e\"1", "tools/call", "t");
        e.arguments = serde_json::json!({"hash": "", "x": [1, {"y": null}]});
        e.labels.insert("k".into(), "v\n".into());
        for redactions in [
            vec![],
            vec![Redaction {
                kind: "jwt".into(),
                path: "result".into(),
                count: 2,
            }],
        ] {
            let s = StoredEvent {
                event: e.clone(),
                tenant: "t\u{e9}".into(),
                received_at: OffsetDateTime::now_utc(),
                seq: 42,
                hash: String::new(),
                redactions,
            };
            let record = RecordBuilder::new(&s.tenant, s.received_at)
                .unwrap()
                .record(&serde_json::to_vec(&s.event).unwrap(), s.seq, &s.redactions)
                .unwrap();
            assert_eq!(&record[..RECORD_HASH_LEN], &[0u8; RECORD_HASH_LEN]);
            assert_eq!(
                String::from_utf8(record[RECORD_HASH_LEN..].to_vec()).unwrap(),
                String::from_utf8(s.canonical_bytes().unwrap()).unwrap()
            );
            // and a record round-trips, hash included
            let stored = StoredEvent {
                hash: hex::encode(s.chain_hash(&GENESIS_HASH).unwrap()),
                ..s.clone()
            };
            assert_eq!(
                StoredEvent::from_record(&stored.record().unwrap()).unwrap(),
                stored
            );
            assert!(s.record().unwrap_err().contains("no valid hash"));
        }
        assert!(StoredEvent::from_record(b"short")
            .unwrap_err()
            .contains("shorter"));
    }

    #[test]
    fn enum_names_round_trip() {
        for n in Outcome::NAMES {
            assert_eq!(Outcome::parse(n).unwrap().as_str(), *n);
        }
        assert_eq!(Outcome::parse("bogus"), None);
    }
}
