//! JSON trees: the `arguments` value, and JSON text found inside strings.
//!
//! Leaves are scrubbed with their key as context (`"password": "…"`) and their path as the
//! redaction's location (`arguments.headers.Authorization`, `result.items[3].token`). JSON text
//! inside a string is walked token by token rather than parsed and re-serialised, so only the
//! string (or number) tokens that held a secret change: key order, spacing and number formats
//! stay byte-for-byte, and an unchanged text is never rewritten.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value;

use super::{Report, Scrubber};

/// Deepest JSON-inside-a-string nesting that is walked as JSON; deeper text is scanned as text.
pub(super) const MAX_NEST: u8 = 4;

/// Deepest `arguments` subtree walked. serde_json refuses to parse more than 128 levels, so
/// this only guards values built in code; a deeper subtree is replaced by one marker.
const MAX_DEPTH: usize = 256;

/// Starts with `{` and ends with `}` (or `[`/`]`), around optional whitespace.
pub(super) fn looks_like_json(s: &str) -> bool {
    let t = s.trim_ascii();
    (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']'))
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// Scrubs a JSON value in place: every string leaf, numbers under sensitive keys and card
/// numbers.
///
/// All string leaves are first scanned as one NUL-separated text (no keyword holds a NUL, and
/// a NUL ends a digit run): one walk instead of one per leaf. When that finds nothing, which is
/// the usual case, only leaves under sensitive keys and large numbers need a look.
pub(super) fn scrub_value(
    sc: &Scrubber,
    v: &mut Value,
    key: Option<&str>,
    path: &mut String,
    rep: &mut Report,
) {
    let mut joined = String::new();
    let clean = join_strings(v, &mut joined, 0) && sc.engine.scan(&joined).is_empty();
    walk_value(sc, v, key, path, rep, 0, clean);
}

