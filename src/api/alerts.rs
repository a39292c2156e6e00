//! Alerts, silences and webhook destinations: `GET /api/v1/alerts`, `GET /api/v1/alerts/{id}`,
//! `POST /api/v1/alerts/{id}/ack|resolve`, `GET|POST /api/v1/silences`,
//! `DELETE /api/v1/silences/{id}`, `GET /api/v1/webhooks`.
//!
//! Every change is saved before it is answered.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{json, path_param, Caller, Params, Problem, RawParams};
use crate::alerts::manager::DestinationState;
use crate::alerts::{Alert, AlertStatus, Delivery, Matcher, Silence};
use crate::app::Shared;
use crate::error::ErrorKind;
use crate::rules::{Finding, Severity};

/// Largest page of alerts.
pub const MAX_ALERTS: u64 = 1000;

fn not_found(what: &str, id: &str) -> Problem {
    Problem::new(
        ErrorKind::NotFound,
        "not found",
        format!("no {what} with id {id:?}"),
    )
}

fn save_failed(e: String) -> Problem {
    tracing::error!(error = %e, "alerts");
    Problem::new(
        ErrorKind::Unavailable,
        "cannot save",
        format!("{e}; nothing was changed"),
    )
}

/// `GET /api/v1/alerts?status=&rule=&severity=&since=&limit=`: newest first.
pub async fn alerts(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: RawParams,
) -> Result<Response, Problem> {
    let tenant = caller.tenant();
    let p = Params::new(raw, &["status", "rule", "severity", "since", "limit"])?;
    let status = p.choice("status", "status", AlertStatus::parse, AlertStatus::NAMES)?;
    let severity = p.choice("severity", "severity", Severity::parse, Severity::NAMES)?;
    let now = OffsetDateTime::now_utc();
    let since = match p.opt("since") {
        None => None,
        Some(_) => Some(p.time("since", now, now)?),
    };
    let limit = p.uint("limit", 100, 1, MAX_ALERTS)? as usize;
    let rule = p.opt("rule");
    let m = s.alerts.lock();
    let matching: Vec<&Alert> = m
        .state
        .alerts
        .values()
        .rev()
        .filter(|a| a.tenant == *tenant)
        .filter(|a| status.is_none_or(|st| a.status == st))
        .filter(|a| severity.is_none_or(|sev| a.severity >= sev))
        .filter(|a| rule.is_none_or(|r| a.rule == r))
        .filter(|a| since.is_none_or(|t| a.last_seen >= t))
        .collect();
    #[derive(Serialize)]
    struct Answer<'a> {
        total: usize,
        alerts: Vec<&'a Alert>,
    }
    json(&Answer {
        total: matching.len(),
        alerts: matching.into_iter().take(limit).collect(),
    })
}

/// `GET /api/v1/alerts/{id}`: the alert, its newest findings and its notifications.
pub async fn alert(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let id = path_param("id", "id", id)?;
    let tenant = caller.tenant();
    let (alert, deliveries) = {
        let m = s.alerts.lock();
        let Some(a) = m.state.alerts.get(&id).filter(|a| a.tenant == *tenant) else {
            return Err(not_found("alert", &id));
        };
        let deliveries: Vec<Delivery> = m
            .state
            .outbox
            .values()
            .filter(|d| d.alert_id == id)
            .cloned()
            .collect();
        (a.clone(), deliveries)
    };
    let store = s.findings.clone();
    let ids: Vec<String> = alert.finding_ids.iter().cloned().collect();
    let t = tenant.clone();
    let findings = tokio::task::spawn_blocking(move || {
        ids.iter()
            .filter_map(|id| store.get(&t, id).ok().flatten())
            .collect::<Vec<Finding>>()
    })
    .await
    .unwrap_or_default();
    #[derive(Serialize)]
    struct Answer {
        alert: Alert,
        findings: Vec<Finding>,
        deliveries: Vec<DeliveryView>,
    }
    json(&Answer {
        alert,
        findings,
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
    })
}

/// A delivery without its body.
#[derive(Serialize)]
struct DeliveryView {
    id: String,
    destination: String,
    kind: String,
    state: crate::alerts::DeliveryState,
    attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    next_attempt: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id,
            destination: d.destination,
            kind: d.kind,
            state: d.state,
            attempts: d.attempts,
            created_at: d.created_at,
            next_attempt: d.next_attempt,
            last_status: d.last_status,
            last_error: d.last_error,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    #[serde(default)]
    by: Option<String>,
}

fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, Problem> {
    // No body at all means the defaults; anything else must be the JSON object (whitespace
    // alone is not JSON).
    if body.is_empty() {
        return Ok(T::default());
    }
    let invalid = |e: String| {
        Problem::new(
            ErrorKind::InvalidArgument,
            "invalid body",
            format!("the request body is not the JSON this endpoint takes: {e}"),
        )
    };
    // An object only: serde would also read a struct from an array of its fields.
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    if !v.is_object() {
        return Err(invalid("it must be a JSON object".into()));
    }
    serde_json::from_value(v).map_err(|e| invalid(e.to_string()))
}

