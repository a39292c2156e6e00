//! The detection engine: one keyword pass, then bounded work where a hit points.
//!
//! [`Engine::scan`] makes the only pass over every byte of a string: the keyword DFA of
//! [`super::scan`] over all keywords of all rules (ASCII case-insensitive; rules whose keywords
//! are case-sensitive re-check the hit's bytes), which also notes whether a card-length digit
//! run occurs; only then does the exact card scan of [`finders::cards`] run. A string with no
//! hit costs exactly that pass.
//! [`Engine::resolve`] then runs each hit's rules on a window around the hit, validates the
//! candidates, drops those that overlap or touch an existing marker, keeps the best of
//! overlapping candidates (higher priority, then longer) and applies the allowlist. Each rule
//! remembers how far it got in the string, so clustered hits do not rescan the same bytes.

use regex::{Regex, RegexSet};

use super::finders;
use super::keys::{self, KEYED};
use super::rules::{self, Bound, Find, Rule, GENERIC, RULES, SPECIFIC, STRUCTURED};
use super::scan::Keywords;
use super::{ScrubConfig, ScrubError};

/// Index into [`Engine::kinds`].
pub(super) type KindId = u16;

/// A secret to replace: `start..end` of the scanned string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Found {
    pub start: usize,
    pub end: usize,
    pub kind: KindId,
    prio: u8,
}

impl Found {
    pub(super) fn new(start: usize, end: usize, kind: KindId, prio: u8) -> Self {
        Self {
            start,
            end,
            kind,
            prio,
        }
    }
}

/// What [`Engine::scan`] saw: keyword hits and validated card-number spans.
#[derive(Default)]
pub(super) struct Hits {
    keywords: Vec<(u32, usize, usize)>,
    cards: Vec<(usize, usize)>,
    always: bool,
}

impl Hits {
    pub(super) fn is_empty(&self) -> bool {
        self.keywords.is_empty() && self.cards.is_empty() && !self.always
    }
}

/// What [`Engine::resolve`] decided.
pub(super) struct Detection {
    /// Non-overlapping secrets, sorted by start.
    pub found: Vec<Found>,
    /// Something matched, even if the allowlist then spared it.
    pub matched: bool,
    /// The string already carries a redaction marker.
    pub marker: bool,
    /// A sensitive key holds a JSON object or array: only a JSON walk can judge its leaves.
    pub nested: bool,
}

/// Work in progress of one [`Engine::resolve`].
#[derive(Default)]
struct Scratch {
    candidates: Vec<Found>,
    markers: Vec<(usize, usize)>,
    nested: bool,
}

enum Finder {
    Regex {
        re: Regex,
        secret: Option<usize>,
        whole: bool,
    },
    Url,
    Pem,
    Assignment,
    Marker,
}

struct Compiled {
    kind: KindId,
    finder: Finder,
    before: usize,
    span: usize,
    near: bool,
    /// A byte that must occur within so many bytes after the hit for the regex to run.
    needs: Option<(u8, usize)>,
    check: Option<fn(&str) -> bool>,
    prio: u8,
    bound: Bound,
}

/// How far a rule got in one string: hits before `skip` are redundant, and its context
/// window already covered bytes before `scanned`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Progress {
    skip: usize,
    scanned: usize,
}

impl Progress {
    fn max(self, other: Progress) -> Progress {
        Progress {
            skip: self.skip.max(other.skip),
            scanned: self.scanned.max(other.scanned),
        }
    }
}

/// A keyword hit, and where its rule's previous context window ended.
#[derive(Clone, Copy)]
struct Window {
    start: usize,
    end: usize,
    scanned: usize,
}

struct Trigger {
    rule: usize,
    /// The keyword's exact bytes, when the rule is case-sensitive.
    exact: Option<Box<[u8]>>,
}

pub(super) struct Engine {
    keywords: Keywords,
    /// Per automaton pattern: the rules it triggers.
    triggers: Vec<Vec<Trigger>>,
    rules: Vec<Compiled>,
    /// Custom rules without keywords: they run on every string.
    always: Vec<usize>,
    allow: Option<RegexSet>,
    pub(super) kinds: Vec<String>,
    keyed: Vec<KindId>,
    pub(super) password: KindId,
    card: KindId,
    unscanned: KindId,
    database: KindId,
    url: KindId,
}

