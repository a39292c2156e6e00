//! Sensitive key names, and values that only stand in for a secret.
//!
//! A key is *sensitive* when its name, lowercased with every non-alphanumeric character
//! removed and trailing digits dropped, ends with one of [`SUFFIXES`] (`db_password`,
//! `X-Api-Key`, `clientSecret`, `GITHUB_TOKEN2`) or is one of [`EXACT`] (`auth`, `pass`), unless
//! it ends with one of [`NOT_SECRET`] (pagination and cancellation tokens are not
//! credentials). Names that merely *contain* a word (`max_tokens`, `token_count`,
//! `password_policy`, `secret_name`) describe a secret rather than hold one, and are left alone.
//!
//! [`KEYED`] refines the kind when the name and the value's shape agree, e.g. a 40-character
//! base64 value under `aws_secret_access_key` is an `aws_secret_access_key`, not a generic
//! `password_field`.

use super::checks;

/// Longest normalised key name considered; longer names are identifiers, not keys.
const MAX_KEY: usize = 96;

/// Normalised name endings that make a key sensitive.
const SUFFIXES: &[&[u8]] = &[
    b"password",
    b"passwd",
    b"passphrase",
    b"secret",
    b"token",
    b"apikey",
    b"privatekey",
    b"secretkey",
    b"accesskey",
    b"authkey",
    b"accountkey",
    b"storagekey",
    b"appkey",
    b"applicationkey",
    b"signingkey",
    b"encryptionkey",
    b"masterkey",
    b"authorization",
    b"credential",
    b"credentials",
    b"basicauth",
    b"proxyauth",
];

/// Whole normalised names that are sensitive on their own.
const EXACT: &[&[u8]] = &[b"auth", b"pass", b"pw", b"mysqlpwd"];

/// Words that make a key sensitive when they are its last word (`DB_PASS`, `smtpPass`,
/// `ansible_become_pass`, `ADMIN_PWD`), but not inside one (`bypass`, `compass`, `OLDPWD`).
const LAST_WORDS: &[&str] = &["pass", "pwd"];

/// Endings that look sensitive but name something public.
const NOT_SECRET: &[&[u8]] = &[
    b"pagetoken",
    b"nexttoken",
    b"continuationtoken",
    b"synctoken",
    b"cancellationtoken",
    b"idempotencytoken",
    b"cursortoken",
];

/// A sensitive key, normalised (lowercase ASCII alphanumerics only).
pub(super) struct KeyName {
    buf: [u8; MAX_KEY],
    len: usize,
    /// Sensitive only by its last word (`DB_PASS`): C and Rust constants end that way too
    /// (`FLAGS_PASS = 0x04`), so in text only a configuration-style pair counts.
    pub weak: bool,
}

