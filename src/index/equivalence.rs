//! The two back ends of the query language agree: for random events and random queries, the
//! events a real tantivy index returns are exactly those [`crate::query::matches`] accepts.
//!
//! Cases: `PROPTEST_CASES` (default 16); each case indexes a batch of events and runs a batch
//! of queries on it. Also checks the pieces `query/text.rs` mirrors (tokenizer, JSON paths)
//! against tantivy directly.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::*;
use crate::event::{Annotations, Consent, Event, Outcome, Redaction, Transport};
use crate::query::{self, text};

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default_cases),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Midnight (UTC) starting today, plus an hour.
fn base() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT) + time::Duration::hours(1)
}

/// Offsets from [`base`] events and queries take their times from (nanoseconds).
const TIME_OFFSETS: &[i64] = &[
    0,
    1,
    999,
    1_000,
    1_001,
    1_000_000_000,
    3_600_123_456_789,
    -86_399_999_999_000,
];

fn long(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// Words text is made of: mixed case, punctuation, unicode whose lower case changes length,
/// numbers, dates, and words around the 40-byte limit.
fn word_pool() -> Vec<String> {
    let mut v: Vec<String> = [
        "alpha",
        "Beta",
        "GAMMA",
        "passwd",
        "etc",
        "x",
        "日本語",
        "Ünïcödé",
        "straße",
        "ΣΑΣ",
        "İstanbul",
        "42",
        "3.5",
        "-7",
        "5",
        "true",
        "false",
        "2025-01-31T00:00:00Z",
        "2025-01-31T00:00:00.5+01:00",
        "don't",
        "foo-bar",
        "a.b",
        "a_b",
        "x:y",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(long('a', 39));
    v.push(long('b', 40));
    v.push(long('c', 41));
    v.push(format!("{}É", long('d', 38))); // 40 bytes
    v.push(format!("{}x", long('İ', 19))); // 39 bytes, longer once lower-cased
    v
}

fn word() -> impl Strategy<Value = String> {
    proptest::sample::select(word_pool())
}

/// A few words with separators.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (
            word(),
            proptest::sample::select(vec![" ", ", ", "-", "/", "\n", "."]),
        ),
        0..5,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(w, sep)| format!("{w}{sep}"))
            .collect::<String>()
            .trim_end()
            .to_string()
    })
}

const KEYS: &[&str] = &["path", "a", "b", "a.b", "Count", "x y", ""];
/// Keys of event arguments: also ones the index reads specially (U+0001 is its path separator,
/// a key with U+0000 is left out).
const EVENT_KEYS: &[&str] = &[
    "path", "a", "b", "a.b", "Count", "x y", "", "a\u{1}b", "x\u{0}",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::String),
        word().prop_map(Value::String),
        proptest::sample::select(vec![
            json!(0),
            json!(5),
            json!(-7),
            json!(42),
            json!(3.5),
            json!(5.0),
            json!(1e20),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(true),
            json!(false),
            Value::Null,
        ]),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(proptest::sample::select(EVENT_KEYS), inner, 0..4)
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
        ]
    })
}

fn arguments() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        6 => proptest::collection::btree_map(proptest::sample::select(EVENT_KEYS), json_value(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
    ]
}

const EXACT_VALUES: &[&str] = &[
    "read_file",
    "Read_File",
    "delete_file",
    "a b",
    "x:y",
    "",
    "日本",
    "alice",
    "10.0.0.1:443",
    "e1",
];
const LABEL_KEYS: &[&str] = &["env", "Env", "k8s.io/app", "a b"];
const LABEL_VALUES: &[&str] = &["prod", "Prod", "", "web app", "x"];
const KINDS: &[&str] = &["github_token", "aws_key", "", "GitHub_Token"];
const NUMBERS: &[u64] = &[0, 1, 5, 1000, 1500, u64::MAX];

fn exact() -> impl Strategy<Value = String> {
    proptest::sample::select(EXACT_VALUES).prop_map(str::to_string)
}

fn hint() -> impl Strategy<Value = Option<bool>> {
    proptest::option::of(any::<bool>())
}

