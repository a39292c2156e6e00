//! Tests of [`Indexes`] through its public API, on real day indexes in a temp folder.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::*;
use crate::event::{Annotations, Consent, Event, Outcome, Redaction, Transport};

const HOUR: time::Duration = time::Duration::hours(1);
const DAY: time::Duration = time::Duration::days(1);

fn config(dir: &Path) -> IndexConfig {
    IndexConfig {
        dir: dir.to_path_buf(),
        retention_days: 30,
        writer_memory_bytes: 15_000_000,
        writer_threads: 1,
        layout: crate::index::layout::Layout::default(),
    }
}

/// Midnight (UTC) starting today.
fn today() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_time(time::Time::MIDNIGHT)
}

fn stored(tenant: &str, id: &str, ts: OffsetDateTime, seq: u64) -> StoredEvent {
    let mut e = Event::new(id, "tools/call", "read_file");
    e.timestamp = ts;
    e.user = "bob".into();
    StoredEvent {
        event: e,
        tenant: tenant.into(),
        received_at: ts,
        seq,
        hash: format!("{seq:064x}"),
        redactions: vec![],
    }
}

/// An event with every field set, and one that differs in each.
fn rich_pair(tenant: &str) -> (StoredEvent, StoredEvent) {
    let t = today() + 10 * HOUR;
    let mut a = stored(
        tenant,
        "e1",
        t + time::Duration::nanoseconds(123_456_789),
        1,
    );
    let e = &mut a.event;
    e.source = "gw1".into();
    e.method = "tools/call".into();
    e.server = "github".into();
    e.tool = "delete_file".into();
    e.user = "alice".into();
    e.client = "claude-desktop".into();
    e.conversation_id = "conv1".into();
    e.session_id = "sess1".into();
    e.trace_id = "trace1".into();
    e.span_id = "span1".into();
    e.arguments = json!({
        "path": "/etc/passwd",
        "opts": {"recursive": true},
        "count": 5,
        "tags": ["alpha", "beta"],
    });
    e.result = "partial output before failure".into();
    e.result_bytes = 300;
    e.outcome = Outcome::Error;
    e.error = "permission denied for user".into();
    e.duration_ms = 1500;
    e.annotations = Annotations {
        read_only: None,
        destructive: None,
        idempotent: Some(true),
        open_world: Some(false),
    };
    e.consent = Consent::AllowedOnce;
    e.transport = Transport::Stdio;
    e.remote_addr = "10.0.0.1:443".into();
    e.tool_description_hash = "abc123".into();
    e.labels.insert("env".into(), "prod".into());
    e.labels.insert("k8s.io/app".into(), "web".into());
    a.redactions = vec![
        Redaction {
            kind: "github_token".into(),
            path: "arguments.token".into(),
            count: 1,
        },
        Redaction {
            kind: "github_token".into(),
            path: "result".into(),
            count: 2,
        },
    ];

    let mut b = stored(tenant, "e2", t + HOUR, 2);
    let e = &mut b.event;
    e.source = "gw2".into();
    e.method = "resources/read".into();
    e.server = "files".into();
    e.client = "cursor".into();
    e.arguments = json!({"path": "/tmp/notes.txt", "count": 7});
    e.result = "hello world".into();
    e.result_bytes = 50;
    e.duration_ms = 10;
    e.annotations = Annotations {
        read_only: Some(true),
        destructive: Some(false),
        idempotent: None,
        open_world: None,
    };
    e.consent = Consent::AutoApproved;
    e.transport = Transport::StreamableHttp;
    e.labels.insert("env".into(), "dev".into());
    (a, b)
}

fn request(tenant: &str, q: &str) -> SearchRequest {
    SearchRequest {
        tenant: tenant.into(),
        query: q.into(),
        start: today() - 3 * DAY,
        end: today() + DAY,
        limit: 100,
        cursor: None,
        event_ids: None,
        track_total: None,
        deadline: None,
    }
}

fn ids(r: &SearchResult) -> Vec<String> {
    r.hits.iter().map(|h| h.event.event_id.clone()).collect()
}

