//! Hand-written finders for shapes a regex says badly: card numbers, `key = value`
//! assignments, URL credentials, PEM blocks, and existing markers.
//!
//! Each works on bytes from a keyword hit (or, for cards, on digit runs), never rescans the
//! whole string, and returns spans that lie on `char` boundaries.

use super::checks;
use super::engine::floor_char;
use super::rules::DATABASE_SCHEMES;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Whether `i` follows an escape such as `\n` or `\t` (JSON text scanned as text): the letter
/// of the escape does not make what follows part of a longer word.
pub(super) fn escape_before(b: &[u8], i: usize) -> bool {
    i >= 2 && b[i - 2] == b'\\' && matches!(b[i - 1], b'n' | b'r' | b't')
}

/// Card numbers: 13–19 digits, optionally grouped by single spaces or dashes the way cards are
/// printed (4-4-4-4…, Amex 4-6-5, Diners 4-6-4), with a known issuer prefix, a valid Luhn
/// digit, and not part of a longer number, identifier or decimal.
pub(super) fn cards(s: &str, out: &mut Vec<(usize, usize)>) {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = 0;
    while let Some(start) = next_digit(b, i) {
        // Most digit runs are short numbers: leave them without building a `Run`.
        let e = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        let joined = e + 1 < n && matches!(b[e], b' ' | b'-') && b[e + 1].is_ascii_digit();
        if e - start < 13 && !joined {
            i = e;
            continue;
        }
        let run = Run::at(b, start);
        i = run.end;
        if run.digits < 13 {
            continue;
        }
        let left_ok = |a: usize| {
            a == 0
                || escape_before(b, a)
                || !matches!(b[a - 1], b'.' | b'_' | b'+' | b'-' | b'/')
                    && !b[a - 1].is_ascii_alphanumeric()
        };
        let right_ok = |e: usize| {
            e >= n
                || !(b[e].is_ascii_alphanumeric()
                    || b[e] == b'_'
                    || (b[e] == b'.' && e + 1 < n && b[e + 1].is_ascii_digit()))
        };
        if run.printed_like_card()
            && left_ok(start)
            && right_ok(run.end)
            && is_card(b, run.groups())
        {
            out.push((start, run.end));
        } else if run.sep != Some(b'-') {
            // Space-separated numbers: each long enough group on its own.
            let mut a = start;
            while a < run.end {
                let e = a + b[a..run.end]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if e - a >= 13
                    && (a != start || left_ok(a))
                    && (e != run.end || right_ok(e))
                    && is_card(b, &[(a, e)])
                {
                    out.push((a, e));
                }
                a = e + 1;
            }
        }
    }
}

/// Whether any byte of the word is an ASCII digit (`0x2f < byte < 0x3a`, exact for all bytes).
fn has_digit(x: u64) -> bool {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES * 128;
    let low7 = x & (ONES * 127);
    (ONES * (127 + 0x3a)).wrapping_sub(low7) & !x & low7.wrapping_add(ONES * (127 - 0x2f)) & HIGH
        != 0
}

/// The first digit at or after `from`, eight bytes at a time.
fn next_digit(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(word) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        if has_digit(u64::from_le_bytes(w)) {
            break;
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(u8::is_ascii_digit)
        .map(|p| i + p)
}

/// A run of digit groups joined by single spaces or dashes.
struct Run {
    end: usize,
    /// The first groups (a card has at most five).
    first: [(usize, usize); 6],
    count: usize,
    digits: usize,
    sep: Option<u8>,
    consistent: bool,
}

impl Run {
    fn at(b: &[u8], start: usize) -> Self {
        let mut run = Run {
            end: start,
            first: [(0, 0); 6],
            count: 0,
            digits: 0,
            sep: None,
            consistent: true,
        };
        let mut i = start;
        loop {
            let g = i;
            i += b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if let Some(slot) = run.first.get_mut(run.count) {
                *slot = (g, i);
            }
            run.count += 1;
            run.digits += i - g;
            if i + 1 < b.len() && matches!(b[i], b' ' | b'-') && b[i + 1].is_ascii_digit() {
                run.consistent &= run.sep.is_none_or(|s| s == b[i]);
                run.sep = Some(b[i]);
                i += 1;
            } else {
                break;
            }
        }
        run.end = i;
        run
    }

    fn groups(&self) -> &[(usize, usize)] {
        &self.first[..self.count.min(self.first.len())]
    }

    /// 13–19 digits, ungrouped or grouped the way cards are printed: 4-4-4-4[-1..4],
    /// Amex 4-6-5, Diners 4-6-4.
    fn printed_like_card(&self) -> bool {
        if !(13..=19).contains(&self.digits) || !self.consistent || self.count > self.first.len() {
            return false;
        }
        let len = |i: usize| self.first[i].1 - self.first[i].0;
        match self.count {
            1 => true,
            3 if len(0) == 4 && len(1) == 6 && (len(2) == 4 || len(2) == 5) => true,
            n => (0..n - 1).all(|i| len(i) == 4) && (1..=4).contains(&len(n - 1)),
        }
    }
}

fn is_card(b: &[u8], groups: &[(usize, usize)]) -> bool {
    let mut digits = [0u8; 19];
    let mut len = 0;
    for &(a, e) in groups {
        for &d in &b[a..e] {
            if len == digits.len() {
                return false;
            }
            digits[len] = d;
            len += 1;
        }
    }
    let digits = &digits[..len];
    len >= 13 && checks::card_issuer(digits) && std::str::from_utf8(digits).is_ok_and(checks::luhn)
}

/// `[REDACTED:kind:fp]` starting at the hit.
pub(super) fn marker(s: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let rest = s.as_bytes().get(end..)?;
    let close = rest.iter().take(100).position(|&c| c == b']')?;
    let inner = &rest[..close];
    let ok = !inner.is_empty()
        && inner
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b':');
    ok.then_some((start, end + close + 1))
}

