//! A benign day: conversations of the company's people, CI and scheduled jobs.
//!
//! [`benign_conversations`] plans who talks to their agent when (working hours per region,
//! a few heavy users and many light ones, CI in bursts around merges, a nightly report and
//! analysis batch), writes each conversation from a [`Shape`], and stamps it with the
//! person's client, address and MCP sessions (a `tools/list` where a session first uses a
//! server). Every server, tool and client the day uses appears within its first
//! [`super::WARM_UP`] (the planner swaps conversation times to make it so), so anything
//! "new" after the warm-up is an attack scenario's doing, never the day's.
//!
//! What the day deliberately contains, for rules to not fire on: untrusted content then a
//! private read then an open-world write with no text moved (the common agent loop); private
//! text copied to a closed-world sink, or back into the same repository it came from;
//! quotes, comments and `UNION ALL` in SQL; pipes and `$(…)` in shell; dotfile paths;
//! private hostnames; pages that say "ignore" and "system"; busy minutes, CI bursts, a
//! batch job, the occasional policy denial or declined consent. What it contains that a rule
//! must fire on: a rare `.env` read with real-looking credentials, listed in
//! [`Conversation::secrets`].

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use super::calls::{hex_id, sticky, Actor, Call, Script};
use super::catalog::{self, Person, Persona, Region, PEOPLE};
use super::content::{self as c, pick};
use crate::event::Event;

/// What a conversation does; the shapes of ordinary agent work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    /// Read a GitHub issue (untrusted), read the code (private), open a PR: no text moved.
    IssueToPullRequest,
    /// Fetch a page (untrusted), read a local file (private), post to Slack: no text moved.
    PageFileSlack,
    /// Fetch or browse a page and post a summary of it (public text only).
    PageSummary,
    /// SQL on the analytics replica, then a report file or document (private to closed-world).
    SqlReport,
    /// List and read files, dotfiles included; no writes.
    ExploreRepo,
    /// Tests, builds and git in a terminal: pipes, `&&`, `;`, `$(…)`, commits with backticks.
    ShellSession,
    /// Copy a workflow file within the same repository (private text to an open-world write
    /// into the repository it came from), sometimes after reading a docs page.
    CopyConfigInRepo,
    /// Copy a local config file to a new local file (private text to a closed-world sink),
    /// sometimes after reading a docs page.
    CopyFileLocal,
    /// Sentry (untrusted), cluster state and logs, a restart, an incident post.
    IncidentTriage,
    /// Terraform plan and apply, with a person's approval.
    InfraChange,
    /// Linear and Drive reading, then an issue or a Slack post.
    Planning,
    /// Library docs via Context7, sometimes a docs page.
    DocsLookup,
    /// Warehouse analyses (expensive, unannotated tools) and a write-up.
    Analysis,
    /// Slack history and search, a reaction or a reply.
    SlackCatchup,
    /// A heavy user's agent reading a dozen files in under a minute, then editing one.
    BusyMinute,
    /// Reads a real `.env` with live-looking credentials: a true credential exposure.
    DotenvRead,
    /// A prompt (`prompts/get`) and resources (`resources/read`) around a code review.
    PromptAndResources,
    /// The CI bot reviewing a pull request.
    CiReview,
    /// The nightly reporting job: many quick queries.
    BatchReport,
    /// The nightly analysis job: expensive runs, one after another.
    BatchAnalysis,
}

impl Shape {
    pub const ALL: &'static [Shape] = &[
        Shape::IssueToPullRequest,
        Shape::PageFileSlack,
        Shape::PageSummary,
        Shape::SqlReport,
        Shape::ExploreRepo,
        Shape::ShellSession,
        Shape::CopyConfigInRepo,
        Shape::CopyFileLocal,
        Shape::IncidentTriage,
        Shape::InfraChange,
        Shape::Planning,
        Shape::DocsLookup,
        Shape::Analysis,
        Shape::SlackCatchup,
        Shape::BusyMinute,
        Shape::DotenvRead,
        Shape::PromptAndResources,
        Shape::CiReview,
        Shape::BatchReport,
        Shape::BatchAnalysis,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::IssueToPullRequest => "issue-to-pull-request",
            Shape::PageFileSlack => "page-file-slack",
            Shape::PageSummary => "page-summary",
            Shape::SqlReport => "sql-report",
            Shape::ExploreRepo => "explore-repo",
            Shape::ShellSession => "shell-session",
            Shape::CopyConfigInRepo => "copy-config-in-repo",
            Shape::CopyFileLocal => "copy-file-local",
            Shape::IncidentTriage => "incident-triage",
            Shape::InfraChange => "infra-change",
            Shape::Planning => "planning",
            Shape::DocsLookup => "docs-lookup",
            Shape::Analysis => "analysis",
            Shape::SlackCatchup => "slack-catchup",
            Shape::BusyMinute => "busy-minute",
            Shape::DotenvRead => "dotenv-read",
            Shape::PromptAndResources => "prompt-and-resources",
            Shape::CiReview => "ci-review",
            Shape::BatchReport => "batch-report",
            Shape::BatchAnalysis => "batch-analysis",
        }
    }

    /// Scheduled and automated work, not a person talking to an agent; these may run longer
    /// than 15 calls.
    pub fn is_scheduled(self) -> bool {
        matches!(
            self,
            Shape::CiReview | Shape::BatchReport | Shape::BatchAnalysis
        )
    }
}

/// One generated conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: String,
    pub shape: Shape,
    pub user: String,
    pub client: String,
    /// In time order; `tools/list` calls of new sessions included.
    pub events: Vec<Event>,
    /// Ids of events whose result holds a real-looking credential the scrubber removes:
    /// `mcp-credential-exposure` is right to fire on these, and on nothing else of the day.
    pub secrets: Vec<String>,
}

/// Who is talking, as the shapes need it.
struct Who {
    person: Option<&'static Person>,
    first: String,
    team: &'static str,
    client: &'static str,
    windows: bool,
}

impl Who {
    fn desktop(&self) -> bool {
        catalog::client_is_desktop(self.client)
    }

    /// The team's repositories (`owner` is always `acme`).
    fn repos(&self) -> &'static [&'static str] {
        match self.team {
            "payments" => &["payments", "web"],
            "web" => &["web", "web-sdk"],
            "platform" => &["platform-infra", "payments"],
            "mobile" => &["mobile", "web-sdk"],
            "data" => &["data-pipelines", "payments"],
            _ => &["web", "payments", "platform-infra"],
        }
    }

    /// A local path in the person's checkout of `repo`.
    fn local_path(&self, repo: &str, path: &str) -> String {
        if self.windows {
            format!(
                "C:\\Users\\{}\\src\\{repo}\\{}",
                self.first,
                path.replace('/', "\\")
            )
        } else {
            format!("/Users/{}/src/{repo}/{path}", self.first)
        }
    }
}

