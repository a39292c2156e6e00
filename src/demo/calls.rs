//! How generated calls become [`Event`]s.
//!
//! A conversation is first written as a [`Script`]: calls with their arguments, results and
//! outcomes at offsets from the conversation's start, independent of who runs it and when.
//! [`Actor::stamp`] then turns each call into an event for one person, client, address and
//! session: ids, timestamp, source, transport, session id, annotations, description hash and
//! the consent that client gives for that tool. Keeping the two apart lets the day planner
//! move a conversation in time without regenerating it, and lets attack scenarios reuse the
//! same stamping and then change exactly the field an attack is about.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::catalog::{self, WRAP_SOURCE};
use crate::event::{Annotations, Consent, Event, Outcome, Transport};

/// One call of a conversation, before it is stamped.
#[derive(Debug, Clone)]
pub struct Call {
    /// `tools/call`, `tools/list`, `resources/read` or `prompts/get`.
    pub method: &'static str,
    pub server: String,
    /// The tool; the resource URI or prompt name for other methods; empty for `tools/list`.
    pub tool: String,
    pub arguments: Value,
    pub result: String,
    /// The full result size when the gateway truncated `result`; 0 means `result.len()`.
    pub result_bytes: u64,
    pub outcome: Outcome,
    pub error: String,
    /// `None`: the consent the client usually gives for this tool (see [`Actor::consent`]).
    pub consent: Option<Consent>,
    pub annotations: Annotations,
    pub description_hash: String,
    /// Offset from the conversation's start.
    pub at: Duration,
    pub duration_ms: u64,
    /// The result holds a real-looking credential the scrubber removes (noted for rule tests).
    pub secret: bool,
}

impl Call {
    /// A call of a catalog tool (annotations and description hash from the catalog), or of a
    /// tool the catalog does not know (no annotations, no hash: the caller sets them).
    pub fn tool(server: &str, tool: &str, arguments: Value, result: impl Into<String>) -> Self {
        let known = catalog::SERVERS
            .iter()
            .find(|s| s.name == server)
            .and_then(|s| s.tools.iter().find(|t| t.name == tool));
        Self {
            method: "tools/call",
            server: server.to_string(),
            tool: tool.to_string(),
            arguments,
            result: result.into(),
            result_bytes: 0,
            outcome: Outcome::Ok,
            error: String::new(),
            consent: None,
            annotations: known.map(|t| t.annotations).unwrap_or_default(),
            description_hash: known
                .map(|_| catalog::description_hash(server, tool))
                .unwrap_or_default(),
            at: Duration::ZERO,
            duration_ms: 0,
            secret: false,
        }
    }

    /// A `tools/list` of a catalog server.
    pub fn tools_list(server: &str) -> Self {
        let mut c = Self::tool(server, "", Value::Null, catalog::tools_list_result(server));
        c.method = "tools/list";
        c
    }

    /// Marks the call failed with `outcome` and `error`; a failed call has no result.
    pub fn fail(&mut self, outcome: Outcome, error: impl Into<String>) -> &mut Self {
        self.outcome = outcome;
        self.error = error.into();
        self.result.clear();
        self.result_bytes = 0;
        if outcome == Outcome::ConsentDenied {
            self.consent = Some(Consent::Denied);
        }
        self
    }
}

/// A conversation being written: calls at offsets, with the model's pauses between them.
pub struct Script<'r> {
    pub rng: &'r mut StdRng,
    /// Offset of the next call.
    pub t: Duration,
    pub calls: Vec<Call>,
    /// Pause between a result and the next call, in ms (the model reading and deciding).
    pub think_ms: (u64, u64),
    /// Whether calls fail now and then the way real servers do (404s, timeouts, refusals).
    pub failures: bool,
}

impl<'r> Script<'r> {
    pub fn new(rng: &'r mut StdRng) -> Self {
        Self {
            rng,
            t: Duration::ZERO,
            calls: Vec::new(),
            think_ms: (1_500, 20_000),
            failures: true,
        }
    }

    /// Appends a call of a catalog tool at the current offset and moves past it.
    pub fn call(
        &mut self,
        server: &str,
        tool: &str,
        arguments: Value,
        result: impl Into<String>,
    ) -> &mut Call {
        let call = Call::tool(server, tool, arguments, result);
        self.push(call)
    }