fn search_ids(ix: &Indexes, tenant: &str, q: &str) -> BTreeSet<String> {
    let r = ix
        .search(&request(tenant, q))
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(r.total as usize, r.hits.len(), "{q}");
    ids(&r).into_iter().collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_field_round_trips_and_every_query_form_matches() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let (a, b) = rich_pair("acme");
    ix.add(0, &a).unwrap();
    ix.add(1, &b).unwrap();
    ix.commit(2).unwrap();

    let r = ix.search(&request("acme", "")).unwrap();
    assert_eq!(r.total, 2);
    assert_eq!(
        r.hits,
        vec![b.clone(), a.clone()],
        "newest first, every field intact"
    );
    assert_eq!(r.next_cursor, None);

    let cases: &[(&str, &[&str])] = &[
        ("source:gw1", &["e1"]),
        ("method:tools/call", &["e1"]),
        ("method:resources/read", &["e2"]),
        ("server:github", &["e1"]),
        ("tool:delete_file", &["e1"]),
        ("tool:read_file", &["e2"]),
        ("tool:delete", &[]),
        ("tool:Delete_File", &[]),
        ("user:alice", &["e1"]),
        ("client:claude-desktop", &["e1"]),
        ("conversation_id:conv1", &["e1"]),
        ("session_id:sess1", &["e1"]),
        ("trace_id:trace1", &["e1"]),
        ("span_id:span1", &["e1"]),
        ("outcome:error", &["e1"]),
        ("outcome:ok", &["e2"]),
        ("consent:allowed_once", &["e1"]),
        ("consent:auto_approved", &["e2"]),
        ("transport:stdio", &["e1"]),
        ("transport:streamable_http", &["e2"]),
        ("event_id:e2", &["e2"]),
        ("remote_addr:10.0.0.1:443", &["e1"]),
        ("remote_addr:\"10.0.0.1:443\"", &["e1"]),
        ("tool_description_hash:abc123", &["e1"]),
        ("redaction:github_token", &["e1"]),
        ("redaction:aws_key", &[]),
        ("server:*", &["e1", "e2"]),
        ("session_id:*", &["e1"]),
        // arguments
        ("arguments.path:\"/etc/passwd\"", &["e1"]),
        ("arguments.path:passwd", &["e1"]),
        ("arguments.path:etc", &["e1"]),
        ("arguments.path:\"passwd etc\"", &[]),
        ("arguments.path:notes.txt", &["e2"]),
        ("arguments.opts.recursive:true", &["e1"]),
        ("arguments.count:5", &["e1"]),
        ("arguments.count:7", &["e2"]),
        ("arguments.tags:beta", &["e1"]),
        ("arguments.nope:passwd", &[]),
        ("arguments:passwd", &["e1"]),
        ("arguments:5", &["e1"]),
        ("arguments:7", &["e2"]),
        ("arguments:true", &["e1"]),
        ("arguments:beta", &["e1"]),
        ("arguments:tmp", &["e2"]),
        // labels
        ("labels.env:prod", &["e1"]),
        ("labels.env:dev", &["e2"]),
        ("labels.env:pro", &[]),
        ("labels.k8s.io/app:web", &["e1"]),
        // free text and phrases over arguments, result, error
        ("passwd", &["e1"]),
        ("PASSWD", &["e1"]),
        ("notes", &["e2"]),
        ("hello", &["e2"]),
        ("\"permission denied\"", &["e1"]),
        ("\"denied permission\"", &[]),
        ("\"hello world\"", &["e2"]),
        ("result:partial", &["e1"]),
        ("result:\"before failure\"", &["e1"]),
        ("error:denied", &["e1"]),
        ("error:hello", &[]),
        ("nothing_like_this", &[]),
        // boolean logic
        ("tool:delete_file AND user:alice", &["e1"]),
        ("tool:delete_file AND user:bob", &[]),
        ("tool:delete_file user:alice", &["e1"]),
        ("tool:delete_file OR tool:read_file", &["e1", "e2"]),
        ("NOT tool:delete_file", &["e2"]),
        ("-tool:delete_file", &["e2"]),
        ("tool:read_file -user:alice", &["e2"]),
        ("(tool:delete_file OR hello) AND NOT outcome:error", &["e2"]),
        ("outcome:(error OR ok)", &["e1", "e2"]),
        ("NOT (tool:delete_file OR tool:read_file)", &[]),
        ("*", &["e1", "e2"]),
        ("   ", &["e1", "e2"]),
        // ranges
        ("duration_ms:>1000", &["e1"]),
        ("duration_ms:>1500", &[]),
        ("duration_ms:>=1500", &["e1"]),
        ("duration_ms:<1500", &["e2"]),
        ("duration_ms:<=1500", &["e1", "e2"]),
        ("duration_ms:10", &["e2"]),
        ("result_bytes:[100 TO 500]", &["e1"]),
        ("result_bytes:[50 TO 300]", &["e1", "e2"]),
        ("result_bytes:{50 TO 300}", &[]),
        ("result_bytes:[* TO 100]", &["e2"]),
        ("seq:2", &["e2"]),
        ("seq:>=1", &["e1", "e2"]),
        // booleans: effective hints (absent destructive defaults to true)
        ("destructive:true", &["e1"]),
        ("destructive:false", &["e2"]),
        ("read_only:true", &["e2"]),
        ("idempotent:true", &["e1"]),
        ("open_world:true", &["e2"]),
    ];
    for (q, want) in cases {
        assert_eq!(search_ids(&ix, "acme", q), set(want), "query {q:?}");
    }

    // Time, at microsecond precision.
    let ts = a.event.timestamp;
    let rfc = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let at = ts
        .replace_nanosecond(ts.nanosecond() / 1000 * 1000)
        .unwrap();
    assert_eq!(
        search_ids(&ix, "acme", &format!("timestamp:{}", rfc(at))),
        set(&["e1"])
    );
    assert_eq!(
        search_ids(&ix, "acme", &format!("timestamp:>{}", rfc(at))),
        set(&["e2"])
    );
    assert_eq!(
        search_ids(
            &ix,
            "acme",
            &format!("timestamp:[{} TO {}]", rfc(at), rfc(at + HOUR))
        ),
        set(&["e1", "e2"])
    );
}

