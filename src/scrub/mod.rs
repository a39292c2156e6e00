//! Secret scrubbing: removes credentials from every string of an event before anything is
//! written anywhere.
//!
//! Every event passes through [`Scrubber::scrub`] between ingest and the WAL, so a raw secret
//! never reaches the WAL, the index, logs, metrics, findings, alerts, webhooks or API responses.
//! A secret becomes `[REDACTED:<kind>:<fp>]`, where `<fp>` is the first 12 hex digits of
//! HMAC-SHA256(installation key, secret): the same leaked key can be followed across events
//! without being stored. The scrubber returns what it removed, one [`Redaction`] per
//! (kind, path), sorted by path then kind; counting and searching them is the caller's job.
//!
//! # What is scanned
//! `arguments` (every leaf of the JSON tree, with its key as context and its path, e.g.
//! `arguments.headers.Authorization`, `arguments.items[3]`), `result`, `error`, `labels.<key>`
//! (the label key is context: label `db_password` is a sensitive key), and the short fields
//! that can carry a credential-bearing URI: `tool`, `server`, `source`, `user`, `client`,
//! `remote_addr`. Ids, hashes and the method are not scanned. Object keys are never secrets.
//! A string that is itself JSON (tool results often are) and holds something to redact is
//! walked as JSON, with paths such as `result.items[0].token`, and rewritten only where a
//! token changed (see `json.rs`); a JSON string with nothing to redact is never parsed.
//!
//! # How (one pass, then bounded work)
//! `scan.rs` runs one Aho-Corasick DFA over each string, holding the keywords of every
//! detector (long strings are walked in four interleaved lanes, as a single DFA walk is bound
//! by memory latency), and counts digit runs on the way for card numbers. Strings without a
//! hit cost that pass and nothing else. `engine.rs` then runs each hit's own detectors, on a
//! bounded window around the hit: a regex and a validator (`rules.rs` is the table, `checks.rs`
//! the validators), or a hand-written finder (`finders.rs`). Structure and checksums decide,
//! not entropy: GitHub and npm tokens must carry their CRC32, JWT headers must decode to JSON,
//! cards must pass Luhn and an issuer prefix, Basic credentials must decode to
//! `user:password`.
//!
//! # Passwords as people paste them
//! Passwords are rarely escaped where people paste them, so reserved characters do not end
//! them:
//! - In a URL (`https://bot:Dragon123@xYz1@api.example/`, `postgres://app:Tiger1#ab!@db/x`,
//!   any scheme, `jdbc:` prefixes included) the password runs from the userinfo's first `:` to
//!   the last `@` that a host follows, past `/ ? # ! % @`; an `@` that starts a path segment
//!   (`/@scope/pkg`) or sits in a query parameter after an earlier candidate
//!   (`?email=ops@example.com`) does not end it, and `host:port/…` has no password. Without a
//!   scheme: proxies (`http_proxy=u:p@proxy:3128`), Go MySQL DSNs (`u:p@tcp(db)/x`) and Oracle's
//!   `user/password@host` (JDBC thin, `sqlplus`).
//! - A bare `key=value` value keeps `& , | ( ) [ ] { } \` that belong to it (`Tig&er(1)!`) and
//!   ends at whitespace, a quote, `;`, a closing bracket it did not open, a JSON escape that
//!   ends the string, or an `&`/`,` that another `key=` follows (`&` always in a URL query).
//!   In a `;`-separated connection string the value runs to the next `;` (`Password=my pass;`),
//!   an ODBC value to its closing brace (`PWD={Tig;er}`), and `PWD` names a password.
//! - On command lines: `mysql -pSECRET`, `sshpass -p`, `docker|podman|… login -p`, `mongo* -p`,
//!   `sqlcmd|bcp -P`, `redis-cli -a`, `ldap* -w`, `curl -u|--user|-U user:SECRET` (quoted or
//!   not, continued lines included), and `.netrc` lines.
//!
//! # Sensitive keys
//! The value of a key named like a credential (`password`, `passwd`, `secret`, `token`,
//! `api_key`, `private_key`, `client_secret`, `authorization`, `MYSQL_PWD`…; see `keys.rs` for
//! the rule) is redacted whole as `password_field`, or as a specific kind when the name and the
//! value's shape agree (`aws_secret_access_key`, `datadog_api_key`…). This applies to JSON
//! keys, label keys, and to `KEY=value`, `key: value`, `"key": "value"`, `<key>value</key>` and
//! `--key value` inside text. A key whose last word is `pass` or `pwd` (`DB_PASS`,
//! `ansible_become_pass`) counts in text only when written as configuration (`DB_PASS=x`,
//! `db_pass: x`), not as a constant (`FLAGS_PASS = 0x04`). When a specific detector finds a
//! secret inside such a value, only that secret is replaced.
//!
//! Values that only stand in for a secret are left alone: shorter than 4 characters; `null`,
//! `true`/`false`, `none`, type names, `changeme`, `pass` and similar stopwords; masked
//! (`********`, `xxxx`, anything with `***` or `redacted`, a short prefix then a masked tail or
//! an ellipsis: `SKxxxxxxxx`, `sk-...`); references (`$VAR`, `${VAR}`, `${{ secrets.X }}`,
//! `{{ x }}`, `<your-token>`, `%VAR%`, `YOUR_API_KEY`); code (`config.token`,
//! `os.getenv(…)`, `process.env.X`); and a value equal to its key (`password=password`).
//! Numbers under a sensitive key are redacted from 4 digits on (the marker replaces the
//! number with a string).
//!
//! # Idempotence
//! An existing marker is protected: no detector may match across it, a sensitive key whose
//! value holds a marker is left alone, and a keyword inside a marker (kind names such as
//! `twilio_api_key`) starts nothing and is no context for a rule that needs a word nearby.
//! So `scrub(scrub(x)) == scrub(x)`.
//!
//! # Never redacted
//! UUIDs, git and SHA hashes, trace ids, SRI strings, base64 of ordinary text, placeholders,
//! masked values and long identifiers carry no keyword a detector needs, or fail the
//! detector's structure check; the tests hold a corpus of such look-alikes, and `corpus.rs` a
//! held-out style corpus of pasted lines (secrets and decoys) with its recall and decoy rates.
//!
//! # Custom rules
//! [`ScrubConfig`] adds detectors (a kind, a regex whose whole match or group `secret` is the
//! secret, and optional keywords: with keywords the regex runs over a string only when one
//! occurs in it; without, on every string) and allowlist regexes (a candidate secret that
//! matches one is left alone). Both are checked by [`Scrubber::new`], which names the config
//! key at fault: `scrub.detectors[2].regex: regex parse error: …`.
//!
//! # Known limits
//! - Context-only families need their context: Twilio auth tokens, Datadog keys, Heroku UUID
//!   keys, legacy Vault `s.` tokens, Azure storage keys and AWS secret keys are recognised
//!   under a key that names them (or, for Vault and Discord, near the word; a Twilio auth
//!   token beside its `AC` account SID near the word `twilio`, an API key secret beside its
//!   `SK` SID anywhere); a bare 32-hex string alone is not a secret to the scrubber. An `AC`
//!   account SID is an identifier and is redacted only near the word `twilio`; an `SK` API key
//!   SID is redacted anywhere.
//! - A bare `key=value` value ends at whitespace (outside connection strings) and at 1 KiB, a
//!   quoted one at its closing quote and 4 KiB; prose such as `password: see below` loses the
//!   word `see`, and `password=Tiger(1)` reads as a call and is left alone.
//! - A URL password with whitespace in it, or ending in `/` before its `@`, is not found; one
//!   whose `@` is followed by something host-like and then a path (`P@ss/w0rd@host`) is read
//!   to the last such `@`, so a password-bearing URL with `@` in its path loses that path too.
//!   `host:1234#x@y` is read as a password (`1234#x`) rather than a port and a fragment.
//! - Positional passwords (`htpasswd -b f user PW`, `net use … PW`, `.pgpass` lines) have no
//!   shape to go by and are not found.
//! - A secret spelled with JSON `\u` escapes inside a string that nothing else flags is not
//!   decoded (nothing in ordinary traffic writes tokens that way).
//!
//! The scrubber does not decide where the key file lives, count metrics, or wire the CLI;
//! [`offline`] provides the JSON Lines filter behind `mcp-audit scrub`.