fn config_error(key: String, reason: impl std::fmt::Display) -> ScrubError {
    let reason = reason
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    ScrubError::Config { key, reason }
}

fn valid_kind(kind: &str) -> bool {
    kind.len() <= 64
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[derive(Default)]
struct Builder {
    kinds: Vec<String>,
    patterns: Vec<String>,
    triggers: Vec<Vec<Trigger>>,
    rules: Vec<Compiled>,
}

impl Builder {
    fn kind(&mut self, name: &str) -> KindId {
        match self.kinds.iter().position(|k| k == name) {
            Some(i) => i as KindId,
            None => {
                self.kinds.push(name.to_string());
                (self.kinds.len() - 1) as KindId
            }
        }
    }

    fn keyword(&mut self, keyword: &str, rule: usize, case_sensitive: bool) {
        let lower = keyword.to_ascii_lowercase();
        let slot = match self.patterns.iter().position(|p| *p == lower) {
            Some(i) => i,
            None => {
                self.patterns.push(lower);
                self.triggers.push(Vec::new());
                self.patterns.len() - 1
            }
        };
        let exact = case_sensitive.then(|| keyword.as_bytes().into());
        self.triggers[slot].push(Trigger { rule, exact });
    }

    fn builtin(&mut self, r: &Rule) -> Result<(), ScrubError> {
        let finder = match r.find {
            Find::Regex(pattern) => {
                let re = Regex::new(pattern)
                    .map_err(|e| config_error(format!("builtin detector {}", r.kind), e))?;
                let secret = secret_group(&re);
                Finder::Regex {
                    re,
                    secret,
                    whole: false,
                }
            }
            Find::Url => Finder::Url,
            Find::Pem => Finder::Pem,
            Find::Assignment => Finder::Assignment,
            Find::Marker => Finder::Marker,
        };
        let index = self.rules.len();
        for k in r.keywords {
            self.keyword(k, index, !r.ci);
        }
        let kind = self.kind(r.kind);
        self.rules.push(Compiled {
            kind,
            finder,
            before: r.before,
            span: r.span,
            near: r.near,
            needs: r.needs,
            check: r.check,
            prio: r.prio,
            bound: r.bound,
        });
        Ok(())
    }

    fn custom(&mut self, i: usize, d: &super::CustomDetector) -> Result<usize, ScrubError> {
        let key = |field: &str| format!("scrub.detectors[{i}].{field}");
        if !valid_kind(&d.kind) {
            return Err(config_error(
                key("kind"),
                format!(
                    "`{}` is not a snake_case name (a-z, 0-9, _; at most 64)",
                    d.kind
                ),
            ));
        }
        let re = Regex::new(&d.regex).map_err(|e| config_error(key("regex"), e))?;
        if re.is_match("") {
            return Err(config_error(key("regex"), "matches the empty string"));
        }
        let index = self.rules.len();
        for (j, k) in d.keywords.iter().enumerate() {
            if k.is_empty() {
                return Err(config_error(
                    format!("scrub.detectors[{i}].keywords[{j}]"),
                    "is empty",
                ));
            }
            self.keyword(k, index, false);
        }
        let secret = secret_group(&re);
        let kind = self.kind(&d.kind);
        self.rules.push(Compiled {
            kind,
            finder: Finder::Regex {
                re,
                secret,
                whole: true,
            },
            before: 0,
            span: 0,
            near: true,
            needs: None,
            check: None,
            prio: SPECIFIC,
            bound: Bound::None,
        });
        Ok(index)
    }
}

fn secret_group(re: &Regex) -> Option<usize> {
    re.capture_names().position(|n| n == Some("secret"))
}

/// The largest char boundary of `s` at or below `i` (at most `s.len()`).
pub(crate) fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn bounded(s: &str, start: usize, end: usize, bound: Bound) -> bool {
    let b = s.as_bytes();
    let before = if finders::escape_before(b, start) {
        None
    } else {
        start.checked_sub(1).and_then(|i| b.get(i)).copied()
    };
    let after = b.get(end).copied();
    match bound {
        Bound::None => true,
        Bound::Alnum => {
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_alphanumeric())
        }
        Bound::Digits => {
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        }
    }
}