#[test]
fn tenants_never_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let (a, b) = rich_pair("acme");
    let (mut c, _) = rich_pair("other");
    c.event.event_id = "secret".into();
    ix.add(0, &a).unwrap();
    ix.add(1, &b).unwrap();
    ix.add(2, &c).unwrap();
    ix.commit(3).unwrap();

    assert_eq!(search_ids(&ix, "acme", ""), set(&["e1", "e2"]));
    assert_eq!(search_ids(&ix, "other", ""), set(&["secret"]));
    assert_eq!(search_ids(&ix, "nobody", ""), set(&[]));
    assert_eq!(
        search_ids(&ix, "acme", "event_id:secret OR tool:delete_file"),
        set(&["e1"])
    );
    for q in [
        "tenant:other",
        "tenant:other OR tool:x",
        "NOT tenant:acme",
        "tool:(a OR tenant:other)",
    ] {
        match ix.search(&request("acme", q)) {
            Err(IndexError::Query { reason }) => assert!(reason.contains("`tenant`"), "{reason}"),
            other => panic!("{q}: {other:?}"),
        }
    }
    assert!(ix.get("acme", "secret").unwrap().is_none());
    assert_eq!(ix.get("other", "secret").unwrap().unwrap(), c);

    let terms = |tenant: &str| {
        ix.terms(&TermsRequest {
            tenant: tenant.into(),
            field: "tool".into(),
            query: String::new(),
            start: today() - DAY,
            end: today() + DAY,
            size: 10,
        })
        .unwrap()
    };
    assert_eq!(
        terms("other"),
        vec![TermCount {
            value: "delete_file".into(),
            count: 1
        }]
    );
    let hist = ix
        .histogram(&HistogramRequest {
            tenant: "other".into(),
            query: String::new(),
            start: today(),
            end: today() + DAY,
            interval: Duration::from_secs(86_400),
        })
        .unwrap();
    assert_eq!(hist.iter().map(|b| b.count).sum::<u64>(), 1);
}

/// Events over three days, several per timestamp, committed in several batches (segments).
fn three_days(ix: &Indexes) -> Vec<StoredEvent> {
    let mut all = Vec::new();
    let mut pos = 0;
    for day in [2, 0, 1] {
        for i in 0..9i64 {
            let ts = today() - time::Duration::days(day) + time::Duration::hours(i / 3); // three events per timestamp
            let e = stored("acme", &format!("d{day}-{i}"), ts, pos + 1);
            ix.add(pos, &e).unwrap();
            all.push((pos, e));
            pos += 1;
            if pos % 5 == 0 {
                ix.commit(pos).unwrap();
            }
        }
    }
    ix.add(pos, &stored("other", "x", today(), 1)).unwrap();
    ix.commit(pos + 1).unwrap();
    all.sort_by_key(|(pos, e)| std::cmp::Reverse((e.event.timestamp, *pos)));
    all.into_iter().map(|(_, e)| e).collect()
}

#[test]
fn cursor_pages_across_days_return_every_hit_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let expected = three_days(&ix);
    assert_eq!(expected.len(), 27);

    for limit in [1, 4, 9, 26, 27, 100] {
        let mut req = request("acme", "");
        req.limit = limit;
        let mut got = Vec::new();
        loop {
            let page = ix.search(&req).unwrap();
            assert_eq!(page.total, 27, "total counts every page's matches");
            assert!(page.hits.len() <= limit);
            got.extend(page.hits);
            match page.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
            assert!(got.len() <= 27, "paging does not terminate");
        }
        assert_eq!(got, expected, "limit {limit}");
    }

    // With a query, and a range that cuts the oldest and newest day.
    let mut req = request("acme", "NOT event_id:d1-4");
    req.start = today() - 2 * DAY + HOUR;
    req.end = today() + 2 * HOUR;
    req.limit = 5;
    let want: Vec<&StoredEvent> = expected
        .iter()
        .filter(|e| {
            e.event.event_id != "d1-4"
                && e.event.timestamp >= req.start
                && e.event.timestamp < req.end
        })
        .collect();
    let mut got = Vec::new();
    loop {
        let page = ix.search(&req).unwrap();
        assert_eq!(page.total as usize, want.len());
        got.extend(page.hits);
        let Some(c) = page.next_cursor else { break };
        req.cursor = Some(c);
    }
    assert_eq!(got.iter().collect::<Vec<_>>(), want);

    // Events committed after the first page do not shift later pages.
    let mut req = request("acme", "");
    req.limit = 10;
    let first = ix.search(&req).unwrap();
    ix.add(100, &stored("acme", "late", today() + 23 * HOUR, 99))
        .unwrap();
    ix.commit(101).unwrap();
    req.cursor = first.next_cursor;
    let second = ix.search(&req).unwrap();
    assert_eq!(second.hits, expected[10..20].to_vec());
    assert_eq!(second.total, 28);
}