mod checks;
#[cfg(test)]
mod corpus;
mod engine;
mod finders;
mod json;
mod keyfile;
mod keys;
pub mod offline;
mod rules;
pub mod samples;
mod scan;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::event::{Event, Redaction};
use engine::{Engine, Found, KindId};

pub(crate) use engine::floor_char;
pub use keyfile::{key_from_hex, load_or_create_key, KEY_FILE};
pub use offline::{scrub_jsonl, OfflineSummary};

/// Every marker starts with this.
pub const MARKER_PREFIX: &str = "[REDACTED:";

#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// A custom detector or allowlist pattern from config is invalid.
    #[error("`{key}`: {reason}")]
    Config { key: String, reason: String },
    #[error("scrub key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// A user-defined detector from config (`[[scrub.detectors]]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDetector {
    /// Kind written into the redaction marker, e.g. `acme_token`.
    pub kind: String,
    /// Regex; the whole match is the secret, or capture group `secret` if present.
    pub regex: String,
    /// Literal keywords that must appear for the regex to run (prefilter). Optional.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// Checked scrubber settings.
#[derive(Debug, Clone, Default)]
pub struct ScrubConfig {
    pub detectors: Vec<CustomDetector>,
    /// Regexes: a candidate secret that matches any of these is left alone.
    pub allowlist: Vec<String>,
}