fn header_char(c: &u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b' '
}

fn pem_body(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'+' | b'/' | b'=' | b' ' | b'\t' | b'\r' | b'\n' | b'\\' | b':' | b',' | b'-'
        )
}

/// A PEM private key around a `PRIVATE KEY` hit: from `-----BEGIN …` through the END line.
/// Newlines may be real or literal `\n` (JSON text). A body without an END line (a truncated
/// result) is redacted up to the next `-----` or the first byte that cannot be in a body.
pub(super) fn pem(s: &str, start: usize, end: usize, span: usize) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let lo = start.saturating_sub(64);
    let begin = lo + rfind(&b[lo..start], b"-----BEGIN ")?;
    if !b[begin + 11..start].iter().all(header_char) {
        return None;
    }
    let mut i = end;
    if b[i..].starts_with(b" BLOCK") {
        i += 6;
    }
    if !b[i..].starts_with(b"-----") {
        return None;
    }
    i += 5;
    let limit = i.saturating_add(span).min(b.len());
    match find(&b[i..limit], b"-----") {
        Some(rel) => {
            let p = i + rel;
            if b[p..].starts_with(b"-----END ") {
                let q = p + 9;
                let lim = (q + 64).min(b.len());
                if let Some(c) = find(&b[q..lim], b"-----") {
                    if b[q..q + c].iter().all(header_char) {
                        return Some((begin, q + c + 5));
                    }
                }
            }
            Some((begin, p))
        }
        None => {
            let j = i + b[i..limit].iter().take_while(|&&c| pem_body(c)).count();
            Some((begin, floor_char(s, j)))
        }
    }
}

/// The password of `scheme://user:password@host`.
pub(super) struct UrlCredential {
    pub password: (usize, usize),
    pub database: bool,
    /// Where the host part ends.
    pub authority_end: usize,
}

/// Ends the authority as RFC 3986 reads it.
fn authority_end(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'/' | b'?'
                | b'#'
                | b'\\'
                | b'"'
                | b'\''
                | b'<'
                | b'>'
                | b'`'
                | b'{'
                | b'}'
                | b'|'
                | b'^'
                | b'('
                | b')'
        )
}

/// Ends the text a pasted URL can run on through: whitespace, a double quote or backtick, a
/// JSON escape that ends a string or a line (`\"`, `\n`…), or the next `://`.
fn url_stop(b: &[u8], i: usize) -> bool {
    let c = b[i];
    c.is_ascii_whitespace()
        || c.is_ascii_control()
        || matches!(c, b'"' | b'`')
        || (c == b'\\' && matches!(b.get(i + 1), Some(b'"' | b'\'' | b'n' | b'r' | b't' | b'u')))
        || b[i..].starts_with(b"://")
        || b[i..].starts_with(br":\/\/")
}

