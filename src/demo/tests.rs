//! Tests of the generated traffic: determinism, validity, shape, and its labels.
//!
//! The labels are checked against a small reference evaluator written here, one plain
//! function per rule id, following the definitions in `TRAFFIC.md`. It is test scaffolding,
//! not the rule pack: it exists to show that every scenario is detectable as labelled (its
//! expected rule fires and cites the trigger), that near misses are separable (nothing fires
//! that is not tolerated), and that the benign day is clean (only its noted secrets fire).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use regex::Regex;
use serde_json::Value;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::attacks::rule;
use super::STEADY_MINUTES;
use super::*;
use crate::event::{Consent, Event, Outcome};
use crate::scrub::{ScrubConfig, Scrubber};

const START: OffsetDateTime = datetime!(2025-11-24 00:00:00 UTC);
const DAY: Duration = Duration::hours(24);

/// Near misses the current scrubber redacts although they hold no credential (its documented
/// limit with prose after `token:` and `password:`), so a credential rule keyed on
/// redactions fires on them: known false positives, kept visible. When the scrubber stops
/// redacting them, `scenario_secrets_are_what_the_scrubber_removes` fails: remove them here.
const KNOWN_SCRUB_FALSE_POSITIVES: &[&str] = &["near-credential-prose"];

/// The rules that may fire on a scenario: expected, tolerated, or a known false positive.
fn allowed(s: &Scenario, r: &str) -> bool {
    s.expect.contains(&r)
        || s.tolerate.contains(&r)
        || (r == rule::CREDENTIAL_EXPOSURE && KNOWN_SCRUB_FALSE_POSITIVES.contains(&s.name))
}

fn day(seed: u64) -> Vec<Conversation> {
    benign_conversations(seed, START, DAY, DAY_CONVERSATIONS)
}

fn scrubber() -> Scrubber {
    Scrubber::new(&ScrubConfig::default(), [7u8; 32]).expect("default scrubber")
}

fn events_of(conversations: &[Conversation]) -> Vec<Event> {
    let mut all: Vec<Event> = conversations
        .iter()
        .flat_map(|c| c.events.clone())
        .collect();
    all.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    all
}

// ---------------------------------------------------------------------------------------
// The reference evaluator

#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    rule: &'static str,
    events: Vec<String>,
}

/// Every string leaf of a JSON value with the key it sits under.
fn leaves<'a>(v: &'a Value, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match v {
        Value::String(s) => out.push((key, s)),
        Value::Array(items) => items.iter().for_each(|i| leaves(i, key, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| leaves(v, k, out)),
        _ => {}
    }
}

fn arguments(e: &Event) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    leaves(&e.arguments, "", &mut out);
    out
}

fn decoded(s: &str) -> String {
    let once = percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned();
    percent_encoding::percent_decode_str(&once)
        .decode_utf8_lossy()
        .into_owned()
}

struct Patterns {
    traversal: Vec<Regex>,
    sql: Vec<Regex>,
    union: Regex,
    shell: Vec<Regex>,
    shell_in_value: Vec<Regex>,
    injection: Vec<Regex>,
    comment: Regex,
    style: Regex,
    poisoning: Vec<Regex>,
}

fn re(s: &str) -> Regex {
    Regex::new(s).expect("test regex")
}

