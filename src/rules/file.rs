//! Rule files as written: YAML documents in the Sigma format, with our extensions.
//!
//! This module only reads: every key a Sigma rule may carry is accepted (so plain Sigma rules
//! load unchanged), unknown keys are errors (a typo must not silently disable a detection),
//! and every value that later checks may reject keeps its line and column, so an error can
//! name the file, the place and the field at fault. What the values mean is `compile.rs`'s job.
//!
//! A file may hold several documents separated by `---` (Sigma's correlation rules refer to
//! detection rules in the same file by `id` or `name`).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// Where something is in a rule file (1-based; 0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl Pos {
    pub fn of<T>(s: &Spanned<T>) -> Pos {
        Pos {
            line: s.referenced.line(),
            column: s.referenced.column(),
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str("?")
        } else {
            write!(f, "{}:{}", self.line, self.column)
        }
    }
}

/// Any YAML value, with the position of every nested value and key.
#[derive(Debug, Clone, PartialEq)]
pub enum YValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<YValue>>),
    Map(Vec<(Spanned<String>, Spanned<YValue>)>),
}

impl YValue {
    /// How the value reads in an error message.
    pub fn kind(&self) -> &'static str {
        match self {
            YValue::Null => "null",
            YValue::Bool(_) => "a boolean",
            YValue::Int(_) | YValue::Float(_) => "a number",
            YValue::Str(_) => "a string",
            YValue::Seq(_) => "a list",
            YValue::Map(_) => "a map",
        }
    }

    /// A scalar as text (numbers and booleans as written in YAML); `None` for the rest.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            YValue::Bool(b) => Some(b.to_string()),
            YValue::Int(i) => Some(i.to_string()),
            YValue::Float(f) => Some(f.to_string()),
            YValue::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for YValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = YValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E>(self) -> Result<YValue, E> {
                Ok(YValue::Null)
            }
            fn visit_none<E>(self) -> Result<YValue, E> {
                Ok(YValue::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<YValue, D::Error> {
                YValue::deserialize(d)
            }
            fn visit_bool<E>(self, v: bool) -> Result<YValue, E> {
                Ok(YValue::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<YValue, E> {
                Ok(YValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<YValue, E> {
                Ok(i64::try_from(v).map_or(YValue::Float(v as f64), YValue::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<YValue, E> {
                Ok(YValue::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<YValue, E> {
                Ok(YValue::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<YValue, E> {
                Ok(YValue::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Spanned<YValue>>()? {
                    out.push(v);
                }
                Ok(YValue::Seq(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YValue, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Spanned<KeyText>>()? {
                    let v = map.next_value::<Spanned<YValue>>()?;
                    let key = Spanned::new(k.value.0, k.referenced, k.defined);
                    out.push((key, v));
                }
                Ok(YValue::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A map key as text (YAML allows numbers and booleans as keys).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match YValue::deserialize(d)? {
            YValue::Null => Ok(KeyText("null".into())),
            v => v
                .scalar_text()
                .map(KeyText)
                .ok_or_else(|| de::Error::custom("a map key must be text")),
        }
    }
}

/// One string or a list of strings (Sigma allows both in several places).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Strings(pub Vec<Spanned<String>>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Spanned::<YValue>::deserialize(d)?;
        let item = |v: Spanned<YValue>| -> Result<Spanned<String>, D::Error> {
            match v.value.scalar_text() {
                Some(s) => Ok(Spanned::new(s, v.referenced, v.defined)),
                None => Err(de::Error::custom(format!(
                    "expected text, found {}",
                    v.value.kind()
                ))),
            }
        };
        match v.value {
            YValue::Null => Ok(Strings(Vec::new())),
            YValue::Seq(items) => items
                .into_iter()
                .map(item)
                .collect::<Result<_, _>>()
                .map(Strings),
            _ => Ok(Strings(vec![item(v)?])),
        }
    }
}

/// One rule document. Sigma's keys, then ours. Metadata that does not change what a rule
/// matches is read (so it is checked) but not kept.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    pub title: Spanned<String>,
    #[serde(default)]
    pub id: Option<Spanned<String>>,
    /// Sigma: a name other rules of the file can refer to.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    pub status: Option<Spanned<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// Sigma's severity (`informational`, `low`, `medium`, `high`, `critical`).
    #[serde(default)]
    pub level: Option<Spanned<String>>,
    /// Our name for `level`; one of the two.
    #[serde(default)]
    pub severity: Option<Spanned<String>>,
    #[serde(default)]
    pub tags: Strings,
    #[serde(default)]
    pub falsepositives: Strings,
    #[serde(default)]
    pub detection: Option<Spanned<YValue>>,
    #[serde(default)]
    pub correlation: Option<Spanned<YValue>>,
    /// Sigma (correlations): whether the referenced rules also report on their own.
    #[serde(default)]
    pub generate: Option<bool>,

    // Sigma metadata that does not change what a rule matches.
    #[serde(default)]
    pub author: Option<IgnoredAny>,
    #[serde(default)]
    pub date: Option<IgnoredAny>,
    #[serde(default)]
    pub modified: Option<IgnoredAny>,
    #[serde(default)]
    pub references: Option<IgnoredAny>,
    #[serde(default)]
    pub related: Option<IgnoredAny>,
    #[serde(default)]
    pub license: Option<IgnoredAny>,
    #[serde(default)]
    pub taxonomy: Option<IgnoredAny>,
    #[serde(default)]
    pub scope: Option<IgnoredAny>,
    #[serde(default)]
    pub fields: Option<IgnoredAny>,
    #[serde(default)]
    pub logsource: Option<IgnoredAny>,

    // Our extensions.
    /// Allow-list: events matching any of these selections never produce a finding.
    #[serde(default)]
    pub exceptions: Option<Spanned<YValue>>,
    /// Fields whose values make a finding's group key (detection rules; correlations use
    /// Sigma's `group-by`).
    #[serde(default)]
    pub group_by: Strings,
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A template for the finding's explanation: `{field}` and the kind's own values
    /// (`{count}`, `{threshold}`, `{window}`, `{value}`, `{previous}`...).
    #[serde(default)]
    pub explanation: Option<Spanned<String>>,
}

/// Why a file could not be read as rule documents.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

/// Reads every `---`-separated rule document of a file.
pub fn parse(text: &str) -> Result<Vec<RuleDoc>, ParseError> {
    serde_saphyr::from_multiple::<RuleDoc>(text).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos {
                line: l.line(),
                column: l.column(),
            })
            .unwrap_or_default();
        // The library's own text repeats the location and shows a snippet; keep its first
        // line, which names what is wrong.
        let full = e.to_string();
        let message = full.lines().next().unwrap_or(&full).trim().to_string();
        ParseError { pos, message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sigma_rule_reads_with_positions() {
        let text = "title: Test\nid: 1234\nlevel: high\ntags:\n  - attack.t1059\nlogsource:\n  product: mcp\ndetection:\n  sel:\n    tool|contains:\n      - rm\n      - 42\n  condition: sel\nfalsepositives: Admins\nauthor: me\n";
        let docs = parse(text).unwrap();
        assert_eq!(docs.len(), 1);
        let d = &docs[0];
        assert_eq!(d.title.value, "Test");
        assert_eq!(d.id.as_ref().unwrap().value, "1234");
        assert_eq!(d.falsepositives.0.len(), 1);
        let YValue::Map(sel) = &d.detection.as_ref().unwrap().value else {
            panic!()
        };
        assert_eq!(sel[0].0.value, "sel");
        let YValue::Map(fields) = &sel[0].1.value else {
            panic!()
        };
        assert_eq!(fields[0].0.value, "tool|contains");
        assert_eq!(Pos::of(&fields[0].0).line, 10);
        let YValue::Seq(values) = &fields[0].1.value else {
            panic!()
        };
        assert_eq!(values[1].value, YValue::Int(42));
        assert_eq!(Pos::of(&values[1]).line, 12);
    }

    #[test]
    fn unknown_keys_and_bad_yaml_are_errors_with_a_place() {
        let e = parse("title: x\ndetecton: {}\n").unwrap_err();
        assert!(e.message.contains("detecton"), "{e:?}");
        assert_eq!(e.pos.line, 2);
        let e = parse("title: [unclosed\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
    }

    #[test]
    fn several_documents() {
        let docs = parse("title: a\n---\ntitle: b\n").unwrap();
        assert_eq!(docs.len(), 2);
    }
}