/// The end of a host part starting at `i`: `host`, `host:port`, `[v6]:port`, or a list of them
/// (`h1:27017,h2:27017`, as MongoDB writes), if what follows can follow a host: the end of the
/// URL's text or one of `/ ? , ; ) ] > ' \`. A host followed by `@`, `#`, `!` or `:` and
/// letters is part of a password instead.
fn host_end(b: &[u8], mut i: usize, stop: usize) -> Option<usize> {
    loop {
        if b.get(i) == Some(&b'[') {
            let close = b[i..stop].iter().take(64).position(|&c| c == b']')?;
            i += close + 1;
        } else {
            let n = b[i..stop]
                .iter()
                .take_while(|&&c| {
                    c.is_ascii_alphanumeric()
                        || c >= 0x80
                        || matches!(c, b'-' | b'.' | b'_' | b'%' | b'~')
                })
                .count();
            if n == 0 {
                return None;
            }
            i += n;
        }
        if i < stop && b[i] == b':' {
            let digits = b[i + 1..stop]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if !(1..=5).contains(&digits) {
                return None;
            }
            i += 1 + digits;
        }
        let another =
            i + 1 < stop && b[i] == b',' && (b[i + 1].is_ascii_alphanumeric() || b[i + 1] == b'[');
        if !another {
            break;
        }
        i += 1;
    }
    let follows = i >= stop
        || matches!(
            b[i],
            b'/' | b'?' | b',' | b';' | b')' | b']' | b'>' | b'\'' | b'\\'
        );
    follows.then_some(i)
}

/// The `@` that ends a userinfo whose `:` is at `colon`, and the end of the host after it.
///
/// Candidates are the `@`s a host follows, bar those that start a path segment (`/@scope`).
/// The last one wins, as a browser reads it, unless it lies in the path or query of an earlier
/// candidate's URL: after a `/@` (`host/@scope/pkg@1.2.3`) or in a query parameter
/// (`host/x?email=ops@example.com`). Then the last candidate before it wins.
fn userinfo_end(b: &[u8], colon: usize, stop: usize) -> Option<(usize, usize)> {
    let mut first: Option<(usize, usize)> = None;
    let mut best: Option<(usize, usize)> = None;
    let mut i = colon + 2;
    while i < stop {
        if b[i] == b'@' && b[i - 1] != b'/' {
            if let Some(h) = host_end(b, i + 1, stop) {
                let later = first.is_some_and(|(_, fh)| in_path_or_query(&b[fh..i]));
                if later {
                    break;
                }
                first = first.or(Some((i, h)));
                best = Some((i, h));
            }
        }
        i += 1;
    }
    best
}

/// Whether the text after a host up to an `@` is a path with an `@` segment or a query
/// parameter: `/@scope/pkg`, `/x?email=ops`.
fn in_path_or_query(t: &[u8]) -> bool {
    let segment = t.windows(2).any(|w| w == b"/@");
    let query = t
        .iter()
        .position(|&c| c == b'?')
        .is_some_and(|q| t[q..].contains(&b'='));
    segment || query
}

/// Around a `://` hit: the scheme before it, and the password in the userinfo after it.
///
/// The password runs from the first `:` of the userinfo to the last `@` that is followed by a
/// host, the way people paste passwords: unescaped, with `@ # ! / ? %` in them
/// (`https://bot:Dragon123@xYz1@api.example/`, `postgres://app:Tiger1#ab!@db:5432/x`). So the
/// userinfo may run past the authority that RFC 3986 reads (up to `/ ? #`), but not past
/// whitespace or a double quote. The `:` must lie in that authority and not start a port
/// (`http://localhost:5173/@vite/client` has no password); see [`userinfo_end`] for which `@`
/// ends the password.
pub(super) fn url_password(
    s: &str,
    start: usize,
    end: usize,
    span: usize,
) -> Option<UrlCredential> {
    let b = s.as_bytes();
    let mut a = start;
    while a > 0
        && start - a < 32
        && !escape_before(b, a)
        && (b[a - 1].is_ascii_alphanumeric() || matches!(b[a - 1], b'+' | b'.' | b'-'))
    {
        a -= 1;
    }
    while a < start && !b[a].is_ascii_alphabetic() {
        a += 1;
    }
    if a == start || b.get(end) == Some(&b'[') {
        return None;
    }
    let limit = end.saturating_add(span).min(b.len());
    let e = end
        + b[end..limit]
            .iter()
            .take_while(|&&c| !authority_end(c))
            .count();
    let colon = end + b[end..e].iter().position(|&c| c == b':')?;
    let after = &b[colon + 1..e];
    let port = after.len() <= 5 && after.iter().all(u8::is_ascii_digit);
    if port && !(b.get(e) == Some(&b'#') || (after.is_empty() && e < limit && b[e] != b'/')) {
        return None;
    }
    let stop = colon
        + 1
        + (colon + 1..limit)
            .position(|i| url_stop(b, i))
            .unwrap_or(limit - colon - 1);
    let (at, host) = userinfo_end(b, colon, stop)?;
    let scheme = &s[a..start];
    let base = scheme.split('+').next().unwrap_or(scheme);
    let database = DATABASE_SCHEMES
        .iter()
        .any(|d| scheme.eq_ignore_ascii_case(d) || base.eq_ignore_ascii_case(d));
    Some(UrlCredential {
        password: (colon + 1, at),
        database,
        authority_end: host,
    })
}