impl Patterns {
    fn new() -> Self {
        Self {
            traversal: [
                r"(\.\.[/\\]){2,}",
                r"(?i)\.\.[/\\].*(etc[/\\]|\.ssh|\.aws|windows|system32)",
                r"(?i)(^|[/\\])\.ssh[/\\]id_",
                r"(?i)(^|[^\w])/etc/(shadow|passwd)\b",
                r"(?i)\.aws[/\\]credentials",
                r"(?i)system32[/\\]config[/\\]sam|win\.ini",
            ]
            .map(re)
            .to_vec(),
            sql: [
                r"(?i)'\s*(or|and)\s+'?\d+'?\s*=\s*'?\d+",
                r"(?i)\bor\s+1\s*=\s*1\b",
                r"(?i);\s*(drop|delete|truncate|alter|grant|insert|update|create|exec)\b",
                r"(?i)\b(pg_sleep|sleep|benchmark)\s*\(|waitfor\s+delay",
                r"(?i)\bxp_cmdshell\b",
            ]
            .map(re)
            .to_vec(),
            union: re(r"(?i)\bunion\s+(all\s+)?select\b"),
            shell: [
                r"(?i)\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da)?sh\b",
                r"/dev/tcp/",
                r"(?i)\bnc(at)?\b[^|;&]*\s-e\s",
                r"(?i)\bbash\s+-i\b",
                r"\brm\s+-[rRf]{2,}\s+/(\s|$|\*)",
                r"--upload-pack|(?i)-o\s*ProxyCommand",
            ]
            .map(re)
            .to_vec(),
            shell_in_value: [r"\$\(", r"`[^`]*\b(curl|wget|bash|sh|nc|rm)\b[^`]*`"].map(re).to_vec(),
            injection: [
                r"(?i)ignore\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|earlier)\s+instructions",
                r"(?i)\byou are now (in [a-z ]+ mode|the [a-z ]+ (bot|assistant|agent)|dan\b)",
                r"(?i)do not (tell|mention|inform)( this to)? the user",
                r"(?i)<\s*/?\s*system\s*>",
                r"(?i)\bnew instructions\s*:",
            ]
            .map(re)
            .to_vec(),
            comment: re(r"(?s)<!--(.*?)-->"),
            style: re(r#"(?i)style\s*=\s*"([^"]*)""#),
            poisoning: [
                r"(?i)<\s*important\s*>",
                r"(?i)do not (tell|mention|show)[^.]*user|must not be shown to the user",
                r"(?i)\b(read|cat|open|include|pass)\b[^.]*~/\.(ssh|aws|cursor)",
                r"(?i)\b(send|copy|forward|post)\b[^.]*\bhttps?://",
                r"(?i)ignore (previous|other|all) instructions",
            ]
            .map(re)
            .to_vec(),
        }
    }

    fn path_traversal(&self, e: &Event) -> bool {
        arguments(e).iter().any(|(_, v)| {
            let d = decoded(v);
            self.traversal.iter().any(|r| r.is_match(&d))
        })
    }

    fn sql_injection(&self, e: &Event) -> bool {
        arguments(e).iter().any(|(k, v)| {
            // A tautology breaks out of any quoted value; the rest only means something in
            // SQL that is about to run (a migration file being written holds `; CREATE`).
            if self.sql[..2].iter().any(|r| r.is_match(v)) {
                return true;
            }
            if !matches!(*k, "sql" | "query" | "statement") {
                return false;
            }
            if self.sql[2..].iter().any(|r| r.is_match(v)) {
                return true;
            }
            // UNION SELECT in a value whose quotes do not balance, or that ends in a comment.
            let unbalanced = v.replace("''", "").matches('\'').count() % 2 == 1;
            let truncated = v.trim_end().ends_with("--") || v.trim_end().ends_with('#');
            self.union.is_match(v) && (unbalanced || truncated)
        })
    }

    fn shell_injection(&self, e: &Event) -> bool {
        arguments(e).iter().any(|(k, v)| {
            if self.shell.iter().any(|r| r.is_match(v)) {
                return true;
            }
            let option_like = matches!(
                *k,
                "remote" | "host" | "url" | "branch_name" | "repo" | "ref" | "target"
            ) && v.starts_with('-');
            // Metacharacters are normal in a shell tool's command, not in other values.
            option_like || (*k != "command" && self.shell_in_value.iter().any(|r| r.is_match(v)))
        })
    }

    fn prompt_injection(&self, e: &Event) -> bool {
        let text = &e.result;
        let invisible = |c: char| matches!(c, '\u{200B}' | '\u{200C}' | '\u{2060}' | '\u{FEFF}');
        if text.chars().filter(|c| invisible(*c)).count() >= 5 {
            return true;
        }
        // Tag characters outside an emoji flag sequence (which starts with U+1F3F4).
        let mut run = 0;
        let mut flag = false;
        for c in text.chars() {
            if ('\u{E0020}'..='\u{E007F}').contains(&c) {
                run += 1;
                if run >= 8 && !flag {
                    return true;
                }
            } else {
                run = 0;
                flag = c == '\u{1F3F4}';
            }
        }
        let clean: String = text.chars().filter(|c| !invisible(*c)).collect();
        if self.injection.iter().any(|r| r.is_match(&clean)) {
            return true;
        }
        let addressed = re(r"(?i)\b(ai|assistants?|agents?|llms?)\b");
        if self
            .comment
            .captures_iter(text)
            .any(|c| addressed.is_match(&c[1]))
        {
            return true;
        }
        self.style.captures_iter(text).any(|c| {
            let s = c[1].to_ascii_lowercase().replace(' ', "");
            let white = |prop: &str| {
                ["#fff;", "#ffffff;", "white;"]
                    .iter()
                    .any(|w| format!("{s};").contains(&format!("{prop}:{w}")))
            };
            (white("color") && (white("background-color") || white("background")))
                || s.contains("font-size:0")
                || s.contains("font-size:1px")
        })
    }

    fn tool_poisoning(&self, e: &Event) -> bool {
        let Ok(v) = serde_json::from_str::<Value>(&e.result) else {
            return false;
        };
        v["tools"].as_array().into_iter().flatten().any(|t| {
            let d = t["description"].as_str().unwrap_or("");
            self.poisoning.iter().any(|r| r.is_match(d))
        })
    }
}

fn ssrf(e: &Event) -> bool {
    arguments(e).iter().any(|(k, v)| {
        let v = v.trim();
        let Some((scheme, rest)) = v.split_once("://") else {
            return false;
        };
        if !matches!(*k, "url" | "uri" | "endpoint")
            && !scheme.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return false;
        }
        if matches!(
            scheme.to_ascii_lowercase().as_str(),
            "file" | "gopher" | "dict" | "ftp" | "ldap"
        ) {
            return true;
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let hostport = authority.rsplit('@').next().unwrap_or("");
        let host = if let Some(inner) = hostport.strip_prefix('[') {
            inner.split(']').next().unwrap_or("").to_string()
        } else {
            hostport
                .split(':')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        blocked_host(&host)
    })
}

fn blocked_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
}

fn blocked_host(host: &str) -> bool {
    if host == "localhost"
        || host.ends_with(".localhost")
        || host == "metadata.google.internal"
        || host.contains("169.254.169.254")
    {
        return true;
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return blocked_v4(ip);
    }
    if let Ok(ip) = host.parse::<Ipv6Addr>() {
        let first = ip.segments()[0];
        return ip.is_loopback()
            || ip.is_unspecified()
            || (first & 0xfe00) == 0xfc00
            || (first & 0xffc0) == 0xfe80;
    }
    // Integer and octal spellings of an IPv4 address.
    let number = |part: &str| -> Option<u32> {
        if let Some(hex) = part.strip_prefix("0x") {
            u32::from_str_radix(hex, 16).ok()
        } else if part.len() > 1 && part.starts_with('0') {
            u32::from_str_radix(part, 8).ok()
        } else {
            part.parse().ok()
        }
    };
    let parts: Vec<&str> = host.split('.').collect();
    let value = match parts.as_slice() {
        [one] => number(one),
        [a, b, c, d] => match (number(a), number(b), number(c), number(d)) {
            (Some(a), Some(b), Some(c), Some(d)) if a < 256 && b < 256 && c < 256 && d < 256 => {
                Some(a << 24 | b << 16 | c << 8 | d)
            }
            _ => None,
        },
        _ => None,
    };
    value.is_some_and(|v| blocked_v4(Ipv4Addr::from(v)))
}

/// The text of a value's string leaves, one per line.
fn text(v: &Value) -> String {
    let mut out = Vec::new();
    leaves(v, "", &mut out);
    out.iter().map(|(_, s)| *s).collect::<Vec<_>>().join("\n")
}

/// Whether `written` contains a run of [`MOVED_TEXT_MIN_CHARS`] characters of `read`.
fn moved(read: &str, written: &str) -> bool {
    let windows = |s: &str| -> Vec<String> {
        let chars: Vec<char> = s.chars().collect();
        chars
            .windows(MOVED_TEXT_MIN_CHARS)
            .map(|w| w.iter().collect())
            .collect()
    };
    let from: HashSet<String> = windows(read).into_iter().collect();
    windows(written).iter().any(|w| from.contains(w))
}

fn github_repo(e: &Event) -> Option<(String, String)> {
    (e.server == "github").then(|| {
        (
            e.arguments["owner"].as_str().unwrap_or("").to_string(),
            e.arguments["repo"].as_str().unwrap_or("").to_string(),
        )
    })
}

fn is_call(e: &Event) -> bool {
    e.method == "tools/call"
}
fn untrusted(e: &Event) -> bool {
    is_call(e)
        && e.annotations.effective_read_only()
        && e.annotations.effective_open_world()
        && e.outcome == Outcome::Ok
}
fn private_read(e: &Event) -> bool {
    is_call(e)
        && e.annotations.effective_read_only()
        && !e.annotations.effective_open_world()
        && e.outcome == Outcome::Ok
}
fn open_world_write(e: &Event) -> bool {
    is_call(e) && !e.annotations.effective_read_only() && e.annotations.effective_open_world()
}

/// Sliding-window counter: fires once when the count within `window` goes over `limit`,
/// and again only after it has fallen back.
#[derive(Default)]
struct Window {
    times: std::collections::VecDeque<OffsetDateTime>,
    over: bool,
}

impl Window {
    fn add(&mut self, t: OffsetDateTime, window: Duration, limit: usize) -> bool {
        self.times.push_back(t);
        while self.times.front().is_some_and(|f| t - *f >= window) {
            self.times.pop_front();
        }
        let over = self.times.len() > limit;
        let fire = over && !self.over;
        self.over = over;
        fire
    }
}

/// One conversation's toxic-flow state: the latest untrusted event, and the private reads
/// after one (untrusted id, read id, read result, GitHub repository read).
type Flow = (
    Option<String>,
    Vec<(String, String, String, Option<(String, String)>)>,
);

/// Every finding of the reference rules over a time-ordered stream.
fn evaluate(events: &[Event]) -> Vec<Finding> {
    let p = Patterns::new();
    let scrub = scrubber();
    let mut out = Vec::new();
    let mut find = |rule: &'static str, ids: Vec<String>| out.push(Finding { rule, events: ids });
    let Some(first) = events.first().map(|e| e.timestamp) else {
        return Vec::new();
    };
    let warm = first + WARM_UP;
    let mut user_tool: HashMap<(String, String, String), Window> = HashMap::new();
    let mut addr: HashMap<String, Window> = HashMap::new();
    let mut expensive: HashMap<(String, String), Window> = HashMap::new();
    let mut denied: HashMap<String, Window> = HashMap::new();
    let (mut servers, mut clients) = (HashSet::new(), HashSet::new());
    let mut pairs: HashSet<(String, String)> = HashSet::new();
    let mut tool_servers: HashMap<String, HashSet<String>> = HashMap::new();
    let mut hashes: HashMap<(String, String), String> = HashMap::new();
    let mut sessions: HashMap<String, (String, String)> = HashMap::new();
    let mut flows: HashMap<String, Flow> = HashMap::new();
    let mut sources: BTreeMap<String, Vec<(OffsetDateTime, String)>> = BTreeMap::new();
    let mut silent_reported: HashSet<(String, String)> = HashSet::new();
    for e in events {
        let id = || vec![e.event_id.clone()];
        if is_call(e) {
            if p.path_traversal(e) {
                find(rule::PATH_TRAVERSAL, id());
            }
            if p.sql_injection(e) {
                find(rule::SQL_INJECTION, id());
            }
            if p.shell_injection(e) {
                find(rule::SHELL_INJECTION, id());
            }
            if ssrf(e) {
                find(rule::SSRF, id());
            }
            let a = &e.annotations;
            if !a.effective_read_only()
                && a.effective_destructive()
                && matches!(e.consent, Consent::AutoApproved | Consent::NotRequired)
                && !matches!(e.outcome, Outcome::Denied | Outcome::ConsentDenied)
            {
                find(rule::DESTRUCTIVE_WITHOUT_CONSENT, id());
            }
        }
        if (is_call(e) || e.method == "resources/read") && p.prompt_injection(e) {
            find(rule::PROMPT_INJECTION, id());
        }
        if e.method == "tools/list" && p.tool_poisoning(e) {
            find(rule::TOOL_POISONING, id());
        }
        if !scrub.scrub(&mut e.clone()).is_empty() {
            find(rule::CREDENTIAL_EXPOSURE, id());
        }
        // Rates.
        if is_call(e)
            && user_tool
                .entry((e.user.clone(), e.server.clone(), e.tool.clone()))
                .or_default()
                .add(e.timestamp, Duration::minutes(1), BURST_LIMIT)
        {
            find(rule::BURST_USER_TOOL, id());
        }
        if !e.remote_addr.is_empty()
            && addr.entry(e.remote_addr.clone()).or_default().add(
                e.timestamp,
                Duration::minutes(1),
                BURST_LIMIT,
            )
        {
            find(rule::BURST_REMOTE_ADDR, id());
        }
        if is_call(e)
            && EXPENSIVE_TOOLS.contains(&(e.server.as_str(), e.tool.as_str()))
            && expensive
                .entry((e.user.clone(), e.tool.clone()))
                .or_default()
                .add(e.timestamp, Duration::minutes(1), EXPENSIVE_LIMIT)
        {
            find(rule::BURST_EXPENSIVE_TOOL, id());
        }
        if matches!(e.outcome, Outcome::Denied | Outcome::ConsentDenied)
            && denied.entry(e.user.clone()).or_default().add(
                e.timestamp,
                DENIED_WINDOW,
                DENIED_LIMIT - 1,
            )
        {
            find(rule::DENIED_FLOOD, id());
        }
        // Novelty and change.
        let learned = e.timestamp >= warm;
        if !e.server.is_empty() && servers.insert(e.server.clone()) && learned {
            find(rule::NEW_SERVER, id());
        }
        if !e.client.is_empty() && clients.insert(e.client.clone()) && learned {
            find(rule::NEW_CLIENT, id());
        }
        if is_call(e) {
            let pair = (e.server.clone(), e.tool.clone());
            if pairs.insert(pair.clone()) && learned {
                find(rule::NEW_TOOL, id());
                if tool_servers
                    .get(&e.tool)
                    .is_some_and(|s| s.iter().any(|s| *s != e.server))
                {
                    find(rule::TOOL_SHADOWING, id());
                }
            }
            tool_servers
                .entry(e.tool.clone())
                .or_default()
                .insert(e.server.clone());
            if !e.tool_description_hash.is_empty() {
                if let Some(old) = hashes.insert(pair, e.tool_description_hash.clone()) {
                    if old != e.tool_description_hash {
                        find(rule::TOOL_DESCRIPTION_CHANGED, id());
                    }
                }
            }
        }
        if !e.session_id.is_empty() {
            let (a, c) = sessions
                .entry(e.session_id.clone())
                .or_insert((e.remote_addr.clone(), e.client.clone()))
                .clone();
            if a != e.remote_addr && c != e.client {
                find(rule::SESSION_HIJACK, id());
            }
        }
        // Toxic flow, per conversation.
        if !e.conversation_id.is_empty() {
            let (last_untrusted, reads) = flows.entry(e.conversation_id.clone()).or_default();
            if untrusted(e) {
                *last_untrusted = Some(e.event_id.clone());
            } else if private_read(e) {
                if let Some(u) = last_untrusted.clone() {
                    reads.push((u, e.event_id.clone(), e.result.clone(), github_repo(e)));
                }
            } else if open_world_write(e) {
                let written = text(&e.arguments);
                if let Some((u, r, _, _)) = reads.iter().find(|(_, _, result, repo)| {
                    let same_place = repo.is_some() && *repo == github_repo(e);
                    !same_place && moved(result, &written)
                }) {
                    find(
                        rule::TOXIC_FLOW,
                        vec![u.clone(), r.clone(), e.event_id.clone()],
                    );
                }
            }
        }
        // Silence: a source that was steady for an hour, then quiet for longer than SILENCE.
        if !e.source.is_empty() {
            sources
                .entry(e.source.clone())
                .or_default()
                .push((e.timestamp, e.event_id.clone()));
        }
        for (name, seen) in &sources {
            let Some((last, last_id)) = seen.last() else {
                continue;
            };
            if e.timestamp - *last <= SILENCE
                || silent_reported.contains(&(name.clone(), last_id.clone()))
            {
                continue;
            }
            // Steady: an event in at least 54 of the 60 minutes before its last one.
            let minutes: HashSet<i64> = seen
                .iter()
                .map(|(t, _)| (*last - *t).whole_minutes())
                .filter(|m| *m < 60)
                .collect();
            let steady = minutes.len() >= STEADY_MINUTES;
            if steady {
                silent_reported.insert((name.clone(), last_id.clone()));
                find(rule::SOURCE_SILENT, vec![last_id.clone()]);
            }
        }
    }
    out
}

fn fired(findings: &[Finding]) -> BTreeSet<&'static str> {
    findings.iter().map(|f| f.rule).collect()
}

