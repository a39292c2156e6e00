//! The end-to-end tests: each module starts the real collector on loopback (ephemeral ports, a
//! temp data dir), in process or as the built binary, and talks to it over real gRPC and HTTP.
//! One test binary instead of one per file: each would link the whole crate and its
//! dependencies again (about 200 MB apiece with debug info), which cost CI minutes of linking
//! and gigabytes of disk.
#![allow(clippy::unwrap_used)]

mod common;

mod alerts;
mod auth;
mod chain;
mod config;
mod crash;
mod demo;
mod erase;
mod faults;
mod hostile;
mod http_errors;
mod http_slow_clients;
mod ingest_search;
mod otlp;
mod query_language;
mod rules;
mod secrets_e2e;
mod ship;
mod tls;
mod upgrade;
mod verify;
mod wal_damage;
mod wrap;