/// A key name around a keyword hit, and the value assigned to it, if any.
pub(super) struct Assignment {
    pub key: (usize, usize),
    pub value: Option<(usize, usize)>,
    /// The value is a JSON object or array (`"secrets": [ … ]`): only a JSON walk can say.
    pub nested: bool,
    /// The pair belongs to a `;`-separated connection string (`…;PWD=x;…`), where short keys
    /// such as `PWD` name a password.
    pub connection: bool,
    /// Written as configuration rather than code: `KEY=value` (no blank before `=`),
    /// `key: value`, `--key value`, a quoted value, or a key with a lowercase letter
    /// (`db_pass = x` in an INI file); not a constant such as `FLAGS_PASS = 0x04`.
    pub tight: bool,
}

fn ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Expands a keyword hit to the whole identifier (`DB_PASSWORD`, `x-api-key`,
/// `spring.datasource.password`), then reads what is assigned to it:
///
/// - `key=value`, `key: value`, `key => value`, `key := value`, `"key": "value"`,
///   `\"key\":\"value\"` (JSON inside a JSON string), `<key>value</key>`, `--key value`;
/// - quoted values run to the closing quote (at most 4 KiB); bare values as [`bare_value`]
///   reads them (at most 1 KiB);
/// - in a `;`-separated connection string (`Server=db;Password=my pass;`) a value runs to the
///   next `;`, and a `{…}` value (ODBC) to its closing brace;
/// - `key == x`, `Key::new`, `key = call(…)`, `key = config.key` are code, not assignments;
/// - `Authorization: Bearer abc` assigns `abc` (the scheme word is kept).
pub(super) fn assignment(s: &str, start: usize, end: usize) -> Assignment {
    let b = s.as_bytes();
    let mut ks = start;
    while ks > 0 && start - ks < 128 && ident(b[ks - 1]) && !escape_before(b, ks) {
        ks -= 1;
    }
    let mut ke = end;
    while ke < b.len() && ke - end < 128 && ident(b[ke]) {
        ke += 1;
    }
    while ke > end && matches!(b[ke - 1], b'.' | b'-') {
        ke -= 1;
    }
    let (value, connection) = value_after(s, ks, ke);
    let (value, nested) = match value {
        Value::Span(a, e) => (Some((a, e)), false),
        Value::Nested => (None, true),
        Value::None => (None, false),
    };
    let sep = skip_blanks(b, ke, 4);
    let quoted = value.is_some_and(|(a, _)| a > 0 && matches!(b[a - 1], b'"' | b'\'' | b'`'));
    let tight = quoted
        || b.get(ke) == Some(&b'=')
        || b.get(sep) == Some(&b':')
        || b[ks] == b'-'
        || b[ks..ke].iter().any(u8::is_ascii_lowercase);
    Assignment {
        key: (ks, ke),
        value,
        nested,
        connection,
        tight,
    }
}

enum Value {
    None,
    Span(usize, usize),
    Nested,
}

fn span(start: usize, end: usize) -> Value {
    if end > start {
        Value::Span(start, end)
    } else {
        Value::None
    }
}

fn skip_blanks(b: &[u8], mut i: usize, max: usize) -> usize {
    let stop = (i + max).min(b.len());
    while i < stop && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// A token value (the credential after `Bearer`, an unclosed quote): up to whitespace or one
/// of `,;&"'`<>(){}[]\|`.
fn bare_end(s: &str, from: usize, max: usize) -> usize {
    let b = s.as_bytes();
    let limit = from.saturating_add(max).min(b.len());
    let len = b[from..limit]
        .iter()
        .take_while(|&&c| {
            !c.is_ascii_whitespace()
                && !matches!(
                    c,
                    b',' | b';'
                        | b'&'
                        | b'"'
                        | b'\''
                        | b'`'
                        | b'<'
                        | b'>'
                        | b'('
                        | b')'
                        | b'{'
                        | b'}'
                        | b'['
                        | b']'
                        | b'\\'
                        | b'|'
                )
        })
        .count();
    floor_char(s, from + len)
}

/// Whether `i` starts a JSON escape that ends a string or a line (`\"`, `\n`, `\u0026`…):
/// JSON text scanned as text.
fn escape_ends(b: &[u8], i: usize) -> bool {
    b[i] == b'\\' && matches!(b.get(i + 1), Some(b'"' | b'\'' | b'n' | b'r' | b't' | b'u'))
}

/// Whether another `key=` or `key:` starts at `i` (`a=1,b=2`, `?x=1&y=2`).
fn pair_at(b: &[u8], i: usize) -> bool {
    let n = b[i.min(b.len())..]
        .iter()
        .take(64)
        .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        .count();
    n > 0
        && b.get(i)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && matches!(b.get(i + n), Some(b'=' | b':'))
}

/// The end of a bare (unquoted) value starting at `from`, the way people paste passwords:
/// `&`, `,`, `|`, brackets and backslashes can be part of one (`Tig&er(1)!`, `p,w|x`).
///
/// The value ends at whitespace, a quote, a backtick, `;`, a JSON escape that ends the string
/// (`\"`, `\n`), a closing bracket it did not open (`f(password=x)`), a `|` before a space
/// (a pipe), and at `&` or `,` when another `key=` follows or nothing does (`a=x&b=y`,
/// `a=x, b`); in a URL query (`query`) at any `&`.
fn bare_value(s: &str, from: usize, max: usize, query: bool) -> usize {
    let b = s.as_bytes();
    let limit = from.saturating_add(max).min(b.len());
    let mut open = [0u8; 8];
    let mut depth = 0;
    let mut i = from;
    while i < limit {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let ends = i + 1 >= limit
            || escape_ends(b, i + 1)
            || next.is_none_or(|n| n.is_ascii_whitespace() || matches!(n, b'"' | b'\'' | b'`'));
        let stop = match c {
            _ if c.is_ascii_whitespace() || escape_ends(b, i) => true,
            b'"' | b'\'' | b'`' | b';' => true,
            b'&' => {
                query
                    || ends
                    || next == Some(b'&')
                    || b[i..].starts_with(b"&amp;")
                    || pair_at(b, i + 1)
            }
            b',' => ends || pair_at(b, i + 1),
            b'|' => ends || next == Some(b'|'),
            b'(' | b'[' | b'{' | b'<' => {
                if let Some(slot) = open.get_mut(depth) {
                    *slot = c;
                }
                depth += 1;
                false
            }
            b')' | b']' | b'}' | b'>' => {
                let opener = match c {
                    b')' => b'(',
                    b']' => b'[',
                    b'}' => b'{',
                    _ => b'<',
                };
                if depth > 0 && open.get(depth - 1).is_none_or(|&o| o == opener) {
                    depth -= 1;
                    false
                } else {
                    true
                }
            }
            _ => false,
        };
        if stop {
            break;
        }
        i += 1;
    }
    floor_char(s, i)
}

/// `get_password()`, `os.environ[…`, `Vec<u8>`, `getenv(` (cut at a quote),
/// `url::quirks::password(&url)`, `$this->get(`: an identifier or path opening a bracket
/// that the value closes last or never closes is a call or an index.
fn code_call(v: &[u8]) -> bool {
    let id = v
        .iter()
        .take_while(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'$' | b':' | b'-' | b'>')
        })
        .count();
    let Some(&open) = v.get(id) else {
        return false;
    };
    if id == 0 || !matches!(open, b'(' | b'[' | b'<') {
        return false;
    }
    let close = match open {
        b'(' => b')',
        b'[' => b']',
        _ => b'>',
    };
    let last = v.iter().rposition(|&c| c == close);
    last.is_none_or(|p| matches!(v.get(p + 1), None | Some(b'.' | b',' | b')')))
}