    /// Appends a prepared call at the current offset, with a latency from its tool's range
    /// (when the catalog knows it), and moves past it.
    pub fn push(&mut self, mut call: Call) -> &mut Call {
        let (lo, hi) = catalog::SERVERS
            .iter()
            .find(|s| s.name == call.server)
            .and_then(|s| s.tools.iter().find(|t| t.name == call.tool))
            .map(|t| t.latency_ms)
            .unwrap_or((20, 400));
        call.at = self.t;
        call.duration_ms = if call.duration_ms > 0 {
            call.duration_ms
        } else {
            // Latencies are skewed: mostly near the low end, a long tail.
            let u: f64 = self.rng.random();
            lo + ((hi - lo) as f64 * u * u * u) as u64
        };
        if self.failures && call.method == "tools/call" {
            self.maybe_fail(&mut call);
            // Long pages come back cut at `max_length`, with the fetch server's own note.
            let long_page =
                call.server == "fetch" && call.tool == "fetch" && call.result.len() > 600;
            if long_page && call.outcome == Outcome::Ok && self.rng.random_bool(0.3) {
                let next = call.result.len() * 2 / 3;
                let mut cut = next;
                while !call.result.is_char_boundary(cut) {
                    cut -= 1;
                }
                call.result.truncate(cut);
                call.result.push_str(&format!("\n\n<error>Content truncated. Call the fetch tool with a start_index of {cut} to get more content.</error>"));
            }
        }
        if call.outcome == Outcome::Timeout {
            call.duration_ms = 30_000;
        }
        let pause = self.rng.random_range(self.think_ms.0..=self.think_ms.1);
        self.t += Duration::milliseconds((call.duration_ms + pause) as i64);
        self.calls.push(call);
        let last = self.calls.len() - 1;
        &mut self.calls[last]
    }

    /// A `resources/read` of `uri` on `server`.
    pub fn resource(&mut self, server: &str, uri: &str, result: impl Into<String>) -> &mut Call {
        let mut c = Call::tool(server, uri, Value::Null, result);
        c.method = "resources/read";
        c.annotations = Annotations::default();
        c.description_hash.clear();
        c.duration_ms = self.rng.random_range(5..120);
        self.push(c)
    }

    /// A `prompts/get` of prompt `name` on `server`.
    pub fn prompt(
        &mut self,
        server: &str,
        name: &str,
        arguments: Value,
        result: impl Into<String>,
    ) -> &mut Call {
        let mut c = Call::tool(server, name, arguments, result);
        c.method = "prompts/get";
        c.annotations = Annotations::default();
        c.description_hash.clear();
        c.duration_ms = self.rng.random_range(5..60);
        self.push(c)
    }

    /// Waits `lo..=hi` seconds (the person reading, a meeting, a build).
    pub fn wait(&mut self, lo: i64, hi: i64) {
        self.t += Duration::seconds(self.rng.random_range(lo..=hi));
    }

    /// The errors real servers give now and then; rare, and never so many for one person that
    /// they look like probing.
    fn maybe_fail(&mut self, call: &mut Call) {
        let destructive =
            !call.annotations.effective_read_only() && call.annotations.effective_destructive();
        let roll: f64 = self.rng.random();
        if destructive && call.consent.is_none() && roll < 0.02 {
            call.fail(Outcome::ConsentDenied, "the user declined the tool call");
            return;
        }
        let policy_guarded = matches!(
            (call.server.as_str(), call.tool.as_str()),
            ("kubernetes", "kubectl_delete")
                | ("postgres", "execute")
                | ("terraform", "terraform_apply")
                | ("gdrive", "share_file")
        );
        if policy_guarded && roll > 0.97 {
            let why = match call.tool.as_str() {
                "share_file" => "policy: sharing outside acme.com is disabled for this folder",
                "execute" => {
                    "policy: writes to the payments database need an approved change ticket"
                }
                _ => "policy: production changes are frozen during the release window",
            };
            call.fail(Outcome::Denied, why);
            return;
        }
        let rate = match call.server.as_str() {
            "fetch" | "playwright" => 0.06,
            "warehouse" => 0.04,
            "github" | "postgres" | "kubernetes" | "sentry" => 0.02,
            "terminal" => 0.0, // a failing command is an ok call with a non-zero exit code
            _ => 0.01,
        };
        if self.rng.random::<f64>() >= rate {
            return;
        }
        let (outcome, error) = match call.server.as_str() {
            "fetch" | "playwright" => match self.rng.random_range(0..4) {
                0 => (
                    Outcome::Timeout,
                    "timed out after 30s waiting for the response",
                ),
                1 => (Outcome::Error, "HTTP 403 Forbidden"),
                _ => (Outcome::Error, "HTTP 404 Not Found"),
            },
            "github" => match self.rng.random_range(0..3) {
                0 => (
                    Outcome::Error,
                    "Not Found (404): the resource does not exist or you have no access",
                ),
                1 => (
                    Outcome::Error,
                    "Validation Failed (422): a pull request already exists for this branch",
                ),
                _ => (
                    Outcome::Error,
                    "API rate limit exceeded for installation; retry after 38s",
                ),
            },
            "postgres" => match self.rng.random_range(0..3) {
                0 => (
                    Outcome::Error,
                    "ERROR: canceling statement due to statement timeout",
                ),
                1 => (
                    Outcome::Error,
                    "ERROR: permission denied for table payroll_runs",
                ),
                _ => (Outcome::Error, "ERROR: column \"crated_at\" does not exist"),
            },
            "warehouse" => (
                Outcome::Timeout,
                "analysis did not finish within 300s; narrow the window",
            ),
            "filesystem" => (Outcome::Error, "ENOENT: no such file or directory"),
            "kubernetes" => (
                Outcome::Error,
                "Error from server (NotFound): pods \"payments-api-7c9\" not found",
            ),
            _ => (Outcome::Error, "upstream returned 502 Bad Gateway"),
        };
        call.fail(outcome, error);
    }
}