/// What one scrub removed, before it is turned into [`Redaction`]s.
#[derive(Default)]
pub(crate) struct Report {
    counts: BTreeMap<(String, KindId), u32>,
}

impl Report {
    fn add(&mut self, path: &str, kind: KindId) {
        *self.counts.entry((path.to_string(), kind)).or_default() += 1;
    }
}

/// The scrubber: built once, shared by all ingest tasks (`Send + Sync`).
pub struct Scrubber {
    engine: Engine,
    mac: Hmac<Sha256>,
}

impl Scrubber {
    /// Builds the detectors; `key` is the per-installation HMAC key for fingerprints.
    pub fn new(config: &ScrubConfig, key: [u8; 32]) -> Result<Self, ScrubError> {
        let engine = Engine::new(config)?;
        let mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| ScrubError::Config {
            key: "scrub.key".into(),
            reason: e.to_string(),
        })?;
        Ok(Self { engine, mac })
    }

    /// Replaces every secret in every string of the event (arguments, result, error, labels
    /// and the other free-text fields) with `[REDACTED:<kind>:<fp>]` and returns what was
    /// removed, one entry per (kind, path).
    pub fn scrub(&self, event: &mut Event) -> Vec<Redaction> {
        let mut rep = Report::default();
        let mut path = String::with_capacity(64);
        path.push_str("arguments");
        json::scrub_value(self, &mut event.arguments, None, &mut path, &mut rep);
        for (name, value) in [("result", &mut event.result), ("error", &mut event.error)] {
            path.clear();
            path.push_str(name);
            self.scrub_field(value, None, &mut path, &mut rep);
        }
        let short = [
            ("tool", &mut event.tool),
            ("server", &mut event.server),
            ("source", &mut event.source),
            ("user", &mut event.user),
            ("client", &mut event.client),
            ("remote_addr", &mut event.remote_addr),
        ];
        // The short fields and label values are scanned as one NUL-separated text first (no
        // keyword contains a NUL, and a NUL ends a digit run): one walk instead of many, and
        // nearly always nothing is there, so only sensitive label keys remain to check.
        let mut joined = String::with_capacity(256);
        for (_, value) in &short {
            joined.push_str(value);
            joined.push('\0');
        }
        for value in event.labels.values() {
            joined.push_str(value);
            joined.push('\0');
        }
        let clean = self.engine.scan(&joined).is_empty();
        if !clean {
            for (name, value) in short {
                path.clear();
                path.push_str(name);
                self.scrub_field(value, None, &mut path, &mut rep);
            }
        }
        for (key, value) in event.labels.iter_mut() {
            if clean && keys::sensitive_key(key).is_none() {
                continue;
            }
            path.clear();
            path.push_str("labels.");
            path.push_str(key);
            self.scrub_field(value, Some(key), &mut path, &mut rep);
        }
        self.redactions(rep)
    }

    /// Scrubs one free-text string; `path` names it in the returned redactions.
    pub fn scrub_string(&self, path: &str, text: &mut String) -> Vec<Redaction> {
        let mut rep = Report::default();
        let mut p = path.to_string();
        self.scrub_field(text, None, &mut p, &mut rep);
        self.redactions(rep)
    }

    /// Scrubs a JSON value the way `arguments` is scrubbed, paths rooted at `path`.
    pub fn scrub_json(&self, path: &str, value: &mut serde_json::Value) -> Vec<Redaction> {
        let mut rep = Report::default();
        let mut p = path.to_string();
        json::scrub_value(self, value, None, &mut p, &mut rep);
        self.redactions(rep)
    }

    /// Every kind this scrubber can write (built-in and custom), e.g. to pre-register
    /// per-kind counters.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        let internal = |k: &&str| *k == "redacted" || *k == "unscanned";
        self.engine
            .kinds
            .iter()
            .map(String::as_str)
            .filter(move |k| !internal(k))
    }

    /// The 12-hex-digit keyed fingerprint a marker carries for `secret`.
    pub fn fingerprint(&self, secret: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(secret.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..6])
    }

    /// Scrubs one JSON Lines line: a JSON object or array is walked with paths rooted at its
    /// own keys (`result`, `arguments.x`); anything else is text with path `line`.
    pub(crate) fn scrub_line(&self, line: &str) -> (Option<String>, Vec<Redaction>) {
        if self.engine.scan(line).is_empty() {
            return (None, Vec::new());
        }
        let mut rep = Report::default();
        let mut path = String::new();
        let out = self.settle(line, &mut path, &mut rep, |line, path, rep| {
            self.scrub_line_once(line, path, rep)
        });
        (out, self.redactions(rep))
    }

    fn scrub_line_once(&self, line: &str, path: &mut String, rep: &mut Report) -> Option<String> {
        path.clear();
        if json::looks_like_json(line) {
            if let Some(out) = json::scrub_json_text(self, line, path, rep, 1) {
                return out;
            }
        }
        path.clear();
        path.push_str("line");
        self.scrub_text_once(line, None, path, rep, json::MAX_NEST)
    }

    fn scrub_field(
        &self,
        value: &mut String,
        key: Option<&str>,
        path: &mut String,
        rep: &mut Report,
    ) {
        if value.is_empty() {
            return;
        }
        if let Some(new) = self.scrub_text(value, key, path, rep, 0) {
            *value = new;
        }
    }

    fn redactions(&self, rep: Report) -> Vec<Redaction> {
        let mut out: Vec<Redaction> = rep
            .counts
            .into_iter()
            .map(|((path, kind), count)| Redaction {
                kind: self.kind_name(kind).to_string(),
                path,
                count,
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.kind.cmp(&b.kind)));
        out
    }

    fn kind_name(&self, kind: KindId) -> &str {
        self.engine
            .kinds
            .get(usize::from(kind))
            .map_or("unknown", String::as_str)
    }

    fn marker(&self, kind: KindId, secret: &str) -> String {
        format!(
            "{MARKER_PREFIX}{}:{}]",
            self.kind_name(kind),
            self.fingerprint(secret)
        )
    }

    /// Scrubs one string until it settles (see [`Scrubber::settle`]). `None` when nothing
    /// changed.
    fn scrub_text(
        &self,
        s: &str,
        key: Option<&str>,
        path: &mut String,
        rep: &mut Report,
        nest: u8,
    ) -> Option<String> {
        self.settle(s, path, rep, |text, path, rep| {
            self.scrub_text_once(text, key, path, rep, nest)
        })
    }

    /// Runs `pass` again over its own output until it changes nothing.
    ///
    /// One pass keeps the best of overlapping candidates. A loser can come back as a different
    /// match once the winner is a marker (`"token": "a password=b…` loses its quoted value to
    /// `password=b…`, and the next pass finds the token's value ending earlier), so a single
    /// pass is not idempotent on such text; a settled string is, by construction. Clean text
    /// pays nothing: only a string that changed is scanned again. Each changing pass turns
    /// unprotected bytes into a marker, so passes run out; should `MAX_PASSES` not be enough,
    /// the whole string becomes one `unscanned` marker rather than keep something half-judged.
    fn settle(
        &self,
        s: &str,
        path: &mut String,
        rep: &mut Report,
        mut pass: impl FnMut(&str, &mut String, &mut Report) -> Option<String>,
    ) -> Option<String> {
        const MAX_PASSES: usize = 8;
        let mut out = pass(s, path, rep)?;
        for _ in 1..MAX_PASSES {
            match pass(&out, path, rep) {
                Some(next) => out = next,
                None => return Some(out),
            }
        }
        let kind = self.engine.unscanned_kind();
        rep.add(path, kind);
        Some(self.marker(kind, s))
    }

    /// One pass over a string: JSON text is walked, other text scanned; with nothing found,
    /// the whole value goes if `key` is sensitive. `None` when nothing changed.
    fn scrub_text_once(
        &self,
        s: &str,
        key: Option<&str>,
        path: &mut String,
        rep: &mut Report,
        nest: u8,
    ) -> Option<String> {
        let hits = self.engine.scan(s);
        if hits.is_empty() {
            return self.whole_value(s, key, path, rep);
        }
        // The text-level pass sees what a JSON walk would (quoted values, escaped JSON,
        // numbers); the walk adds exact paths and key context for nested values. So JSON text
        // is walked only when the text-level pass says there is something to walk.
        let detection = self.engine.resolve(s, &hits);
        let something = !detection.found.is_empty() || detection.matched || detection.nested;
        if something && nest < json::MAX_NEST && json::looks_like_json(s) {
            if let Some(out) = json::scrub_json_text(self, s, path, rep, nest + 1) {
                return out;
            }
        }
        if detection.found.is_empty() {
            if detection.matched || detection.marker {
                return None;
            }
            return self.whole_value(s, key, path, rep);
        }
        Some(self.replace(s, &detection.found, path, rep))
    }

    /// The value of a sensitive key, redacted whole.
    fn whole_value(
        &self,
        s: &str,
        key: Option<&str>,
        path: &str,
        rep: &mut Report,
    ) -> Option<String> {
        let key = key?;
        if s.len() < 4 {
            return None;
        }
        let name = keys::sensitive_key(key)?;
        if keys::is_placeholder(s) || s.contains(MARKER_PREFIX) || self.engine.allowed(s) {
            return None;
        }
        let kind = self.engine.key_kind(&name, s);
        rep.add(path, kind);
        Some(self.marker(kind, s))
    }

    fn replace(&self, s: &str, found: &[Found], path: &str, rep: &mut Report) -> String {
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for f in found {
            let (Some(before), Some(secret)) = (s.get(last..f.start), s.get(f.start..f.end)) else {
                continue;
            };
            out.push_str(before);
            out.push_str(&self.marker(f.kind, secret));
            rep.add(path, f.kind);
            last = f.end;
        }
        out.push_str(s.get(last..).unwrap_or(""));
        out
    }

    /// Whether a JSON number could be a secret: a card-sized integer, or under a sensitive key.
    fn number_may_be_secret(&self, n: Option<u64>, key: Option<&str>) -> bool {
        n.is_some_and(|n| n >= 1_000_000_000_000)
            || key.is_some_and(|k| keys::sensitive_key(k).is_some())
    }

    /// A marker for a JSON number that is a card number or the value of a sensitive key.
    fn scrub_number(
        &self,
        text: &str,
        key: Option<&str>,
        path: &str,
        rep: &mut Report,
    ) -> Option<String> {
        let mut cards = Vec::new();
        finders::cards(text, &mut cards);
        if cards.first() == Some(&(0, text.len())) {
            let kind = self.engine.card_kind();
            rep.add(path, kind);
            return Some(self.marker(kind, text));
        }
        self.whole_value(text, key, path, rep)
    }

    /// The marker for an `arguments` subtree too deep to walk.
    fn too_deep(&self, path: &str, rep: &mut Report) -> String {
        let kind = self.engine.unscanned_kind();
        rep.add(path, kind);
        self.marker(kind, "")
    }
}
