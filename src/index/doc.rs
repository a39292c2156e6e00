//! The tantivy document of a stored event, borrowed rather than copied.
//!
//! tantivy's writers read a document through its [`Document`] trait, generically, so the event
//! itself can be the document: [`EventDoc`] holds the event (shared with the rest of the
//! collector) and its record, and hands out borrowed values. Building a `TantivyDocument`
//! instead would copy every indexed string and the whole record once more per event, on the
//! one indexer thread.
//!
//! The values are read through the field registry ([`FieldDef::value`]) and are exactly those
//! [`Fields`] describes (see the table in `schema.rs`).

use std::collections::btree_map;
use std::collections::BTreeMap;
use std::sync::Arc;

use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};
use tantivy::schema::{Document, Field, Value};
use tantivy::DateTime;

#[cfg(doc)]
use crate::event::fields::FieldDef;
use crate::event::fields::{for_each_leaf, FieldValue, Leaf};
use crate::event::id_key;
use crate::wal::Entry;

use super::schema::{micros, split_key, Fields};

/// One event as a tantivy document.
pub(crate) struct EventDoc {
    fields: Arc<Fields>,
    /// The committed event, shared with the other consumers; its record is stored as
    /// `_source`. Dropping the document lets go of it (and of its backlog charge).
    entry: Arc<Entry>,
    /// The numbers among the argument values as text (free text over arguments is text).
    numbers: Vec<String>,
    /// The halves of the event's [`id_key`] (a SHA-256: made once, while tantivy reads the
    /// values three times).
    id: (u64, u64),
}

impl EventDoc {
    pub fn new(fields: Arc<Fields>, entry: Arc<Entry>) -> Self {
        let mut numbers = Vec::new();
        for_each_leaf(&entry.event.event.arguments, &mut |leaf| {
            if let Leaf::Number(n) = leaf {
                numbers.push(n.to_string())
            }
        });
        let id = split_key(id_key(&entry.event.tenant, &entry.event.event.event_id));
        EventDoc {
            fields,
            entry,
            numbers,
            id,
        }
    }

    fn values(&self) -> Vec<(Field, DocValue<'_>)> {
        let f = &*self.fields;
        let stored = &self.entry.event;
        let mut out = Vec::with_capacity(48);
        out.push((f.tenant, DocValue::Str(&stored.tenant)));
        out.push((f.pos, DocValue::U64(self.entry.pos)));
        for (def, field) in f.indexed() {
            match def.value(stored) {
                // An empty string means "not reported": no term, so `terms` never shows "".
                FieldValue::Str(s) => {
                    if !s.is_empty() {
                        out.push((field, DocValue::Str(s)))
                    }
                }
                FieldValue::Strs(values) => {
                    out.extend(values.into_iter().map(|s| (field, DocValue::Str(s))))
                }
                FieldValue::U64(n) => out.push((field, DocValue::U64(n))),
                FieldValue::Time(t) => out.push((
                    field,
                    DocValue::Date(super::schema::tantivy_date(micros(t))),
                )),
                FieldValue::Bool(b) => out.push((field, DocValue::Bool(b))),
                FieldValue::Json(args) => {
                    if !args.is_null() {
                        // Free text over arguments: every leaf as text, numbers as rendered.
                        let mut numbers = self.numbers.iter();
                        for_each_leaf(args, &mut |leaf| {
                            let text = match leaf {
                                Leaf::Str(s) => s,
                                Leaf::Number(_) => match numbers.next() {
                                    Some(n) => n.as_str(),
                                    None => return,
                                },
                                Leaf::Bool(b) => {
                                    if b {
                                        "true"
                                    } else {
                                        "false"
                                    }
                                }
                            };
                            out.push((f.arguments_text, DocValue::Str(text)));
                        });
                        out.push((field, DocValue::Json(args)));
                    }
                }
                FieldValue::Labels(labels) => {
                    if !labels.is_empty() {
                        out.push((field, DocValue::Labels(labels)))
                    }
                }
            }
        }
        let (hi, lo) = self.id;
        out.push((f.id_hi, DocValue::U64(hi)));
        out.push((f.id_lo, DocValue::U64(lo)));
        out.push((f.source, DocValue::Bytes(&self.entry.record)));
        out
    }
}

impl Document for EventDoc {
    type Value<'a> = DocValue<'a>;
    type FieldsValuesIter<'a> = std::vec::IntoIter<(Field, DocValue<'a>)>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        self.values().into_iter()
    }
}

/// A borrowed value of an [`EventDoc`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum DocValue<'a> {
    Str(&'a str),
    U64(u64),
    Date(DateTime),
    Bool(bool),
    Bytes(&'a [u8]),
    /// `arguments`, or a value inside it.
    Json(&'a serde_json::Value),
    Labels(&'a BTreeMap<String, String>),
}

type JsonArrayIter<'a> = std::iter::Map<
    std::slice::Iter<'a, serde_json::Value>,
    fn(&'a serde_json::Value) -> DocValue<'a>,
>;

/// The members of an object value.
pub(crate) enum ObjectIter<'a> {
    Json(serde_json::map::Iter<'a>),
    Labels(btree_map::Iter<'a, String, String>),
}

impl<'a> Iterator for ObjectIter<'a> {
    type Item = (&'a str, DocValue<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ObjectIter::Json(it) => it.next().map(|(k, v)| (k.as_str(), DocValue::Json(v))),
            ObjectIter::Labels(it) => it.next().map(|(k, v)| (k.as_str(), DocValue::Str(v))),
        }
    }
}

impl<'a> Value<'a> for DocValue<'a> {
    type ArrayIter = JsonArrayIter<'a>;
    type ObjectIter = ObjectIter<'a>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        let leaf = match *self {
            DocValue::Str(s) => ReferenceValueLeaf::Str(s),
            DocValue::U64(n) => ReferenceValueLeaf::U64(n),
            DocValue::Date(d) => ReferenceValueLeaf::Date(d),
            DocValue::Bool(b) => ReferenceValueLeaf::Bool(b),
            DocValue::Bytes(b) => ReferenceValueLeaf::Bytes(b),
            DocValue::Labels(map) => return ReferenceValue::Object(ObjectIter::Labels(map.iter())),
            DocValue::Json(serde_json::Value::Array(items)) => {
                let child: fn(&'a serde_json::Value) -> DocValue<'a> = DocValue::Json;
                return ReferenceValue::Array(items.iter().map(child));
            }
            DocValue::Json(serde_json::Value::Object(map)) => {
                return ReferenceValue::Object(ObjectIter::Json(map.iter()))
            }
            // Scalars exactly as tantivy reads a `serde_json::Value` (numbers by their
            // narrowest type, RFC 3339 strings as dates), so queries match what is indexed.
            DocValue::Json(scalar) => match Value::as_value(&scalar) {
                ReferenceValue::Leaf(leaf) => leaf,
                _ => ReferenceValueLeaf::Null,
            },
        };
        ReferenceValue::Leaf(leaf)
    }
}