const SCHEMES: &[&str] = &[
    "bearer", "basic", "token", "bot", "digest", "apikey", "api-key", "ssws", "key", "oauth",
    "jwt", "dpop",
];

fn code_path(v: &[u8]) -> bool {
    v.contains(&b'.')
        && v.split(|&c| c == b'.').all(|seg| {
            seg.first()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_' || *c == b'$')
                && seg
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$')
        })
}

/// Whether the byte before `ks`, blanks skipped, is one of `set`.
fn preceded_by(b: &[u8], ks: usize, set: &[u8]) -> bool {
    let mut j = ks;
    while j > 0 && matches!(b[j - 1], b' ' | b'\t') {
        j -= 1;
    }
    j > 0 && set.contains(&b[j - 1])
}

/// The `;` that ends a connection-string value starting at `vs`: the first one on the line
/// (at most 1 KiB on), if the key follows a `;` (`preceded`) or the `;` is followed by another
/// `key=` or ends the text. Only a value after a `;` may hold spaces (`Password=my pass;`).
fn connection_end(b: &[u8], vs: usize, preceded: bool) -> Option<usize> {
    let limit = vs.saturating_add(1024).min(b.len());
    let rel = b[vs..limit]
        .iter()
        .position(|&c| matches!(c, b';' | b'\n' | b'\r' | b'"' | b'\'' | b'`'))?;
    let semi = vs + rel;
    let value = &b[vs..semi];
    if b[semi] != b';'
        || (!preceded && value.iter().any(u8::is_ascii_whitespace))
        || (0..value.len()).any(|k| escape_ends(value, k))
    {
        return None;
    }
    let next = skip_blanks(b, semi + 1, 8);
    let pair = next >= b.len()
        || matches!(b[next], b'\n' | b'\r' | b'"' | b'\'')
        || b[next..]
            .iter()
            .take(64)
            .position(|&c| c == b'=')
            .is_some_and(|p| {
                b[next..next + p]
                    .iter()
                    .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b' ' | b'_' | b'.' | b'-'))
            });
    (preceded || pair).then_some(semi)
}