/// Appends every string leaf and a NUL; `false` if the tree is deeper than [`MAX_DEPTH`].
fn join_strings(v: &Value, out: &mut String, depth: usize) -> bool {
    match v {
        _ if depth > MAX_DEPTH => false,
        Value::String(s) => {
            out.push_str(s);
            out.push('\0');
            true
        }
        Value::Array(items) => items.iter().all(|x| join_strings(x, out, depth + 1)),
        Value::Object(map) => map.values().all(|x| join_strings(x, out, depth + 1)),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

/// `clean`: no string leaf has a keyword or a card-length digit run.
fn walk_value(
    sc: &Scrubber,
    v: &mut Value,
    key: Option<&str>,
    path: &mut String,
    rep: &mut Report,
    depth: usize,
    clean: bool,
) {
    if depth > MAX_DEPTH {
        *v = Value::String(sc.too_deep(path, rep));
        return;
    }
    match v {
        Value::String(s) => {
            let new = if clean {
                sc.whole_value(s, key, path, rep)
            } else {
                sc.scrub_text(s, key, path, rep, 0)
            };
            if let Some(new) = new {
                *s = new;
            }
        }
        Value::Number(n) => {
            if sc.number_may_be_secret(n.as_u64(), key) {
                if let Some(new) = sc.scrub_number(&n.to_string(), key, path, rep) {
                    *v = Value::String(new);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                let _ = write!(path, "[{i}]");
                walk_value(sc, item, key, path, rep, depth + 1, clean);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                let len = path.len();
                push_key(path, k);
                walk_value(sc, item, Some(k), path, rep, depth + 1, clean);
                path.truncate(len);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

/// Scrubs JSON text. `None`: not JSON. `Some(None)`: JSON, nothing to change.
pub(super) fn scrub_json_text(
    sc: &Scrubber,
    text: &str,
    path: &mut String,
    rep: &mut Report,
    nest: u8,
) -> Option<Option<String>> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    let mut walk = TextWalk {
        sc,
        src: text,
        pos: 0,
        out: String::new(),
        copied: 0,
        changed: false,
        rep,
        nest,
    };
    walk.value(None, path);
    Some(walk.finish())
}

/// A JSON string literal for `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A walk over JSON text already known to be valid, copying it to `out` only from the first
/// changed token on.
struct TextWalk<'a, 'r> {
    sc: &'a Scrubber,
    src: &'a str,
    pos: usize,
    out: String,
    copied: usize,
    changed: bool,
    rep: &'r mut Report,
    nest: u8,
}

impl<'a> TextWalk<'a, '_> {
    fn peek(&self) -> u8 {
        self.src.as_bytes().get(self.pos).copied().unwrap_or(0)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    /// The string token at `pos`, quotes included, and whether it has escapes.
    fn string(&mut self) -> (usize, usize, bool) {
        let b = self.src.as_bytes();
        let start = self.pos;
        let mut i = start + 1;
        let mut escaped = false;
        while i < b.len() {
            match b[i] {
                b'\\' => {
                    escaped = true;
                    i += 2;
                }
                b'"' => {
                    i += 1;
                    break;
                }
                _ => i += 1,
            }
        }
        self.pos = i.min(b.len());
        (start, self.pos, escaped)
    }

    fn decode(&self, start: usize, end: usize, escaped: bool) -> Cow<'a, str> {
        let src: &'a str = self.src;
        let inner = src.get(start + 1..end.saturating_sub(1)).unwrap_or("");
        if !escaped {
            return Cow::Borrowed(inner);
        }
        match serde_json::from_str::<String>(&src[start..end]) {
            Ok(s) => Cow::Owned(s),
            Err(_) => Cow::Borrowed(inner),
        }
    }

    fn splice(&mut self, start: usize, end: usize, token: &str) {
        self.out.push_str(&self.src[self.copied..start]);
        self.out.push_str(token);
        self.copied = end;
        self.changed = true;
    }

    fn finish(mut self) -> Option<String> {
        if !self.changed {
            return None;
        }
        self.out.push_str(&self.src[self.copied..]);
        Some(self.out)
    }

    fn value(&mut self, key: Option<&str>, path: &mut String) {
        self.ws();
        match self.peek() {
            b'{' => self.object(path),
            b'[' => self.array(key, path),
            b'"' => {
                let (a, e, escaped) = self.string();
                let text = self.decode(a, e, escaped);
                if let Some(new) = self.sc.scrub_text(&text, key, path, self.rep, self.nest) {
                    self.splice(a, e, &quote(&new));
                }
            }
            0 => {}
            _ => {
                let b = self.src.as_bytes();
                let a = self.pos;
                while self.pos < b.len()
                    && !matches!(
                        b[self.pos],
                        b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.pos += 1;
                }
                let token = &self.src[a..self.pos];
                if token.starts_with(|c: char| c == '-' || c.is_ascii_digit())
                    && self.sc.number_may_be_secret(token.parse().ok(), key)
                {
                    if let Some(new) = self.sc.scrub_number(token, key, path, self.rep) {
                        let end = self.pos;
                        self.splice(a, end, &quote(&new));
                    }
                }
            }
        }
    }

    /// Consumes `close` if it comes next (after whitespace).
    fn closes(&mut self, close: u8) -> bool {
        self.ws();
        let closed = self.peek() == close;
        if closed {
            self.pos += 1;
        }
        closed
    }

    /// After a member or element: `true` if a `,` follows (consumed), `false` when the
    /// container closed or the text is not as expected.
    fn more(&mut self, close: u8) -> bool {
        if self.closes(b',') {
            return true;
        }
        self.closes(close);
        false
    }

    fn object(&mut self, path: &mut String) {
        self.pos += 1;
        if self.closes(b'}') {
            return;
        }
        loop {
            self.ws();
            if self.peek() != b'"' {
                return;
            }
            let (a, e, escaped) = self.string();
            let key = self.decode(a, e, escaped);
            if !self.closes(b':') {
                return;
            }
            let len = path.len();
            push_key(path, &key);
            self.value(Some(&key), path);
            path.truncate(len);
            if !self.more(b'}') {
                return;
            }
        }
    }

    fn array(&mut self, key: Option<&str>, path: &mut String) {
        self.pos += 1;
        if self.closes(b']') {
            return;
        }
        for i in 0usize.. {
            let len = path.len();
            let _ = write!(path, "[{i}]");
            self.value(key, path);
            path.truncate(len);
            if !self.more(b']') {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_round_trips() {
        for s in ["plain", "a\"b\\c", "line\nbreak\ttab", "\u{1}ctl", "é ü"] {
            let back: String = serde_json::from_str(&quote(s)).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn json_shape() {
        assert!(looks_like_json(" {\"a\":1} \n"));
        assert!(looks_like_json("[1,2]"));
        assert!(!looks_like_json("[INFO] started"));
        assert!(!looks_like_json("plain"));
    }
}