// ---------------------------------------------------------------------------------------
// The benign day

#[test]
fn deterministic_per_seed() {
    let a = benign_day(3, START, Duration::hours(6), 200);
    let b = benign_day(3, START, Duration::hours(6), 200);
    let c = benign_day(4, START, Duration::hours(6), 200);
    assert_eq!(
        serde_json::to_string(&a).ok(),
        serde_json::to_string(&b).ok()
    );
    assert_ne!(
        serde_json::to_string(&a).ok(),
        serde_json::to_string(&c).ok()
    );
    let x: Vec<_> = attacks(3, START)
        .into_iter()
        .flat_map(|s| s.events)
        .collect();
    let y: Vec<_> = attacks(3, START)
        .into_iter()
        .flat_map(|s| s.events)
        .collect();
    let z: Vec<_> = attacks(4, START)
        .into_iter()
        .flat_map(|s| s.events)
        .collect();
    assert_eq!(x, y);
    assert_ne!(x, z);
}

fn assert_valid(events: &[Event], from: OffsetDateTime, to: OffsetDateTime, what: &str) {
    let limits = crate::ingest::Limits {
        retention_days: 100_000,
        ..Default::default()
    };
    let mut ids = HashSet::new();
    for e in events {
        let mut copy = e.clone();
        let bytes = serde_json::to_vec(e).map(|v| v.len()).unwrap_or(0);
        if let Err(bad) = crate::ingest::validate::check(&mut copy, bytes, &limits, to) {
            panic!("{what}: event {} is invalid: {}", e.event_id, bad.reason);
        }
        assert_eq!(&copy, e, "{what}: validation changed {}", e.event_id);
        assert!(
            ids.insert(e.event_id.clone()),
            "{what}: id {} twice",
            e.event_id
        );
        assert!(
            e.timestamp >= from && e.timestamp < to,
            "{what}: {} at {} is outside {from}..{to}",
            e.event_id,
            e.timestamp
        );
        let back: Event =
            serde_json::from_slice(&serde_json::to_vec(e).unwrap_or_default()).expect("round trip");
        assert_eq!(&back, e);
    }
    assert!(
        events.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
        "{what}: not in time order"
    );
}