struct Plan {
    who: Who,
    user: String,
    shape: Shape,
    start: OffsetDateTime,
    calls: Vec<Call>,
    /// Kept at its time by the warm-up coverage swaps.
    pinned: bool,
    /// Fixed address for service principals and automation.
    addr: Option<&'static str>,
}

/// The benign day's events, sorted by timestamp. See [`benign_conversations`].
pub fn benign_day(
    seed: u64,
    start: OffsetDateTime,
    span: Duration,
    conversations: usize,
) -> Vec<Event> {
    let mut events: Vec<Event> = benign_conversations(seed, start, span, conversations)
        .into_iter()
        .flat_map(|c| c.events)
        .collect();
    events.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    events
}

/// About `conversations` conversations starting within `[start, start + span)`, ordered by
/// start. Deterministic for a seed. [`super::DAY_CONVERSATIONS`] over 24 hours is a realistic
/// day for the catalog's 36 people; the rate assumptions in `TRAFFIC.md` hold up to that.
/// Event ids are `day-<seed hex>-<n>`, numbered in time order.
pub fn benign_conversations(
    seed: u64,
    start: OffsetDateTime,
    span: Duration,
    conversations: usize,
) -> Vec<Conversation> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6461_795f_7365_6564);
    let span = span.max(Duration::minutes(1));
    let mut plans = Vec::with_capacity(conversations);
    let scheduled = scheduled_work(&mut rng, start, span, conversations, &mut plans);
    for i in 0..conversations.saturating_sub(scheduled) {
        plans.push(interactive(&mut rng, start, span, i));
    }
    if span >= super::WARM_UP * 2 {
        cover_warm_up(&mut rng, &mut plans, start);
    }
    // Conversations end within the span.
    for p in &mut plans {
        let length = p
            .calls
            .iter()
            .map(|c| c.at + Duration::milliseconds(c.duration_ms as i64))
            .max()
            .unwrap_or_default();
        let latest = start + span - length - Duration::seconds(1);
        if p.start > latest {
            p.start = latest.max(start);
        }
    }
    plans.sort_by_key(|p| p.start);
    stamp_all(seed, &mut rng, plans)
}

/// Picks someone by weight.
fn person(rng: &mut StdRng) -> &'static Person {
    let total: u32 = PEOPLE.iter().map(|p| p.weight).sum();
    let mut x = rng.random_range(0..total);
    for p in PEOPLE {
        if x < p.weight {
            return p;
        }
        x -= p.weight;
    }
    &PEOPLE[0]
}

/// A time in the span when someone in `region` plausibly works.
fn working_time(
    rng: &mut StdRng,
    start: OffsetDateTime,
    span: Duration,
    region: Region,
) -> OffsetDateTime {
    let secs = span.whole_seconds().max(1);
    let mut t = start;
    for _ in 0..40 {
        t = start + Duration::seconds(rng.random_range(0..secs));
        if rng.random::<f64>() < region.activity(t.hour()) {
            break;
        }
    }
    t
}

fn interactive(rng: &mut StdRng, start: OffsetDateTime, span: Duration, i: usize) -> Plan {
    let p = person(rng);
    let client = if rng.random_bool(0.78) {
        p.clients[0]
    } else {
        *pick(rng, p.clients)
    };
    let who = Who {
        person: Some(p),
        first: p.name.split('.').next().unwrap_or(p.name).to_string(),
        team: p.team,
        client,
        windows: p.name == "bruno.costa",
    };
    // One in 250 conversations (deterministically placed) reads a real .env.
    let shape = if i % 250 == 137 && who.desktop() {
        Shape::DotenvRead
    } else {
        choose_shape(rng, &who)
    };
    let t = working_time(rng, start, span, p.region);
    let mut crng = StdRng::seed_from_u64(rng.random());
    let calls = write(&mut crng, shape, &who);
    Plan {
        user: p.name.to_string(),
        who,
        shape,
        start: t,
        calls,
        pinned: false,
        addr: None,
    }
}

fn choose_shape(rng: &mut StdRng, who: &Who) -> Shape {
    use Shape::*;
    let persona = who.person.map(|p| p.persona).unwrap_or(Persona::Developer);
    let table: &[(Shape, u32)] = if !who.desktop() {
        // The agent runner has no local tools.
        &[
            (PageSummary, 3),
            (SqlReport, 3),
            (Planning, 3),
            (Analysis, 2),
            (SlackCatchup, 2),
            (DocsLookup, 1),
        ]
    } else {
        match persona {
            Persona::Developer => &[
                (IssueToPullRequest, 14),
                (PageFileSlack, 8),
                (ExploreRepo, 12),
                (ShellSession, 12),
                (CopyConfigInRepo, 3),
                (CopyFileLocal, 3),
                (DocsLookup, 10),
                (PageSummary, 4),
                (SlackCatchup, 4),
                (BusyMinute, 4),
                (PromptAndResources, 4),
                (SqlReport, 2),
            ],
            Persona::Sre => &[
                (IncidentTriage, 12),
                (InfraChange, 4),
                (ShellSession, 8),
                (PageFileSlack, 6),
                (ExploreRepo, 4),
                (CopyConfigInRepo, 2),
                (SlackCatchup, 4),
                (PageSummary, 3),
                (DocsLookup, 3),
            ],
            Persona::Data => &[
                (SqlReport, 14),
                (Analysis, 6),
                (PageFileSlack, 4),
                (Planning, 3),
                (SlackCatchup, 3),
                (PageSummary, 2),
            ],
            Persona::Product => &[
                (Planning, 12),
                (PageSummary, 6),
                (SlackCatchup, 6),
                (PageFileSlack, 3),
                (SqlReport, 2),
            ],
            Persona::Security => &[
                (ExploreRepo, 5),
                (PageSummary, 5),
                (IncidentTriage, 3),
                (SqlReport, 2),
                (PageFileSlack, 3),
                (DocsLookup, 2),
            ],
        }
    };
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (s, w) in table {
        if x < *w {
            return *s;
        }
        x -= w;
    }
    table[0].0
}

