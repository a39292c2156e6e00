//! Health of the stages that can fail at run time (the WAL, the index writer...), for
//! `/readyz` and `/metrics`.
//!
//! A stage reports a failure with a reason an operator can act on ("no space left on device
//! [ENOSPC]") and reports recovery when it works again. The collector is ready only while no
//! stage is failing. This module decides nothing: each stage decides how it recovers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

use crate::metrics::Metrics;

/// Stages whose health is tracked (also the `component` label of the metrics).
pub const COMPONENTS: &[&str] = &["wal", "index", "rules"];

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: String,
    pub since: OffsetDateTime,
}

pub struct Health {
    failing: Mutex<BTreeMap<&'static str, Failure>>,
    metrics: Arc<Metrics>,
}

impl Health {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        for c in COMPONENTS {
            metrics.component_up(c, true);
        }
        Arc::new(Health {
            failing: Mutex::new(BTreeMap::new()),
            metrics,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Failure>> {
        self.failing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `component` failing (keeps the first time it failed while it stays failing).
    pub fn fail(&self, component: &'static str, reason: impl Into<String>) {
        let reason = reason.into();
        let mut failing = self.lock();
        let newly = !failing.contains_key(component);
        let entry = failing.entry(component).or_insert_with(|| Failure {
            reason: reason.clone(),
            since: OffsetDateTime::now_utc(),
        });
        entry.reason = reason;
        drop(failing);
        if newly {
            self.metrics.component_up(component, false);
            self.metrics.component_failed(component);
        }
    }

    /// Marks `component` working again.
    pub fn recover(&self, component: &'static str) {
        if self.lock().remove(component).is_some() {
            self.metrics.component_up(component, true);
            tracing::info!(component, "recovered");
        }
    }

    /// Every failing component and why.
    pub fn failures(&self) -> Vec<(&'static str, Failure)> {
        self.lock().iter().map(|(c, f)| (*c, f.clone())).collect()
    }

    pub fn is_failing(&self, component: &str) -> bool {
        self.lock().contains_key(component)
    }
}
