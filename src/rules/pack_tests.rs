//! The built-in pack against generated traffic (`crate::demo`): every attack scenario fires
//! its rule and cites its trigger events, near misses stay quiet, and the false positives of a
//! benign day are counted per rule (the README's table comes from
//! `cargo test --release --lib rules::pack_tests -- --nocapture`).

use std::collections::{BTreeMap, HashSet};

use time::OffsetDateTime;

use super::{Engine, Finding};
use crate::demo::{self, Scenario};
use crate::event::{Event, StoredEvent};
use crate::scrub::{ScrubConfig, Scrubber};

/// Runs events through the scrubber and the built-in pack as the collector would.
fn run(events: &[Event]) -> Vec<Finding> {
    let scrubber = Scrubber::new(&ScrubConfig::default(), [7u8; 32]).unwrap();
    let rules =
        super::pack::builtin().unwrap_or_else(|e| panic!("the pack does not compile: {e:?}"));
    let mut engine = Engine::new(rules, super::DEFAULT_KEY_CAP);
    let mut out = Vec::new();
    for (pos, e) in events.iter().enumerate() {
        let mut e = e.clone();
        let redactions = scrubber.scrub(&mut e);
        let stored = StoredEvent {
            event: e,
            tenant: "default".into(),
            received_at: OffsetDateTime::now_utc(),
            seq: pos as u64 + 1,
            hash: String::new(),
            redactions,
        };
        out.extend(engine.evaluate(&stored, pos as u64));
    }
    out
}

fn start() -> OffsetDateTime {
    time::macros::datetime!(2026-11-02 00:00 UTC)
}

/// What went wrong with one scenario, if anything.
fn check(s: &Scenario, findings: &[Finding]) -> Vec<String> {
    let mut problems = Vec::new();
    let ids: HashSet<&str> = s.events.iter().map(|e| e.event_id.as_str()).collect();
    let mine: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.event_ids.iter().any(|id| ids.contains(id.as_str())))
        .collect();
    for rule in s.expect {
        let cited: HashSet<&str> = mine
            .iter()
            .filter(|f| f.rule == *rule)
            .flat_map(|f| f.event_ids.iter().map(String::as_str))
            .collect();
        if cited.is_empty() {
            problems.push(format!("{}: {rule} did not fire", s.name));
        }
        for t in &s.trigger {
            if !cited.contains(t.as_str()) {
                problems.push(format!("{}: {rule} does not cite trigger {t}", s.name));
            }
        }
    }
    for f in &mine {
        if !s.expect.contains(&f.rule.as_str())
            && !s.tolerate.contains(&f.rule.as_str())
            && !is_step(&f.rule)
            && !known_false_positive(s.name, &f.rule)
        {
            problems.push(format!("{}: {} fired: {}", s.name, f.rule, f.explanation));
        }
    }
    problems
}

/// A known scrubber limit, not a rule fault: prose such as "session token: send a PUT" loses
/// the word after `token:` to a `password_field` redaction, which this rule then reports.
fn known_false_positive(scenario: &str, rule: &str) -> bool {
    scenario == "near-credential-prose" && rule == demo::rule::CREDENTIAL_EXPOSURE
}

/// The building blocks of a correlation never report on their own.
fn is_step(rule: &str) -> bool {
    rule.starts_with("mcp-toxic-flow-")
}

#[test]
fn the_pack_compiles_and_every_rule_is_documented() {
    let rules = super::pack::builtin().unwrap();
    assert!(rules.len() >= 20, "{}", rules.len());
    let mut seen = HashSet::new();
    for r in &rules {
        assert!(seen.insert(r.id.clone()), "duplicate id {}", r.id);
        assert!(
            !r.title.is_empty() && !r.description.is_empty(),
            "{} lacks a title or description",
            r.id
        );
        if !is_step(&r.id) {
            assert!(
                r.tags.iter().any(|t| t.starts_with("owasp.mcp")),
                "{} has no OWASP MCP tag",
                r.id
            );
        }
    }
    for id in demo::rule::ALL {
        assert!(rules.iter().any(|r| r.id == *id), "no rule {id}");
    }
}

#[test]
fn every_scenario_alone_fires_as_labelled() {
    let mut problems = Vec::new();
    for s in demo::attacks(1, start()) {
        let findings = run(&s.events);
        problems.extend(check(&s, &findings));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn scenarios_inside_a_benign_day_fire_as_labelled_and_the_day_stays_quiet() {
    // Several seeds: each one both scores the scenarios inside a day and counts the day's
    // false positives per rule.
    let mut table: BTreeMap<String, usize> = BTreeMap::new();
    let mut events_seen = 0;
    let mut problems = Vec::new();
    for seed in [1u64, 2, 3] {
        let span = time::Duration::hours(24);
        let day = demo::benign_conversations(seed, start(), span, demo::DAY_CONVERSATIONS);
        let secrets: HashSet<String> = day.iter().flat_map(|c| c.secrets.iter().cloned()).collect();
        let mut events: Vec<Event> = day.into_iter().flat_map(|c| c.events).collect();
        events_seen += events.len();
        let mut scenarios = demo::attacks(seed, start());
        let first = start() + time::Duration::hours(8);
        for (k, s) in scenarios.iter_mut().enumerate() {
            s.shift(first - start() + time::Duration::minutes(20 * k as i64));
            events.extend(s.events.iter().cloned());
        }
        events.sort_by(|a, b| {
            a.timestamp
                .cmp(&b.timestamp)
                .then_with(|| a.event_id.cmp(&b.event_id))
        });
        let findings = run(&events);
        for s in &scenarios {
            problems.extend(
                check(s, &findings)
                    .into_iter()
                    .map(|p| format!("seed {seed}: {p}")),
            );
        }
        let scenario_ids: HashSet<&str> = scenarios
            .iter()
            .flat_map(|s| s.events.iter().map(|e| e.event_id.as_str()))
            .collect();
        for f in &findings {
            let benign = f
                .event_ids
                .iter()
                .all(|id| !scenario_ids.contains(id.as_str()));
            let true_exposure = f.rule == demo::rule::CREDENTIAL_EXPOSURE
                && f.event_ids.iter().all(|id| secrets.contains(id));
            if benign && !true_exposure && !is_step(&f.rule) {
                *table.entry(f.rule.clone()).or_default() += 1;
                if table[&f.rule] <= 3 {
                    eprintln!(
                        "benign day, seed {seed}: {} {}: {}",
                        f.rule, f.group_key, f.explanation
                    );
                }
            }
        }
    }
    eprintln!("\nfalse positives over three benign days ({events_seen} events):");
    for id in demo::rule::ALL {
        eprintln!("  {id:<36} {}", table.get(*id).copied().unwrap_or(0));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The known scrubber limit (`near-credential-prose`) is the only accepted source.
    let total: usize = table.values().sum();
    assert!(total == 0, "false positives on benign days: {table:?}");
}