prop_compose! {
    fn event()(
        names in proptest::collection::vec(exact(), 12),
        outcome in proptest::sample::select(vec![Outcome::Ok, Outcome::Error, Outcome::Denied, Outcome::ConsentDenied, Outcome::Timeout]),
        consent in proptest::sample::select(vec![Consent::NotRequired, Consent::AllowedOnce, Consent::Denied]),
        transport in proptest::sample::select(vec![Transport::Unknown, Transport::Stdio, Transport::Sse]),
        numbers in (proptest::sample::select(NUMBERS), proptest::sample::select(NUMBERS)),
        at in proptest::sample::select(TIME_OFFSETS),
        hints in (hint(), hint(), hint(), hint()),
        arguments in arguments(),
        result in text(),
        error in text(),
        labels in proptest::collection::btree_map(
            proptest::sample::select(LABEL_KEYS).prop_map(str::to_string),
            proptest::sample::select(LABEL_VALUES).prop_map(str::to_string),
            0..3,
        ),
        kinds in proptest::collection::vec(proptest::sample::select(KINDS), 0..3),
    ) -> StoredEvent {
        let mut e = Event::new("", "tools/call", "");
        let mut n = names.into_iter();
        for slot in [
            &mut e.source, &mut e.method, &mut e.server, &mut e.tool, &mut e.user, &mut e.client,
            &mut e.conversation_id, &mut e.session_id, &mut e.trace_id, &mut e.span_id,
            &mut e.remote_addr, &mut e.tool_description_hash,
        ] {
            *slot = n.next().unwrap_or_default();
        }
        e.error = error;
        e.outcome = outcome;
        e.consent = consent;
        e.transport = transport;
        e.duration_ms = numbers.0;
        e.result_bytes = numbers.1;
        e.timestamp = base() + time::Duration::nanoseconds(at);
        e.annotations = Annotations {
            read_only: hints.0,
            destructive: hints.1,
            idempotent: hints.2,
            open_world: hints.3,
        };
        e.arguments = arguments;
        e.result = result;
        e.labels = labels;
        StoredEvent {
            event: e,
            tenant: "acme".into(),
            received_at: base(),
            seq: 0,
            hash: String::new(),
            redactions: kinds
                .into_iter()
                .map(|k| Redaction { kind: k.into(), path: "result".into(), count: 1 })
                .collect(),
        }
    }
}

/// A value as query text: bare when the parser reads it back unchanged, else quoted.
fn quote(v: &str) -> String {
    let bare = !v.is_empty()
        && v.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | ':' | '\''))
        && !["AND", "OR", "NOT", "TO"].contains(&v)
        && v != "*";
    if bare {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

const EXACT_FIELDS: &[&str] = &[
    "source",
    "method",
    "server",
    "tool",
    "user",
    "client",
    "conversation_id",
    "session_id",
    "trace_id",
    "span_id",
    "event_id",
    "remote_addr",
    "tool_description_hash",
];

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(KEYS), 1..3).prop_map(|keys| {
        keys.iter()
            .map(|k| k.replace('.', "\\.").replace(' ', "\\ "))
            .collect::<Vec<_>>()
            .join(".")
    })
}

/// Query text for one comparison.
fn atom() -> impl Strategy<Value = String> {
    fn words() -> BoxedStrategy<String> {
        prop_oneof![
            word(),
            proptest::collection::vec(word(), 2..4).prop_map(|w| w.join(" "))
        ]
        .boxed()
    }
    prop_oneof![
        (proptest::sample::select(EXACT_FIELDS), exact())
            .prop_map(|(f, v)| format!("{f}:{}", quote(&v))),
        (proptest::sample::select(EXACT_FIELDS), Just("*")).prop_map(|(f, v)| format!("{f}:{v}")),
        proptest::sample::select(vec![
            "outcome:error",
            "outcome:ok",
            "consent:denied",
            "transport:stdio",
            "transport:unknown",
            "outcome:*",
            "redaction:*",
            "duration_ms:*",
            "timestamp:*",
        ])
        .prop_map(str::to_string),
        proptest::sample::select(KINDS).prop_map(|k| format!("redaction:{}", quote(k))),
        (
            proptest::sample::select(vec!["duration_ms", "result_bytes", "seq"]),
            proptest::sample::select(NUMBERS),
            proptest::sample::select(NUMBERS),
            0..5u8
        )
            .prop_map(|(f, a, b, form)| match form {
                0 => format!("{f}:{a}"),
                1 => format!("{f}:>{a}"),
                2 => format!("{f}:<={a}"),
                3 => format!("{f}:[{a} TO {b}]"),
                _ => format!("{f}:{{{a} TO *]"),
            }),
        (
            proptest::sample::select(TIME_OFFSETS),
            proptest::sample::select(vec![-1_000i64, -1, 0, 1, 1_000]),
            0..4u8
        )
            .prop_map(|(at, delta, form)| {
                let t = rfc3339(base() + time::Duration::nanoseconds(at + delta));
                match form {
                    0 => format!("timestamp:{t}"),
                    1 => format!("timestamp:>{t}"),
                    2 => format!("timestamp:<={t}"),
                    _ => format!("timestamp:[{t} TO *]"),
                }
            }),
        (
            proptest::sample::select(vec!["read_only", "destructive", "idempotent", "open_world"]),
            any::<bool>()
        )
            .prop_map(|(f, b)| format!("{f}:{b}")),
        (path(), words()).prop_map(|(p, v)| format!("arguments.{p}:{}", quote(&v))),
        words().prop_map(|v| format!("arguments:{}", quote(&v))),
        (
            proptest::sample::select(LABEL_KEYS),
            proptest::sample::select(LABEL_VALUES)
        )
            .prop_map(|(k, v)| format!("labels.{}:{}", k.replace(' ', "\\ "), quote(v))),
        (proptest::sample::select(vec!["result", "error"]), words())
            .prop_map(|(f, v)| format!("{f}:{}", quote(&v))),
        words().prop_map(|v| quote(&v)),
    ]
}

