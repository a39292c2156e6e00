//! The audit of the auditor: what people and credentials did to the collector, stored as
//! events of tenant `_system` through the same ingest path as everyone's events (scrubbed,
//! chained, indexed), so an admin searches them like any other events
//! (`x-mcp-audit-tenant: _system`).
//!
//! Recorded: refused credentials, rule reloads, silences created and expired, alerts acked
//! and resolved, webhooks re-enabled, erasures, config reloads. Each is an event with
//! `source = "mcp-audit"`, `method = "audit/<area>"`, `tool = <action>`, `user` = the
//! credential that acted (`token:<id>`, `jwt:<sub>`, `open`), `remote_addr` when known,
//! `outcome = denied` for refusals, and details in `arguments` and `labels`.
//!
//! Records go through a bounded queue; when it is full (a flood of refused attempts) the
//! newest are dropped and counted, never letting an attacker grow memory or stall a request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::auth::SYSTEM_TENANT;
use crate::event::{Event, Outcome};
use crate::ingest::{Incoming, Ingestor};

/// Records waiting to be stored at most.
const QUEUE: usize = 4096;
/// Records stored per batch.
const BATCH: usize = 256;

/// One action on the collector.
#[derive(Debug, Clone)]
pub struct Record {
    /// `auth`, `rules`, `alerts`, `silences`, `webhooks`, `erasure`, `config`.
    pub area: &'static str,
    /// What happened: `refused`, `reload`, `ack`, `erase`...
    pub action: &'static str,
    /// The credential that acted.
    pub actor: String,
    /// The tenant it acted on.
    pub tenant: String,
    pub remote_addr: String,
    pub denied: bool,
    /// Why it was refused or what failed.
    pub error: String,
    pub details: serde_json::Value,
}

impl Record {
    pub fn new(area: &'static str, action: &'static str, actor: &str, tenant: &str) -> Self {
        Self {
            area,
            action,
            actor: actor.to_string(),
            tenant: tenant.to_string(),
            remote_addr: String::new(),
            denied: false,
            error: String::new(),
            details: serde_json::Value::Null,
        }
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    fn into_event(self) -> Event {
        let mut e = Event::new(
            uuid::Uuid::now_v7().to_string(),
            &format!("audit/{}", self.area),
            self.action,
        );
        e.source = "mcp-audit".into();
        e.server = "mcp-audit".into();
        e.user = self.actor;
        e.remote_addr = self.remote_addr;
        e.error = self.error;
        e.arguments = self.details;
        if self.denied {
            e.outcome = Outcome::Denied;
        }
        if !self.tenant.is_empty() {
            e.labels.insert("tenant".into(), self.tenant);
        }
        e
    }
}

/// Where records go. Cheap to clone.
#[derive(Clone)]
pub struct AuditTrail {
    tx: mpsc::Sender<Record>,
    dropped: Arc<AtomicU64>,
}

impl AuditTrail {
    /// Starts the task that stores records through `ingestor`.
    pub fn start(ingestor: Arc<Ingestor>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(store(ingestor, rx));
        Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues a record; never waits.
    pub fn record(&self, r: Record) {
        tracing::info!(area = r.area, action = r.action, actor = %r.actor, tenant = %r.tenant, "audit");
        if self.tx.try_send(r).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "audit: the `_system` queue is full; records were dropped (a flood of refused attempts?)");
            }
        }
    }
}

async fn store(ingestor: Arc<Ingestor>, mut rx: mpsc::Receiver<Record>) {
    let tenant: Arc<str> = Arc::from(SYSTEM_TENANT);
    let mut buf = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut buf, BATCH).await > 0 {
        let batch = buf
            .drain(..)
            .map(|r| {
                let e = r.into_event();
                Incoming {
                    id_hint: e.event_id.clone(),
                    wire_bytes: serde_json::to_vec(&e).map_or(0, |v| v.len()),
                    decoded: Ok(e),
                }
            })
            .collect();
        match ingestor.ingest(tenant.clone(), batch).await {
            Ok(r) if !r.rejected.is_empty() => {
                tracing::error!(rejected = ?r.rejected, "audit: `_system` records were rejected");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "audit: cannot store `_system` records"),
        }
    }
}