fn who(by: Option<String>, caller: &Caller) -> Result<String, Problem> {
    let by = by.unwrap_or_else(|| caller.name());
    if by.is_empty() || by.len() > 200 || by.chars().any(char::is_control) {
        return Err(Problem::param(
            "by",
            "must be 1 to 200 characters without control characters",
        ));
    }
    Ok(by)
}

async fn act(
    s: Arc<Shared>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    raw: RawParams,
    body: Bytes,
    resolve: bool,
) -> Result<Response, Problem> {
    let id = path_param("id", "id", id)?;
    let tenant = caller.tenant();
    Params::new(raw, &[])?;
    let body: ActionBody = parse_body(&body)?;
    let by = who(body.by, &caller)?;
    let now = OffsetDateTime::now_utc();
    let alert = {
        let mut m = s.alerts.lock();
        let changed = if resolve {
            m.resolve(&tenant, &id, &by, now)
        } else {
            m.acknowledge(&tenant, &id, &by, now)
        };
        let Some(a) = changed else {
            return Err(not_found("alert", &id));
        };
        s.alerts.save(&mut m).map_err(save_failed)?;
        a
    };
    s.alerts.wake.notify_one();
    caller.audit(
        &s,
        "alerts",
        if resolve { "resolve" } else { "ack" },
        serde_json::json!({ "alert": id, "by": by }),
    );
    json(&alert)
}

/// `POST /api/v1/alerts/{id}/ack`: the alert stops notifying (it keeps counting findings).
pub async fn ack(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    raw: RawParams,
    body: Bytes,
) -> Result<Response, Problem> {
    act(s, caller, id, raw, body, false).await
}

/// `POST /api/v1/alerts/{id}/resolve`: closes the alert; a new finding opens a new one.
pub async fn resolve(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    raw: RawParams,
    body: Bytes,
) -> Result<Response, Problem> {
    act(s, caller, id, raw, body, true).await
}

