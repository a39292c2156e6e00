//! `POST /api/v1/admin/erase`: erases one user's events of the caller's tenant from the WAL
//! and the index (see `chain/erase.rs`), answering once it is durable.
//!
//! Body: `{"user": "alice", "reason": "...", "start": RFC 3339, "end": RFC 3339}`; only `user`
//! is required. Each key is checked by hand so that exactly what `openapi.json` describes is
//! accepted (a `null` is not a string, an unknown key is an error).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{blocking, json, Caller, Params, Problem, RawParams};
use crate::app::Shared;
use crate::chain::erase::{EraseError, EraseRequest};
use crate::error::ErrorKind;
use crate::event::{MAX_TIME, MIN_TIME};

/// Longest `user` (in characters), as ingest allows for names.
const MAX_USER: usize = 1024;
/// Longest `reason` (in characters).
const MAX_REASON: usize = 1000;

pub async fn erase(
    State(s): State<Arc<Shared>>,
    caller: Caller,
    raw: RawParams,
    body: Bytes,
) -> Result<Response, Problem> {
    // Admin only (a POST: see `auth::access`). Always the credential's own tenant, never the
    // `_system` trail an admin may read.
    let tenant = caller.principal.tenant.clone();
    Params::new(raw, &[])?;
    let mut req = parse(&body)?;
    req.tenant = tenant.to_string();
    req.by = caller.name();
    let eraser = s.eraser.clone();
    let summary = blocking("erasure", move || eraser.erase(req).map_err(Problem::from)).await?;
    caller.audit(
        &s,
        "erasure",
        "erase",
        serde_json::to_value(&summary).unwrap_or_default(),
    );
    json(&summary)
}

impl From<EraseError> for Problem {
    fn from(e: EraseError) -> Self {
        tracing::error!(error = %e, "erasure failed");
        let title = match e.kind() {
            ErrorKind::Unavailable => "erasure not finished",
            _ => "erasure failed",
        };
        Problem::new(e.kind(), title, e.to_string())
    }
}

fn invalid(detail: String) -> Problem {
    Problem::new(
        ErrorKind::InvalidArgument,
        "invalid body",
        format!("the request body is not the JSON this endpoint takes: {detail}"),
    )
}

/// Reads the body into a request (tenant and `by` left for the caller).
fn parse(body: &Bytes) -> Result<EraseRequest, Problem> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "{e}; send a JSON object like {{\"user\": \"alice\", \"reason\": \"...\"}}"
        ))
    })?;
    let Value::Object(map) = v else {
        return Err(invalid("it must be a JSON object".into()));
    };
    let mut req = EraseRequest {
        tenant: String::new(),
        user: String::new(),
        reason: String::new(),
        by: String::new(),
        start: None,
        end: None,
    };
    let mut has_user = false;
    for (k, v) in map {
        let Value::String(text) = v else {
            return Err(Problem::param(&k, "must be a string"));
        };
        match k.as_str() {
            "user" => {
                let n = text.chars().count();
                if n == 0 || n > MAX_USER {
                    return Err(Problem::param(
                        "user",
                        format!("must be 1 to {MAX_USER} characters: the exact `user` of the events to erase"),
                    ));
                }
                req.user = text;
                has_user = true;
            }
            "reason" => {
                if text.chars().count() > MAX_REASON {
                    return Err(Problem::param(
                        "reason",
                        format!("must be at most {MAX_REASON} characters"),
                    ));
                }
                req.reason = text;
            }
            "start" | "end" => {
                let t = OffsetDateTime::parse(&text, &Rfc3339)
                    .ok()
                    .filter(|t| (MIN_TIME..=MAX_TIME).contains(t))
                    .ok_or_else(|| {
                        Problem::param(
                            &k,
                            format!("{text:?} is not an RFC 3339 time between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z, like 2026-01-31T00:00:00Z"),
                        )
                    })?;
                if k == "start" {
                    req.start = Some(t);
                } else {
                    req.end = Some(t);
                }
            }
            other => {
                return Err(Problem::param(
                    other,
                    "is not a key of this body; it takes `user`, `reason`, `start` and `end`",
                ))
            }
        }
    }
    if !has_user {
        return Err(Problem::param(
            "user",
            "is required: the exact `user` of the events to erase",
        ));
    }
    if let (Some(s), Some(e)) = (req.start, req.end) {
        if e <= s {
            return Err(Problem::param("end", "must be after `start`"));
        }
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(body: &str) -> Result<EraseRequest, String> {
        parse(&Bytes::from(body.to_string())).map_err(|e| e.detail)
    }

    #[test]
    fn the_body_is_checked_key_by_key() {
        let r =
            p(r#"{"user":"alice","reason":"ticket 7","start":"2026-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(r.user, "alice");
        assert_eq!(r.reason, "ticket 7");
        assert!(r.start.is_some() && r.end.is_none());
        for (body, says) in [
            ("", "not the JSON"),
            ("[]", "must be a JSON object"),
            ("{}", "`user`: is required"),
            (r#"{"user":""}"#, "`user`: must be 1 to"),
            (r#"{"user":null}"#, "`user`: must be a string"),
            (
                r#"{"user":"a","reason":null}"#,
                "`reason`: must be a string",
            ),
            (r#"{"user":"a","x":"y"}"#, "`x`: is not a key"),
            (
                r#"{"user":"a","start":"yesterday"}"#,
                "`start`: \"yesterday\" is not",
            ),
            (
                r#"{"user":"a","end":"1271-11-09T02:33:17-00:00"}"#,
                "between 1970",
            ),
            (
                r#"{"user":"a","start":"2026-01-02T00:00:00Z","end":"2026-01-01T00:00:00Z"}"#,
                "`end`: must be after",
            ),
        ] {
            let e = p(body).unwrap_err();
            assert!(e.contains(says), "{body}: {e}");
        }
    }
}