#[test]
fn histogram_and_terms_count_per_bucket_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    three_days(&ix);
    let hist = ix
        .histogram(&HistogramRequest {
            tenant: "acme".into(),
            query: String::new(),
            start: today() - 2 * DAY + 30 * time::Duration::MINUTE,
            end: today() + DAY,
            interval: Duration::from_secs(3600),
        })
        .unwrap();
    // Aligned to the hour: the first bucket starts before `start`, all 72 buckets returned.
    assert_eq!(hist.len(), 72);
    assert_eq!(hist[0].time, today() - 2 * DAY);
    assert_eq!(hist[0].count, 0, "events at 00:00 are before start");
    assert_eq!(hist[1].count, 3);
    assert_eq!(hist[2].count, 3);
    assert_eq!(hist[3].count, 0);
    assert_eq!(hist[24].count, 3);
    assert_eq!(hist[48].count, 3);
    assert_eq!(hist.iter().map(|b| b.count).sum::<u64>(), 24);
    let hist = ix
        .histogram(&HistogramRequest {
            tenant: "acme".into(),
            query: "event_id:d0-0 OR event_id:d2-8".into(),
            start: today() - 3 * DAY,
            end: today() + DAY,
            interval: Duration::from_secs(86_400),
        })
        .unwrap();
    assert_eq!(
        hist.iter().map(|b| b.count).collect::<Vec<_>>(),
        vec![0, 1, 0, 1]
    );

    let mut req = TermsRequest {
        tenant: "acme".into(),
        field: "tool".into(),
        query: String::new(),
        start: today() - 3 * DAY,
        end: today() + DAY,
        size: 10,
    };
    assert_eq!(
        ix.terms(&req).unwrap(),
        vec![TermCount {
            value: "read_file".into(),
            count: 27
        }]
    );
    // Several values, ties broken by value.
    let dir2 = tempfile::tempdir().unwrap();
    let ix2 = Indexes::open(config(dir2.path())).unwrap();
    for (pos, (user, kinds)) in [
        ("carol", vec!["k1"]),
        ("alice", vec!["k1", "k2"]),
        ("bob", vec![]),
        ("alice", vec!["k2", "k2"]),
        ("carol", vec![]),
        ("dave", vec![]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = stored(
            "acme",
            &format!("e{pos}"),
            today() + time::Duration::hours(pos as i64),
            pos as u64,
        );
        e.event.user = user.into();
        e.redactions = kinds
            .into_iter()
            .map(|k| Redaction {
                kind: k.into(),
                path: "result".into(),
                count: 1,
            })
            .collect();
        ix2.add(pos as u64, &e).unwrap();
        ix2.commit(pos as u64 + 1).unwrap(); // one segment each
    }
    req.field = "user".into();
    req.size = 3;
    let got = ix2.terms(&req).unwrap();
    let got: Vec<(&str, u64)> = got.iter().map(|t| (t.value.as_str(), t.count)).collect();
    assert_eq!(got, vec![("alice", 2), ("carol", 2), ("bob", 1)]);
    req.field = "redaction".into();
    let got = ix2.terms(&req).unwrap();
    let got: Vec<(&str, u64)> = got.iter().map(|t| (t.value.as_str(), t.count)).collect();
    assert_eq!(
        got,
        vec![("k1", 2), ("k2", 2)],
        "one count per event and kind"
    );
    req.field = "user".into();
    req.query = "redaction:k2".into();
    let got = ix2.terms(&req).unwrap();
    assert_eq!(
        got,
        vec![TermCount {
            value: "alice".into(),
            count: 2
        }]
    );
}