fn query() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|q| format!("NOT {q}")),
            inner.clone().prop_map(|q| format!("-({q})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} AND {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a} OR {b})")),
        ]
    })
}

fn config(dir: &std::path::Path) -> IndexConfig {
    IndexConfig {
        dir: dir.to_path_buf(),
        retention_days: 30,
        writer_memory_bytes: 15_000_000,
        writer_threads: 1,
        layout: crate::index::layout::Layout::default(),
    }
}

#[test]
fn the_matcher_and_the_index_return_the_same_events() {
    let strategy = (
        proptest::collection::vec(event(), 1..12),
        proptest::collection::vec(query(), 24),
    );
    let checked = std::cell::Cell::new(0usize);
    let matched = std::cell::Cell::new(0usize);
    runner(16)
        .run(&strategy, |(events, queries)| {
            let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let ix = Indexes::open(config(dir.path())).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut stored = Vec::new();
            for (i, mut ev) in events.into_iter().enumerate() {
                ev.event.event_id = format!("e{i}");
                ev.seq = i as u64 + 1;
                ev.hash = format!("{:064x}", i + 1);
                ix.add(i as u64, &ev).map_err(|e| TestCaseError::fail(e.to_string()))?;
                // What the index and the live tail see: the event read back from its record.
                let back = StoredEvent::from_record(&ev.record().map_err(TestCaseError::fail)?)
                    .map_err(TestCaseError::fail)?;
                stored.push(back);
            }
            ix.commit(stored.len() as u64).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for q in &queries {
                let parsed = query::parse(q);
                let searched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    ix.search(&SearchRequest {
                        tenant: "acme".into(),
                        query: q.clone(),
                        start: base() - time::Duration::days(3),
                        end: base() + time::Duration::days(2),
                        limit: 100,
                        cursor: None,
        event_ids: None,
        track_total: None,
        deadline: None,
                    })
                }))
                .map_err(|_| TestCaseError::fail(format!("{q}: the search panicked")))?;
                let (expr, result) = match (parsed, searched) {
                    (Ok(expr), Ok(result)) => (expr, result),
                    (Err(a), Err(IndexError::Query { reason })) => {
                        prop_assert_eq!(a.reason(), reason.as_str());
                        continue;
                    }
                    (a, b) => {
                        return Err(TestCaseError::fail(format!(
                            "{q}: parse {a:?}, search {:?}",
                            b.map(|r| r.total)
                        )))
                    }
                };
                let from_index: BTreeSet<String> =
                    result.hits.iter().map(|h| h.event.event_id.clone()).collect();
                let from_matcher: BTreeSet<String> = stored
                    .iter()
                    .filter(|e| query::matches(&expr, e))
                    .map(|e| e.event.event_id.clone())
                    .collect();
                if from_index != from_matcher {
                    let differing: Vec<String> = stored
                        .iter()
                        .filter(|e| {
                            from_index.contains(&e.event.event_id)
                                != from_matcher.contains(&e.event.event_id)
                        })
                        .map(|e| serde_json::to_string(e).unwrap_or_default())
                        .collect();
                    return Err(TestCaseError::fail(format!(
                        "query {q}\nindex {from_index:?}\nmatcher {from_matcher:?}\nexpr {expr:?}\nevents that differ:\n{}",
                        differing.join("\n")
                    )));
                }
                checked.set(checked.get() + 1);
                matched.set(matched.get() + from_index.len());
            }
            Ok(())
        })
        .unwrap();
    eprintln!(
        "{} queries agreed ({} matching events in all)",
        checked.get(),
        matched.get()
    );
}