#[test]
fn the_day_is_valid_and_shaped_like_a_day() {
    let conversations = day(1);
    let events = events_of(&conversations);
    assert_valid(&events, START, START + DAY, "day");
    assert_eq!(events, benign_day(1, START, DAY, DAY_CONVERSATIONS));
    assert_eq!(conversations.len(), DAY_CONVERSATIONS);

    let users: HashSet<&str> = events.iter().map(|e| e.user.as_str()).collect();
    let clients: HashSet<&str> = events.iter().map(|e| e.client.as_str()).collect();
    let servers: HashSet<&str> = events.iter().map(|e| e.server.as_str()).collect();
    assert!((20..=50).contains(&users.len()), "{} users", users.len());
    assert_eq!(clients.len(), catalog::CLIENTS.len(), "{clients:?}");
    assert_eq!(servers.len(), catalog::SERVERS.len(), "{servers:?}");
    // A few heavy users, many light ones.
    let mut per_user: HashMap<&str, usize> = HashMap::new();
    for e in &events {
        *per_user.entry(e.user.as_str()).or_default() += 1;
    }
    let mut counts: Vec<usize> = per_user.values().copied().collect();
    counts.sort_unstable();
    assert!(
        counts[counts.len() - 1] > 5 * counts[counts.len() / 2],
        "{counts:?}"
    );

    // Every tool of the catalog is used, so scenarios that use one are never its first use.
    let tools: HashSet<(&str, &str)> = events
        .iter()
        .filter(|e| is_call(e))
        .map(|e| (e.server.as_str(), e.tool.as_str()))
        .collect();
    let never: Vec<String> = catalog::SERVERS
        .iter()
        .flat_map(|s| s.tools.iter().map(move |t| (s.name, t.name)))
        .filter(|k| !tools.contains(k))
        .map(|(s, t)| format!("{s}/{t}"))
        .collect();
    assert!(never.is_empty(), "never called: {never:?}");
    let shapes: HashSet<Shape> = conversations.iter().map(|c| c.shape).collect();
    assert_eq!(
        shapes.len(),
        Shape::ALL.len(),
        "missing shapes: {:?}",
        Shape::ALL
            .iter()
            .filter(|s| !shapes.contains(s))
            .collect::<Vec<_>>()
    );
    for c in &conversations {
        let calls = c.events.iter().filter(|e| e.method != "tools/list").count();
        if c.shape.is_scheduled() {
            assert!(calls >= 2, "{} has {calls} calls", c.id);
        } else {
            assert!(
                (2..=15).contains(&calls),
                "{} ({}) has {calls} calls",
                c.id,
                c.shape.name()
            );
        }
        assert!(c
            .events
            .iter()
            .all(|e| e.conversation_id == c.id && e.user == c.user && e.client == c.client));
    }
    let methods: HashSet<&str> = events.iter().map(|e| e.method.as_str()).collect();
    for m in ["tools/call", "tools/list", "resources/read", "prompts/get"] {
        assert!(methods.contains(m), "no {m}");
    }
    let outcomes: HashSet<Outcome> = events.iter().map(|e| e.outcome).collect();
    for o in [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Denied,
        Outcome::ConsentDenied,
    ] {
        assert!(outcomes.contains(&o), "no {o}");
    }
    let ok = events.iter().filter(|e| e.outcome == Outcome::Ok).count();
    assert!(
        ok * 100 / events.len() >= 95,
        "only {ok} of {} ok",
        events.len()
    );
    let avg = events.len() as f64 / conversations.len() as f64;
    assert!(
        (EVENTS_PER_CONVERSATION as f64 * 0.7..EVENTS_PER_CONVERSATION as f64 * 1.3).contains(&avg),
        "{avg:.1} events per conversation"
    );
}