/// CI review bursts, the nightly report and analysis jobs. Returns how many conversations it
/// planned.
fn scheduled_work(
    rng: &mut StdRng,
    start: OffsetDateTime,
    span: Duration,
    conversations: usize,
    plans: &mut Vec<Plan>,
) -> usize {
    let bot = |user: &'static str, client: &'static str, team: &'static str| Who {
        person: None,
        first: user.to_string(),
        team,
        client,
        windows: false,
    };
    let before = plans.len();
    // CI: bursts of 3–8 reviews within a few minutes (a merge train), about 8% of conversations.
    let ci = conversations * 8 / 100;
    let mut planned = 0;
    let mut burst = 0;
    while planned < ci {
        let at = if burst == 0 {
            start + Duration::minutes(rng.random_range(3..15).min(span.whole_minutes().max(1)))
        } else {
            let region = if rng.random_bool(0.5) {
                Region::Eu
            } else {
                Region::Us
            };
            working_time(rng, start, span, region)
        };
        let runs = rng.random_range(3..=8).min(ci - planned);
        for k in 0..runs {
            let mut crng = StdRng::seed_from_u64(rng.random());
            let who = bot(catalog::CI_USER, catalog::CI_CLIENT, "");
            let calls = write(&mut crng, Shape::CiReview, &who);
            plans.push(Plan {
                who,
                user: catalog::CI_USER.into(),
                shape: Shape::CiReview,
                start: at + Duration::seconds(k as i64 * rng.random_range(20..50)),
                calls,
                pinned: true,
                addr: Some(catalog::CI_ADDR),
            });
        }
        planned += runs;
        burst += 1;
    }
    // Nightly jobs at 02:00 UTC when the span has one, otherwise early in the span.
    let night = {
        let day_start = start.replace_time(time::Time::MIDNIGHT);
        let mut t = day_start + Duration::hours(2);
        if t < start {
            t += Duration::days(1);
        }
        if t + Duration::minutes(30) > start + span {
            start + span / 10
        } else {
            t
        }
    };
    let reports = (conversations / 100).max(1);
    let mut t = night;
    for _ in 0..reports {
        let mut crng = StdRng::seed_from_u64(rng.random());
        let who = bot(catalog::REPORT_USER, catalog::RUNNER_CLIENT, "data");
        let calls = write(&mut crng, Shape::BatchReport, &who);
        let length = calls.last().map(|c| c.at).unwrap_or_default();
        plans.push(Plan {
            who,
            user: catalog::REPORT_USER.into(),
            shape: Shape::BatchReport,
            start: t,
            calls,
            pinned: true,
            addr: Some("10.40.3.9"),
        });
        t += length + Duration::seconds(rng.random_range(2..6));
    }
    let analyses = (conversations / 250).max(1);
    let mut t = night + Duration::minutes(5);
    for _ in 0..analyses {
        let mut crng = StdRng::seed_from_u64(rng.random());
        let who = bot(catalog::ANALYTICS_USER, catalog::RUNNER_CLIENT, "data");
        let calls = write(&mut crng, Shape::BatchAnalysis, &who);
        let length = calls
            .last()
            .map(|c| c.at + Duration::milliseconds(c.duration_ms as i64))
            .unwrap_or_default();
        plans.push(Plan {
            who,
            user: catalog::ANALYTICS_USER.into(),
            shape: Shape::BatchAnalysis,
            start: t,
            calls,
            pinned: true,
            addr: Some("10.40.3.9"),
        });
        t += length + Duration::seconds(rng.random_range(5..20));
    }
    plans.len() - before
}

/// Moves conversations so that every server, tool and client of the day is seen within the
/// first three quarters of the warm-up: the earliest conversation using a key first seen
/// later trades its start with an early conversation that is not the first to use any key,
/// or, when there is none, moves into the warm-up by itself.
fn cover_warm_up(rng: &mut StdRng, plans: &mut [Plan], start: OffsetDateTime) {
    let horizon: OffsetDateTime = start + super::WARM_UP * 0.75;
    // Each key a conversation uses, with the offset of its first use.
    let keys = |p: &Plan| -> Vec<(String, Duration)> {
        let mut k = vec![(format!("client:{}", p.who.client), Duration::ZERO)];
        for c in &p.calls {
            k.push((format!("server:{}", c.server), c.at));
            if c.method == "tools/call" {
                k.push((format!("tool:{}/{}", c.server, c.tool), c.at));
            }
        }
        k
    };
    // Bounded: each round pins one more conversation.
    for _ in 0..plans.len() {
        let mut first: std::collections::BTreeMap<String, (OffsetDateTime, usize, Duration)> =
            Default::default();
        for (i, p) in plans.iter().enumerate() {
            for (k, offset) in keys(p) {
                let t = p.start + offset;
                let e = first.entry(k).or_insert((t, i, offset));
                if t < e.0 {
                    *e = (t, i, offset);
                }
            }
        }
        let Some((key, &(_, mut late, mut offset))) =
            first.iter().find(|(_, (t, _, _))| *t >= horizon)
        else {
            return;
        };
        // Prefer moving someone's conversation over moving a scheduled job.
        if plans[late].shape.is_scheduled() {
            let other = (0..plans.len())
                .filter(|&i| !plans[i].shape.is_scheduled())
                .filter_map(|i| {
                    keys(&plans[i])
                        .into_iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, o)| (plans[i].start + o, i, o))
                })
                .min();
            if let Some((_, i, o)) = other {
                late = i;
                offset = o;
            }
        }
        let latest_start = horizon - offset - Duration::minutes(1);
        let carriers: std::collections::HashSet<usize> = first
            .values()
            .filter(|(t, _, _)| *t < horizon)
            .map(|(_, i, _)| *i)
            .collect();
        let movable: Vec<usize> = (0..plans.len())
            .filter(|&i| {
                plans[i].start < latest_start
                    && !plans[i].pinned
                    && !carriers.contains(&i)
                    && i != late
            })
            .collect();
        plans[late].pinned = true;
        if movable.is_empty() || latest_start <= start {
            let room = (latest_start - start).whole_seconds().max(2);
            plans[late].start = start + Duration::seconds(rng.random_range(1..room));
            continue;
        }
        let early = movable[rng.random_range(0..movable.len())];
        let (a, b) = (plans[late].start, plans[early].start);
        plans[late].start = b;
        plans[early].start = a;
    }
}

/// An address for a person in one half of a UTC day: office network in their region, or the
/// VPN from home.
fn address(user: &str, t: OffsetDateTime, region: Region) -> String {
    let half = format!("{user}/{}/{}", t.ordinal(), t.hour() / 12);
    let host = sticky(&half, 250) + 2;
    let subnet = sticky(user, 200) + 10;
    if sticky(&format!("{half}/vpn"), 3) == 0 {
        format!("100.64.{subnet}.{host}")
    } else {
        let site = match region {
            Region::Eu => 20,
            Region::Us => 21,
            Region::Apac => 22,
        };
        format!("10.{site}.{subnet}.{host}")
    }
}

