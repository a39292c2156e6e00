//! Validators: the structural checks a regex match must pass before it counts as a secret.
//!
//! Each takes the candidate secret and answers yes or no. They are what lets the scrubber
//! prefer token structure (checksums, decodable headers) over entropy guesses: a `ghp_` string
//! whose CRC32 does not match, or an `eyJ…` string whose header is not JSON, is left alone.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// The base62 digits GitHub and npm use for token checksums.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 of `n`, left-padded with `0` to six digits (62^6 > 2^32, so six always suffice).
pub fn base62_checksum(n: u32) -> [u8; 6] {
    let mut out = [b'0'; 6];
    let mut n = u64::from(n);
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// `pre_` + 30 random base62 characters + base62(CRC32(random part)), padded to six.
/// The scheme of GitHub classic tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) and npm tokens.
pub fn crc32_token(token: &str) -> bool {
    let Some((_, body)) = token.split_once('_') else {
        return false;
    };
    if body.len() != 36 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, check) = body.split_at(30);
    base62_checksum(crc32fast::hash(random.as_bytes())) == check.as_bytes()
}

/// Luhn checksum over ASCII digits (other bytes are skipped, so `4111-1111…` works).
pub fn luhn(number: &str) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    let mut digits = 0;
    for b in number.bytes().rev().filter(u8::is_ascii_digit) {
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
        digits += 1;
    }
    digits > 0 && sum.is_multiple_of(10)
}

/// Whether a card number (digits only) starts with a known issuer prefix and has a length that
/// issuer uses: Visa, Mastercard, American Express, Discover, JCB, Diners Club, UnionPay.
pub fn card_issuer(digits: &[u8]) -> bool {
    let len = digits.len();
    let prefix = |n: usize| -> u32 {
        digits
            .iter()
            .take(n)
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    match p1 {
        4 => matches!(len, 13 | 16 | 19),
        5 => (51..=55).contains(&p2) && len == 16,
        2 => (2221..=2720).contains(&p4) && len == 16,
        3 => {
            ((p2 == 34 || p2 == 37) && len == 15)
                || ((3528..=3589).contains(&p4) && (16..=19).contains(&len))
                || ((p2 == 36 || p2 == 38 || p2 == 39 || (300..=305).contains(&p3))
                    && (14..=19).contains(&len))
        }
        6 => {
            (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || p2 == 62)
                && (16..=19).contains(&len)
        }
        _ => false,
    }
}

fn b64url(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

/// A JWS compact token: the header must decode to a JSON object naming an `alg` or a `typ`.
pub fn jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let Some(header) = parts.next().and_then(b64url) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&header) {
        Ok(map) => map.contains_key("alg") || map.contains_key("typ"),
        Err(_) => false,
    }
}

/// A Discord bot token: the first part is the bot's user id (a snowflake, 17–20 digits) in
/// base64url.
pub fn discord(token: &str) -> bool {
    let Some(first) = token.split('.').next() else {
        return false;
    };
    match b64url(first) {
        Some(id) => (17..=20).contains(&id.len()) && id.iter().all(u8::is_ascii_digit),
        None => false,
    }
}

/// An HTTP Basic credential: base64 of printable `user:password` with a non-empty password.
pub fn basic_credentials(b64: &str) -> bool {
    let decoded = STANDARD
        .decode(b64)
        .or_else(|_| STANDARD_NO_PAD.decode(b64.trim_end_matches('=')));
    let Ok(bytes) = decoded else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return false;
    };
    match text.split_once(':') {
        Some((user, password)) => {
            !password.is_empty()
                && !user.contains(char::is_whitespace)
                && text.chars().all(|c| !c.is_control())
        }
        None => false,
    }
}

/// Not an OpenAI key (those carry `T3BlbkFJ` and have their own kind).
pub fn not_openai(token: &str) -> bool {
    !token.contains("T3BlbkFJ")
}

/// Anthropic keys end in `AA`.
pub fn ends_aa(token: &str) -> bool {
    token.ends_with("AA")
}

/// Both cases present: random letter tokens have them, snake_case identifiers do not.
pub fn mixed_case(token: &str) -> bool {
    token.bytes().any(|b| b.is_ascii_uppercase()) && token.bytes().any(|b| b.is_ascii_lowercase())
}

/// Slack tokens carry numeric ids; reject prose such as `xoxo-hugs-and-kisses`.
pub fn slack(token: &str) -> bool {
    token.len() >= 15 && token.bytes().skip(5).any(|b| b.is_ascii_digit())
}

/// Telegram bot tokens: `<bot id>:` and 35 characters (34 in older tokens).
pub fn telegram(token: &str) -> bool {
    token.split_once(':').is_some_and(|(id, secret)| {
        (5..=16).contains(&id.len()) && (34..=35).contains(&secret.len())
    })
}