#[test]
fn the_tokenizer_is_tantivys_default() {
    let analyzer = std::cell::RefCell::new(
        tantivy::tokenizer::TokenizerManager::default()
            .get("default")
            .expect("default tokenizer"),
    );
    let strategy = prop_oneof![text(), ".{0,80}", "[a-zA-Zİß0-9 .,'-]{0,120}"];
    runner(512)
        .run(&strategy, |s| {
            let mut theirs = Vec::new();
            let mut analyzer = analyzer.borrow_mut();
            let mut stream = analyzer.token_stream(&s);
            stream.process(&mut |t| theirs.push((t.position, t.text.clone())));
            prop_assert_eq!(text::words(&s), theirs, "{:?}", s);
            Ok(())
        })
        .unwrap();
}

#[test]
fn paths_split_as_tantivys() {
    runner(512)
        .run(&r"[a.\\ b]{0,12}", |raw| {
            prop_assert_eq!(
                text::split_path(&raw),
                tantivy::json_utils::split_json_path(&raw)
            );
            let keys = text::split_path(&raw);
            prop_assert_eq!(text::split_path(&text::join_path(&keys)), keys);
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_longest_exact_value_is_tantivys() {
    assert_eq!(text::MAX_EXACT_BYTES, tantivy::tokenizer::MAX_TOKEN_LEN);
}

#[test]
fn newest_first_pages_cursors_and_capped_totals_match_the_exhaustive_answer() {
    let strategy = (
        proptest::collection::vec(event(), 1..40),
        proptest::collection::vec(query(), 8),
        1usize..6,
        1u64..12,
        1usize..8,
    );
    runner(24)
        .run(&strategy, |(events, queries, limit, track, per_commit)| {
            let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let ix = Indexes::open(config(dir.path()))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut stored = Vec::new();
            for (i, mut ev) in events.into_iter().enumerate() {
                ev.event.event_id = format!("e{i}");
                ev.seq = i as u64 + 1;
                ev.hash = format!("{:064x}", i + 1);
                ix.add(i as u64, &ev)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                stored.push((i as u64, ev));
                // Several commits: several segments, which the search visits newest first.
                if (i + 1) % per_commit == 0 {
                    ix.commit(i as u64 + 1)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
            }
            ix.commit(stored.len() as u64)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for q in &queries {
                let Ok(expr) = query::parse(q) else { continue };
                let mut expected: Vec<(i64, u64, String)> = stored
                    .iter()
                    .filter(|(_, e)| e.tenant == "acme" && query::matches(&expr, e))
                    .map(|(pos, e)| {
                        (
                            crate::event::unix_micros(e.event.timestamp),
                            *pos,
                            e.event.event_id.clone(),
                        )
                    })
                    .collect();
                expected.sort_unstable_by_key(|e| std::cmp::Reverse((e.0, e.1)));
                let expected: Vec<String> = expected.into_iter().map(|(_, _, id)| id).collect();
                let mut got = Vec::new();
                let mut cursor = None;
                for _ in 0..100 {
                    let r = ix
                        .search(&SearchRequest {
                            tenant: "acme".into(),
                            query: q.clone(),
                            start: base() - time::Duration::days(3),
                            end: base() + time::Duration::days(2),
                            limit,
                            cursor: cursor.clone(),
                            event_ids: None,
                            track_total: Some(track),
                            deadline: None,
                        })
                        .map_err(|e| TestCaseError::fail(format!("{q}: {e}")))?;
                    let n = expected.len() as u64;
                    if r.total_exact {
                        prop_assert_eq!(r.total, n, "{}: an exact total", q);
                    } else {
                        prop_assert!(
                            r.total == track && n >= track,
                            "{}: total {} (lower bound) of {} matching, threshold {}",
                            q,
                            r.total,
                            n,
                            track
                        );
                    }
                    got.extend(r.hits.iter().map(|h| h.event.event_id.clone()));
                    match r.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                prop_assert_eq!(&got, &expected, "{}: pages of {}", q, limit);
            }
            Ok(())
        })
        .unwrap();
}