#[test]
fn bad_parameters_are_param_or_query_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    three_days(&ix);

    let mut req = request("acme", "");
    req.cursor = Some("not a cursor".into());
    assert!(matches!(
        ix.search(&req),
        Err(IndexError::Param {
            param: "cursor",
            ..
        })
    ));

    let e = ix.search(&request("acme", "usr:alice")).unwrap_err();
    assert_eq!(
        e.to_string().split(';').next().unwrap(),
        "invalid query: unknown field `usr` at position 0 (did you mean `user`?)"
    );

    let terms = TermsRequest {
        tenant: "acme".into(),
        field: "event_id".into(),
        query: String::new(),
        start: today() - DAY,
        end: today(),
        size: 5,
    };
    match ix.terms(&terms) {
        Err(IndexError::Param {
            param: "field",
            reason,
        }) => {
            assert!(reason.contains("source, method, server, tool"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let mut hist = HistogramRequest {
        tenant: "acme".into(),
        query: String::new(),
        start: today() - DAY,
        end: today(),
        interval: Duration::from_secs(1),
    };
    assert!(matches!(
        ix.histogram(&hist),
        Err(IndexError::Param {
            param: "interval",
            ..
        })
    ));
    hist.interval = Duration::ZERO;
    assert!(matches!(
        ix.histogram(&hist),
        Err(IndexError::Param {
            param: "interval",
            ..
        })
    ));
    hist.interval = Duration::from_secs(60);
    assert_eq!(ix.histogram(&hist).unwrap().len(), 1440);
    hist.query = "(".into();
    assert!(matches!(ix.histogram(&hist), Err(IndexError::Query { .. })));

    // Limits are clamped; an empty or reversed range is empty.
    let mut req = request("acme", "");
    req.limit = 0;
    assert_eq!(ix.search(&req).unwrap().hits.len(), 1);
    req.limit = usize::MAX;
    assert_eq!(ix.search(&req).unwrap().hits.len(), 27);
    req.end = req.start;
    assert_eq!(ix.search(&req).unwrap().total, 0);
}

#[test]
fn get_and_for_each_id_cover_every_day() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let all = three_days(&ix);
    for e in &all {
        assert_eq!(ix.get("acme", &e.event.event_id).unwrap().as_ref(), Some(e));
    }
    assert_eq!(ix.get("acme", "nope").unwrap(), None);

    let mut seen = Vec::new();
    ix.for_each_id(&mut |key, day| seen.push((key, day)))
        .unwrap();
    seen.sort();
    let mut want: Vec<(u128, i32)> = all
        .iter()
        .map(|e| (crate::event::id_key("acme", &e.event.event_id), e.day()))
        .chain([(crate::event::id_key("other", "x"), day_of(today()))])
        .collect();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(ix.num_docs(), 28);
}

#[test]
fn checkpoint_tells_where_to_replay_and_replay_never_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let t = today() + HOUR;
    let ev = |pos: u64, day_back: i64| {
        stored(
            "acme",
            &format!("p{pos}"),
            t - time::Duration::days(day_back),
            pos + 1,
        )
    };
    {
        let ix = Indexes::open(config(dir.path())).unwrap();
        assert_eq!(ix.checkpoint(), Checkpoint::default());
        ix.add(0, &ev(0, 0)).unwrap();
        ix.add(1, &ev(1, 1)).unwrap();
        ix.commit(2).unwrap();
        // Only yesterday gets new events: today keeps payload 2.
        ix.add(2, &ev(2, 1)).unwrap();
        ix.commit(3).unwrap();
        let cp = ix.checkpoint();
        assert_eq!(cp.wal_next, 3);
        assert_eq!(
            cp.heads["acme"],
            ChainHead {
                seq: 3,
                hash: format!("{:064x}", 3)
            }
        );
        // A commit below an added position would lose events on replay.
        assert!(matches!(
            ix.commit(2),
            Err(IndexError::Param {
                param: "wal_next",
                ..
            })
        ));
        // Uncommitted: lost with the process.
        ix.add(3, &ev(3, 0)).unwrap();
        ix.add(4, &ev(4, 1)).unwrap();
    }
    {
        let ix = Indexes::open(config(dir.path())).unwrap();
        let cp = ix.checkpoint();
        assert_eq!(cp.wal_next, 3);
        assert_eq!(cp.heads["acme"].seq, 3);
        assert_eq!(ix.num_docs(), 3);
        // Pretend the crash came after the day commits but before the checkpoint was
        // written: replay starts at 0 and must skip what each day holds.
        day::write_checkpoint(dir.path(), &Checkpoint::default()).unwrap();
    }
    {
        let ix = Indexes::open(config(dir.path())).unwrap();
        assert_eq!(ix.checkpoint().wal_next, 0);
        for (pos, back) in [(0, 0), (1, 1), (2, 1), (3, 0), (4, 1)] {
            ix.add(pos, &ev(pos, back)).unwrap();
        }
        ix.commit(5).unwrap();
        assert_eq!(ix.num_docs(), 5);
        let r = ix.search(&request("acme", "")).unwrap();
        assert_eq!(r.total, 5);
        let mut got = ids(&r);
        got.sort();
        assert_eq!(got, vec!["p0", "p1", "p2", "p3", "p4"]);
        assert_eq!(
            ix.checkpoint().heads["acme"],
            ChainHead {
                seq: 5,
                hash: format!("{:064x}", 5)
            }
        );
    }
    let ix = Indexes::open(config(dir.path())).unwrap();
    assert_eq!(ix.checkpoint().wal_next, 5);
    assert_eq!(ix.num_docs(), 5);
}

#[test]
fn retention_skips_old_events_and_drops_old_days() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.retention_days = 2;
    let ix = Indexes::open(cfg.clone()).unwrap();
    let t = today() + HOUR;
    for (pos, back) in [(0u64, 5i64), (1, 2), (2, 1), (3, 0)] {
        ix.add(
            pos,
            &stored(
                "acme",
                &format!("p{pos}"),
                t - time::Duration::days(back),
                pos + 1,
            ),
        )
        .unwrap();
    }
    ix.commit(4).unwrap();
    assert_eq!(ix.num_docs(), 3, "the event 5 days old is beyond retention");
    assert_eq!(
        ix.checkpoint().heads["acme"].seq,
        4,
        "skipped events still move the chain"
    );
    let today_day = day_of(today());
    let folders = || {
        let mut v: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(folders().len(), 4, "three days and the checkpoint");

    assert_eq!(
        ix.apply_retention(OffsetDateTime::now_utc()).unwrap(),
        Vec::<i32>::new()
    );
    let dropped = ix
        .apply_retention(OffsetDateTime::now_utc() + 2 * DAY)
        .unwrap();
    assert_eq!(dropped, vec![today_day - 2, today_day - 1]);
    assert_eq!(
        folders(),
        vec![day::folder_name(today_day), CHECKPOINT.to_string()]
    );
    assert_eq!(search_ids(&ix, "acme", ""), set(&["p3"]));
    assert_eq!(ix.num_docs(), 1);
    drop(ix);
    let ix = Indexes::open(cfg).unwrap();
    assert_eq!(search_ids(&ix, "acme", ""), set(&["p3"]));
}

const CHECKPOINT: &str = day::CHECKPOINT_FILE;

#[test]
fn searches_run_while_the_indexer_commits() {
    let dir = tempfile::tempdir().unwrap();
    let ix = std::sync::Arc::new(Indexes::open(config(dir.path())).unwrap());
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let ix = ix.clone();
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..50 {
                    let r = ix.search(&request("acme", "user:bob")).unwrap();
                    assert!(r.total >= last, "a later search never sees fewer events");
                    last = r.total;
                }
            })
        })
        .collect();
    for pos in 0..40u64 {
        ix.add(
            pos,
            &stored("acme", &format!("e{pos}"), today() + HOUR, pos + 1),
        )
        .unwrap();
        if pos % 4 == 3 {
            ix.commit(pos + 1).unwrap();
            // Visible as soon as commit returns.
            assert_eq!(ix.search(&request("acme", "")).unwrap().total, pos + 1);
        }
    }
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn indexes_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Indexes>();
}