/// Who runs a conversation, from where, in which client session.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user: String,
    pub client: String,
    pub remote_addr: String,
    /// Names one run of the client; MCP session ids derive from it per server. Empty for
    /// clients without sessions.
    pub session: String,
    /// The gateway replica remote calls go through (sticky per session).
    pub gateway: String,
    pub team: String,
}

/// The session id a client run has with one server: UUID-shaped, stable for the run.
pub fn session_id(session: &str, server: &str) -> String {
    if session.is_empty() {
        return String::new();
    }
    let h = hex::encode(Sha256::digest(format!("{session}\0{server}")));
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A stable pseudo-random number in `0..n` for a key (sticky habits such as "always allow").
pub fn sticky(key: &str, n: u64) -> u64 {
    let h = Sha256::digest(key);
    u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) % n.max(1)
}

impl Actor {
    /// The consent this client gives for a call with these annotations: read-only tools run
    /// without asking (or on the client's auto-approval list); additive writes are approved
    /// once or always; destructive tools (including tools without annotations, destructive by
    /// the MCP default) always get an explicit approval from a person.
    pub fn consent(&self, call: &Call) -> Consent {
        if call.method != "tools/call" {
            return Consent::NotRequired;
        }
        let a = &call.annotations;
        let automated = !catalog::client_has_sessions(&self.client);
        let habit = sticky(&format!("{}/{}/{}", self.user, call.server, call.tool), 10);
        if a.effective_read_only() {
            return match self.client.as_str() {
                "claude-desktop" | "vscode-copilot" => Consent::NotRequired,
                _ => Consent::AutoApproved,
            };
        }
        if !a.effective_destructive() {
            return if automated || (self.client == "cursor" && habit < 3) {
                Consent::AutoApproved
            } else if habit < 6 {
                Consent::AllowedAlways
            } else {
                Consent::AllowedOnce
            };
        }
        if automated || habit < 4 {
            Consent::AllowedAlways
        } else {
            Consent::AllowedOnce
        }
    }

    /// The event for `call` of a conversation that started at `start`.
    pub fn stamp(
        &self,
        call: &Call,
        start: OffsetDateTime,
        event_id: String,
        conversation_id: &str,
        trace_id: &str,
        span_id: String,
    ) -> Event {
        let local = catalog::SERVERS
            .iter()
            .find(|s| s.name == call.server)
            .is_some_and(|s| s.local);
        let mut e = Event::new(event_id, call.method, &call.tool);
        e.timestamp = start + call.at;
        e.server = call.server.clone();
        e.user = self.user.clone();
        e.client = self.client.clone();
        e.source = if local {
            WRAP_SOURCE.to_string()
        } else {
            self.gateway.clone()
        };
        e.transport = if local {
            Transport::Stdio
        } else if self.client == "goose" {
            Transport::Sse
        } else {
            Transport::StreamableHttp
        };
        e.remote_addr = self.remote_addr.clone();
        e.conversation_id = conversation_id.to_string();
        e.session_id = session_id(&self.session, &call.server);
        e.trace_id = trace_id.to_string();
        e.span_id = span_id;
        e.arguments = call.arguments.clone();
        e.result = call.result.clone();
        e.result_bytes = if call.result_bytes > 0 {
            call.result_bytes
        } else {
            call.result.len() as u64
        };
        e.outcome = call.outcome;
        e.error = call.error.clone();
        e.duration_ms = call.duration_ms;
        e.annotations = call.annotations;
        e.consent = call.consent.unwrap_or_else(|| self.consent(call));
        e.tool_description_hash = call.description_hash.clone();
        if !self.team.is_empty() {
            e.labels.insert("team".into(), self.team.clone());
        }
        e
    }
}

/// Random lowercase hex of `n` digits.
pub fn hex_id(rng: &mut StdRng, n: usize) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    (0..n)
        .map(|_| char::from(HEX[rng.random_range(0..16)]))
        .collect()
}
