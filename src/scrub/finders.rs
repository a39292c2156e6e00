//! Hand-written finders for shapes a regex says badly: card numbers, `key = value`
//! assignments, URL credentials, PEM blocks, and existing markers.
//!
//! Each works on bytes from a keyword hit (or, for cards, on digit runs), never rescans the
//! whole string, and returns spans that lie on `char` boundaries.

use super::checks;
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

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
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
    pub authority_end: usize,
}

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

/// Around a `://` hit: the scheme before it, and the password in the authority after it.
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
    if a == start {
        return None;
    }
    let limit = end.saturating_add(span).min(b.len());
    let e = end
        + b[end..limit]
            .iter()
            .take_while(|&&c| !authority_end(c))
            .count();
    let at = end + b[end..e].iter().rposition(|&c| c == b'@')?;
    let colon = end + b[end..at].iter().position(|&c| c == b':')?;
    if colon + 1 >= at {
        return None;
    }
    let scheme = &s[a..start];
    let database = DATABASE_SCHEMES
        .iter()
        .any(|d| scheme.eq_ignore_ascii_case(d));
    Some(UrlCredential {
        password: (colon + 1, at),
        database,
        authority_end: e,
    })
}

/// A key name around a keyword hit, and the value assigned to it, if any.
pub(super) struct Assignment {
    pub key: (usize, usize),
    pub value: Option<(usize, usize)>,
    /// The value is a JSON object or array (`"secrets": [ … ]`): only a JSON walk can say.
    pub nested: bool,
}

fn ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Expands a keyword hit to the whole identifier (`DB_PASSWORD`, `x-api-key`,
/// `spring.datasource.password`), then reads what is assigned to it:
///
/// - `key=value`, `key: value`, `key => value`, `key := value`, `"key": "value"`,
///   `\"key\":\"value\"` (JSON inside a JSON string), `<key>value</key>`, `--key value`;
/// - quoted values run to the closing quote (at most 4 KiB); bare values to whitespace or one
///   of `,;&"'`<>(){}[]\|` (at most 1 KiB);
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
    let key = (ks, ke);
    match value_after(s, ks, ke) {
        Value::Span(a, e) => Assignment {
            key,
            value: Some((a, e)),
            nested: false,
        },
        Value::Nested => Assignment {
            key,
            value: None,
            nested: true,
        },
        Value::None => Assignment {
            key,
            value: None,
            nested: false,
        },
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

fn value_after(s: &str, ks: usize, ke: usize) -> Value {
    let b = s.as_bytes();
    let n = b.len();
    if ks > 0 && b[ks - 1] == b'<' && b.get(ke) == Some(&b'>') {
        let vs = ke + 1;
        let Some(len) = b[vs..n.min(vs + 1024)].iter().position(|&c| c == b'<') else {
            return Value::None;
        };
        let closes = b[vs + len..].starts_with(b"</");
        return if closes {
            span(vs, vs + len)
        } else {
            Value::None
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
    match (b.get(i), b.get(i + 1)) {
        (Some(b'='), Some(b'>')) | (Some(b':'), Some(b'=')) => i += 2,
        (Some(b'='), Some(b'=')) | (Some(b':'), Some(b':')) => return Value::None,
        (Some(b'=' | b':'), _) => i += 1,
        (Some(_), _) if b[ks] == b'-' && i > before_sep => {}
        _ => return Value::None,
    }
    i = skip_blanks(b, i, 8);
    match b.get(i) {
        None => return Value::None,
        Some(b'[' | b'{') => return Value::Nested,
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
        return span(vs, ve);
    }
    let vs = i;
    let ve = bare_end(s, vs, 1024);
    if ve == vs || matches!(b.get(ve), Some(b'(' | b'<' | b'[')) || code_path(&b[vs..ve]) {
        return Value::None;
    }
    let word = &s[vs..ve];
    if SCHEMES.iter().any(|w| word.eq_ignore_ascii_case(w)) && b.get(ve) == Some(&b' ') {
        let cs = ve + 1;
        let ce = bare_end(s, cs, 4096);
        return span(cs, ce);
    }
    Value::Span(vs, ve)
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
        ];
        for (s, kw, want) in cases {
            assert_eq!(value_of(s, kw).as_deref(), want, "{s}");
        }
    }

    #[test]
    fn urls() {
        let s = "connect postgres://app:pa55@db:5432/x";
        let at = s.find("://").unwrap();
        let u = url_password(s, at, at + 3, 512).unwrap();
        assert_eq!(&s[u.password.0..u.password.1], "pa55");
        assert!(u.database);
        for s in [
            "https://example.com/a:b@c",
            "https://user@host/x",
            "http://[::1]:8080/",
            "://x:y@z",
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
