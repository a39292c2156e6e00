//! Query parameters, read strictly: every name at most once, known to the endpoint, valid
//! UTF-8 after percent-decoding; numbers and times in range. Each error names the parameter.
//!
//! The query string is parsed here rather than by a serde extractor because a map
//! deserializer silently keeps the last of repeated names (`?q=a&q=b`), which would run a
//! different search than the caller wrote.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use percent_encoding::percent_decode_str;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::Problem;

pub use crate::event::{MAX_TIME, MIN_TIME};

/// The decoded query string of a request, each name once; an axum extractor.
pub struct RawParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for RawParams {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parse_query(parts.uri.query().unwrap_or(""))
    }
}

/// `application/x-www-form-urlencoded` decoding of one name or value.
fn decode(s: &str) -> Result<String, ()> {
    let plus_as_space: Cow<str> = if s.contains('+') {
        Cow::Owned(s.replace('+', " "))
    } else {
        Cow::Borrowed(s)
    };
    percent_decode_str(&plus_as_space)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| ())
}

fn parse_query(query: &str) -> Result<RawParams, Problem> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name).map_err(|()| {
            let shown = String::from_utf8_lossy(&percent_decode_str(raw_name).collect::<Vec<_>>())
                .into_owned();
            Problem::param(
                &shown,
                "this parameter name is not valid UTF-8 after percent-decoding",
            )
        })?;
        let value = decode(raw_value).map_err(|()| {
            Problem::param(&name, "the value is not valid UTF-8 after percent-decoding")
        })?;
        out.push((name, value));
    }
    let mut counts: HashMap<&str, usize> = HashMap::with_capacity(out.len());
    for (name, _) in &out {
        *counts.entry(name).or_default() += 1;
    }
    // The first repeated name in query order, so the error is the same every time.
    let times = |name: &str| counts.get(name).copied().unwrap_or(0);
    if let Some((name, _)) = out.iter().find(|(n, _)| times(n) > 1) {
        let times = times(name);
        return Err(Problem::param(
            name,
            format!("given {times} times; give it once"),
        ));
    }
    Ok(RawParams(out))
}

/// The query parameters of one endpoint.
pub struct Params(HashMap<String, String>);

impl Params {
    /// Rejects names the endpoint does not know (a typo must not silently widen a search),
    /// and empty values but `q`'s (an empty query matches everything; an empty `limit` or
    /// `start` is a client bug better named than silently replaced by the default).
    pub fn new(raw: RawParams, known: &[&str]) -> Result<Self, Problem> {
        for (k, v) in &raw.0 {
            if !known.contains(&k.as_str()) {
                return Err(Problem::param(
                    k,
                    format!("unknown parameter; known: {}", known.join(", ")),
                ));
            }
            if v.is_empty() && k != "q" {
                return Err(Problem::param(
                    k,
                    "empty; give a value or leave the parameter out",
                ));
            }
        }
        Ok(Self(raw.0.into_iter().collect()))
    }

    pub fn str(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    /// The value, when given and not empty.
    pub fn opt(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// One of a fixed set of names (`noun` names the kind in the error), when given.
    pub fn choice<T>(
        &self,
        name: &str,
        noun: &str,
        parse: impl Fn(&str) -> Option<T>,
        names: &[&str],
    ) -> Result<Option<T>, Problem> {
        match self.opt(name) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| {
                Problem::param(
                    name,
                    format!("{v:?} is not a {noun}; use one of {}", names.join(", ")),
                )
            }),
        }
    }

    pub fn uint(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, Problem> {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(Problem::param(
                    name,
                    format!("must be a whole number from {min} to {max}, got {v:?}"),
                )),
            },
        }
    }

    pub fn time(
        &self,
        name: &str,
        default: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<OffsetDateTime, Problem> {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => parse_time(v, now).map_err(|reason| Problem::param(name, reason)),
        }
    }

    /// `start`/`end` with the default range of the last 24 hours.
    pub fn range(&self, now: OffsetDateTime) -> Result<(OffsetDateTime, OffsetDateTime), Problem> {
        let start = self.time("start", now - Duration::hours(24), now)?;
        // The end is exclusive; default a little in the future so events stamped "now" by a
        // slightly fast clock are still found.
        let end = self.time("end", now + Duration::hours(1), now)?;
        if start >= end {
            return Err(Problem::param("start", "must be before `end`"));
        }
        Ok((start, end))
    }
}

/// Parses a duration like `15m`, `2h`, `7d`, `30s`, `1w`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(secs).map(Duration::seconds)
}

/// Parses `now`, a relative time (`-15m`, `-7d`) or an RFC 3339 time, between 1970 and 9999
/// (times outside cannot be written back as RFC 3339 or have no events).
pub fn parse_time(v: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let t = if v == "now" {
        now
    } else if let Some(rel) = v.strip_prefix('-') {
        parse_duration(rel)
            .and_then(|d| now.checked_sub(d))
            .ok_or_else(|| format!("{v:?} is not a relative time like -15m, -2h or -7d"))?
    } else {
        OffsetDateTime::parse(v, &Rfc3339).map_err(|_| format!("{v:?} is neither an RFC 3339 time (2026-11-24T10:00:00Z) nor a relative time (-15m, -7d)"))?
    };
    if !(MIN_TIME..=MAX_TIME).contains(&t) {
        return Err(format!(
            "{v:?} is outside 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        ));
    }
    Ok(t)
}

/// A path segment (`{id}`, `{name}`...), or a problem naming it when it is not UTF-8.
pub fn path_param(
    name: &str,
    noun: &str,
    segment: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, Problem> {
    segment.map(|axum::extract::Path(v)| v).map_err(|e| {
        Problem::param(
            name,
            format!(
                "{}; percent-encode the {noun} as UTF-8",
                super::problem::lowercase_first(&e.body_text())
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert_eq!(
            parse_time("-15m", now).unwrap(),
            now - Duration::minutes(15)
        );
        assert_eq!(parse_time("-7d", now).unwrap(), now - Duration::days(7));
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert!(parse_time("1970-01-12T13:46:40Z", now).is_ok());
        assert!(parse_time("-15x", now).is_err());
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("-99999999999999999d", now).is_err());
    }

    #[test]
    fn times_outside_1970_to_9999_are_errors() {
        let now = OffsetDateTime::now_utc();
        for v in [
            "-1000000d",
            "-100000w",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
        ] {
            let e = parse_time(v, now).unwrap_err();
            assert!(e.contains("outside 1970"), "{v}: {e}");
        }
        assert!(parse_time("1970-01-01T00:00:00Z", now).is_ok());
        assert!(parse_time("9999-12-31T23:59:59Z", now).is_ok());
    }

    #[test]
    fn query_strings_are_strict() {
        let p = parse_query("q=user%3Aalice+AND+tool%3Ax&limit=5&&flag").unwrap();
        assert_eq!(
            p.0,
            vec![
                ("q".to_string(), "user:alice AND tool:x".to_string()),
                ("limit".to_string(), "5".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
        let e = parse_query("q=a&limit=1&q=b").err().unwrap();
        assert_eq!(e.param.as_deref(), Some("q"));
        assert_eq!(e.detail, "`q`: given 2 times; give it once");
        let e = parse_query("q=%FF").err().unwrap();
        assert_eq!(e.param.as_deref(), Some("q"));
        assert!(parse_query("%FF=1").is_err());
    }
}