#[test]
fn edge_queries_run_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let (a, b) = rich_pair("acme");
    ix.add(0, &a).unwrap();
    ix.add(1, &b).unwrap();
    ix.commit(2).unwrap();
    assert_eq!(
        search_ids(&ix, "acme", "duration_ms:[* TO *]"),
        set(&["e1", "e2"])
    );
    assert_eq!(search_ids(&ix, "acme", "duration_ms:[500 TO 5]"), set(&[]));
    assert_eq!(
        search_ids(&ix, "acme", "timestamp:{* TO *}"),
        set(&["e1", "e2"])
    );
    assert_eq!(search_ids(&ix, "acme", "arguments.count:1e400"), set(&[]));
    // Times tantivy cannot represent are refused by the parser, not a panic in tantivy.
    for q in [
        "timestamp:>0001-01-01T00:00:00Z",
        "timestamp:[* TO 1969-12-31T23:59:59Z]",
    ] {
        assert!(
            matches!(
                ix.search(&request("acme", q)),
                Err(IndexError::Query { .. })
            ),
            "{q}"
        );
    }
    assert!(matches!(
        ix.search(&request("acme", "arguments.a\u{0}b:5")),
        Err(IndexError::Query { .. })
    ));
    let hist = |interval| {
        ix.histogram(&HistogramRequest {
            tenant: "acme".into(),
            query: String::new(),
            start: today() - 3 * DAY,
            end: today() + DAY,
            interval,
        })
    };
    let one = hist(Duration::MAX).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].count, 2);
    assert!(matches!(
        hist(Duration::from_millis(1)),
        Err(IndexError::Param { .. })
    ));
}

#[test]
fn random_queries_never_panic_a_search() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let (a, b) = rich_pair("acme");
    ix.add(0, &a).unwrap();
    ix.add(1, &b).unwrap();
    ix.commit(2).unwrap();

    let piece = prop_oneof![
        Just("tool:"),
        Just("duration_ms:"),
        Just("timestamp:"),
        Just("arguments."),
        Just("labels."),
        Just("redaction:"),
        Just("destructive:"),
        Just("user:"),
        Just("result:"),
        Just("("),
        Just(")"),
        Just("\""),
        Just(" "),
        Just("AND "),
        Just("OR "),
        Just("NOT "),
        Just("-"),
        Just("["),
        Just("]"),
        Just("{"),
        Just("}"),
        Just(" TO "),
        Just(">="),
        Just("<"),
        Just("*"),
        Just("\\"),
        Just(":"),
        Just("\u{0}"),
        Just("2025-01-31T00:00:00Z"),
        Just("true"),
        Just("5"),
        Just("passwd"),
    ]
    .prop_map(str::to_string)
    .boxed();
    let strategy = prop_oneof![
        proptest::collection::vec(prop_oneof![piece, "[a-z0-9._/]{1,5}"], 0..16)
            .prop_map(|parts| parts.concat()),
        ".{0,40}",
    ];
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |q| {
            let _ = ix.search(&request("acme", &q));
            let _ = ix.histogram(&HistogramRequest {
                tenant: "acme".into(),
                query: q.clone(),
                start: today(),
                end: today() + DAY,
                interval: Duration::from_secs(3600),
            });
            let _ = ix.terms(&TermsRequest {
                tenant: "acme".into(),
                field: q.clone(),
                query: q,
                start: today(),
                end: today() + DAY,
                size: 3,
            });
            Ok(())
        })
        .unwrap();
}

