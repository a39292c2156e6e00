//! The deliverer: sends due outbox entries, at most [`IN_FLIGHT`] at a time, and retries with
//! exponential backoff and jitter (5 s doubling up to 24 h between attempts, or longer when
//! the receiver's `Retry-After` asks), giving up after [`MAX_ATTEMPTS`]. A 410 disables the
//! destination. Every outcome is written to the shared state (saved by the alerter's next
//! round; a crash before that resends, with the same `webhook-id`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinSet;

use super::manager::DeliveryState;
use super::webhook::{self, Outcome};
use super::{Alerts, WebhookConfig};
use crate::metrics::Metrics;

/// Requests in flight at once, over all destinations.
pub const IN_FLIGHT: usize = 64;
/// Attempts before an entry is given up (about three days of retries).
pub const MAX_ATTEMPTS: u32 = 20;
const LONGEST_RETRY: Duration = Duration::from_secs(24 * 3600);

/// The wait before attempt `attempts + 1`: `first` (5 s) × 2^(attempts−1), capped at 24 h,
/// with jitter (a random point in its upper half), and never sooner than `retry_after`.
pub fn backoff(first: Duration, attempts: u32, retry_after: Option<Duration>) -> Duration {
    let exp = first
        .saturating_mul(
            1u32.checked_shl(attempts.saturating_sub(1))
                .unwrap_or(u32::MAX),
        )
        .min(LONGEST_RETRY);
    let jittered = exp / 2 + exp.mul_f64(rand::random::<f64>() / 2.0);
    jittered.max(retry_after.unwrap_or_default().min(LONGEST_RETRY))
}

/// Runs until `stop` is set.
pub async fn run(
    alerts: Arc<Alerts>,
    webhooks: Vec<WebhookConfig>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) {
    let mut clients = HashMap::new();
    for w in &webhooks {
        match webhook::client(w) {
            Ok(c) => {
                clients.insert(w.name.clone(), (c, w.clone()));
            }
            Err(e) => tracing::error!(error = %e, "webhook destination unusable"),
        }
    }
    let clients = Arc::new(clients);
    let mut running: JoinSet<()> = JoinSet::new();
    let mut busy: std::collections::HashSet<String> = std::collections::HashSet::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    loop {
        if stop.load(Ordering::Acquire) {
            running.abort_all();
            return;
        }
        while let Ok(id) = done_rx.try_recv() {
            busy.remove(&id);
        }
        while running.try_join_next().is_some() {}
        let now = OffsetDateTime::now_utc();
        let due: Vec<(String, String, String)> = {
            let m = alerts.lock();
            m.pending
                .iter()
                .filter_map(|id| m.state.outbox.get(id))
                .filter(|d| {
                    d.state == DeliveryState::Pending
                        && d.next_attempt <= now
                        && !busy.contains(&d.id)
                })
                .filter(|d| {
                    !m.state
                        .destinations
                        .get(&d.destination)
                        .is_some_and(|s| s.disabled)
                })
                .take(IN_FLIGHT.saturating_sub(running.len()))
                .map(|d| (d.id.clone(), d.destination.clone(), d.body.clone()))
                .collect()
        };
        for (id, dest, body) in due {
            let Some((client, w)) = clients.get(&dest).cloned() else {
                continue;
            };
            busy.insert(id.clone());
            let (alerts, metrics, done) = (alerts.clone(), metrics.clone(), done_tx.clone());
            running.spawn(async move {
                let outcome =
                    webhook::send(&client, &w, &id, &body, OffsetDateTime::now_utc()).await;
                record(&alerts, &metrics, &w.name, &id, outcome);
                let _ = done.send(id);
            });
        }
        tokio::select! {
            _ = alerts.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            Some(id) = done_rx.recv() => { busy.remove(&id); }
        }
    }
}

/// Writes what an attempt came to into the state.
pub fn record(alerts: &Alerts, metrics: &Metrics, dest: &str, id: &str, outcome: Outcome) {
    let now = OffsetDateTime::now_utc();
    let mut m = alerts.lock();
    let first_retry = m.config.first_retry;
    let state = &mut m.state;
    let Some(d) = state.outbox.get_mut(id) else {
        return;
    };
    d.attempts += 1;
    let ds = state.destinations.entry(dest.to_string()).or_default();
    let result = match outcome {
        Outcome::Delivered(status) => {
            d.state = DeliveryState::Delivered;
            d.last_status = Some(status);
            d.last_error = None;
            d.done_at = Some(now);
            ds.delivered += 1;
            "delivered"
        }
        Outcome::Gone => {
            let reason = "the receiver answered 410 Gone: destination disabled; fix it and restart, or remove it".to_string();
            tracing::warn!(
                destination = dest,
                "webhook destination answered 410 Gone; disabled"
            );
            d.state = DeliveryState::Failed;
            d.last_status = Some(410);
            d.last_error = Some(reason.clone());
            d.done_at = Some(now);
            ds.disabled = true;
            ds.disabled_reason = Some(reason.clone());
            ds.failed += 1;
            ds.last_error = Some(reason);
            "gone"
        }
        Outcome::Retry {
            status,
            error,
            retry_after,
        } => {
            d.last_status = status;
            d.last_error = Some(error.clone());
            ds.last_error = Some(error.clone());
            if d.attempts >= MAX_ATTEMPTS {
                tracing::error!(destination = dest, webhook_id = id, error = %error, "webhook given up after {MAX_ATTEMPTS} attempts");
                d.state = DeliveryState::Failed;
                d.done_at = Some(now);
                ds.failed += 1;
                "failed"
            } else {
                let wait = backoff(first_retry, d.attempts, retry_after);
                tracing::warn!(destination = dest, webhook_id = id, attempt = d.attempts, retry_in_ms = wait.as_millis() as u64, error = %error, "webhook attempt failed");
                d.next_attempt =
                    now + time::Duration::try_from(wait).unwrap_or(time::Duration::DAY);
                "retry"
            }
        }
    };
    m.delivery_changed(id);
    metrics.webhook_attempt(dest, result);
}