/// `GET /api/v1/silences`: every silence of the tenant, active or not.
pub async fn silences(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: RawParams,
) -> Result<Response, Problem> {
    let tenant = caller.tenant();
    Params::new(raw, &[])?;
    let now = OffsetDateTime::now_utc();
    let m = s.alerts.lock();
    #[derive(Serialize)]
    struct View<'a> {
        #[serde(flatten)]
        silence: &'a Silence,
        active: bool,
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        silences: Vec<View<'a>>,
    }
    json(&Answer {
        silences: m
            .state
            .silences
            .values()
            .rev()
            .filter(|x| x.tenant == *tenant)
            .map(|x| View {
                silence: x,
                active: x.active(now),
            })
            .collect(),
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    #[serde(default)]
    matchers: Vec<Matcher>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    starts_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    ends_at: Option<OffsetDateTime>,
    /// Instead of `ends_at`: how long from the start (`2h`, `30m`, `7d`).
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    comment: String,
}

/// `POST /api/v1/silences`: matchers on `rule`, `severity`, `tag` or a group-key field.
pub async fn create_silence(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: RawParams,
    body: Bytes,
) -> Result<Response, Problem> {
    let tenant = caller.tenant();
    Params::new(raw, &[])?;
    let n: NewSilence = parse_body(&body)?;
    if n.matchers.is_empty() {
        return Err(Problem::param(
            "matchers",
            "a silence needs at least one matcher, e.g. {\"name\": \"rule\", \"value\": \"mcp-new-tool\"}",
        ));
    }
    for (i, m) in n.matchers.iter().enumerate() {
        if m.name.is_empty() || m.name.contains(['=', ' ']) {
            return Err(Problem::param(
                "matchers",
                format!("matcher #{}: `name` must be rule, severity, tag or a group-key field like user", i + 1),
            ));
        }
        if m.regex {
            if let Err(e) = regex::Regex::new(&m.value) {
                return Err(Problem::param(
                    "matchers",
                    format!("matcher #{}: `value` is not a regex: {e}", i + 1),
                ));
            }
        }
    }
    let now = OffsetDateTime::now_utc();
    let starts_at = n.starts_at.unwrap_or(now);
    let ends_at = match (n.ends_at, &n.duration) {
        (Some(_), Some(_)) => {
            return Err(Problem::param(
                "duration",
                "give `ends_at` or `duration`, not both",
            ))
        }
        (Some(t), None) => t,
        (None, Some(d)) => {
            let d = super::parse_duration(d).ok_or_else(|| {
                Problem::param(
                    "duration",
                    format!("{d:?} is not a duration like 30m, 2h or 7d"),
                )
            })?;
            starts_at
                .checked_add(d)
                .ok_or_else(|| Problem::param("duration", "ends after the year 9999"))?
        }
        (None, None) => {
            return Err(Problem::param(
                "ends_at",
                "a silence needs `ends_at` (RFC 3339) or `duration` (like 2h)",
            ))
        }
    };
    if ends_at <= starts_at {
        return Err(Problem::param("ends_at", "must be after `starts_at`"));
    }
    let silence = Silence {
        id: uuid::Uuid::now_v7().simple().to_string(),
        tenant: tenant.to_string(),
        matchers: n.matchers,
        starts_at,
        ends_at,
        created_by: who(n.created_by, &caller)?,
        comment: n.comment,
        created_at: now,
    };
    {
        let mut m = s.alerts.lock();
        m.add_silence(silence.clone());
        s.alerts.save(&mut m).map_err(save_failed)?;
    }
    caller.audit(
        &s,
        "silences",
        "create",
        serde_json::json!({ "silence": silence.id, "ends_at": silence.ends_at.to_string(), "comment": silence.comment }),
    );
    json(&silence)
}

/// `DELETE /api/v1/silences/{id}`: expires the silence now (it stays listed, inactive).
pub async fn expire_silence(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    raw: RawParams,
) -> Result<Response, Problem> {
    let id = path_param("id", "id", id)?;
    let tenant = caller.tenant();
    Params::new(raw, &[])?;
    let now = OffsetDateTime::now_utc();
    let mut m = s.alerts.lock();
    let Some(out) = m.expire_silence(&tenant, &id, now) else {
        return Err(not_found("silence", &id));
    };
    s.alerts.save(&mut m).map_err(save_failed)?;
    drop(m);
    caller.audit(
        &s,
        "silences",
        "expire",
        serde_json::json!({ "silence": id }),
    );
    json(&out)
}

/// `GET /api/v1/webhooks`: each destination's delivery state.
pub async fn webhooks(
    State(s): State<Arc<Shared>>,
    _caller: Caller,
    raw: RawParams,
) -> Result<Response, Problem> {
    Params::new(raw, &[])?;
    let m = s.alerts.lock();
    #[derive(Serialize)]
    struct View {
        name: String,
        url: String,
        format: crate::alerts::Format,
        min_severity: Severity,
        pending: usize,
        disabled: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        disabled_reason: Option<String>,
        delivered: u64,
        failed: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_error: Option<String>,
    }
    #[derive(Serialize)]
    struct Answer {
        webhooks: Vec<View>,
    }
    let webhooks = m
        .webhooks
        .iter()
        .map(|w| {
            let st: DestinationState = m
                .state
                .destinations
                .get(&w.name)
                .cloned()
                .unwrap_or_default();
            View {
                name: w.name.clone(),
                url: redact_url(&w.url),
                format: w.format,
                min_severity: w.min_severity,
                pending: m
                    .pending
                    .iter()
                    .filter_map(|id| m.state.outbox.get(id))
                    .filter(|d| d.destination == w.name)
                    .count(),
                disabled: st.disabled,
                disabled_reason: st.disabled_reason,
                delivered: st.delivered,
                failed: st.failed,
                last_error: st.last_error,
            }
        })
        .collect();
    json(&Answer { webhooks })
}

/// A webhook URL without its path and query, which often hold a token (Slack's do).
fn redact_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(url) => format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or("")),
        Err(_) => "…".into(),
    }
}

/// `POST /api/v1/webhooks/{name}/enable`: sends to a destination a 410 disabled again
/// (what waited for it goes out).
pub async fn enable_webhook(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    raw: RawParams,
) -> Result<Response, Problem> {
    let name = path_param("name", "name", name)?;
    Params::new(raw, &[])?;
    {
        let mut m = s.alerts.lock();
        if !m.enable(&name) {
            return Err(Problem::new(
                ErrorKind::NotFound,
                "not found",
                format!("no webhook named {name:?} in the config"),
            ));
        }
        s.alerts.save(&mut m).map_err(save_failed)?;
    }
    s.alerts.wake.notify_one();
    caller.audit(
        &s,
        "webhooks",
        "enable",
        serde_json::json!({ "webhook": name }),
    );
    #[derive(Serialize)]
    struct Answer {
        name: String,
        disabled: bool,
    }
    json(&Answer {
        name,
        disabled: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_body_means_the_defaults() {
        let none: ActionBody = parse_body(&Bytes::new()).unwrap();
        assert!(none.by.is_none());
        let by: ActionBody = parse_body(&Bytes::from_static(br#"{"by":"dana"}"#)).unwrap();
        assert_eq!(by.by.as_deref(), Some("dana"));
        for bad in [&b"\t"[..], b" ", b"[]", b"{\"who\":1}"] {
            assert!(
                parse_body::<ActionBody>(&Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}