#[test]
fn the_day_has_the_agent_loop_without_data_movement() {
    let conversations = day(2);
    let mut trifecta = 0;
    let (mut carried_back, mut closed_world) = (0, 0);
    for c in &conversations {
        let e = &c.events;
        let u = e.iter().position(untrusted);
        let r = u.and_then(|u| e.iter().skip(u).position(private_read).map(|r| r + u));
        let reads: Vec<&Event> = r
            .map(|r| e[r..].iter().filter(|x| private_read(x)).collect())
            .unwrap_or_default();
        let Some(r) = r else { continue };
        for w in e[r..].iter().filter(|x| open_world_write(x)) {
            let carried = reads
                .iter()
                .any(|x| x.timestamp <= w.timestamp && moved(&x.result, &text(&w.arguments)));
            if carried {
                carried_back += 1;
            } else {
                trifecta += 1;
            }
        }
        closed_world += e[r..]
            .iter()
            .filter(|w| {
                is_call(w)
                    && !w.annotations.effective_read_only()
                    && !w.annotations.effective_open_world()
            })
            .filter(|w| reads.iter().any(|x| moved(&x.result, &text(&w.arguments))))
            .count();
    }
    assert!(
        trifecta * 100 / conversations.len() >= 10,
        "{trifecta} agent loops without movement in {}",
        conversations.len()
    );
    assert!(
        carried_back > 0,
        "no copy back into the same repository after untrusted content"
    );
    assert!(closed_world > 0, "no copy to a closed-world sink");
}

