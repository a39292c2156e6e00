//! The load generator's events: independent tool calls of a chosen JSON size, for `bench` and
//! the integration tests. Their shape and size are fixed so benchmark figures stay comparable
//! across versions; realistic conversations and attacks are in [`super::conversations`] and
//! [`super::attacks`], not here.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::OffsetDateTime;

use crate::event::{Consent, Event, Outcome, Transport};

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];
const CLIENTS: &[&str] = &[
    "claude-desktop",
    "cursor",
    "vscode-copilot",
    "goose",
    "windsurf",
];
const SOURCES: &[&str] = &["gateway-eu-1", "gateway-us-1", "laptop-agent"];
const REPOS: &[&str] = &[
    "acme/web",
    "acme/payments",
    "acme/infra",
    "acme/handbook",
    "acme/ml-pipeline",
];
const FILES: &[&str] = &[
    "src/main.rs",
    "README.md",
    "src/api/handlers.ts",
    "deploy/helm/values.yaml",
    "docs/architecture.md",
    "tests/integration_test.py",
];

/// A deterministic generator of tool-call events.
pub struct Generator {
    rng: StdRng,
    n: u64,
    prefix: String,
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn lorem(rng: &mut StdRng, words: usize) -> String {
    const W: &[&str] = &[
        "the",
        "request",
        "handler",
        "returns",
        "a",
        "list",
        "of",
        "open",
        "issues",
        "for",
        "repository",
        "with",
        "labels",
        "pagination",
        "cursor",
        "token",
        "bucket",
        "query",
        "latency",
        "deploy",
        "service",
        "config",
        "migration",
        "schema",
        "customer",
        "invoice",
        "retry",
        "timeout",
        "cache",
        "index",
        "build",
        "pipeline",
        "test",
        "coverage",
        "release",
    ];
    let mut s = String::with_capacity(words * 7);
    for i in 0..words {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(pick(rng, W));
    }
    s
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            n: 0,
            prefix: format!("{seed:x}"),
        }
    }

    fn base(&mut self, ts: OffsetDateTime, server: &str, tool: &str) -> Event {
        self.n += 1;
        let rng = &mut self.rng;
        let user = pick(rng, USERS);
        let mut e = Event::new(
            format!("demo-{}-{}", self.prefix, self.n),
            "tools/call",
            tool,
        );
        e.timestamp = ts;
        e.server = server.into();
        e.user = user.into();
        e.client = pick(rng, CLIENTS).into();
        e.source = pick(rng, SOURCES).into();
        e.conversation_id = format!("conv-{}-{}", user, rng.random_range(0..40));
        e.session_id = format!("sess-{:08x}", rng.random::<u32>());
        e.trace_id = format!("{:032x}", rng.random::<u128>());
        e.span_id = format!("{:016x}", rng.random::<u64>());
        e.transport = if rng.random_bool(0.6) {
            Transport::StreamableHttp
        } else {
            Transport::Stdio
        };
        e.consent = if rng.random_bool(0.7) {
            Consent::AllowedAlways
        } else {
            Consent::AutoApproved
        };
        e.duration_ms = rng.random_range(5..400);
        e.remote_addr = format!(
            "10.{}.{}.{}",
            rng.random_range(0..4),
            rng.random_range(0..255),
            rng.random_range(1..255)
        );
        e.tool_description_hash = format!("sha256:{:016x}", fxhash(server, tool));
        e.labels.insert(
            "env".into(),
            if rng.random_bool(0.8) {
                "prod"
            } else {
                "staging"
            }
            .into(),
        );
        e.labels.insert(
            "team".into(),
            pick(rng, &["platform", "payments", "data", "security"]).into(),
        );
        e
    }

    /// A benign call of about `target_bytes` of JSON (results are padded with realistic text).
    pub fn benign(&mut self, ts: OffsetDateTime, target_bytes: usize) -> Event {
        let kind = self.rng.random_range(0..6);
        let mut e = match kind {
            0 => {
                let mut e = self.base(ts, "github", "list_issues");
                let repo = pick(&mut self.rng, REPOS);
                e.arguments = json!({"repo": repo, "state": "open", "per_page": 30});
                e.annotations.read_only = Some(true);
                e
            }
            1 => {
                let mut e = self.base(ts, "filesystem", "read_file");
                let f = pick(&mut self.rng, FILES);
                e.arguments = json!({"path": format!("/home/dev/acme/{f}")});
                e.annotations.read_only = Some(true);
                e
            }
            2 => {
                let mut e = self.base(ts, "postgres", "query");
                e.arguments = json!({"sql": "SELECT id, status, amount FROM invoices WHERE created_at > now() - interval '1 day' LIMIT 50", "database": "billing"});
                e.annotations.read_only = Some(true);
                e
            }
            3 => {
                let mut e = self.base(ts, "slack", "post_message");
                let text = lorem(&mut self.rng, 12);
                e.arguments = json!({"channel": "#eng-builds", "text": text});
                e.annotations.open_world = Some(true);
                e
            }
            4 => {
                let mut e = self.base(ts, "fetch", "fetch");
                e.arguments =
                    json!({"url": "https://docs.rs/tokio/latest/tokio/", "max_length": 5000});
                e.annotations.read_only = Some(true);
                e
            }
            _ => {
                let mut e = self.base(ts, "jira", "create_ticket");
                let summary = lorem(&mut self.rng, 8);
                e.arguments = json!({"project": "OPS", "summary": summary, "priority": "P3"});
                e
            }
        };
        let used = serde_json::to_vec(&e).map(|v| v.len()).unwrap_or(600);
        let words = target_bytes.saturating_sub(used) / 6;
        e.result =
            json!({"content": [{"type": "text", "text": lorem(&mut self.rng, words.max(3))}]})
                .to_string();
        e.result_bytes = e.result.len() as u64;
        if self.rng.random_bool(0.03) {
            e.outcome = Outcome::Error;
            e.error = "upstream returned 502 Bad Gateway".into();
        }
        e
    }
}

fn fxhash(a: &str, b: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for byte in a.bytes().chain(b.bytes()) {
        h ^= byte as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