#[test]
fn kept_histogram_counts_follow_new_segments_other_queries_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let t = today() + 3 * HOUR;
    for i in 0..10u64 {
        ix.add(
            i,
            &stored(
                "acme",
                &format!("a{i}"),
                t + time::Duration::minutes(i as i64),
                i + 1,
            ),
        )
        .unwrap();
    }
    ix.commit(10).unwrap();
    let hist = |q: &str, tenant: &str| {
        ix.histogram(&HistogramRequest {
            tenant: tenant.into(),
            query: q.into(),
            start: today(),
            end: today() + DAY,
            interval: Duration::from_secs(300),
        })
        .unwrap()
        .iter()
        .map(|b| b.count)
        .sum::<u64>()
    };
    assert_eq!(hist("", "acme"), 10);
    assert!(ix.agg_cache.len() > 0, "whole segments are kept");
    assert_eq!(hist("", "acme"), 10, "the same answer from kept counts");
    // A new segment is counted; the kept one still counts once.
    for i in 10..15u64 {
        ix.add(
            i,
            &stored(
                "acme",
                &format!("a{i}"),
                t + time::Duration::minutes(i as i64),
                i + 1,
            ),
        )
        .unwrap();
    }
    ix.commit(15).unwrap();
    assert_eq!(hist("", "acme"), 15);
    // Other queries and tenants are not answered from another's counts.
    assert_eq!(hist("event_id:a3", "acme"), 1);
    assert_eq!(hist("", "other"), 0);
    // A range that cuts the segment is counted afresh.
    let cut = ix
        .histogram(&HistogramRequest {
            tenant: "acme".into(),
            query: String::new(),
            start: t + time::Duration::minutes(5),
            end: today() + DAY,
            interval: Duration::from_secs(300),
        })
        .unwrap();
    assert_eq!(cut.iter().map(|b| b.count).sum::<u64>(), 10);
    // Terms are kept the same way, and follow new segments too.
    let users = |ix: &Indexes| {
        ix.terms(&TermsRequest {
            tenant: "acme".into(),
            query: String::new(),
            start: today(),
            end: today() + DAY,
            field: "user".into(),
            size: 10,
        })
        .unwrap()
        .iter()
        .map(|t| (t.value.clone(), t.count))
        .collect::<Vec<_>>()
    };
    assert_eq!(users(&ix), vec![("bob".to_string(), 15)]);
    assert_eq!(
        users(&ix),
        vec![("bob".to_string(), 15)],
        "from kept counts"
    );
    let mut carol = stored("acme", "c1", t, 99);
    carol.event.user = "carol".into();
    ix.add(16, &carol).unwrap();
    ix.commit(17).unwrap();
    assert_eq!(
        users(&ix),
        vec![("bob".to_string(), 15), ("carol".to_string(), 1)]
    );
    // Retention drops the day: nothing of it is counted again.
    let old = today() - 20 * DAY + HOUR;
    ix.add(17, &stored("acme", "old", old, 100)).unwrap();
    ix.commit(18).unwrap();
    let old_hist = |ix: &Indexes| {
        ix.histogram(&HistogramRequest {
            tenant: "acme".into(),
            query: String::new(),
            start: old - HOUR,
            end: old + HOUR,
            interval: Duration::from_secs(300),
        })
        .unwrap()
        .iter()
        .map(|b| b.count)
        .sum::<u64>()
    };
    assert_eq!(old_hist(&ix), 1);
    // Fifteen days on, the 20-day-old day is past the 30 days kept.
    ix.apply_retention(OffsetDateTime::now_utc() + 15 * DAY)
        .unwrap();
    assert_eq!(old_hist(&ix), 0);
}

#[test]
fn histograms_over_ranges_that_cut_segments_count_exactly_from_kept_counts() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let t0 = today() + 2 * HOUR;
    // Two segments of events spread over 3 hours, 7 minutes and some seconds apart, and one
    // other tenant's events among them.
    let mut times = Vec::new();
    for i in 0..60u64 {
        let ts = t0 + time::Duration::seconds(i as i64 * 187);
        let tenant = if i % 7 == 3 { "other" } else { "acme" };
        ix.add(i, &stored(tenant, &format!("e{i}"), ts, i + 1))
            .unwrap();
        if tenant == "acme" {
            times.push(ts);
        }
        if i == 29 {
            ix.commit(30).unwrap();
        }
    }
    ix.commit(60).unwrap();
    let interval = Duration::from_secs(600);
    let expected = |start: OffsetDateTime, end: OffsetDateTime| -> Vec<u64> {
        let iv = interval.as_micros() as i128;
        let first = (start.unix_timestamp_nanos() / 1000).div_euclid(iv) * iv;
        let n = ((end.unix_timestamp_nanos() / 1000) - first + iv - 1) / iv;
        let mut out = vec![0u64; n as usize];
        for ts in &times {
            if *ts >= start && *ts < end {
                let us = ts.unix_timestamp_nanos() / 1000;
                out[((us - first) / iv) as usize] += 1;
            }
        }
        out
    };
    let hist = |start: OffsetDateTime, end: OffsetDateTime| -> Vec<u64> {
        ix.histogram(&HistogramRequest {
            tenant: "acme".into(),
            query: String::new(),
            start,
            end,
            interval,
        })
        .unwrap()
        .iter()
        .map(|b| b.count)
        .collect()
    };
    // Ranges that cut both segments at both ends, off the bucket grid, then on it, then
    // inside one bucket; each asked twice (the second answer comes from kept counts).
    let ranges = [
        (
            t0 + time::Duration::seconds(401),
            t0 + time::Duration::seconds(7_777),
        ),
        (t0 + time::Duration::seconds(2_000), t0 + 3 * HOUR),
        (t0 - HOUR, t0 + time::Duration::seconds(5_432)),
        (
            t0 + time::Duration::seconds(3_700),
            t0 + time::Duration::seconds(3_790),
        ),
    ];
    for (start, end) in ranges {
        assert_eq!(hist(start, end), expected(start, end), "{start} .. {end}");
    }
    assert_eq!(
        ix.agg_cache.len(),
        2,
        "the segments' own counts are kept although every range cut them"
    );
    // The whole day (which holds both segments) and the cut ranges again, from kept counts.
    let day = (today(), today() + DAY);
    for (start, end) in std::iter::once(day).chain(ranges) {
        assert_eq!(hist(start, end), expected(start, end), "{start} .. {end}");
    }
    assert_eq!(ix.agg_cache.len(), 2);
    // An interval too fine to keep a segment's own counts (over 10,000 of its buckets): the
    // range is counted afresh, exactly, and nothing more is kept.
    let (start, end) = (
        t0 + time::Duration::seconds(374),
        t0 + time::Duration::seconds(2_620),
    );
    let fine = ix
        .histogram(&HistogramRequest {
            tenant: "acme".into(),
            query: String::new(),
            start,
            end,
            interval: Duration::from_millis(500),
        })
        .unwrap();
    let inside = times.iter().filter(|t| **t >= start && **t < end).count() as u64;
    assert_eq!(fine.iter().map(|b| b.count).sum::<u64>(), inside);
    assert!(inside > 5);
    assert_eq!(ix.agg_cache.len(), 2);
}