#[test]
fn the_day_learns_everything_in_its_warm_up() {
    let events = events_of(&day(3));
    let mut first: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
    for e in &events {
        let mut keys = vec![
            format!("server {}", e.server),
            format!("client {}", e.client),
        ];
        if is_call(e) {
            keys.push(format!("tool {}/{}", e.server, e.tool));
        }
        for k in keys {
            first.entry(k).or_insert(e.timestamp);
        }
    }
    let late: Vec<_> = first
        .iter()
        .filter(|(_, t)| **t >= START + WARM_UP * 0.75)
        .collect();
    assert!(late.is_empty(), "first seen after the warm-up: {late:?}");
}

#[test]
fn the_day_stays_under_the_rate_limits() {
    for seed in [1, 5] {
        let events = events_of(&day(seed));
        let max_in =
            |key: &dyn Fn(&Event) -> Option<String>, window: Duration| -> (usize, String) {
                let mut groups: HashMap<String, Vec<OffsetDateTime>> = HashMap::new();
                for e in &events {
                    if let Some(k) = key(e) {
                        groups.entry(k).or_default().push(e.timestamp);
                    }
                }
                let mut best = (0, String::new());
                for (k, t) in groups {
                    let mut lo = 0;
                    for hi in 0..t.len() {
                        while t[hi] - t[lo] >= window {
                            lo += 1;
                        }
                        if hi - lo + 1 > best.0 {
                            best = (hi - lo + 1, k.clone());
                        }
                    }
                }
                best
            };
        let minute = Duration::minutes(1);
        let user_tool = max_in(
            &|e| is_call(e).then(|| format!("{} {}/{}", e.user, e.server, e.tool)),
            minute,
        );
        let address = max_in(&|e| Some(e.remote_addr.clone()), minute);
        let costly = max_in(
            &|e| {
                (is_call(e) && EXPENSIVE_TOOLS.contains(&(e.server.as_str(), e.tool.as_str())))
                    .then(|| "all".into())
            },
            minute,
        );
        let refused = max_in(
            &|e| {
                matches!(e.outcome, Outcome::Denied | Outcome::ConsentDenied)
                    .then(|| e.user.clone())
            },
            DENIED_WINDOW,
        );
        let ci = max_in(
            &|e| (e.user == catalog::CI_USER).then(|| "ci".into()),
            minute,
        );
        let user = max_in(&|e| is_call(e).then(|| e.user.clone()), minute);
        assert!(
            user_tool.0 <= BURST_LIMIT * 6 / 10,
            "seed {seed}: {user_tool:?}"
        );
        assert!(
            address.0 <= BURST_LIMIT * 8 / 10,
            "seed {seed}: {address:?}"
        );
        assert!(
            costly.0 <= EXPENSIVE_LIMIT * 7 / 10,
            "seed {seed}: {costly:?}"
        );
        assert!(refused.0 <= DENIED_LIMIT / 2, "seed {seed}: {refused:?}");
        // The rate shapes are there: a CI burst and a heavy user's busy minute.
        assert!(ci.0 >= 20, "seed {seed}: CI peaks at {ci:?}");
        assert!(user.0 >= 15, "seed {seed}: busiest user minute {user:?}");
    }
}

#[test]
fn sessions_hashes_and_consent_are_consistent() {
    let events = events_of(&day(4));
    let mut sessions: HashMap<&str, (&str, &str, &str)> = HashMap::new();
    let mut hashes: HashMap<(&str, &str), &str> = HashMap::new();
    let mut lists: HashMap<&str, &str> = HashMap::new();
    for e in &events {
        if catalog::client_has_sessions(&e.client) {
            assert!(!e.session_id.is_empty(), "{} has no session", e.event_id);
            let first =
                *sessions
                    .entry(&e.session_id)
                    .or_insert((&e.user, &e.client, &e.remote_addr));
            assert_eq!(
                first,
                (e.user.as_str(), e.client.as_str(), e.remote_addr.as_str()),
                "session {} changed",
                e.session_id
            );
        } else {
            assert!(
                e.session_id.is_empty(),
                "{} of {} has a session",
                e.event_id,
                e.client
            );
        }
        assert_eq!(e.trace_id.len(), 32);
        assert_eq!(e.span_id.len(), 16);
        if is_call(e) {
            assert!(!e.tool_description_hash.is_empty());
            let h = *hashes
                .entry((&e.server, &e.tool))
                .or_insert(&e.tool_description_hash);
            assert_eq!(
                h, e.tool_description_hash,
                "hash of {}/{} changed",
                e.server, e.tool
            );
            let a = e.annotations;
            let destructive = !a.effective_read_only() && a.effective_destructive();
            if destructive {
                assert!(
                    matches!(
                        e.consent,
                        Consent::AllowedOnce | Consent::AllowedAlways | Consent::Denied
                    ),
                    "{}: destructive {}/{} with {}",
                    e.event_id,
                    e.server,
                    e.tool,
                    e.consent
                );
            }
            if a.effective_read_only() {
                assert!(matches!(
                    e.consent,
                    Consent::NotRequired | Consent::AutoApproved
                ));
            }
        }
        if e.method == "tools/list" {
            let l = *lists.entry(&e.server).or_insert(&e.result);
            assert_eq!(l, e.result, "tools/list of {} changed", e.server);
        }
    }
    // Some servers report no annotations at all.
    assert!(events
        .iter()
        .any(|e| is_call(e) && e.annotations.is_empty()));
    // Every conversation of a session client uses one address.
    let mut per_conversation: HashMap<&str, &str> = HashMap::new();
    for e in &events {
        assert_eq!(
            *per_conversation
                .entry(&e.conversation_id)
                .or_insert(&e.remote_addr),
            e.remote_addr
        );
    }
}

