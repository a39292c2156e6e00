//! Reading a [`StoredEvent`] in one pass.
//!
//! A stored event is one JSON object: the event's fields, then the collector's (`tenant`,
//! `received_at`, `seq`, `hash`, `redactions`). The derived `#[serde(flatten)]` reads it by
//! buffering every field in an intermediate tree and then deserializing the event from that,
//! which made decoding ~1.5x slower; the index and the rules decode every record they read
//! back from the WAL. Here the object is read once: the collector's fields are taken out as
//! they come, and every other field goes straight to [`Event`]'s own deserializer.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;

use super::{Event, Redaction, StoredEvent};

/// The collector's fields, filled in as the object is read.
#[derive(Default)]
struct Collected {
    tenant: Option<String>,
    received_at: Option<OffsetDateTime>,
    seq: Option<u64>,
    hash: Option<String>,
    redactions: Option<Vec<Redaction>>,
}

/// A key of the stored object: one of the collector's, or one for the event.
enum Key<'de> {
    Tenant,
    ReceivedAt,
    Seq,
    Hash,
    Redactions,
    Event(Cow<'de, str>),
}

impl<'de> Key<'de> {
    fn of(name: Cow<'de, str>) -> Self {
        match &*name {
            "tenant" => Key::Tenant,
            "received_at" => Key::ReceivedAt,
            "seq" => Key::Seq,
            "hash" => Key::Hash,
            "redactions" => Key::Redactions,
            _ => Key::Event(name),
        }
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::of(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key::of(Cow::Owned(v.to_owned())))
    }
}

/// The stored object as the event sees it: the collector's fields are read into `collected`
/// and skipped.
struct EventFields<'a, A> {
    map: A,
    collected: &'a mut Collected,
}

fn set<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for EventFields<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        #[derive(Deserialize)]
        struct Time(#[serde(with = "time::serde::rfc3339")] OffsetDateTime);
        let c = &mut *self.collected;
        loop {
            match self.map.next_key_seed(KeySeed)? {
                None => return Ok(None),
                Some(Key::Tenant) => set(&mut c.tenant, self.map.next_value()?, "tenant")?,
                Some(Key::ReceivedAt) => {
                    let Time(t) = self.map.next_value()?;
                    set(&mut c.received_at, t, "received_at")?
                }
                Some(Key::Seq) => set(&mut c.seq, self.map.next_value()?, "seq")?,
                Some(Key::Hash) => set(&mut c.hash, self.map.next_value()?, "hash")?,
                Some(Key::Redactions) => {
                    set(&mut c.redactions, self.map.next_value()?, "redactions")?
                }
                Some(Key::Event(Cow::Borrowed(name))) => {
                    let d: de::value::BorrowedStrDeserializer<'de, A::Error> =
                        de::value::BorrowedStrDeserializer::new(name);
                    return seed.deserialize(d).map(Some);
                }
                Some(Key::Event(Cow::Owned(name))) => {
                    return seed.deserialize(name.into_deserializer()).map(Some);
                }
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

struct StoredVisitor;

impl<'de> Visitor<'de> for StoredVisitor {
    type Value = StoredEvent;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stored event (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StoredEvent, A::Error> {
        let mut collected = Collected::default();
        let event = Event::deserialize(de::value::MapAccessDeserializer::new(EventFields {
            map,
            collected: &mut collected,
        }))?;
        let missing = |name| <A::Error as de::Error>::missing_field(name);
        Ok(StoredEvent {
            event,
            tenant: collected.tenant.ok_or_else(|| missing("tenant"))?,
            received_at: collected
                .received_at
                .ok_or_else(|| missing("received_at"))?,
            seq: collected.seq.ok_or_else(|| missing("seq"))?,
            hash: collected.hash.ok_or_else(|| missing("hash"))?,
            redactions: collected.redactions.unwrap_or_default(),
        })
    }
}

impl<'de> Deserialize<'de> for StoredEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StoredEvent, D::Error> {
        d.deserialize_map(StoredVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, Transport};

    fn stored() -> StoredEvent {
        let mut e = Event::new("e1", "tools/call", "read_file");
        e.arguments = serde_json::json!({"path": "/etc/hosts", "n": 1.5, "tenant": "in arguments"});
        e.annotations.destructive = Some(false);
        e.labels
            .insert("seq".into(), "a label, not the field".into());
        e.outcome = Outcome::Denied;
        e.transport = Transport::Stdio;
        e.result = "{\"content\":\"quoted \\\"text\\\"\"}".into();
        StoredEvent {
            event: e,
            tenant: "acme".into(),
            received_at: time::macros::datetime!(2026-11-28 06:00:00.123456 UTC),
            seq: 42,
            hash: "ab".repeat(32),
            redactions: vec![Redaction {
                kind: "github_token".into(),
                path: "arguments.token".into(),
                count: 2,
            }],
        }
    }

    #[test]
    fn one_pass_reads_what_serialize_wrote_and_fields_in_any_order() {
        let s = stored();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            serde_json::from_value::<StoredEvent>(json.clone()).unwrap(),
            s
        );
        assert_eq!(
            serde_json::from_slice::<StoredEvent>(&serde_json::to_vec(&s).unwrap()).unwrap(),
            s
        );
        // The collector's fields first, an escaped key, nested keys named like them.
        let mut text = format!("{{\"seq\":42,\"tenant\":\"acme\",\"hash\":\"{}\",", s.hash);
        text.push_str("\"received_at\":\"2026-11-28T06:00:00.123456Z\",");
        text.push_str("\"redactions\":[{\"kind\":\"github_token\",\"path\":\"arguments.token\",\"count\":2}],");
        let event = serde_json::to_string(&s.event).unwrap();
        text.push_str(&event[1..].replacen("\"tool\"", "\"t\\u006fol\"", 1));
        assert_eq!(serde_json::from_str::<StoredEvent>(&text).unwrap(), s);
        let record = s.record().unwrap();
        assert_eq!(StoredEvent::from_record(&record).unwrap(), s);
    }

    #[test]
    fn a_missing_or_repeated_collector_field_is_named() {
        let s = stored();
        let mut v = serde_json::to_value(&s).unwrap();
        v.as_object_mut().unwrap().remove("tenant");
        let e = serde_json::from_value::<StoredEvent>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `tenant`"), "{e}");
        let json = serde_json::to_string(&s).unwrap();
        let twice = json.replacen("{", "{\"seq\":1,", 1);
        let e = serde_json::from_str::<StoredEvent>(&twice)
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate field `seq`"), "{e}");
        let bad = json.replacen("\"seq\":42", "\"seq\":\"x\"", 1);
        assert!(serde_json::from_str::<StoredEvent>(&bad).is_err());
        let mut no_redactions = s.clone();
        no_redactions.redactions.clear();
        let json = serde_json::to_string(&no_redactions).unwrap();
        assert!(!json.contains("redactions"), "{json}");
        assert_eq!(
            serde_json::from_str::<StoredEvent>(&json).unwrap(),
            no_redactions
        );
    }
}
