//! Findings and rules: `GET /api/v1/findings`, `GET /api/v1/findings/{id}`,
//! `GET /api/v1/rules`, `POST /api/v1/rules/reload`.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use time::OffsetDateTime;

use super::{blocking, json, path_param, Caller, Params, Problem, RawParams};
use crate::app::Shared;
use crate::error::ErrorKind;
use crate::index::findings::FindingsQuery;
use crate::rules::consumer::RuleInfo;
use crate::rules::{Finding, Severity};

/// Largest page of findings.
pub const MAX_FINDINGS: u64 = 1000;

/// `GET /api/v1/findings?rule=&severity=&since=&until=&event_id=&limit=`: newest first.
pub async fn findings(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: RawParams,
) -> Result<Response, Problem> {
    let tenant = caller.tenant();
    let p = Params::new(
        raw,
        &["rule", "severity", "since", "until", "event_id", "limit"],
    )?;
    let now = OffsetDateTime::now_utc();
    let severity = p.choice("severity", "severity", Severity::parse, Severity::NAMES)?;
    let since = match p.opt("since") {
        None => None,
        Some(_) => Some(p.time("since", now, now)?),
    };
    let until = match p.opt("until") {
        None => None,
        Some(_) => Some(p.time("until", now, now)?),
    };
    let q = FindingsQuery {
        tenant: tenant.to_string(),
        rule: p.opt("rule").map(str::to_string),
        severity,
        since,
        until,
        event_id: p.opt("event_id").map(str::to_string),
        limit: p.uint("limit", 100, 1, MAX_FINDINGS)? as usize,
    };
    let store = s.findings.clone();
    let (total, found) = blocking("findings query", move || {
        store.search(&q).map_err(Problem::from)
    })
    .await?;
    #[derive(Serialize)]
    struct Answer {
        total: u64,
        findings: Vec<Finding>,
    }
    json(&Answer {
        total,
        findings: found,
    })
}

/// `GET /api/v1/findings/{id}`.
pub async fn finding(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Problem> {
    let id = path_param("id", "id", id)?;
    let tenant = caller.tenant();
    let store = s.findings.clone();
    let key = id.clone();
    match blocking("findings query", move || {
        store.get(&tenant, &key).map_err(Problem::from)
    })
    .await?
    {
        Some(f) => json(&f),
        None => Err(Problem::new(
            ErrorKind::NotFound,
            "not found",
            format!("no finding with id {id:?}"),
        )),
    }
}

#[derive(Serialize)]
struct RulesAnswer {
    enabled: bool,
    rules: Vec<RuleInfo>,
    /// Problems of the last load or reload; the running rules are the last good set.
    errors: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    reloaded_at: Option<OffsetDateTime>,
}

/// `GET /api/v1/rules`: every running rule with its state, and the last load's errors.
pub async fn rules(
    State(s): State<Arc<Shared>>,
    _caller: Caller,
    raw: RawParams,
) -> Result<Response, Problem> {
    Params::new(raw, &[])?;
    let Some(r) = &s.rules else {
        return json(&RulesAnswer {
            enabled: false,
            rules: Vec::new(),
            errors: Vec::new(),
            reloaded_at: None,
        });
    };
    let status = r.status.read().unwrap_or_else(|e| e.into_inner());
    json(&RulesAnswer {
        enabled: true,
        rules: status.rules.clone(),
        errors: status.errors.clone(),
        reloaded_at: status.reloaded,
    })
}

/// `POST /api/v1/rules/reload`: reads the rule files again. A bad file changes nothing: the
/// running rules stay, and the answer (and `GET /api/v1/rules`, the log, `/metrics`) says
/// what is wrong and where.
pub async fn reload(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: RawParams,
) -> Result<Response, Problem> {
    Params::new(raw, &[])?;
    let Some(r) = s.rules.clone() else {
        return Err(Problem::new(
            ErrorKind::InvalidArgument,
            "rules are off",
            "the rules are disabled (`rules.enabled = false`); nothing to reload",
        ));
    };
    let metrics = s.metrics.clone();
    let loaded = tokio::task::spawn_blocking(move || r.reload(&metrics))
        .await
        .map_err(|_| {
            Problem::new(
                ErrorKind::Internal,
                "internal error",
                "the reload failed; see the collector log",
            )
        })?;
    let outcome = match &loaded {
        Ok(n) => serde_json::json!({ "loaded": n }),
        Err(errors) => serde_json::json!({ "errors": errors }),
    };
    caller.audit(&s, "rules", "reload", outcome);
    match loaded {
        Ok(n) => {
            #[derive(Serialize)]
            struct Answer {
                loaded: usize,
            }
            json(&Answer { loaded: n })
        }
        Err(errors) => Err(Problem::new(
            ErrorKind::InvalidArgument,
            "invalid rules",
            format!(
                "the running rules are unchanged; fix these and reload: {}",
                errors.join("; ")
            ),
        )),
    }
}