#[test]
fn the_scrubber_finds_only_the_noted_secrets() {
    let conversations = day(1);
    let scrub = scrubber();
    let mut noted = 0;
    for c in &conversations {
        for e in &c.events {
            let found = scrub.scrub(&mut e.clone());
            let expected = c.secrets.contains(&e.event_id);
            assert_eq!(
                !found.is_empty(),
                expected,
                "{} ({}): {found:?}\n{}",
                e.event_id,
                c.shape.name(),
                e.result
            );
            noted += expected as usize;
        }
    }
    assert!(noted >= 1, "no .env read in a day");
}

#[test]
fn the_reference_rules_stay_quiet_on_the_day() {
    for seed in [1, 2, 3] {
        let conversations = day(seed);
        let secrets: HashSet<&String> = conversations.iter().flat_map(|c| &c.secrets).collect();
        let findings = evaluate(&events_of(&conversations));
        for f in &findings {
            let allowed = f.rule == rule::CREDENTIAL_EXPOSURE
                && f.events.iter().all(|id| secrets.contains(id));
            assert!(
                allowed,
                "seed {seed}: {} fired on the benign day: {:?}",
                f.rule, f.events
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios

#[test]
fn scenarios_are_well_formed() {
    let at = START + Duration::hours(10);
    let scenarios = attacks(9, at);
    let mut names = HashSet::new();
    let mut all = Vec::new();
    for s in &scenarios {
        assert!(names.insert(s.name), "{} twice", s.name);
        assert!(s.expect.len() <= 1, "{}", s.name);
        assert_eq!(s.expect.is_empty(), s.trigger.is_empty(), "{}", s.name);
        assert_eq!(
            s.expect.is_empty(),
            s.name.starts_with("near-") || s.name.starts_with("ambiguous-"),
            "{}",
            s.name
        );
        for r in s.expect.iter().chain(s.tolerate) {
            assert!(rule::ALL.contains(r), "{}: unknown rule {r}", s.name);
        }
        assert!(!s.expect.iter().any(|r| s.tolerate.contains(r)));
        assert!(s.events.len() >= 2, "{}", s.name);
        assert!(
            s.events.iter().all(|e| e.event_id.starts_with(s.name)),
            "{}",
            s.name
        );
        for t in &s.trigger {
            assert!(
                s.events.iter().any(|e| &e.event_id == t),
                "{}: trigger {t} is not an event",
                s.name
            );
        }
        assert_valid(&s.events, at, at + Duration::hours(3), s.name);
        assert!(s.length() < Duration::hours(2), "{}", s.name);
        all.extend(s.events.iter().map(|e| e.event_id.clone()));
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len());
    // Every rule has an attack, and every attack family has near misses.
    for r in rule::ALL {
        assert!(
            scenarios.iter().any(|s| s.expect == [*r]),
            "no scenario for {r}"
        );
    }
    assert!(scenarios.iter().filter(|s| s.expect.is_empty()).count() >= 15);
}

#[test]
fn each_scenario_fires_as_labelled() {
    for s in attacks(11, START + Duration::hours(9)) {
        let findings = evaluate(&s.events);
        let got = fired(&findings);
        for r in s.expect {
            assert!(
                got.contains(r),
                "{}: {r} did not fire (got {got:?})",
                s.name
            );
            let cited: HashSet<&String> = findings
                .iter()
                .filter(|f| f.rule == *r)
                .flat_map(|f| &f.events)
                .collect();
            for t in &s.trigger {
                assert!(
                    cited.contains(t),
                    "{}: {r} did not cite {t} (cited {cited:?})",
                    s.name
                );
            }
        }
        for r in &got {
            assert!(
                allowed(&s, r),
                "{}: {r} fired, neither expected nor tolerated: {findings:?}",
                s.name
            );
        }
    }
}

#[test]
fn scenarios_fire_the_same_inside_a_day_and_all_together() {
    let seed = 12;
    let scenarios = attacks(seed, START);
    let length: Duration = scenarios
        .iter()
        .map(Scenario::length)
        .max()
        .unwrap_or_default();
    // All scenarios at once, as one stream.
    let mut together: Vec<Event> = scenarios.iter().flat_map(|s| s.events.clone()).collect();
    together.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    // And inside a benign day, after its warm-up.
    let demo = demo_day(seed, START, DAY, DAY_CONVERSATIONS);
    assert_valid(&demo, START, START + DAY, "demo day");
    assert!(length < DAY);
    let conversations = benign_conversations(seed, START, DAY, DAY_CONVERSATIONS);
    let secrets: HashSet<&String> = conversations.iter().flat_map(|c| &c.secrets).collect();
    for (what, stream) in [("together", together), ("in a day", demo)] {
        let findings = evaluate(&stream);
        for s in &scenarios {
            let mine: Vec<&Finding> = findings
                .iter()
                .filter(|f| {
                    f.events
                        .iter()
                        .any(|id| id.starts_with(s.name) && id[s.name.len()..].starts_with('-'))
                })
                .collect();
            let got: BTreeSet<&str> = mine.iter().map(|f| f.rule).collect();
            for r in s.expect {
                assert!(got.contains(r), "{what}: {} did not fire {r}", s.name);
                let cited: HashSet<&String> = mine
                    .iter()
                    .filter(|f| f.rule == *r)
                    .flat_map(|f| &f.events)
                    .collect();
                assert!(
                    s.trigger.iter().all(|t| cited.contains(t)),
                    "{what}: {} {r} cited {cited:?}",
                    s.name
                );
            }
            for r in &got {
                assert!(allowed(s, r), "{what}: {} fired {r}", s.name);
            }
        }
        for f in &findings {
            let scenario = scenarios
                .iter()
                .any(|s| f.events.iter().any(|id| id.starts_with(s.name)));
            assert!(
                scenario
                    || (f.rule == rule::CREDENTIAL_EXPOSURE
                        && f.events.iter().all(|id| secrets.contains(id))),
                "{what}: {f:?}"
            );
        }
    }
}

#[test]
fn scenario_secrets_are_what_the_scrubber_removes() {
    let scrub = scrubber();
    for s in attacks(13, START) {
        let redacted: Vec<&str> = s
            .events
            .iter()
            .filter(|e| !scrub.scrub(&mut (*e).clone()).is_empty())
            .map(|e| e.event_id.as_str())
            .collect();
        let labelled = allowed(&s, rule::CREDENTIAL_EXPOSURE);
        assert_eq!(
            !redacted.is_empty(),
            labelled,
            "{}: redacted {redacted:?}",
            s.name
        );
        if s.expect.contains(&rule::CREDENTIAL_EXPOSURE) {
            assert!(
                s.trigger.iter().all(|t| redacted.contains(&t.as_str())),
                "{}",
                s.name
            );
        }
    }
}

#[test]
fn demo_sizing_is_close() {
    let wanted = 5_000;
    let events = demo_day(42, START, Duration::hours(23), conversations_for(wanted));
    let off = (events.len() as f64 - wanted as f64).abs() / wanted as f64;
    assert!(off < 0.25, "{} events for {wanted} wanted", events.len());
}

/// Prints the day's profile and the scenario table of `TRAFFIC.md`:
/// `cargo test --lib demo::tests::profile -- --ignored --nocapture`.
#[test]
#[ignore]
fn profile() {
    let c = day(1);
    let ev = events_of(&c);
    println!(
        "conversations {} events {} avg {:.2}",
        c.len(),
        ev.len(),
        ev.len() as f64 / c.len() as f64
    );
    let mut shapes: BTreeMap<&str, usize> = BTreeMap::new();
    for x in &c {
        *shapes.entry(x.shape.name()).or_default() += 1;
    }
    println!("{shapes:?}");
    let minute = |key: &dyn Fn(&Event) -> Option<String>| {
        let mut groups: HashMap<String, Vec<OffsetDateTime>> = HashMap::new();
        for e in &ev {
            if let Some(k) = key(e) {
                groups.entry(k).or_default().push(e.timestamp);
            }
        }
        let mut best = (0, String::new());
        for (k, t) in groups {
            let mut lo = 0;
            for hi in 0..t.len() {
                while t[hi] - t[lo] >= Duration::minutes(1) {
                    lo += 1;
                }
                if hi - lo + 1 > best.0 {
                    best = (hi - lo + 1, k.clone());
                }
            }
        }
        best
    };
    println!(
        "busiest minute per user: {:?}",
        minute(&|e| Some(e.user.clone()))
    );
    println!(
        "per user+tool: {:?}",
        minute(&|e| is_call(e).then(|| format!("{} {}", e.user, e.tool)))
    );
    println!(
        "per address: {:?}",
        minute(&|e| Some(e.remote_addr.clone()))
    );
    println!(
        "ci: {:?}",
        minute(&|e| (e.user == catalog::CI_USER).then(|| "ci".into()))
    );
    println!(
        "batch: {:?}",
        minute(&|e| (e.user == catalog::REPORT_USER).then(|| "report".into()))
    );
    println!(
        "expensive: {:?}",
        minute(&|e| (e.tool == "run_analysis").then(|| "all".into()))
    );
    let sc = attacks(1, START);
    println!(
        "scenarios {} events {}",
        sc.len(),
        sc.iter().map(|s| s.events.len()).sum::<usize>()
    );
    let or_dash = |rules: &[&str]| {
        if rules.is_empty() {
            "—".to_string()
        } else {
            rules.join(", ")
        }
    };
    for s in sc.iter().filter(|s| !s.expect.is_empty()) {
        let about = s.about.replace('|', "\\|");
        println!(
            "| `{}` | {} | {} | {about} |",
            s.name,
            s.expect.join(", "),
            or_dash(s.tolerate)
        );
    }
    for s in sc.iter().filter(|s| s.expect.is_empty()) {
        let about = s.about.replace('|', "\\|");
        println!("| `{}` | {} | {about} |", s.name, or_dash(s.tolerate));
    }
}
