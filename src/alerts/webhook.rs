//! The wire side of webhooks: the body formats (the `otlp` one in `otlp.rs`), Standard Webhooks signing and
//! verification, and an HTTP client that refuses loopback and private targets (checked on
//! the addresses a name resolves to, where the connection goes, not only on the name).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::manager::group_values;
use super::{Alert, Format, WebhookConfig};

/// Version of the `generic` body; bumped on any incompatible change.
pub const GENERIC_VERSION: &str = "1";

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn link(external_url: &str, a: &Alert) -> String {
    format!("{}/#/alerts/{}", external_url.trim_end_matches('/'), a.id)
}

/// The body of a notification of `a` (`kind`: `firing`, `resolved` or `test`).
pub fn render(
    w: &WebhookConfig,
    a: &Alert,
    kind: &str,
    external_url: &str,
    now: OffsetDateTime,
) -> String {
    let v = match w.format {
        Format::Generic => generic(a, kind, external_url, now),
        Format::Alertmanager => alertmanager(w, a, kind, external_url),
        Format::Slack => slack(a, kind, external_url),
        Format::Otlp => super::otlp::render(a, kind, &link(external_url, a), now),
    };
    v.to_string()
}

fn generic(a: &Alert, kind: &str, external_url: &str, now: OffsetDateTime) -> Value {
    json!({
        "version": GENERIC_VERSION,
        "type": format!("alert.{kind}"),
        "timestamp": rfc3339(now),
        "data": {
            "id": a.id,
            "tenant": a.tenant,
            "status": if kind == "resolved" { "resolved" } else { "firing" },
            "rule": a.rule,
            "title": a.title,
            "severity": a.severity.as_str(),
            "tags": a.tags,
            "group_key": a.group_key,
            "count": a.count,
            "suppressed_count": a.suppressed_count,
            "first_seen": rfc3339(a.first_seen),
            "last_seen": rfc3339(a.last_seen),
            "explanations": a.explanations,
            "event_ids": a.event_ids,
            "finding_ids": a.finding_ids,
            "resolved_by": a.resolved_by,
            "link": link(external_url, a),
        }
    })
}

fn alertmanager(w: &WebhookConfig, a: &Alert, kind: &str, external_url: &str) -> Value {
    let status = if kind == "resolved" {
        "resolved"
    } else {
        "firing"
    };
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), json!(a.rule));
    labels.insert("severity".into(), json!(a.severity.as_str()));
    labels.insert("tenant".into(), json!(a.tenant));
    for (k, v) in group_values(&a.group_key) {
        labels.entry(k.to_string()).or_insert_with(|| json!(v));
    }
    let annotations = json!({
        "summary": a.title,
        "description": a.explanations.back().cloned().unwrap_or_default(),
        "count": a.count.to_string(),
        "suppressed_count": a.suppressed_count.to_string(),
        "event_ids": a.event_ids.iter().cloned().collect::<Vec<_>>().join(","),
        "tags": a.tags.join(","),
    });
    let ends_at = match (status, a.resolved_at) {
        ("resolved", Some(t)) => rfc3339(t),
        _ => "0001-01-01T00:00:00Z".to_string(),
    };
    let labels = Value::Object(labels);
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\", tenant=\"{}\"}}", a.rule, a.tenant),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": w.name,
        "groupLabels": {"alertname": a.rule, "tenant": a.tenant},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": rfc3339(a.first_seen),
            "endsAt": ends_at,
            "generatorURL": link(external_url, a),
            "fingerprint": &a.id[..16.min(a.id.len())],
        }],
    })
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack(a: &Alert, kind: &str, external_url: &str) -> Value {
    let head = if kind == "resolved" {
        format!("Resolved: {}", a.title)
    } else {
        format!("[{}] {}", a.severity.as_str().to_uppercase(), a.title)
    };
    let why = a.explanations.back().cloned().unwrap_or_default();
    let text = format!(
        "{head} ({rule}): {why} ({count} findings, {suppressed} since the last message) {link}",
        rule = a.rule,
        count = a.count,
        suppressed = a.suppressed_count,
        link = link(external_url, a)
    );
    json!({
        "text": slack_escape(&text),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", slack_escape(&head))}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*Rule*\n`{}`", slack_escape(&a.rule))},
                {"type": "mrkdwn", "text": format!("*Severity*\n{}", a.severity.as_str())},
                {"type": "mrkdwn", "text": format!("*Findings*\n{} ({} suppressed)", a.count, a.suppressed_count)},
                {"type": "mrkdwn", "text": format!("*Group*\n{}", slack_escape(if a.group_key.is_empty() { "-" } else { &a.group_key }))},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("{}\n<{}|Open in mcp-audit>", slack_escape(&why), link(external_url, a))}},
        ],
    })
}