/// Turns planned conversations into events, in start order: sessions, `tools/list`, ids.
fn stamp_all(seed: u64, rng: &mut StdRng, plans: Vec<Plan>) -> Vec<Conversation> {
    let mut listed = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(plans.len());
    for plan in plans {
        let region = plan.who.person.map(|p| p.region).unwrap_or(Region::Eu);
        let has_sessions = catalog::client_has_sessions(plan.who.client);
        // A client run lasts a 4-hour block of the day; its sessions (one per server) with it.
        let session = if has_sessions {
            format!(
                "{}/{}/{}/{}",
                plan.user,
                plan.who.client,
                plan.start.ordinal(),
                plan.start.hour() / 4
            )
        } else {
            String::new()
        };
        let gateway = if plan.who.client == catalog::CI_CLIENT {
            catalog::CI_GATEWAY.to_string()
        } else {
            let key = if has_sessions {
                session.clone()
            } else {
                plan.user.clone()
            };
            catalog::GATEWAYS[sticky(&key, 2) as usize].to_string()
        };
        let actor = Actor {
            user: plan.user.clone(),
            client: plan.who.client.to_string(),
            remote_addr: match plan.addr {
                Some(a) => a.to_string(),
                None if has_sessions => address(&plan.user, plan.start, region),
                None => catalog::RUNNER_ADDR.to_string(),
            },
            session: session.clone(),
            gateway,
            team: plan.who.team.to_string(),
        };
        // Sessions list the tools of each server they first use; clients without sessions
        // list them at the start of every task.
        let mut calls: Vec<Call> = Vec::with_capacity(plan.calls.len() + 4);
        let mut this_conversation = std::collections::HashSet::new();
        for call in plan.calls {
            let key = if has_sessions {
                format!("{session}\0{}", call.server)
            } else {
                call.server.clone()
            };
            let fresh = if has_sessions {
                listed.insert(key)
            } else {
                this_conversation.insert(key)
            };
            if fresh && catalog::SERVERS.iter().any(|s| s.name == call.server) {
                let mut list = Call::tools_list(&call.server);
                list.at = (call.at - Duration::milliseconds(rng.random_range(150..900)))
                    .max(Duration::ZERO);
                list.duration_ms = rng.random_range(8..140);
                calls.push(list);
            }
            calls.push(call);
        }
        let conversation_id = format!("conv-{}", hex_id(rng, 20));
        let trace_id = hex_id(rng, 32);
        let mut events = Vec::with_capacity(calls.len());
        let mut secrets = Vec::new();
        for call in &calls {
            let e = actor.stamp(
                call,
                plan.start,
                String::new(),
                &conversation_id,
                &trace_id,
                hex_id(rng, 16),
            );
            if call.secret {
                secrets.push(events.len());
            }
            events.push(e);
        }
        out.push((
            plan.shape,
            plan.user,
            plan.who.client.to_string(),
            conversation_id,
            events,
            secrets,
        ));
    }
    // Ids in time order over the whole day.
    let mut order: Vec<(OffsetDateTime, usize, usize)> = out
        .iter()
        .enumerate()
        .flat_map(|(i, c)| {
            c.4.iter()
                .enumerate()
                .map(move |(j, e)| (e.timestamp, i, j))
        })
        .collect();
    order.sort();
    for (n, (_, i, j)) in order.into_iter().enumerate() {
        out[i].4[j].event_id = format!("day-{seed:x}-{n:06}");
    }
    out.into_iter()
        .map(|(shape, user, client, id, mut events, secrets)| {
            let secrets = secrets
                .iter()
                .map(|&k| events[k].event_id.clone())
                .collect();
            events.sort_by(|a, b| {
                a.timestamp
                    .cmp(&b.timestamp)
                    .then_with(|| a.event_id.cmp(&b.event_id))
            });
            Conversation {
                id,
                shape,
                user,
                client,
                events,
                secrets,
            }
        })
        .collect()
}

fn gh(repo: &str, more: Value) -> Value {
    let mut v = json!({"owner": "acme", "repo": repo});
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), more) {
        obj.extend(extra);
    }
    v
}

fn files_of<'a>(rng: &mut StdRng, repos: &[&str], n: usize) -> Vec<&'a c::RepoFile> {
    let mut own: Vec<&c::RepoFile> = c::REPO_FILES
        .iter()
        .filter(|f| repos.contains(&f.repo))
        .collect();
    if own.is_empty() {
        own = c::REPO_FILES.iter().collect();
    }
    (0..n).map(|_| *pick(rng, &own)).collect()
}

/// A Slack summary of the work, in the person's words (nothing copied from what was read).
fn slack_note(rng: &mut StdRng) -> String {
    let lead = *pick(rng, &["FYI", "Quick update", "Heads up", "Summary", "Done"]);
    format!("{lead}: {}", pick(rng, c::CHANGE_SUMMARIES))
}

