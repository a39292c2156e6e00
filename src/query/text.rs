//! How the index reads text and JSON values, reproduced without tantivy, so that the matcher
//! means what a search means.
//!
//! - Words: tantivy's `default` analyzer, i.e. runs of alphanumeric characters (each run is
//!   one position), runs of [`MAX_WORD_BYTES`] bytes or more dropped (their position stays
//!   used), then lower-cased character by character.
//! - Several values of one field (every argument value in the free text of `arguments`, or
//!   several values at one `arguments.<path>`) follow each other with one unused position
//!   between them, so a phrase never spans two values.
//! - JSON leaves of `arguments.<path>`: a string that starts with a digit and parses as RFC 3339
//!   is a time (whole seconds), not words; numbers are compared as tantivy normalises them
//!   (integral values as i64, then u64, else f64); the query value is tried as a time, then a
//!   number, then `true`/`false`. A key holding U+0000 is left out with everything under it; a
//!   key holding U+0001 (the index's path separator) counts as two levels.
//!
//! `index/` tests these against tantivy itself, so a tantivy upgrade that changes any of it
//! fails there first.

use std::collections::HashMap;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Words this long (in bytes, before lower-casing) or longer are not indexed.
pub const MAX_WORD_BYTES: usize = 40;
/// Longest exact value (a whole-value token) the index keeps, in bytes; longer values have no
/// term (tantivy's `MAX_TOKEN_LEN`).
pub const MAX_EXACT_BYTES: usize = u16::MAX as usize - 5;

/// Calls `f(position, word)` for every indexed word of `text`, as the index tokenizes it.
pub fn for_each_word(text: &str, f: &mut impl FnMut(usize, String)) {
    let mut position = 0usize;
    let mut start: Option<usize> = None;
    let mut emit = |from: usize, to: usize, position: &mut usize| {
        let run = &text[from..to];
        if run.len() < MAX_WORD_BYTES {
            // Char by char: no final-sigma rule, as tantivy's LowerCaser.
            let mut word = String::with_capacity(run.len());
            for c in run.chars() {
                word.extend(c.to_lowercase());
            }
            f(*position, word);
        }
        *position += 1;
    };
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(from)) => {
                emit(from, i, &mut position);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        emit(from, text.len(), &mut position);
    }
}

/// The indexed words of `text` with their positions.
pub fn words(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for_each_word(text, &mut |p, w| out.push((p, w)));
    out
}

/// The words of one field of one event, with positions as the index gives them.
#[derive(Default)]
pub(crate) struct FieldText {
    /// word → its positions.
    words: HashMap<String, Vec<u32>>,
    /// The position after the last value, plus the gap.
    end: u32,
}

impl FieldText {
    /// Appends one value of the field.
    pub fn push(&mut self, text: &str) {
        let base = self.end;
        let mut end = self.end;
        for_each_word(text, &mut |position, word| {
            let p = base.saturating_add(u32::try_from(position).unwrap_or(u32::MAX));
            end = end.max(p.saturating_add(1));
            self.words.entry(word).or_default().push(p);
        });
        self.end = end.saturating_add(1);
    }

    /// Whether the words of a query (from [`words`]) occur here in a row, keeping their
    /// relative positions. No words never match.
    pub fn has_phrase(&self, query: &[(usize, String)]) -> bool {
        let Some(((first_pos, first), rest)) = query.split_first() else {
            return false;
        };
        let Some(starts) = self.words.get(first) else {
            return false;
        };
        starts.iter().any(|&start| {
            rest.iter().all(|(pos, word)| {
                let at = i64::from(start) + (*pos as i64 - *first_pos as i64);
                self.words
                    .get(word)
                    .is_some_and(|ps| ps.iter().any(|&p| i64::from(p) == at))
            })
        })
    }
}

/// A JSON value as the index types it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Typed {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// Nanoseconds since the epoch, truncated to whole seconds (towards zero).
    Date(i64),
}

fn normalize_f64(v: f64) -> Typed {
    let fract = v.fract();
    if fract == 0.0 && v >= i64::MIN as f64 && v <= i64::MAX as f64 {
        Typed::I64(v as i64)
    } else if fract == 0.0 && v >= 0.0 && v <= u64::MAX as f64 {
        Typed::U64(v as u64)
    } else {
        Typed::F64(v)
    }
}

fn date(text: &str) -> Option<Typed> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let nanos = i64::try_from(t.unix_timestamp_nanos()).ok()?;
    Some(Typed::Date(nanos / 1_000_000_000 * 1_000_000_000))
}

/// How the index types a string leaf of the arguments: a time, or `None` for words.
pub(crate) fn string_leaf(s: &str) -> Option<Typed> {
    if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        date(s)
    } else {
        None
    }
}

/// How the index types a number leaf of the arguments (`None`: not indexed).
pub(crate) fn number_leaf(n: &serde_json::Number) -> Option<Typed> {
    if let Some(v) = n.as_i64() {
        Some(Typed::I64(v))
    } else if let Some(v) = n.as_u64() {
        Some(Typed::U64(v))
    } else {
        n.as_f64().filter(|v| v.is_finite()).map(normalize_f64)
    }
}