/// A password given on a command line (`-pSECRET`, `-p 'SECRET'`, `-u user:SECRET`): not a
/// placeholder (`$PASS`, `"${DB_PASSWORD}"`), not a port or a port mapping (`-p 8080`,
/// `-p3306:3306`), not a path (`mkdir -p/tmp`).
pub fn cli_password(s: &str) -> bool {
    let v = s.trim_matches(['\'', '"', '\\']);
    let ports = v.len() <= 5 && all(v, |b| b.is_ascii_digit())
        || (v.contains(':') && all(v, |b| b.is_ascii_digit() || b == b':' || b == b'.'));
    !ports && !v.starts_with('/') && !super::keys::is_placeholder(v)
}

fn all(s: &str, f: impl Fn(u8) -> bool) -> bool {
    s.bytes().all(f)
}

fn lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// 32 lowercase or uppercase hex digits (Datadog API keys, Twilio auth tokens).
pub fn hex32(s: &str) -> bool {
    s.len() == 32 && all(s, |b| b.is_ascii_hexdigit())
}

/// 40 hex digits (Datadog application keys).
pub fn hex40(s: &str) -> bool {
    s.len() == 40 && all(s, |b| b.is_ascii_hexdigit())
}

/// `8-4-4-4-12` hex (Heroku API keys are UUID-shaped).
pub fn uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && all(g, |b| b.is_ascii_hexdigit()))
}

/// AWS secret access keys: 40 characters of base64 with upper, lower case and digits.
pub fn aws_secret(s: &str) -> bool {
    s.len() == 40
        && all(s, |b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
        && mixed_case(s)
        && s.bytes().any(|b| b.is_ascii_digit())
}

/// Azure storage account keys: 64 random bytes in base64 (86 characters and `==`).
pub fn azure_key(s: &str) -> bool {
    s.len() == 88
        && s.ends_with("==")
        && all(&s[..86], |b| {
            b.is_ascii_alphanumeric() || b == b'/' || b == b'+'
        })
}

/// Vault service tokens, current (`hvs.`) or legacy (`s.` + 24).
pub fn vault(s: &str) -> bool {
    let body = s
        .strip_prefix("hvs.")
        .or_else(|| s.strip_prefix("hvb."))
        .or_else(|| s.strip_prefix("s."));
    body.is_some_and(|b| {
        b.len() >= 24 && all(b, |c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    })
}

/// Mailgun keys: legacy `key-` + 32 hex, or the current `hex32-hex8-hex8`.
pub fn mailgun(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix("key-") {
        return rest.len() == 32 && all(rest, lower_hex);
    }
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 3
        && groups
            .iter()
            .zip([32, 8, 8])
            .all(|(g, n)| g.len() == n && all(g, lower_hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_checksum_matches_published_examples() {
        // Example tokens from GitHub's format write-ups (revoked); they pin the alphabet.
        assert!(crc32_token("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"));
        assert!(crc32_token("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"));
        assert!(!crc32_token("ghp_M7H4jxUDDWHP4kZ6A4dxlQYsQIWJuq11T4V3"));
        assert!(!crc32_token("ghp_M7H4jxUDDWHP4kZ6A4dxlQYsQIWJuq11T4Vñ"));
        assert!(!crc32_token("ghp_short"));
    }

    #[test]
    fn checksum_encoder_pads_with_zero() {
        assert_eq!(&base62_checksum(0), b"000000");
        assert_eq!(&base62_checksum(61), b"00000z");
        assert_eq!(&base62_checksum(62), b"000010");
        assert_eq!(&base62_checksum(u32::MAX), b"4gfFC3");
    }

    #[test]
    fn luhn_and_issuers() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(card_issuer(b"4111111111111111"));
        assert!(card_issuer(b"378282246310005"));
        assert!(card_issuer(b"2221000000000009"));
        assert!(!card_issuer(b"1700000000000000"));
        assert!(!card_issuer(b"411111111111111"));
    }

    #[test]
    fn jwt_header_must_be_json() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        assert!(jwt(&format!("{header}.eyJzdWIiOiIxIn0.c2ln")));
        let not_json = URL_SAFE_NO_PAD.encode(b"{not json at all}");
        assert!(!jwt(&format!("{not_json}.eyJzdWIiOiIxIn0.c2ln")));
    }

    #[test]
    fn basic_needs_user_and_password() {
        assert!(basic_credentials(&STANDARD.encode("alice:s3cret")));
        assert!(!basic_credentials(&STANDARD.encode("just some text")));
        assert!(!basic_credentials("usage"));
    }

    #[test]
    fn shapes() {
        assert!(uuid("c55dbac4-e0e8-4a06-b892-75cac2387ce5"));
        assert!(!uuid("c55dbac4-e0e8-4a06-b892"));
        assert!(aws_secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        assert!(!aws_secret("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
        assert!(mailgun("key-0123456789abcdef0123456789abcdef"));
        assert!(telegram("110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"));
        assert!(cli_password("Tig#er!1"));
        assert!(cli_password("'S3cr&t pw'"));
        assert!(cli_password("123456"));
        for v in [
            "8080",
            "3306:3306",
            "127.0.0.1:5432:5432",
            "/var/lib",
            "\"$PASS\"",
            "${PW}",
        ] {
            assert!(!cli_password(v), "{v}");
        }
    }
}