impl Engine {
    pub(super) fn new(config: &ScrubConfig) -> Result<Self, ScrubError> {
        let mut b = Builder::default();
        for r in RULES {
            b.builtin(r)?;
        }
        let mut always = Vec::new();
        for (i, d) in config.detectors.iter().enumerate() {
            let index = b.custom(i, d)?;
            if d.keywords.is_empty() {
                always.push(index);
            }
        }
        for (i, a) in config.allowlist.iter().enumerate() {
            Regex::new(a).map_err(|e| config_error(format!("scrub.allowlist[{i}]"), e))?;
        }
        let allow = if config.allowlist.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(&config.allowlist)
                    .map_err(|e| config_error("scrub.allowlist".into(), e))?,
            )
        };
        let keyed = KEYED.iter().map(|k| b.kind(k.kind)).collect();
        let password = b.kind("password_field");
        let card = b.kind(rules::CREDIT_CARD);
        let unscanned = b.kind("unscanned");
        let database = b.kind(rules::DATABASE_URI);
        let url = b.kind("url_credentials");
        let keywords =
            Keywords::new(&b.patterns).map_err(|e| config_error("scrub.detectors".into(), e))?;
        Ok(Self {
            keywords,
            triggers: b.triggers,
            rules: b.rules,
            always,
            allow,
            kinds: b.kinds,
            keyed,
            password,
            card,
            unscanned,
            database,
            url,
        })
    }

    /// The kind a sensitive key gives its value: a [`KEYED`] refinement or `password_field`.
    pub(super) fn key_kind(&self, name: &keys::KeyName, value: &str) -> KindId {
        name.refine(value).map_or(self.password, |i| self.keyed[i])
    }

    pub(super) fn card_kind(&self) -> KindId {
        self.card
    }

    /// The kind for an `arguments` subtree too deep to walk.
    pub(super) fn unscanned_kind(&self) -> KindId {
        self.unscanned
    }

    pub(super) fn allowed(&self, secret: &str) -> bool {
        self.allow.as_ref().is_some_and(|a| a.is_match(secret))
    }

    /// The single pass over the bytes: keyword hits and card numbers.
    pub(super) fn scan(&self, s: &str) -> Hits {
        let mut hits = Hits {
            always: !self.always.is_empty(),
            ..Hits::default()
        };
        if self.keywords.find(s.as_bytes(), &mut hits.keywords) {
            finders::cards(s, &mut hits.cards);
        }
        hits
    }

    /// Runs the rules the hits point at and picks the secrets to replace.
    pub(super) fn resolve(&self, s: &str, hits: &Hits) -> Detection {
        let mut w = Scratch::default();
        // Per rule: what it already handled, so each byte is looked at a bounded number of times.
        let mut handled: Vec<(usize, Progress)> = Vec::new();
        // A keyword inside a marker (`[REDACTED:twilio_api_key:…]`) is no context for anything:
        // otherwise one redaction would make the next pass find secrets the first did not.
        let mut marker_end = 0;
        for &(pattern, start, end) in &hits.keywords {
            if start < marker_end {
                continue;
            }
            let Some(triggers) = self.triggers.get(pattern as usize) else {
                continue;
            };
            for t in triggers {
                if t.exact
                    .as_deref()
                    .is_some_and(|e| s.as_bytes().get(start..end) != Some(e))
                {
                    continue;
                }
                let done = handled
                    .iter()
                    .find(|h| h.0 == t.rule)
                    .map_or(Progress::default(), |h| h.1);
                if start < done.skip {
                    continue;
                }
                let now = self.run(t.rule, s, start, end, done.scanned, &mut w);
                match handled.iter_mut().find(|h| h.0 == t.rule) {
                    Some(h) => h.1 = h.1.max(now),
                    None => handled.push((t.rule, now)),
                }
            }
            if let Some(m) = w.markers.last() {
                marker_end = marker_end.max(m.1);
            }
        }
        for &(a, b) in &hits.cards {
            w.candidates.push(Found::new(a, b, self.card, SPECIFIC));
        }
        for &rule in &self.always {
            self.run(rule, s, 0, 0, 0, &mut w);
        }
        let matched = !w.candidates.is_empty();
        let mut found = select(w.candidates, &w.markers);
        if self.allow.is_some() {
            found.retain(|f| !self.allowed(&s[f.start..f.end]));
        }
        Detection {
            found,
            matched,
            marker: !w.markers.is_empty(),
            nested: w.nested,
        }
    }

    /// Runs one rule at one hit; returns the offset up to which later hits of this rule are
    /// redundant.
    fn run(
        &self,
        rule: usize,
        s: &str,
        start: usize,
        end: usize,
        scanned: usize,
        w: &mut Scratch,
    ) -> Progress {
        let Some(r) = self.rules.get(rule) else {
            return Progress::default();
        };
        let out = &mut w.candidates;
        let skip = match &r.finder {
            Finder::Regex { re, secret, whole } => {
                let window = Window {
                    start,
                    end,
                    scanned,
                };
                return self.run_regex(r, re, *secret, *whole, s, window, out);
            }
            Finder::Marker => match finders::marker(s, start, end) {
                Some(m) => {
                    w.markers.push(m);
                    m.1
                }
                None => 0,
            },
            Finder::Pem => match finders::pem(s, start, end, r.span) {
                Some((a, b)) => {
                    out.push(Found::new(a, b, r.kind, r.prio));
                    b
                }
                None => 0,
            },
            Finder::Url => match finders::url_password(s, start, end, r.span) {
                Some(u) => {
                    let secret = &s[u.password.0..u.password.1];
                    if !keys::is_placeholder(secret) {
                        let kind = if u.database { self.database } else { self.url };
                        out.push(Found::new(u.password.0, u.password.1, kind, STRUCTURED));
                    }
                    u.authority_end
                }
                None => 0,
            },
            Finder::Assignment => {
                let a = finders::assignment(s, start, end);
                let key = &s[a.key.0..a.key.1];
                let sensitive = (a.value.is_some() || a.nested).then(|| {
                    keys::sensitive_key(key)
                        .filter(|k| a.tight || !k.weak)
                        .or_else(|| a.connection.then(|| keys::connection_key(key)).flatten())
                });
                if let Some(name) = sensitive.flatten() {
                    w.nested |= a.nested;
                    if let Some((vs, ve)) = a.value {
                        let value = &s[vs..ve];
                        if !keys::is_placeholder(value) && !same_word(key, value) {
                            out.push(Found::new(vs, ve, self.key_kind(&name, value), GENERIC));
                        }
                    }
                }
                // Only the key itself: a key name inside this value is judged on its own, as
                // it will be once this value is a marker (or if this value loses to another).
                a.key.1
            }
        };
        Progress { skip, scanned: 0 }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_regex(
        &self,
        r: &Compiled,
        re: &Regex,
        secret: Option<usize>,
        whole: bool,
        s: &str,
        window: Window,
        out: &mut Vec<Found>,
    ) -> Progress {
        let Window {
            start,
            end,
            scanned,
        } = window;
        if let Some((byte, within)) = r.needs {
            let after = s
                .as_bytes()
                .get(end..end.saturating_add(within).min(s.len()));
            if !after.is_some_and(|a| a.contains(&byte)) {
                return Progress::default();
            }
        }
        let (lo, hi) = if whole {
            (0, s.len())
        } else if r.near {
            // Resume where this rule's previous window ended (less one token), so a cluster of
            // context keywords does not rescan the same bytes.
            let lo = start
                .saturating_sub(r.before)
                .max(scanned.saturating_sub(r.span));
            (lo, end.saturating_add(r.before).saturating_add(r.span))
        } else {
            (start.saturating_sub(r.before), start.saturating_add(r.span))
        };
        let (lo, hi) = (floor_char(s, lo), ceil_char(s, hi));
        let hay = &s[..hi];
        let mut locs = re.capture_locations();
        let mut at = lo;
        let mut last = 0;
        while at <= hay.len() {
            let (ms, me, ss, se) = match secret {
                Some(g) => {
                    let Some(m) = re.captures_read_at(&mut locs, hay, at) else {
                        break;
                    };
                    let (ss, se) = locs.get(g).unwrap_or((m.start(), m.end()));
                    (m.start(), m.end(), ss, se)
                }
                None => {
                    let Some(m) = re.find_at(hay, at) else { break };
                    (m.start(), m.end(), m.start(), m.end())
                }
            };
            if !r.near && ms > start {
                break;
            }
            let covers_hit = r.near || (ms <= start && me >= end);
            let is_bounded = bounded(s, ms, me, r.bound);
            if covers_hit && se > ss && is_bounded && r.check.is_none_or(|f| f(&s[ss..se])) {
                out.push(Found::new(ss, se, r.kind, r.prio));
                last = last.max(me);
            } else if !is_bounded && me == hay.len() && hi < s.len() {
                // The token runs past the longest this rule accepts: later hits inside it are
                // part of the same over-long token.
                last = last.max(hi);
            }
            at = if me > at { me } else { ceil_char(s, at + 1) };
        }
        let skip = if whole { usize::MAX } else { last };
        Progress {
            skip,
            scanned: if r.near { hi } else { 0 },
        }
    }
}