/// The typed value a query value also searches at `arguments.<path>`.
pub(crate) fn query_value(text: &str) -> Option<Typed> {
    if let Some(d) = date(text) {
        return Some(d);
    }
    if let Ok(v) = text.parse::<i64>() {
        return Some(Typed::I64(v));
    }
    if let Ok(v) = text.parse::<u64>() {
        return Some(if v <= i64::MAX as u64 {
            Typed::I64(v as i64)
        } else {
            Typed::U64(v)
        });
    }
    if let Ok(v) = text.parse::<f64>() {
        return Some(normalize_f64(v));
    }
    text.parse::<bool>().ok().map(Typed::Bool)
}

/// Splits an `arguments.` path into keys: `.` separates levels, `\` takes the next character
/// as it is (`a\.b` is the one key `a.b`).
pub fn split_path(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut escaped = false;
    for c in raw.chars() {
        if escaped {
            key.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '.' {
            out.push(std::mem::take(&mut key));
        } else {
            key.push(c);
        }
    }
    out.push(key);
    out
}

/// Escapes keys so that [`split_path`] gives them back.
pub fn join_path(keys: &[String]) -> String {
    keys.iter()
        .map(|k| k.replace('\\', "\\\\").replace('.', "\\."))
        .collect::<Vec<_>>()
        .join(".")
}

/// Calls `f` with every scalar (nulls left out) at `path` in `v`, in the index's order.
pub(crate) fn for_each_at_path<'a>(
    v: &'a serde_json::Value,
    path: &[String],
    f: &mut impl FnMut(&'a serde_json::Value),
) {
    match v {
        serde_json::Value::Null => {}
        serde_json::Value::Array(items) => {
            items.iter().for_each(|i| for_each_at_path(i, path, f));
        }
        serde_json::Value::Object(map) => {
            if path.is_empty() {
                return;
            }
            for (key, child) in map {
                if key.contains('\0') {
                    continue;
                }
                let mut rest = path;
                let mut ok = true;
                for part in key.split('\u{1}') {
                    match rest.split_first() {
                        Some((first, tail)) if first == part => rest = tail,
                        _ => {
                            ok = false;
                            break;
                        }
                    }
                }
                if ok {
                    for_each_at_path(child, rest, f);
                }
            }
        }
        scalar => {
            if path.is_empty() {
                f(scalar)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_positions_of_dropped_long_runs() {
        let long = "x".repeat(40);
        assert_eq!(
            words(&format!("Hello, {long} WORLD! 39{}", "y".repeat(37))),
            vec![
                (0, "hello".to_string()),
                (2, "world".to_string()),
                (3, format!("39{}", "y".repeat(37)))
            ]
        );
        assert_eq!(
            words("ÉCOLE ΣΑΣ"),
            vec![(0, "école".into()), (1, "σασ".into())]
        );
        assert!(words("... --- ").is_empty());
    }

    #[test]
    fn phrases_do_not_span_values() {
        let mut t = FieldText::default();
        t.push("alpha beta");
        t.push("gamma");
        assert!(t.has_phrase(&words("alpha beta")));
        assert!(!t.has_phrase(&words("beta gamma")));
        assert!(!t.has_phrase(&words("beta alpha")));
        assert!(t.has_phrase(&words("gamma")));
        assert!(!t.has_phrase(&[]));
        // One unused position between values: a dropped word in the query bridges it.
        assert!(t.has_phrase(&words(&format!("beta {} gamma", "z".repeat(45)))));
    }

    #[test]
    fn typed_values() {
        assert_eq!(query_value("5"), Some(Typed::I64(5)));
        assert_eq!(query_value("5.0"), Some(Typed::I64(5)));
        assert_eq!(query_value("5.5"), Some(Typed::F64(5.5)));
        assert_eq!(query_value("true"), Some(Typed::Bool(true)));
        assert_eq!(query_value("True"), None);
        assert_eq!(
            query_value(&u64::MAX.to_string()),
            Some(Typed::U64(u64::MAX))
        );
        assert_eq!(
            query_value("1970-01-01T00:00:01.9Z"),
            Some(Typed::Date(1_000_000_000))
        );
        assert_eq!(
            string_leaf("2025-01-31T00:00:00Z"),
            query_value("2025-01-31T00:00:00Z")
        );
        assert_eq!(string_leaf("x2025-01-31T00:00:00Z"), None);
        let n: serde_json::Number = serde_json::from_str("7.0").unwrap();
        assert_eq!(number_leaf(&n), Some(Typed::I64(7)));
    }

    #[test]
    fn paths() {
        assert_eq!(split_path(r"a\.b.c"), vec!["a.b", "c"]);
        assert_eq!(split_path("a..b"), vec!["a", "", "b"]);
        for keys in [vec!["a.b".to_string(), "c\\".into()], vec!["".into()]] {
            assert_eq!(split_path(&join_path(&keys)), keys);
        }
        let v = serde_json::json!({"a": [{"b": 1}, {"b": [2, null]}], "a\u{1}b": 3, "x\u{0}": {"b": 4}});
        let mut got = Vec::new();
        for_each_at_path(&v, &["a".into(), "b".into()], &mut |v| got.push(v.clone()));
        assert_eq!(
            got,
            vec![
                serde_json::json!(1),
                serde_json::json!(2),
                serde_json::json!(3)
            ]
        );
    }
}