/// The key behind a `whsec_<base64>` secret.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, String> {
    let b64 = s.strip_prefix("whsec_").ok_or_else(|| {
        "a webhook secret starts with `whsec_` followed by base64 (Standard Webhooks); make one with `echo whsec_$(openssl rand -base64 32)`".to_string()
    })?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("the part after `whsec_` is not base64: {e}"))?;
    if key.len() < 16 {
        return Err(format!(
            "a webhook secret needs at least 16 bytes of key, this one has {}",
            key.len()
        ));
    }
    Ok(key)
}

fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `webhook-signature` header: `v1,<sig>` per key, space-separated.
pub fn sign(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| format!("v1,{}", signature(k, id, timestamp, body)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a delivered request: one of the `v1` signatures must be the HMAC of
/// `id.timestamp.body` under one of `keys`, and the timestamp within `tolerance_secs` of
/// `now` (replay protection; `None` skips that check).
pub fn verify(
    keys: &[Vec<u8>],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: Option<i64>,
) -> Result<(), String> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| {
        format!("`webhook-timestamp` {timestamp:?} is not whole seconds since 1970")
    })?;
    if let Some(tol) = tolerance_secs {
        if (now - ts).abs() > tol {
            return Err(format!(
                "`webhook-timestamp` is {} s away from now (more than {tol} s): a replay, or a clock that is off",
                now - ts
            ));
        }
    }
    for k in keys {
        let want = signature(k, id, ts, body);
        for sig in signatures.split(' ') {
            if let Some(("v1", got)) = sig.split_once(',') {
                if constant_time_eq(got.as_bytes(), want.as_bytes()) {
                    return Ok(());
                }
            }
        }
    }
    Err(
        "no `v1` signature in `webhook-signature` matches this body under the given secret(s)"
            .into(),
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Loopback, private, link-local, unspecified, shared (CGNAT) and unique-local addresses:
/// where a webhook must not go unless its destination says `allow_private`.
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
                || v4.octets()[0] == 0
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves names as usual and refuses private answers.
struct Guard;

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| is_private(a.ip())) {
                return Err(format!(
                    "{host} resolves to {}, a loopback or private address; set `allow_private = true` on this webhook if that is intended",
                    bad.ip()
                )
                .into());
            }
            let out: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(out)
        })
    }
}

/// Checks the URL of a destination: http(s) with a host; a literal private address only with
/// `allow_private`.
pub fn check_url(w: &WebhookConfig) -> Result<url::Url, String> {
    let url = url::Url::parse(&w.url)
        .map_err(|e| format!("webhook {:?}: `url` {:?} is not a URL: {e}", w.name, w.url))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "webhook {:?}: `url` must be http:// or https://, got {}",
            w.name,
            url.scheme()
        ));
    }
    let literal = match url.host() {
        None => return Err(format!("webhook {:?}: `url` has no host", w.name)),
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::from([127, 0, 0, 1]))
        }
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = literal {
        if !w.allow_private && is_private(ip) {
            return Err(format!(
                "webhook {:?}: {} is a loopback or private address; set `allow_private = true` on this webhook if that is intended",
                w.name, ip
            ));
        }
    }
    Ok(url)
}

