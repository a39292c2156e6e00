//! `GET /api/v1/tail?q=`: Server-Sent Events of live events as they are acknowledged.
//!
//! The filter is a subset of the search language evaluated in memory: space-separated terms
//! that must all match; `field:value` compares a field exactly (`labels.k:v` too), `-term`
//! negates, a bare word matches case-insensitively inside tool, arguments, result and error.
//! A reader that falls behind gets a `lagged` event saying how many events it missed.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

use super::{tenant, Params, Problem};
use crate::app::Shared;
use crate::event::StoredEvent;

#[derive(Debug, Clone)]
enum Term {
    Field {
        field: String,
        value: String,
        negate: bool,
    },
    Word {
        word: String,
        negate: bool,
    },
}

fn field_value<'a>(ev: &'a StoredEvent, field: &str) -> Option<&'a str> {
    match field.strip_prefix("labels.") {
        Some(k) => ev.event.labels.get(k).map(String::as_str),
        None => ev.event.text_field(field),
    }
}

const FIELDS: &[&str] = &[
    "event_id",
    "source",
    "method",
    "server",
    "tool",
    "user",
    "client",
    "conversation_id",
    "session_id",
    "trace_id",
    "remote_addr",
    "outcome",
    "consent",
    "transport",
    "labels.<key>",
];

fn parse(q: &str) -> Result<Vec<Term>, String> {
    q.split_whitespace()
        .filter(|t| *t != "AND")
        .map(|t| {
            let (negate, t) = match t.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, t),
            };
            match t.split_once(':') {
                Some((f, v)) => {
                    if !(FIELDS.contains(&f) || f.starts_with("labels.")) {
                        return Err(format!(
                            "tail filters support {}; `{f}` is not one of them",
                            FIELDS.join(", ")
                        ));
                    }
                    Ok(Term::Field {
                        field: f.to_string(),
                        value: v.trim_matches('"').to_string(),
                        negate,
                    })
                }
                None => Ok(Term::Word {
                    word: t.to_lowercase(),
                    negate,
                }),
            }
        })
        .collect()
}

fn matches(terms: &[Term], ev: &StoredEvent) -> bool {
    terms.iter().all(|t| match t {
        Term::Field {
            field,
            value,
            negate,
        } => (field_value(ev, field) == Some(value.as_str())) != *negate,
        Term::Word { word, negate } => {
            let e = &ev.event;
            let hit = [e.tool.as_str(), e.result.as_str(), e.error.as_str()]
                .iter()
                .any(|s| s.to_lowercase().contains(word.as_str()))
                || e.arguments
                    .to_string()
                    .to_lowercase()
                    .contains(word.as_str());
            hit != *negate
        }
    })
}

pub async fn tail(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    raw: super::RawParams,
) -> Result<Response, Problem> {
    let tenant = tenant(&s, &headers)?;
    let p = Params::new(raw, &["q"])?;
    let terms = parse(p.str("q")).map_err(|r| Problem::param("q", r))?;
    let stream = BroadcastStream::new(s.tail.subscribe()).filter_map(move |item| {
        let out = match item {
            Ok(ev) if *ev.tenant == *tenant && matches(&terms, &ev) => {
                serde_json::to_string(ev.as_ref())
                    .ok()
                    .map(|j| Sse::default().event("event").data(j))
            }
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                Some(Sse::default().event("lagged").data(n.to_string()))
            }
        };
        futures::future::ready(out.map(Ok::<_, Infallible>))
    });
    let mut stop = s.shutdown.clone();
    let stream = stream.take_until(async move {
        let _ = stop.wait_for(|s| *s).await;
    });
    Ok(axum::response::Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn filter() {
        let mut e = Event::new("1", "tools/call", "delete_file");
        e.user = "alice".into();
        e.labels.insert("env".into(), "prod".into());
        let ev = StoredEvent {
            event: e,
            tenant: "t".into(),
            received_at: time::OffsetDateTime::now_utc(),
            seq: 1,
            hash: String::new(),
            redactions: vec![],
        };
        assert!(matches(&parse("tool:delete_file user:alice").unwrap(), &ev));
        assert!(matches(&parse("labels.env:prod -user:bob").unwrap(), &ev));
        assert!(!matches(&parse("user:bob").unwrap(), &ev));
        assert!(matches(&parse("DELETE").unwrap(), &ev));
        assert!(parse("bogus:x").is_err());
    }
}