/// Writes one conversation of `shape` for `who`.
fn write(rng: &mut StdRng, shape: Shape, who: &Who) -> Vec<Call> {
    let mut s = Script::new(rng);
    match shape {
        Shape::IssueToPullRequest => {
            let (repo, number, _, body) = *pick(s.rng, c::ISSUES);
            let repo = if who.repos().contains(&repo) || s.rng.random_bool(0.4) {
                repo
            } else {
                who.repos()[0]
            };
            if s.rng.random_bool(0.3) {
                s.call(
                    "github",
                    "list_issues",
                    gh(
                        repo,
                        json!({"state": "open", "labels": ["bug"], "per_page": 20}),
                    ),
                    json!([{"number": number, "title": "see body"}]).to_string(),
                );
            }
            s.call(
                "github",
                "get_issue",
                gh(repo, json!({"issue_number": number})),
                json!({"number": number, "state": "open", "body": body}).to_string(),
            );
            if s.rng.random_bool(0.3) {
                s.call("github", "search_code", json!({"query": format!("retryPolicy repo:acme/{repo}")}), "{\"total_count\":2,\"items\":[{\"path\":\"src/billing/client.ts\"},{\"path\":\"src/billing/client.test.ts\"}]}");
            }
            let n = s.rng.random_range(2..=4);
            for f in files_of(s.rng, &[repo], n) {
                s.call(
                    "github",
                    "get_file_contents",
                    gh(f.repo, json!({"path": f.path})),
                    f.content,
                );
            }
            if who.desktop() && s.rng.random_bool(0.6) {
                let (cmd, out) = *pick(s.rng, c::COMMANDS);
                s.call("terminal", "run_command", json!({"command": cmd}), out);
            }
            let f = files_of(s.rng, &[repo], 1)[0];
            if who.desktop() {
                let path = who.local_path(f.repo, f.path);
                s.call("filesystem", "edit_file", json!({"path": path, "edits": [{"oldText": "retries: 5", "newText": "retries: 3"}]}), "```diff\n-retries: 5\n+retries: 3\n```");
                let msg = *pick(s.rng, c::COMMIT_MESSAGES);
                s.call(
                    "git",
                    "git_commit",
                    json!({"repo_path": who.local_path(f.repo, ""), "message": msg}),
                    "[fix/retries 4be1d2a] committed",
                );
            }
            let summary = *pick(s.rng, c::CHANGE_SUMMARIES);
            let n = s.rng.random_range(1240..1300);
            let draft = s.rng.random_bool(0.3);
            s.call("github", "create_pull_request", gh(repo, json!({"title": summary.split(['.', ';']).next().unwrap_or(summary), "head": format!("fix/issue-{number}"), "base": "main", "body": format!("Fixes #{number}.\n\n{summary}"), "draft": draft})), json!({"number": n, "html_url": format!("https://github.com/acme/{repo}/pull/{n}")}).to_string());
        }
        Shape::PageFileSlack => {
            let pages = if s.rng.random_bool(0.7) {
                c::PUBLIC_PAGES
            } else {
                c::INTERNAL_PAGES
            };
            let page = pick(s.rng, pages);
            s.call(
                "fetch",
                "fetch",
                json!({"url": page.url, "max_length": 8000}),
                page.text,
            );
            let f = files_of(s.rng, who.repos(), 1)[0];
            if who.desktop() {
                s.call(
                    "filesystem",
                    "read_file",
                    json!({"path": who.local_path(f.repo, f.path)}),
                    f.content,
                );
            } else {
                s.call(
                    "github",
                    "get_file_contents",
                    gh(f.repo, json!({"path": f.path})),
                    f.content,
                );
            }
            let text = slack_note(s.rng);
            let channel = *pick(s.rng, c::CHANNELS);
            s.call(
                "slack",
                "post_message",
                json!({"channel": channel, "text": text}),
                json!({"ok": true, "ts": "1732441200.004100"}).to_string(),
            );
        }
        Shape::PageSummary => {
            let page = pick(s.rng, c::PUBLIC_PAGES);
            if who.desktop() && s.rng.random_bool(0.3) {
                s.call(
                    "playwright",
                    "browser_navigate",
                    json!({"url": page.url}),
                    "Navigated",
                );
                s.call("playwright", "browser_snapshot", json!({}), c::SNAPSHOT);
                if s.rng.random_bool(0.5) {
                    s.call(
                        "playwright",
                        "browser_click",
                        json!({"element": "Docs link", "ref": "e7"}),
                        "Clicked",
                    );
                }
            } else {
                let raw = page.text.starts_with("<!DOCTYPE");
                s.call(
                    "fetch",
                    "fetch",
                    json!({"url": page.url, "raw": raw}),
                    page.text,
                );
            }
            // Quoting the public page is fine: nothing private moves.
            let first_line = page
                .text
                .lines()
                .find(|l| !l.starts_with('<') && !l.is_empty())
                .unwrap_or("");
            let channel = *pick(s.rng, c::CHANNELS);
            s.call("slack", "post_message", json!({"channel": channel, "text": format!("Worth a read: {} ({})", first_line.trim_start_matches("# "), page.url)}), json!({"ok": true}).to_string());
        }
        Shape::SqlReport => {
            if s.rng.random_bool(0.3) {
                s.call("postgres", "list_tables", json!({"schema": "public"}), "[{\"table\":\"events\",\"rows\":1840000000},{\"table\":\"payments\",\"rows\":92000000}]");
            }
            let mut rows = Vec::new();
            for _ in 0..s.rng.random_range(1..=3) {
                let (sql, result) = *pick(s.rng, c::QUERIES);
                s.call(
                    "postgres",
                    "query",
                    json!({"sql": sql, "database": "analytics"}),
                    result,
                );
                rows.push(result);
            }
            if who.person.is_some_and(|p| p.persona == Persona::Data) && s.rng.random_bool(0.15) {
                let (sql, result) = *pick(s.rng, c::STATEMENTS);
                s.call(
                    "postgres",
                    "execute",
                    json!({"sql": sql, "database": "payments"}),
                    result,
                );
            }
            let report = format!(
                "# Report\n\nGenerated by the data assistant.\n\n{}",
                rows.join("\n\n")
            );
            if who.desktop() && s.rng.random_bool(0.5) {
                if s.rng.random_bool(0.3) {
                    s.call(
                        "filesystem",
                        "create_directory",
                        json!({"path": who.local_path("reports", "")}),
                        "Successfully created directory",
                    );
                }
                s.call(
                    "filesystem",
                    "write_file",
                    json!({"path": who.local_path("reports", "weekly.md"), "content": report}),
                    "Successfully wrote to file",
                );
            } else {
                s.call("gdrive", "create_document", json!({"title": "Weekly metrics", "content": report}), json!({"file_id": "1dQ8rN", "url": "https://docs.google.com/document/d/1dQ8rN"}).to_string());
            }
            if s.rng.random_bool(0.4) {
                s.call("slack", "post_message", json!({"channel": "#data-requests", "text": "The weekly metrics report is in the shared Drive folder."}), json!({"ok": true}).to_string());
            }
        }
        Shape::ExploreRepo => {
            let repo = who.repos()[0];
            let root = who.local_path(repo, "");
            s.call("filesystem", "list_directory", json!({"path": root}), "[DIR] .github\n[FILE] .env.example\n[FILE] .gitignore\n[DIR] src\n[DIR] docs\n[FILE] README.md");
            if s.rng.random_bool(0.5) {
                s.call(
                    "filesystem",
                    "list_directory",
                    json!({"path": ".github/workflows"}),
                    "[FILE] ci.yml\n[FILE] release.yml",
                );
            }
            let n = s.rng.random_range(2..=5);
            for f in files_of(s.rng, who.repos(), n) {
                let path = if s.rng.random_bool(0.5) {
                    f.path.to_string()
                } else {
                    who.local_path(f.repo, f.path)
                };
                s.call("filesystem", "read_file", json!({"path": path}), f.content);
            }
            if s.rng.random_bool(0.2) {
                let fs = files_of(s.rng, who.repos(), 2);
                let paths: Vec<String> =
                    fs.iter().map(|f| who.local_path(f.repo, f.path)).collect();
                let joined = fs
                    .iter()
                    .map(|f| f.content)
                    .collect::<Vec<_>>()
                    .join("\n---\n");
                s.call(
                    "filesystem",
                    "read_multiple_files",
                    json!({"paths": paths}),
                    joined,
                );
            }
            if s.rng.random_bool(0.4) {
                s.call("filesystem", "search_files", json!({"path": root, "pattern": "**/*.yml", "excludePatterns": ["node_modules"]}), ".github/workflows/ci.yml\n.github/workflows/release.yml\ndeploy/helm/values.yaml");
            }
        }
        Shape::ShellSession => {
            s.think_ms = (1_000, 12_000);
            let repo = who.repos()[0];
            if s.rng.random_bool(0.3) {
                let branch = *pick(
                    s.rng,
                    &["fix/retries", "feat/refund-reasons", "chore/bump-node-22"],
                );
                s.call("git", "git_create_branch", json!({"repo_path": who.local_path(repo, ""), "branch_name": branch, "base_branch": "main"}), format!("Created branch '{branch}' from 'main'"));
            }
            if s.rng.random_bool(0.4) {
                s.call("git", "git_log", json!({"repo_path": who.local_path(repo, ""), "max_count": 10}), "commit 9f2c1ab\nAuthor: dev <dev@acme.com>\n\n    Retry 429s from the billing client\n");
            }
            s.call("git", "git_status", json!({"repo_path": who.local_path(repo, "")}), "On branch fix/retries\nChanges not staged for commit:\n  modified:   src/billing/client.ts");
            for _ in 0..s.rng.random_range(2..=6) {
                let (cmd, out) = *pick(s.rng, c::COMMANDS);
                s.call(
                    "terminal",
                    "run_command",
                    json!({"command": cmd, "cwd": who.local_path(repo, "")}),
                    out,
                );
            }
            if s.rng.random_bool(0.3) {
                let (host, cmd, out) = *pick(s.rng, &[("bastion-eu-1", "uptime", " 10:42:01 up 61 days,  3:12,  1 user,  load average: 0.08, 0.12, 0.10"), ("build-runner-3", "df -h /var/lib/docker", "Filesystem      Size  Used Avail Use% Mounted on\n/dev/nvme1n1    500G  412G   88G  83% /var/lib/docker")]);
                s.call(
                    "terminal",
                    "ssh_run",
                    json!({"host": host, "command": cmd}),
                    out,
                );
            }
            if s.rng.random_bool(0.3) {
                s.call(
                    "git",
                    "git_fetch",
                    json!({"repo_path": who.local_path(repo, ""), "remote": "origin"}),
                    "From github.com:acme/web\n   77ae0c2..9f2c1ab  main -> origin/main",
                );
            }
            s.call("git", "git_diff", json!({"repo_path": who.local_path(repo, ""), "target": "main"}), "diff --git a/src/billing/client.ts b/src/billing/client.ts\n@@ -40,7 +40,9 @@\n-  retries: 5,\n+  retries: 3,\n+  backoff: 'jittered',");
            if s.rng.random_bool(0.08) {
                s.call("github", "create_gist", json!({"public": true, "description": "wait for a port to open", "files": {"wait-for-port.sh": {"content": "#!/bin/sh\n# usage: wait-for-port.sh HOST PORT\nuntil nc -z \"$1\" \"$2\"; do sleep 1; done\n"}}}), "{\"html_url\":\"https://gist.github.com/5be0a41\"}");
            }
            if s.rng.random_bool(0.6) {
                let msg = *pick(s.rng, c::COMMIT_MESSAGES);
                s.call(
                    "git",
                    "git_commit",
                    json!({"repo_path": who.local_path(repo, ""), "message": msg}),
                    "[fix/retries 4be1d2a] committed",
                );
            }
        }
        Shape::CopyConfigInRepo => {
            if s.rng.random_bool(0.5) {
                s.call("fetch", "fetch", json!({"url": "https://docs.github.com/en/actions/using-workflows/events-that-trigger-workflows#schedule"}), "# Events that trigger workflows\n\n## schedule\n\nThe `schedule` event allows you to trigger a workflow at a scheduled time. Scheduled workflows run on the latest commit on the default branch.\n\n```yaml\non:\n  schedule:\n    - cron: '30 5 * * 1-5'\n```");
            }
            let f = &c::REPO_FILES[0];
            s.call(
                "github",
                "get_file_contents",
                gh(f.repo, json!({"path": f.path})),
                f.content,
            );
            let nightly = f.content.replace(
                "  pull_request:\n  push:\n    branches: [main]\n",
                "  schedule:\n    - cron: '0 4 * * *'\n",
            );
            s.call("github", "create_or_update_file", gh(f.repo, json!({"path": ".github/workflows/nightly.yml", "content": nightly, "message": "CI: nightly run of the test job", "branch": "ci/nightly"})), json!({"commit": {"sha": "5be0a41"}}).to_string());
            s.call("github", "create_pull_request", gh(f.repo, json!({"title": "CI: nightly test run", "head": "ci/nightly", "base": "main", "body": "Runs the test job every night at 04:00 UTC so flaky tests show up before the morning."})), json!({"number": 1301}).to_string());
        }
        Shape::CopyFileLocal => {
            if s.rng.random_bool(0.5) {
                let page = pick(s.rng, c::PUBLIC_PAGES);
                s.call("fetch", "fetch", json!({"url": page.url}), page.text);
            }
            let f = files_of(s.rng, who.repos(), 1)[0];
            let from = who.local_path(f.repo, f.path);
            s.call("filesystem", "read_file", json!({"path": from}), f.content);
            let to = format!("{from}.bak");
            s.call(
                "filesystem",
                "write_file",
                json!({"path": to, "content": f.content}),
                "Successfully wrote to file",
            );
        }
        Shape::IncidentTriage => {
            s.think_ms = (1_000, 10_000);
            let (id, event) = *pick(s.rng, c::SENTRY_EVENTS);
            s.call(
                "sentry",
                "search_issues",
                json!({"project": "payments", "query": "is:unresolved firstSeen:-1h"}),
                format!("[{{\"id\":\"{id}\"}}]"),
            );
            s.call(
                "sentry",
                "get_issue_details",
                json!({"issue_id": id}),
                event,
            );
            s.call(
                "kubernetes",
                "kubectl_get",
                json!({"resource": "pods", "namespace": "payments"}),
                c::PODS,
            );
            s.call("kubernetes", "kubectl_logs", json!({"pod": "webhook-worker-5d9c7b8f4-x2kqp", "namespace": "payments", "tail": 200}), c::LOGS);
            if s.rng.random_bool(0.3) {
                s.call("fetch", "http_request", json!({"url": "https://api.pagerduty.com/incidents?statuses[]=triggered&service_ids[]=PX7K2QD", "method": "GET"}), "{\"status\":200,\"body\":{\"incidents\":[{\"id\":\"Q2V8LAKN\",\"title\":\"webhook-worker error rate\",\"urgency\":\"high\"}]}}");
            }
            if s.rng.random_bool(0.5) {
                let page = &c::INTERNAL_PAGES[1];
                s.call("fetch", "fetch", json!({"url": page.url}), page.text);
            }
            if s.rng.random_bool(0.2) {
                let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: webhook-worker\n  namespace: payments\nspec:\n  template:\n    spec:\n      containers:\n        - name: worker\n          resources:\n            limits:\n              memory: 2Gi\n";
                s.call(
                    "kubernetes",
                    "kubectl_apply",
                    json!({"manifest": manifest, "namespace": "payments", "dry_run": "none"}),
                    "deployment.apps/webhook-worker configured",
                );
            }
            if s.rng.random_bool(0.6) {
                s.call(
                    "kubernetes",
                    "kubectl_rollout_restart",
                    json!({"deployment": "webhook-worker", "namespace": "payments"}),
                    "deployment.apps/webhook-worker restarted",
                );
            } else if s.rng.random_bool(0.3) {
                s.call("kubernetes", "kubectl_delete", json!({"resource": "pod", "name": "webhook-worker-5d9c7b8f4-x2kqp", "namespace": "payments"}), "pod \"webhook-worker-5d9c7b8f4-x2kqp\" deleted");
            }
            if s.rng.random_bool(0.3) {
                s.call("github", "create_issue", json!({"owner": "acme", "repo": "platform-infra", "title": "Raise webhook-worker memory limit", "body": "OOMKilled during today's retry storm; see the incident channel.", "labels": ["incident-follow-up"]}), "{\"number\":161}");
            }
            s.call("slack", "post_message", json!({"channel": "#incidents", "text": "webhook-worker was OOMKilled under the retry storm; restarted it and opened PLAT-318 to raise the memory limit. Error rate is back to normal."}), json!({"ok": true}).to_string());
            if s.rng.random_bool(0.5) {
                s.call(
                    "sentry",
                    "resolve_issue",
                    json!({"issue_id": id}),
                    "{\"status\":\"resolved\"}",
                );
            }
        }
        Shape::InfraChange => {
            s.think_ms = (5_000, 60_000);
            let ws = *pick(
                s.rng,
                &["prod-eu-network", "staging-eu-apps", "prod-us-dns"],
            );
            s.call("terraform", "terraform_state_list", json!({"workspace": ws}), "aws_vpc.main\naws_subnet.private[0]\naws_subnet.private[1]\naws_route53_record.api");
            s.call(
                "terraform",
                "terraform_plan",
                json!({"workspace": ws}),
                "Plan: 1 to add, 2 to change, 0 to destroy.",
            );
            s.wait(30, 400);
            let plan = format!("plan-{}", hex_id(s.rng, 8));
            s.call(
                "terraform",
                "terraform_apply",
                json!({"workspace": ws, "plan_id": plan}),
                "Apply complete! Resources: 1 added, 2 changed, 0 destroyed.",
            );
            s.call("linear", "create_comment", json!({"issue_id": "PLAT-318", "body": format!("Applied in `{ws}`; watching the dashboards for an hour.")}), "{\"success\":true}");
        }
        Shape::Planning => {
            let team = *pick(s.rng, &["ENG", "PLAT", "DATA", "MOB"]);
            s.call(
                "linear",
                "list_issues",
                json!({"team": team, "state": "In Progress", "limit": 25}),
                json!(c::LINEAR_ISSUES
                    .iter()
                    .map(|(id, t)| json!({"id": id, "title": t}))
                    .collect::<Vec<_>>())
                .to_string(),
            );
            let (id, title) = *pick(s.rng, c::LINEAR_ISSUES);
            s.call("linear", "get_issue", json!({"id": id}), json!({"id": id, "title": title, "description": "See the linked doc for context.", "comments": 3}).to_string());
            s.call(
                "gdrive",
                "search",
                json!({"query": "planning"}),
                json!(c::DOCS
                    .iter()
                    .map(|(id, t, _)| json!({"id": id, "name": t}))
                    .collect::<Vec<_>>())
                .to_string(),
            );
            let (doc, _, text) = *pick(s.rng, c::DOCS);
            s.call("gdrive", "get_file", json!({"file_id": doc}), text);
            if s.rng.random_bool(0.2) {
                let colleague = pick(s.rng, PEOPLE).name;
                s.call("gdrive", "share_file", json!({"file_id": doc, "role": "commenter", "email": format!("{colleague}@acme.com")}), "{\"shared\":true}");
            }
            if s.rng.random_bool(0.5) {
                s.call("linear", "create_issue", json!({"team": "ENG", "title": "Follow-up from planning review", "description": "Owner to be decided in Thursday's sync.", "priority": 3}), "{\"id\":\"ENG-2262\"}");
            } else {
                s.call("slack", "post_message", json!({"channel": "#eng-payments", "text": "Planning notes updated; two open questions left for Thursday."}), json!({"ok": true}).to_string());
            }
        }
        Shape::DocsLookup => {
            let (name, id, docs) = *pick(s.rng, c::LIBRARY_DOCS);
            s.call(
                "context7",
                "resolve-library-id",
                json!({"libraryName": name}),
                format!("Selected library: {id} (trust score 9.1)"),
            );
            s.call(
                "context7",
                "get-library-docs",
                json!({"context7CompatibleLibraryID": id, "tokens": 5000}),
                docs,
            );
            if s.rng.random_bool(0.4) {
                let page = pick(s.rng, c::PUBLIC_PAGES);
                s.call("fetch", "fetch", json!({"url": page.url}), page.text);
            }
        }
        Shape::Analysis => {
            s.think_ms = (5_000, 40_000);
            s.call("warehouse", "list_datasets", json!({"domain": "billing"}), "billing.charges_daily (fresh 2h)\nbilling.refunds (fresh 2h)\nproduct.events_sessionized (fresh 6h)");
            for _ in 0..s.rng.random_range(1..=2) {
                let (dataset, kind, out) = *pick(s.rng, c::ANALYSES);
                s.call(
                    "warehouse",
                    "run_analysis",
                    json!({"dataset": dataset, "kind": kind, "window": "90d"}),
                    out,
                );
            }
            if s.rng.random_bool(0.2) {
                s.call(
                    "warehouse",
                    "delete_dataset",
                    json!({"dataset": format!("scratch.{}_cohorts_tmp", who.first)}),
                    "deleted",
                );
            }
            s.call("gdrive", "create_document", json!({"title": "Refund anomaly notes", "content": "Refunds spiked on 2025-11-14; the z-score is driven by the partial-reversal bug (ENG-2231)."}), "{\"file_id\":\"1eR4tY\"}");
        }
        Shape::SlackCatchup => {
            if s.rng.random_bool(0.2) {
                s.call(
                    "slack",
                    "list_channels",
                    json!({"limit": 100}),
                    json!(c::CHANNELS).to_string(),
                );
            }
            let channel = *pick(s.rng, c::CHANNELS);
            let history = *pick(s.rng, c::SLACK_HISTORY);
            s.call(
                "slack",
                "get_channel_history",
                json!({"channel": channel, "limit": 50}),
                history,
            );
            if s.rng.random_bool(0.5) {
                let found = *pick(s.rng, c::SLACK_HISTORY);
                s.call(
                    "slack",
                    "search",
                    json!({"query": "in:#deploys payments-api"}),
                    found,
                );
            }
            if s.rng.random_bool(0.5) {
                s.call(
                    "slack",
                    "add_reaction",
                    json!({"channel": channel, "timestamp": "1732441200.004100", "name": "eyes"}),
                    "{\"ok\":true}",
                );
            } else {
                s.call("slack", "post_message", json!({"channel": channel, "text": "thanks, looking now", "thread_ts": "1732441200.004100"}), "{\"ok\":true}");
            }
        }
        Shape::BusyMinute => {
            s.think_ms = (300, 2_500);
            let repo = who.repos()[0];
            s.call(
                "filesystem",
                "search_files",
                json!({"path": who.local_path(repo, "src"), "pattern": "**/*.ts"}),
                "src/api/handlers.ts\nsrc/config/database.ts\nsrc/billing/client.ts",
            );
            let n = s.rng.random_range(10..=13);
            for f in files_of(s.rng, who.repos(), n) {
                s.call(
                    "filesystem",
                    "read_file",
                    json!({"path": who.local_path(f.repo, f.path)}),
                    f.content,
                );
            }
            s.call("filesystem", "edit_file", json!({"path": who.local_path(repo, "src/billing/client.ts"), "edits": [{"oldText": "retries: 5", "newText": "retries: 3"}]}), "```diff\n-retries: 5\n+retries: 3\n```");
        }
        Shape::DotenvRead => {
            let samples = crate::scrub::samples::all(s.rng.random());
            let find = |kind: &str| {
                samples
                    .iter()
                    .find(|x| x.kind == kind)
                    .map(|x| x.secret.clone())
                    .unwrap_or_default()
            };
            let env = format!(
                "DATABASE_URL=postgres://app:{}@db.acme.internal:5432/payments\nAWS_ACCESS_KEY_ID={}\nSTRIPE_SECRET_KEY={}\nLOG_LEVEL=info\n",
                find("database_uri"),
                find("aws_access_key_id"),
                find("stripe_key")
            );
            let repo = who.repos()[0];
            s.call(
                "filesystem",
                "list_directory",
                json!({"path": who.local_path(repo, "")}),
                "[FILE] .env\n[FILE] .env.example\n[DIR] src",
            );
            s.call(
                "filesystem",
                "read_file",
                json!({"path": who.local_path(repo, ".env")}),
                env,
            )
            .secret = true;
            s.call(
                "filesystem",
                "read_file",
                json!({"path": who.local_path(repo, ".env.example")}),
                c::REPO_FILES[1].content,
            );
        }
        Shape::PromptAndResources => {
            let f = files_of(s.rng, who.repos(), 1)[0];
            s.prompt("github", "code_review", json!({"pr_number": "1233"}), "Review the pull request for correctness, tests and naming. Point out risky changes first.");
            s.resource(
                "filesystem",
                &format!(
                    "file://{}",
                    who.local_path(f.repo, f.path).replace('\\', "/")
                ),
                f.content,
            );
            s.call("github", "add_issue_comment", gh(f.repo, json!({"issue_number": 1233, "body": "Looks good overall; one question on the retry cap, see inline."})), "{\"id\":99120}");
        }
        Shape::CiReview => {
            s.think_ms = (200, 2_000);
            s.failures = false;
            let repo = *pick(s.rng, &["web", "payments", "web-sdk"]);
            s.call(
                "github",
                "list_commits",
                gh(repo, json!({"sha": "pr-head", "per_page": 5})),
                "[{\"sha\":\"9f2c1ab\",\"message\":\"Retry 429s from the billing client\"}]",
            );
            let n = s.rng.random_range(3..=6);
            for f in files_of(s.rng, &[repo], n) {
                s.call(
                    "github",
                    "get_file_contents",
                    gh(f.repo, json!({"path": f.path, "ref": "pr-head"})),
                    f.content,
                );
            }
            let pr = s.rng.random_range(1200..1300);
            s.call("github", "add_issue_comment", gh(repo, json!({"issue_number": pr, "body": "Automated review: no blocking findings. Tests cover the new branch."})), "{\"id\":99121}");
        }
        Shape::BatchReport => {
            s.think_ms = (200, 1_200);
            s.failures = false;
            for _ in 0..s.rng.random_range(6..=10) {
                let (sql, result) = *pick(s.rng, c::QUERIES);
                let mut call = Call::tool(
                    "postgres",
                    "query",
                    json!({"sql": sql, "database": "analytics"}),
                    result,
                );
                call.duration_ms = s.rng.random_range(40..400);
                s.push(call);
            }
            s.call(
                "gdrive",
                "create_document",
                json!({"title": "Nightly KPIs", "content": "Nightly KPI tables refreshed."}),
                "{\"file_id\":\"1fK2uI\"}",
            );
        }
        Shape::BatchAnalysis => {
            s.think_ms = (500, 3_000);
            s.failures = false;
            s.call(
                "warehouse",
                "list_datasets",
                json!({"domain": "product"}),
                "product.events_sessionized (fresh 6h)",
            );
            for _ in 0..3 {
                let (dataset, kind, out) = *pick(s.rng, c::ANALYSES);
                s.call(
                    "warehouse",
                    "run_analysis",
                    json!({"dataset": dataset, "kind": kind, "window": "30d"}),
                    out,
                );
            }
            // Cleanup of yesterday's scratch tables, under the job's standing approval.
            s.call(
                "warehouse",
                "delete_dataset",
                json!({"dataset": "scratch.nightly_cohorts_prev"}),
                "deleted",
            );
        }
    }
    s.calls
}