/// An HTTP client for one destination: no redirects (a redirect could lead to a private
/// address), its timeout, and the SSRF guard unless `allow_private`.
pub fn client(w: &WebhookConfig) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(w.timeout)
        .user_agent(concat!("mcp-audit/", env!("CARGO_PKG_VERSION")));
    if !w.allow_private {
        b = b.dns_resolver(Arc::new(Guard));
    }
    b.build()
        .map_err(|e| format!("webhook {:?}: cannot build an HTTP client: {e}", w.name))
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Outcome {
    Delivered(u16),
    /// 410: the receiver is gone for good.
    Gone,
    /// Try again; `retry_after` is the receiver's wish (`Retry-After`), if it said one.
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<std::time::Duration>,
    },
}

/// Sends one signed request.
pub async fn send(
    client: &reqwest::Client,
    w: &WebhookConfig,
    id: &str,
    body: &str,
    now: OffsetDateTime,
) -> Outcome {
    let url = match check_url(w) {
        Ok(u) => u,
        Err(e) => {
            return Outcome::Retry {
                status: None,
                error: e,
                retry_after: None,
            }
        }
    };
    let ts = now.unix_timestamp();
    let req = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            sign(&w.secrets, id, ts, body.as_bytes()),
        )
        .body(body.to_string());
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            if resp.status().is_success() {
                return Outcome::Delivered(status);
            }
            if status == 410 {
                return Outcome::Gone;
            }
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now));
            let text: String = resp
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            Outcome::Retry {
                status: Some(status),
                error: format!("the receiver answered {status}: {}", text.trim()),
                retry_after,
            }
        }
        Err(e) => {
            use std::error::Error as _;
            let mut msg = e.to_string();
            let mut src = e.source();
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            Outcome::Retry {
                status: None,
                error: msg,
                retry_after: None,
            }
        }
    }
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn parse_retry_after(v: &str, now: OffsetDateTime) -> Option<std::time::Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    let t = httpdate::parse_http_date(v.trim()).ok()?;
    let t = OffsetDateTime::from(t);
    Some(std::time::Duration::try_from(t - now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_guard_refuses_a_name_that_resolves_to_a_private_address() {
        use reqwest::dns::Resolve;
        use std::str::FromStr;
        // `localhost` resolves (from /etc/hosts) to loopback: the address, not the name, is
        // what the guard looks at.
        let name = reqwest::dns::Name::from_str("localhost").unwrap();
        let err = match Guard.resolve(name).await {
            Ok(_) => panic!("a loopback answer was let through"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("allow_private"), "{err}");
    }

    #[test]
    fn signatures_verify_under_any_current_key_and_fail_when_anything_changes() {
        let k1 = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let k2 = parse_secret("whsec_c2VjcmV0LWJlaW5nLXJvdGF0ZWQtb3V0LTEyMzQ=").unwrap();
        let sig = sign(&[k1.clone(), k2.clone()], "msg_1", 1_700_000_000, b"{}");
        assert_eq!(sig.split(' ').count(), 2);
        assert!(verify(
            std::slice::from_ref(&k2),
            "msg_1",
            "1700000000",
            &sig,
            b"{}",
            1_700_000_010,
            Some(300)
        )
        .is_ok());
        assert!(verify(
            std::slice::from_ref(&k1),
            "msg_2",
            "1700000000",
            &sig,
            b"{}",
            1_700_000_010,
            Some(300)
        )
        .is_err());
        assert!(verify(
            std::slice::from_ref(&k1),
            "msg_1",
            "1700000001",
            &sig,
            b"{}",
            1_700_000_010,
            Some(300)
        )
        .is_err());
        assert!(verify(
            std::slice::from_ref(&k1),
            "msg_1",
            "1700000000",
            &sig,
            b"{ }",
            1_700_000_010,
            Some(300)
        )
        .is_err());
        let late = verify(
            &[k1],
            "msg_1",
            "1700000000",
            &sig,
            b"{}",
            1_700_001_000,
            Some(300),
        )
        .unwrap_err();
        assert!(late.contains("replay"), "{late}");
        assert!(parse_secret("whsec_c2hvcnQ=")
            .unwrap_err()
            .contains("16 bytes"));
    }
}