/// `password=password`, `token: token`: the value repeats the key, a template.
fn same_word(key: &str, value: &str) -> bool {
    key.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .eq_ignore_ascii_case(value)
}

/// Drops candidates that overlap or touch a marker, then keeps the best of overlapping ones.
///
/// Touching counts: a marker replaced something this candidate overlapped on the previous
/// pass (or changed what borders it), so taking it now would break idempotence.
fn select(mut candidates: Vec<Found>, markers: &[(usize, usize)]) -> Vec<Found> {
    candidates.retain(|c| {
        let i = markers.partition_point(|m| m.1 < c.start);
        markers.get(i).is_none_or(|m| m.0 > c.end)
    });
    candidates.sort_by(|a, b| {
        b.prio
            .cmp(&a.prio)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut chosen: Vec<Found> = Vec::with_capacity(candidates.len());
    for c in candidates {
        let i = chosen.partition_point(|x| x.start < c.start);
        let clashes_prev = i > 0 && chosen[i - 1].end > c.start;
        let clashes_next = chosen.get(i).is_some_and(|x| x.start < c.end);
        if !clashes_prev && !clashes_next {
            chosen.insert(i, c);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_compile_and_cover_forty_families() {
        let e = Engine::new(&ScrubConfig::default()).unwrap();
        assert!(e.kinds.len() >= 45, "{} kinds", e.kinds.len());
    }

    #[test]
    fn select_prefers_priority_then_length() {
        let c = vec![
            Found::new(0, 10, 1, GENERIC),
            Found::new(2, 8, 2, SPECIFIC),
            Found::new(12, 20, 3, STRUCTURED),
            Found::new(11, 21, 4, STRUCTURED),
        ];
        let s = select(c, &[]);
        assert_eq!(
            s,
            vec![
                Found::new(2, 8, 2, SPECIFIC),
                Found::new(11, 21, 4, STRUCTURED)
            ]
        );
    }

    #[test]
    fn markers_protect_their_span() {
        let c = vec![
            Found::new(5, 9, 1, SPECIFIC),
            Found::new(20, 30, 1, SPECIFIC),
        ];
        assert_eq!(select(c, &[(0, 10)]), vec![Found::new(20, 30, 1, SPECIFIC)]);
    }

    #[test]
    fn custom_detector_errors_name_the_key() {
        let bad = |d: super::super::CustomDetector| {
            let cfg = ScrubConfig {
                detectors: vec![d],
                allowlist: vec![],
            };
            match Engine::new(&cfg) {
                Err(ScrubError::Config { key, reason }) => format!("{key}: {reason}"),
                Err(e) => e.to_string(),
                Ok(_) => "ok".into(),
            }
        };
        let d = |kind: &str, regex: &str, kw: &[&str]| super::super::CustomDetector {
            kind: kind.into(),
            regex: regex.into(),
            keywords: kw.iter().map(|s| s.to_string()).collect(),
        };
        assert!(bad(d("acme", "acme_[a-z]{10}", &["acme_"])) == "ok");
        assert!(bad(d("Acme Token", "x", &[])).starts_with("scrub.detectors[0].kind:"));
        assert!(bad(d("acme", "(unclosed", &[])).starts_with("scrub.detectors[0].regex:"));
        assert!(bad(d("acme", "a*", &[])).contains("empty string"));
        assert!(bad(d("acme", "acme", &["ok", ""])).starts_with("scrub.detectors[0].keywords[1]:"));
        let cfg = ScrubConfig {
            detectors: vec![],
            allowlist: vec!["ok".into(), "[".into()],
        };
        match Engine::new(&cfg) {
            Err(ScrubError::Config { key, .. }) => assert_eq!(key, "scrub.allowlist[1]"),
            _ => panic!("allowlist error expected"),
        }
    }
}
