//! mcp-audit: an audit-log collector and anomaly detector for AI-agent tool calls.
//!
//! # Layout
//! ```text
//! ingest ─▶ scrub ─▶ wal (fsync, then ack) ─┬▶ index ─▶ api
//!                                           └▶ live tail
//! ```
//! - [`event`]: the tool-call event, the one domain type every stage speaks, and the registry
//!   of its fields.
//! - [`ingest`]: gRPC and NDJSON front doors; validates events and binds them to a tenant.
//! - [`scrub`]: removes secrets from every string of an event before anything is stored.
//! - [`wal`]: durable, group-committed, hash-chained log; an event is acked only once it is here.
//!   Every later stage is a durable consumer of it, with its own position.
//! - [`query`]: the one query language: parser, AST and the in-memory matcher (live tail,
//!   rules); knows no tantivy.
//! - [`index`]: tantivy, one index per UTC day; search, histogram, terms; compiles queries to
//!   tantivy. Only module using tantivy.
//! - [`rules`]: Sigma-style detection rules and the built-in MCP pack; a WAL consumer that
//!   turns events into findings.
//! - [`chain`]: signed checkpoints of every tenant's hash chain, and erasure with signed
//!   records that keep the chain verifiable.
//! - [`api`]: HTTP API (search, ingest, health, metrics) and the dashboard.
//! - [`tls`]: rustls for both listeners: certificate, key and client CA, reloaded on SIGHUP.
//! - [`app`]: the wiring: opens the stages, starts the tasks, runs until shutdown.
//! - [`health`]: which stages are failing and why (`/readyz`, `/metrics`).
//! - [`config`]: TOML + environment + flags, checked once into [`config::Config`].
//! - [`cli`]: the client commands (`ship`, `search`, `bench`, `demo`, `scrub`, `wrap`).
//! - [`wrap`]: the audit proxy in front of MCP servers (stdio and streamable HTTP): relays
//!   unchanged, records each call, scrubs it and ships it (spooling while the collector is away).

pub mod alerts;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backlog;
pub mod chain;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod event;
pub mod health;
pub mod index;
pub mod ingest;
pub mod metrics;
pub mod query;
pub mod rules;
pub mod scrub;
pub mod tls;
pub mod wal;
pub mod wrap;

/// Generated gRPC code (prost/tonic output in OUT_DIR).
pub mod proto {
    #![allow(clippy::all)]
    tonic::include_proto!("mcpaudit.v1");
}