impl KeyName {
    fn name(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The index in [`KEYED`] of the specific kind this key and value make, if any.
    pub(super) fn refine(&self, value: &str) -> Option<usize> {
        let name = self.name();
        KEYED
            .iter()
            .position(|k| k.names.iter().any(|n| contains(name, n.as_bytes())) && (k.value)(value))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether `key` names a credential; see the module doc for the rule.
pub(super) fn sensitive_key(key: &str) -> Option<KeyName> {
    if key.len() > 2 * MAX_KEY {
        return None;
    }
    let mut buf = [0u8; MAX_KEY];
    let mut len = 0;
    for b in key.bytes().filter(u8::is_ascii_alphanumeric) {
        if len == MAX_KEY {
            return None;
        }
        buf[len] = b.to_ascii_lowercase();
        len += 1;
    }
    let name = &buf[..len];
    let stem_len = name.len() - name.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let stem = &name[..stem_len];
    if NOT_SECRET.iter().any(|s| stem.ends_with(s)) {
        return None;
    }
    let strong = EXACT.contains(&stem) || SUFFIXES.iter().any(|s| stem.ends_with(s));
    let weak = !strong && LAST_WORDS.iter().any(|w| last_word(key, w));
    (strong || weak).then_some(KeyName { buf, len, weak })
}

/// Whether `word` ends `key` (trailing digits and quotes aside) as a word of its own: after
/// `_`, `-` or `.`, or capitalised after a lowercase letter (`dbPass`).
fn last_word(key: &str, word: &str) -> bool {
    let k = key
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '"' || c == '\'')
        .as_bytes();
    let Some(at) = k.len().checked_sub(word.len()).filter(|&a| a > 0) else {
        return false;
    };
    if !k[at..].eq_ignore_ascii_case(word.as_bytes()) {
        return false;
    }
    let before = k[at - 1];
    matches!(before, b'_' | b'-' | b'.')
        || (before.is_ascii_lowercase() && k[at].is_ascii_uppercase())
}

/// Whether `key` names a password inside a `;`-separated connection string only: ODBC's `PWD`
/// (elsewhere `PWD` is the working directory).
pub(super) fn connection_key(key: &str) -> Option<KeyName> {
    if !key.eq_ignore_ascii_case("pwd") {
        return None;
    }
    let mut buf = [0u8; MAX_KEY];
    buf[..3].copy_from_slice(b"pwd");
    Some(KeyName {
        buf,
        len: 3,
        weak: false,
    })
}

/// A specific kind recognised from the key name plus the value's shape.
pub(super) struct Keyed {
    /// Any of these in the normalised key name.
    pub names: &'static [&'static str],
    pub value: fn(&str) -> bool,
    pub kind: &'static str,
}

#[rustfmt::skip]
pub(super) const KEYED: &[Keyed] = &[
    Keyed { names: &["secretaccesskey", "awssecret"], value: checks::aws_secret, kind: "aws_secret_access_key" },
    Keyed { names: &["datadog", "ddapi", "ddapp"], value: checks::hex32, kind: "datadog_api_key" },
    Keyed { names: &["datadog", "ddapi", "ddapp"], value: checks::hex40, kind: "datadog_app_key" },
    Keyed { names: &["twilio"], value: checks::hex32, kind: "twilio_auth_token" },
    Keyed { names: &["heroku"], value: checks::uuid, kind: "heroku_api_key" },
    Keyed { names: &["vault"], value: checks::vault, kind: "vault_token" },
    Keyed { names: &["azure", "storage", "accountkey"], value: checks::azure_key, kind: "azure_storage_key" },
    Keyed { names: &["discord"], value: checks::discord, kind: "discord_bot_token" },
    Keyed { names: &["mailgun"], value: checks::mailgun, kind: "mailgun_api_key" },
];

/// Exact values (compared case-insensitively) that are not credentials.
const STOPWORDS: &[&str] = &[
    "null",
    "none",
    "nil",
    "undefined",
    "true",
    "false",
    "yes",
    "no",
    "empty",
    "unset",
    "n/a",
    "string",
    "str",
    "number",
    "int",
    "bool",
    "boolean",
    "bytes",
    "required",
    "optional",
    "hidden",
    "secret",
    "password",
    "passwd",
    "token",
    "example",
    "placeholder",
    "redacted",
    "masked",
    "dummy",
    "sample",
    "value",
    "todo",
    "tbd",
    "changeit",
    "changeme",
    "pass",
    "bearer",
    "basic",
    "invalid",
    "expired",
    "missing",
];

/// Whether a value only stands in for a secret and must not be redacted:
///
/// - shorter than 4 characters, or a stopword (`null`, `true`, `none`, `string`, `password`…);
/// - masked: only `*`, `•`, `x`, `X`, `#`, `.`, `-`, `_`, `?` and spaces (`********`, `xxxx`),
///   or containing `***` or the word `redacted`, or a short prefix followed by six or more
///   mask characters or an ellipsis (`SKxxxxxxxxxxxx`, `sk-...`, `ghp_…`);
/// - a reference: starts with `$` (`$VAR`, `${VAR}`, `$(cmd)`, `${{ secrets.X }}`), or is
///   wrapped in `{…}`, `<…>`, `%…%` (`{{ secrets.X }}`, `<your-token>`, `%API_KEY%`), or starts
///   with `your` followed by a separator (`YOUR_API_KEY`);
/// - code: `process.env.X`, `os.environ[…]`, `getenv(…)`.
pub(super) fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.chars().nth(3).is_none() {
        return true;
    }
    if v.len() <= 16 && STOPWORDS.iter().any(|w| v.eq_ignore_ascii_case(w)) {
        return true;
    }
    if v.chars().all(|c| {
        matches!(
            c,
            '*' | '•' | '●' | 'x' | 'X' | '#' | '.' | '-' | '_' | '?' | ' '
        )
    }) {
        return true;
    }
    let wrapped = |open: char, close: char| v.starts_with(open) && v.ends_with(close);
    if v.starts_with('$') || wrapped('{', '}') || wrapped('<', '>') || wrapped('%', '%') {
        return true;
    }
    let lower_prefix = v.get(..5).map(str::to_ascii_lowercase);
    if lower_prefix.is_some_and(|p| {
        p.starts_with("your") && matches!(p.as_bytes()[4], b'_' | b'-' | b' ' | b'.')
    }) {
        return true;
    }
    if v.contains("***") || v.contains("•••") || masked_tail(v) {
        return true;
    }
    let has = |needle: &str| {
        v.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    has("redacted") || has("process.env") || has("os.environ") || has("getenv(")
}

/// A prefix of at most 16 characters, then only mask characters (six or more) or an
/// ellipsis: a key shown by its prefix.
fn masked_tail(v: &str) -> bool {
    let mask = |c: char| matches!(c, '*' | '•' | '●' | 'x' | 'X');
    let unmasked = v.trim_end_matches(mask);
    let masked = v[unmasked.len()..].chars().count() >= 6;
    let dots = v.ends_with("...") || v.ends_with('…');
    let prefix = if masked {
        unmasked
    } else {
        v.trim_end_matches(['.', '…'])
    };
    (masked || dots) && prefix.chars().count() <= 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_names() {
        for k in [
            "password",
            "db_password",
            "DB_PASSWORD",
            "passwd",
            "secret",
            "client_secret",
            "clientSecret",
            "token",
            "access_token",
            "GITHUB_TOKEN",
            "api_key",
            "X-Api-Key",
            "apiKey",
            "private_key",
            "Authorization",
            "aws_secret_access_key",
            "AccountKey",
            "password2",
            "auth",
            "credentials",
            "spring.datasource.password",
            "--password",
            "MYSQL_PWD",
            "DB_PASS",
            "ansible_become_pass",
            "smtpPass",
            "ADMIN_PWD",
        ] {
            assert!(sensitive_key(k).is_some(), "{k}");
        }
        for k in [
            "max_tokens",
            "token_count",
            "tokens",
            "token_type",
            "password_policy",
            "secret_name",
            "next_page_token",
            "NextToken",
            "pageToken",
            "tokenizer",
            "author",
            "path",
            "pwd",
            "key",
            "public_key",
            "integrity",
            "bypass",
            "compass",
            "OLDPWD",
            "PWD",
            "sshpass",
            "",
        ] {
            assert!(sensitive_key(k).is_none(), "{k}");
        }
        let long = "a".repeat(300) + "_password";
        assert!(sensitive_key(&long).is_none());
    }

    #[test]
    fn keyed_refinement() {
        let k = sensitive_key("AWS_SECRET_ACCESS_KEY").unwrap();
        let i = k
            .refine("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
            .unwrap();
        assert_eq!(KEYED[i].kind, "aws_secret_access_key");
        assert!(k.refine("hunter2hunter2").is_none());
        let dd = sensitive_key("DD_API_KEY").unwrap();
        assert_eq!(
            KEYED[dd.refine("0123456789abcdef0123456789abcdef").unwrap()].kind,
            "datadog_api_key"
        );
    }

    #[test]
    fn placeholders() {
        for v in [
            "",
            "abc",
            "null",
            "None",
            "true",
            "********",
            "xxxxxxxx",
            "XXXX-XXXX",
            "${API_KEY}",
            "$TOKEN",
            "{{ secrets.GITHUB_TOKEN }}",
            "${{ secrets.X }}",
            "<your-token>",
            "%API_KEY%",
            "YOUR_API_KEY",
            "your-token-here",
            "[REDACTED]",
            "<redacted>",
            "sk-****abcd",
            "process.env.TOKEN",
            "{api_key}",
            "password",
            "string",
            "changeme",
            "SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "sk-...",
            "ghp_…",
        ] {
            assert!(is_placeholder(v), "{v}");
        }
        for v in [
            "hunter22",
            "Tr0ub4dor&3",
            "correct horse battery staple",
            "yourself-is-fine",
            "Tig&er(1)!",
            "wait...for-it-a-long-while",
            "abcdefghijklmnopqrxxxxxx",
        ] {
            assert!(!is_placeholder(v), "{v}");
        }
    }
}