#[test]
fn terms_over_ranges_that_cut_segments_take_the_outside_off_kept_counts() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let t0 = today() + 2 * HOUR;
    let users = ["ann", "bo", "cy", "di", "ed"];
    let mut kept: Vec<(OffsetDateTime, &str)> = Vec::new();
    for i in 0..80u64 {
        let ts = t0 + time::Duration::seconds(i as i64 * 113);
        let mut e = stored("acme", &format!("e{i}"), ts, i + 1);
        // Skewed: some users only early or only late, so taking the wrong part off shows.
        let user = users[((i * i) % 7) as usize % users.len()];
        e.event.user = user.into();
        if i % 9 == 4 {
            e.tenant = "other".into();
        } else {
            kept.push((ts, user));
        }
        ix.add(i, &e).unwrap();
        if i == 39 {
            ix.commit(40).unwrap();
        }
    }
    ix.commit(80).unwrap();
    let expected = |start: OffsetDateTime, end: OffsetDateTime| -> Vec<(String, u64)> {
        let mut m = std::collections::BTreeMap::new();
        for (ts, u) in &kept {
            if *ts >= start && *ts < end {
                *m.entry(u.to_string()).or_insert(0u64) += 1;
            }
        }
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let terms = |start: OffsetDateTime, end: OffsetDateTime| -> Vec<(String, u64)> {
        ix.terms(&TermsRequest {
            tenant: "acme".into(),
            query: String::new(),
            start,
            end,
            field: "user".into(),
            size: 10,
        })
        .unwrap()
        .into_iter()
        .map(|t| (t.value, t.count))
        .collect()
    };
    let s = |secs: i64| t0 + time::Duration::seconds(secs);
    // Most of each segment inside (kept counts, the outside taken off), then most outside
    // (counted afresh), then one segment whole and the other cut.
    let ranges = [(s(300), s(8_000)), (s(2_000), s(2_600)), (s(-10), s(5_000))];
    for _ in 0..2 {
        for (start, end) in ranges {
            assert_eq!(terms(start, end), expected(start, end), "{start} .. {end}");
        }
    }
    assert_eq!(
        ix.terms_cache.len(),
        2,
        "both segments' own counts are kept although the ranges cut them"
    );
}

#[test]
fn aggregations_asked_for_lately_are_counted_on_new_segments_at_commit() {
    let dir = tempfile::tempdir().unwrap();
    let ix = Indexes::open(config(dir.path())).unwrap();
    let t0 = today() + 2 * HOUR;
    let mut pos = 0u64;
    let mut add = |n: u64, tenant: &str| {
        for _ in 0..n {
            let ts = t0 + time::Duration::seconds(pos as i64 * 61);
            ix.add(pos, &stored(tenant, &format!("e{pos}"), ts, pos + 1))
                .unwrap();
            pos += 1;
        }
        ix.commit(pos).unwrap();
    };
    add(20, "acme");
    let hist = HistogramRequest {
        tenant: "acme".into(),
        query: String::new(),
        start: today(),
        end: today() + DAY,
        interval: Duration::from_secs(300),
    };
    let terms = TermsRequest {
        tenant: "acme".into(),
        field: "user".into(),
        query: String::new(),
        start: today(),
        end: today() + DAY,
        size: 10,
    };
    ix.histogram(&hist).unwrap();
    ix.terms(&terms).unwrap();
    assert_eq!((ix.agg_cache.len(), ix.terms_cache.len()), (1, 1));
    // A commit makes a second segment: its counts are kept before anyone asks.
    add(15, "acme");
    assert_eq!(
        (ix.agg_cache.len(), ix.terms_cache.len()),
        (2, 2),
        "the new segment's histogram and terms are counted at commit"
    );
    // And the answers from them are those of counting afresh.
    let total: u64 = ix.histogram(&hist).unwrap().iter().map(|b| b.count).sum();
    assert_eq!(total, 35);
    let users: u64 = ix.terms(&terms).unwrap().iter().map(|t| t.count).sum();
    assert_eq!(users, 35);
    // Another tenant's events are counted for the aggregations of that tenant only: the
    // new segment gets kept counts for acme's requests (it holds none of acme's events).
    add(5, "other");
    assert_eq!((ix.agg_cache.len(), ix.terms_cache.len()), (3, 3));
    let total: u64 = ix.histogram(&hist).unwrap().iter().map(|b| b.count).sum();
    assert_eq!(total, 35);
}