/// An ODBC `{…}` value starting at `vs` (`}}` is a literal `}`) that ends a connection-string
/// pair: the span inside the braces, or the braces too when the inside is a format field
/// (`{password}`, `{DB_PASSWORD}`) so that the value reads as the placeholder it is.
fn braced(b: &[u8], vs: usize, preceded: bool) -> Option<(usize, usize)> {
    let limit = vs.saturating_add(1024).min(b.len());
    let mut j = vs + 1;
    while j < limit {
        match b[j] {
            b'}' if b.get(j + 1) == Some(&b'}') => j += 2,
            b'}' => break,
            b'\n' | b'\r' => return None,
            _ => j += 1,
        }
    }
    if j >= limit || !(preceded || b.get(j + 1) == Some(&b';')) {
        return None;
    }
    let inner = &b[vs + 1..j];
    let field = inner
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && inner
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && (!inner.iter().any(u8::is_ascii_uppercase) || !inner.iter().any(u8::is_ascii_lowercase));
    Some(if field { (vs, j + 1) } else { (vs + 1, j) })
}

fn value_after(s: &str, ks: usize, ke: usize) -> (Value, bool) {
    let b = s.as_bytes();
    let n = b.len();
    if ks > 0 && b[ks - 1] == b'<' && b.get(ke) == Some(&b'>') {
        let vs = ke + 1;
        let Some(len) = b[vs..n.min(vs + 1024)].iter().position(|&c| c == b'<') else {
            return (Value::None, false);
        };
        let closes = b[vs + len..].starts_with(b"</");
        return if closes {
            (span(vs, vs + len), false)
        } else {
            (Value::None, false)
        };
    }
    let mut i = ke;
    if b[i..].starts_with(b"\\\"") {
        i += 2;
    } else if matches!(b.get(i), Some(b'"' | b'\'')) {
        i += 1;
    }
    let before_sep = i;
    i = skip_blanks(b, i, 4);
    let equals = b.get(i) == Some(&b'=') && b.get(i + 1) != Some(&b'=');
    match (b.get(i), b.get(i + 1)) {
        (Some(b'='), Some(b'>')) | (Some(b':'), Some(b'=')) => i += 2,
        (Some(b'='), Some(b'=')) | (Some(b':'), Some(b':')) => return (Value::None, false),
        (Some(b'=' | b':'), _) => i += 1,
        (Some(_), _) if b[ks] == b'-' && i > before_sep => {}
        _ => return (Value::None, false),
    }
    i = skip_blanks(b, i, 8);
    let preceded = equals && preceded_by(b, ks, b";");
    if equals && b.get(i) == Some(&b'{') {
        if let Some((vs, ve)) = braced(b, i, preceded) {
            return (span(vs, ve), true);
        }
    }
    match b.get(i) {
        None => return (Value::None, false),
        Some(b'[' | b'{') => return (Value::Nested, false),
        Some(_) => {}
    }
    let quote: &[u8] = if b[i..].starts_with(b"\\\"") {
        b"\\\""
    } else {
        match b[i] {
            b'"' => b"\"",
            b'\'' => b"'",
            b'`' => b"`",
            _ => b"",
        }
    };
    if !quote.is_empty() {
        let vs = i + quote.len();
        let limit = n.min(vs + 4096);
        let close = if quote == b"\"" {
            let mut j = vs;
            loop {
                match b.get(j) {
                    _ if j >= limit => break None,
                    Some(b'\\') => j += 2,
                    Some(b'"') => break Some(j),
                    _ => j += 1,
                }
            }
        } else {
            find(&b[vs..limit], quote).map(|p| vs + p)
        };
        let ve = close.unwrap_or_else(|| bare_end(s, vs, 4096));
        return (span(vs, ve), preceded);
    }
    let vs = i;
    if equals {
        if let Some(semi) = connection_end(b, vs, preceded) {
            let mut ve = semi;
            while ve > vs && matches!(b[ve - 1], b' ' | b'\t') {
                ve -= 1;
            }
            let v = &b[vs..ve];
            if !code_call(v) && !code_path(v) {
                return (span(vs, ve), true);
            }
        }
    }
    // `password: &str`, `password: (bool, optional)`, `token=<x>`: a type, a call, a tag.
    if matches!(b[vs], b'&' | b',' | b'|' | b'(' | b'<') {
        return (Value::None, false);
    }
    let query = preceded_by(b, ks, b"?&");
    let ve = bare_value(s, vs, 1024, query);
    let v = &b[vs..ve];
    if ve == vs || code_call(v) || code_path(v) {
        return (Value::None, false);
    }
    let word_end = bare_end(s, vs, 1024);
    let word = &s[vs..word_end];
    if SCHEMES.iter().any(|w| word.eq_ignore_ascii_case(w)) && b.get(word_end) == Some(&b' ') {
        let cs = word_end + 1;
        let ce = bare_end(s, cs, 4096);
        return (span(cs, ce), false);
    }
    (Value::Span(vs, ve), preceded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards_in(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        cards(s, &mut out);
        out.iter().map(|&(a, b)| &s[a..b]).collect()
    }

    #[test]
    fn card_numbers() {
        assert_eq!(
            cards_in("pay 4111 1111 1111 1111 now"),
            ["4111 1111 1111 1111"]
        );
        assert_eq!(
            cards_in("pay 4111-1111-1111-1111."),
            ["4111-1111-1111-1111"]
        );
        assert_eq!(cards_in("amex 3782 822463 10005"), ["3782 822463 10005"]);
        assert_eq!(cards_in("n=5555555555554444"), ["5555555555554444"]);
        assert_eq!(
            cards_in("order 4111111111111111 2 items"),
            ["4111111111111111"]
        );
        for s in [
            "4111 1111 1111 1112",
            "14111111111111111",
            "id 41111111111111111111",
            "x4111111111111111",
            "1.4111111111111111",
            "ts 1714557600000",
            "+1 415-555-0100",
            "4111 11 11111 11111",
        ] {
            assert!(cards_in(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn digit_search_is_exact() {
        for byte in 0..=255u8 {
            let word = u64::from_le_bytes([b'a', byte, 0xff, b'/', b':', 0x80, b' ', 0]);
            assert_eq!(has_digit(word), byte.is_ascii_digit(), "{byte}");
        }
        let text = b"no digits here at all, then 7 and more text after it";
        assert_eq!(next_digit(text, 0), Some(28));
        assert_eq!(next_digit(text, 29), None);
    }

    #[test]
    fn markers() {
        let s = "a [REDACTED:github_token:0123456789ab] b";
        let at = s.find('[').unwrap();
        assert_eq!(marker(s, at, at + 10), Some((at, s.find(']').unwrap() + 1)));
        assert_eq!(marker("[REDACTED: ]", 0, 10), None);
    }

    fn value_of(s: &str, keyword: &str) -> Option<String> {
        let at = s.find(keyword).unwrap();
        let a = assignment(s, at, at + keyword.len());
        a.value.map(|(x, y)| s[x..y].to_string())
    }

    #[test]
    fn assignments() {
        let cases = [
            ("DB_PASSWORD=hunter2 next", "PASS", Some("hunter2")),
            ("password: 's3cret word' x", "pass", Some("s3cret word")),
            (
                r#"{"client_secret": "abc\"def", "x": 1}"#,
                "secret",
                Some(r#"abc\"def"#),
            ),
            (r#"{\"token\":\"abc123\"}"#, "token", Some("abc123")),
            ("<password>pw123</password>", "pass", Some("pw123")),
            ("--password hunter2", "pass", Some("hunter2")),
            ("Authorization: Bearer abc.def", "Auth", Some("abc.def")),
            ("?access_token=xyz&b=1", "token", Some("xyz")),
            ("if password == x", "pass", None),
            ("Token::new()", "Token", None),
            ("password = get_password()", "pass", None),
            ("token = config.token", "token", None),
            ("the password is long", "pass", None),
            // Bare values keep what people put in passwords, and end where a pair or code does.
            ("DB_PASSWORD=Tig&er(1)! next", "PASS", Some("Tig&er(1)!")),
            ("password=p,w|x[1]", "pass", Some("p,w|x[1]")),
            ("password=abc,user=bob", "pass", Some("abc")),
            ("password=abc, then", "pass", Some("abc")),
            ("x=1&password=abc&def", "pass", Some("abc")),
            ("password=abc&&make", "pass", Some("abc")),
            ("f(password=abc)", "pass", Some("abc")),
            ("{password: abc}", "pass", Some("abc")),
            (r#"{"a": "password=abc\nnext"}"#, "pass", Some("abc")),
            ("password: &str", "pass", None),
            ("password: (bool, optional)", "pass", None),
            ("password = url::quirks::password(&url);", "pass", None),
            ("password=Sm(7)p,x!", "pass", Some("Sm(7)p,x!")),
            // Connection strings.
            (
                "Server=db;Password=my pass word;Encrypt=true",
                "Pass",
                Some("my pass word"),
            ),
            ("Password=p@ss,word;User Id=sa", "Pass", Some("p@ss,word")),
            ("UID=sa;PWD={Tig;er}}1};", "PWD", Some("Tig;er}}1")),
            ("UID=sa;PWD={password};", "PWD", Some("{password}")),
            ("PASSWORD=abc def; echo", "PASS", Some("abc")),
        ];
        for (s, kw, want) in cases {
            assert_eq!(value_of(s, kw).as_deref(), want, "{s}");
        }
        let at = |s: &str, kw: &str| {
            let i = s.find(kw).unwrap();
            assignment(s, i, i + kw.len())
        };
        assert!(at("x=1;PWD=abc;", "PWD").connection);
        assert!(!at("PWD=/home/dev", "PWD").connection);
        assert!(at("DB_PASS=x1", "PASS").tight && at("db_pass: x1", "pass").tight);
        assert!(!at("FLAGS_PASS = 0x04", "PASS").tight);
    }

    #[test]
    fn urls() {
        let s = "connect postgres://app:pa55@db:5432/x";
        let at = s.find("://").unwrap();
        let u = url_password(s, at, at + 3, 512).unwrap();
        assert_eq!(&s[u.password.0..u.password.1], "pa55");
        assert!(u.database);
        for (s, want) in [
            (
                "https://bot:Dragon123@xYz1@api.example/v1",
                "Dragon123@xYz1",
            ),
            ("postgres://app:Tiger1#ab!@db:5432/x", "Tiger1#ab!"),
            ("mysql://root:p@ss/w0rd#1@db:3306/app", "p@ss/w0rd#1"),
            ("redis://u:1234#abcd@cache:6379", "1234#abcd"),
            ("mongodb://u:p#w@h1:27017,h2:27017/db", "p#w"),
            ("pg://u:p#w@db/x?email=ops@example.com", "p#w"),
            ("https://u:pw@host/path/@scope/pkg@1.2.3/x", "pw"),
            (
                "https://user@example.com:Em@il#pw@mail.example.com/",
                "Em@il#pw",
            ),
            ("(postgres://ro:R3ad#only@replica.internal)", "R3ad#only"),
            ("https://àlex:àlex@àlex.рф.example.com:443/foo", "àlex"),
        ] {
            let at = s.find("://").unwrap();
            let u = url_password(s, at, at + 3, 512).unwrap();
            assert_eq!(&s[u.password.0..u.password.1], want, "{s}");
        }
        for s in [
            "https://example.com/a:b@c",
            "https://user@host/x",
            "http://[::1]:8080/",
            "://x:y@z",
            "http://localhost:5173/@vite/client",
            "https://example.com:8443/users/@bob",
            "http://localhost:3000/api?email=bob@example.com",
            "ssh://git@github.com:22/org/repo.git",
            "git+ssh://git@github.com:org/repo.git#v1",
            "file:///C:/Users/dev/a@b.txt",
            "https://host:abc \"bob@example.com\"",
        ] {
            let at = s.find("://").unwrap();
            assert!(url_password(s, at, at + 3, 512).is_none(), "{s}");
        }
    }

    #[test]
    fn pem_blocks() {
        let body = "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MxkP";
        for nl in ["\n", "\\n", "\r\n"] {
            let key = format!(
                "-----BEGIN RSA PRIVATE KEY-----{nl}{body}{nl}-----END RSA PRIVATE KEY-----"
            );
            let s = format!("x {key} y");
            let at = s.find("PRIVATE KEY").unwrap();
            assert_eq!(
                pem(&s, at, at + 11, 65536),
                Some((2, 2 + key.len())),
                "{nl:?}"
            );
        }
        let truncated = format!("-----BEGIN PRIVATE KEY-----\\n{body}\\nMIIB\"}}");
        let at = truncated.find("PRIVATE KEY").unwrap();
        let (a, e) = pem(&truncated, at, at + 11, 65536).unwrap();
        assert_eq!((a, &truncated[e..]), (0, "\"}"));
    }
}
