//! Who may talk to the collector, as which tenant, and how much.
//!
//! Every request presents `authorization: Bearer <credential>`: a collector token
//! ([`tokens`], created by `mcp-audit token create`) or an OAuth 2.1 JWT access token from the
//! company's identity provider ([`jwt`]). Either resolves to a [`Principal`]: a tenant and the
//! roles it holds. The tenant always comes from the credential, never from an event.
//!
//! With no token ever created and no `[auth.jwt]`, the collector is in open local mode: every
//! caller is an admin of tenant `default`, and only loopback listeners are allowed (checked at
//! start by the app). Creating the first token while it runs ends open mode at once.
//!
//! Failed attempts are counted per address; an address over `auth.max_failures_per_minute` is
//! refused for `auth.lockout_secs` whatever it presents ([`limits`]). Per-credential ingest and
//! API rates are enforced here too, so both front doors apply the same quotas.
//!
//! This module knows no wire format: the front doors turn [`Refusal`] into a gRPC status or an
//! HTTP problem.

pub mod jwt;
pub mod limits;
pub mod tokens;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::metrics::Metrics;
use limits::{Buckets, Failures, RateLimit};
use tokens::Tokens;

/// The tenant of open local mode.
pub const DEFAULT_TENANT: &str = "default";
/// The tenant of the collector's own audit trail (token failures, rule changes, erasures...).
pub const SYSTEM_TENANT: &str = "_system";

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Ship events, nothing else.
    Ingest,
    /// Read its own tenant's events, findings and alerts.
    Read,
    /// Everything: read, ship, and manage rules, silences, alerts, webhooks and erasure.
    Admin,
}

impl Role {
    pub const NAMES: &'static [&'static str] = &["ingest", "read", "admin"];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "ingest" => Some(Role::Ingest),
            "read" => Some(Role::Read),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Role::Ingest => 1,
            Role::Read => 2,
            Role::Admin => 4,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Arc<str>,
    roles: u8,
    /// Names the credential in logs, quotas and the audit trail: `token:<id>`, `jwt:<sub>`,
    /// `open`. Never the secret.
    pub credential: Arc<str>,
}

impl Principal {
    pub fn new(tenant: &str, roles: &[Role], credential: &str) -> Self {
        Self {
            tenant: Arc::from(tenant),
            roles: roles.iter().fold(0, |acc, r| acc | r.bit()),
            credential: Arc::from(credential),
        }
    }

    /// Whether this caller holds `role` (admin holds every role).
    pub fn has(&self, role: Role) -> bool {
        self.roles & (role.bit() | Role::Admin.bit()) != 0
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// The roles held, for messages.
    pub fn roles(&self) -> Vec<&'static str> {
        [Role::Ingest, Role::Read, Role::Admin]
            .into_iter()
            .filter(|r| self.roles & r.bit() != 0)
            .map(Role::as_str)
            .collect()
    }

    /// Refuses a caller without `role`, naming what it has.
    pub fn require(&self, role: Role) -> Result<(), Refusal> {
        if self.has(role) {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "this credential ({}) has the role {} of tenant {:?}; this needs the `{}` role",
                self.credential,
                self.roles().join(", "),
                &*self.tenant,
                role.as_str()
            )))
        }
    }
}

/// Why a request was refused. The message never says more about a credential than the caller
/// already knows.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    #[error("missing `authorization: Bearer <token>`: this collector requires a collector token (`mcp-audit token create`) or an access token")]
    Missing,
    #[error("the `authorization` header must be `Bearer <token>`")]
    Malformed,
    #[error("the token is unknown, expired or revoked")]
    BadToken,
    #[error("the access token was refused: {0}")]
    BadJwt(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("too many failed attempts from this address; retry in {} s", retry_after.as_secs().max(1))]
    LockedOut { retry_after: Duration },
    #[error("{what}; retry in {} s", retry_after.as_secs().max(1))]
    Quota { what: String, retry_after: Duration },
}

impl Refusal {
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            Refusal::Missing | Refusal::Malformed | Refusal::BadToken | Refusal::BadJwt(_) => {
                ErrorKind::Unauthenticated
            }
            Refusal::Forbidden(_) => ErrorKind::PermissionDenied,
            Refusal::LockedOut { .. } | Refusal::Quota { .. } => ErrorKind::ResourceExhausted,
        }
    }

    /// The wait in whole seconds, at least 1, as `Retry-After` and `retry-after` carry it.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after()
            .map(|d| d.as_secs_f64().ceil().max(1.0) as u64)
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Refusal::LockedOut { retry_after } | Refusal::Quota { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

/// `[auth]`: checked settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub max_failures_per_minute: u32,
    pub lockout: Duration,
    /// Events per second per credential (and the burst above it); `None` is unlimited.
    pub ingest: Option<RateLimit>,
    /// API requests per second per credential; `None` is unlimited.
    pub api: Option<RateLimit>,
    pub jwt: Option<jwt::JwtConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            max_failures_per_minute: 20,
            lockout: Duration::from_secs(60),
            ingest: None,
            api: None,
            jwt: None,
        }
    }
}

/// A refused attempt, for the audit trail.
#[derive(Debug, Clone)]
pub struct FailedAttempt {
    pub addr: Option<IpAddr>,
    pub reason: String,
    /// `token:<id>` when the token named one, else empty.
    pub credential: String,
}

/// Receives failed attempts (the collector records them as `_system` events).
pub type FailureSink = Arc<dyn Fn(FailedAttempt) + Send + Sync>;

/// The authenticator shared by both front doors. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    tokens: RwLock<Loaded>,
    jwt: Option<jwt::Verifier>,
    failures: Failures,
    ingest_quota: Option<Buckets>,
    api_quota: Option<Buckets>,
    metrics: Arc<Metrics>,
    sink: RwLock<Option<FailureSink>>,
}

struct Loaded {
    tokens: Tokens,
    stamp: Option<(SystemTime, u64)>,
}

fn stamp(p: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Auth {
    /// Reads the token file of `data_dir` and sets up the JWT verifier.
    pub fn open(
        data_dir: &Path,
        config: &AuthConfig,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let path = tokens::path(data_dir);
        let stamp = stamp(&path);
        let tokens = Tokens::load(data_dir)?;
        let jwt = config.jwt.clone().map(jwt::Verifier::new).transpose()?;
        Ok(Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                tokens: RwLock::new(Loaded { tokens, stamp }),
                jwt,
                failures: Failures::new(config.max_failures_per_minute, config.lockout),
                ingest_quota: config.ingest.map(Buckets::new),
                api_quota: config.api.map(Buckets::new),
                metrics,
                sink: RwLock::new(None),
            }),
        })
    }

    /// Tokens in the token file (revoked and expired ones included).
    pub fn token_count(&self) -> usize {
        self.read_tokens(|t| t.records().len())
    }

    /// Open local mode: no token ever created and no identity provider configured.
    pub fn is_open(&self) -> bool {
        self.inner.jwt.is_none() && !self.read_tokens(|t| t.any())
    }

    pub fn jwt(&self) -> Option<&jwt::Verifier> {
        self.inner.jwt.as_ref()
    }

    /// Where refused attempts go, once the collector can store them.
    pub fn set_failure_sink(&self, sink: FailureSink) {
        if let Ok(mut s) = self.inner.sink.write() {
            *s = Some(sink);
        }
    }

    fn read_tokens<T>(&self, f: impl FnOnce(&Tokens) -> T) -> T {
        match self.inner.tokens.read() {
            Ok(l) => f(&l.tokens),
            Err(poisoned) => f(&poisoned.into_inner().tokens),
        }
    }

    /// Re-reads the token file if it changed; called every second by the collector. A damaged
    /// file keeps the tokens already loaded and says so.
    pub fn reload_tokens(&self) {
        let path = tokens::path(&self.inner.data_dir);
        let now = stamp(&path);
        let changed = match self.inner.tokens.read() {
            Ok(l) => l.stamp != now,
            Err(_) => true,
        };
        if !changed {
            return;
        }
        let was_open = self.is_open();
        match Tokens::load(&self.inner.data_dir) {
            Ok(tokens) => {
                let n = tokens.records().len();
                if let Ok(mut l) = self.inner.tokens.write() {
                    *l = Loaded { tokens, stamp: now };
                }
                tracing::info!(tokens = n, "auth: reloaded {}", path.display());
                if was_open && !self.is_open() {
                    tracing::warn!("auth: a token was created, open local mode ends: every request now needs a credential");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "auth: kept the tokens already loaded");
                if let Ok(mut l) = self.inner.tokens.write() {
                    l.stamp = now;
                }
            }
        }
    }

    /// Resolves the caller of a request: its `authorization` header value and its address.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        addr: Option<IpAddr>,
    ) -> Result<Principal, Refusal> {
        if let Some(addr) = addr {
            if let Some(retry_after) = self.inner.failures.locked(addr) {
                self.inner.metrics.auth_refused("locked_out");
                return Err(Refusal::LockedOut { retry_after });
            }
        }
        if self.is_open() {
            return Ok(Principal::new(DEFAULT_TENANT, &[Role::Admin], "open"));
        }
        let Some(header) = authorization else {
            self.inner.metrics.auth_refused("missing");
            return Err(Refusal::Missing);
        };
        let credential = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => return Err(self.failed(addr, "malformed header", "", Refusal::Malformed)),
        };
        if tokens::is_token(credential) {
            let now = OffsetDateTime::now_utc();
            let checked = self.read_tokens(|t| {
                t.check(credential, now)
                    .map(|r| Principal::new(&r.tenant, &[r.role], &format!("token:{}", r.id)))
            });
            return checked.map_err(|refused| {
                let id = tokens::id_of(credential)
                    .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                    .map(|id| format!("token:{id}"))
                    .unwrap_or_default();
                self.failed(addr, refused.as_str(), &id, Refusal::BadToken)
            });
        }
        match &self.inner.jwt {
            Some(v) => v.verify(credential).await.map_err(|reason| {
                self.failed(addr, &format!("jwt: {reason}"), "", Refusal::BadJwt(reason))
            }),
            None => Err(self.failed(addr, "not a collector token", "", Refusal::BadToken)),
        }
    }

    /// Counts a failure against `addr`, records it, and returns `refusal`.
    fn failed(
        &self,
        addr: Option<IpAddr>,
        reason: &str,
        credential: &str,
        refusal: Refusal,
    ) -> Refusal {
        let metric = reason.split(':').next().unwrap_or(reason).replace(' ', "_");
        self.inner.metrics.auth_refused(&metric);
        if let Some(addr) = addr {
            self.inner.failures.record(addr);
        }
        tracing::warn!(addr = ?addr, reason, credential, "auth: refused a credential");
        let sink = self.inner.sink.read().ok().and_then(|s| s.clone());
        if let Some(sink) = sink {
            sink(FailedAttempt {
                addr,
                reason: reason.to_string(),
                credential: credential.to_string(),
            });
        }
        refusal
    }

    /// Takes `events` from the caller's ingest quota.
    pub fn take_ingest(&self, who: &Principal, events: u32) -> Result<(), Refusal> {
        self.take(
            self.inner.ingest_quota.as_ref(),
            who,
            events,
            "ingest_quota",
            "ingest quota of {rate} events/s (burst {burst}, `auth.ingest_events_per_sec`, `auth.ingest_burst`)",
        )
    }

    /// Takes one request from the caller's API quota.
    pub fn take_api(&self, who: &Principal) -> Result<(), Refusal> {
        self.take(
            self.inner.api_quota.as_ref(),
            who,
            1,
            "api_quota",
            "API quota of {rate} requests/s (burst {burst}, `auth.api_requests_per_sec`, `auth.api_burst`)",
        )
    }

    /// Takes `n` from `who`'s bucket of `quota` (none configured: unlimited); `what` names
    /// the quota, with `{rate}` and `{burst}` filled in.
    fn take(
        &self,
        quota: Option<&Buckets>,
        who: &Principal,
        n: u32,
        metric: &str,
        what: &str,
    ) -> Result<(), Refusal> {
        let Some(q) = quota else {
            return Ok(());
        };
        q.take(&who.credential, n).map_err(|retry_after| {
            self.inner.metrics.auth_refused(metric);
            let what = what
                .replace("{rate}", &q.limit().per_sec.to_string())
                .replace("{burst}", &q.limit().burst.to_string());
            Refusal::Quota {
                what: format!("{} is over its {what}", who.credential),
                retry_after,
            }
        })
    }
}

/// Tenant names: 1–64 of letters, digits, `-`, `_`, `.`, not starting with `_` (reserved for
/// the collector's own tenants, such as `_system`).
pub fn check_tenant(t: &str) -> Result<(), String> {
    if t.is_empty() || t.len() > 64 {
        return Err(format!("tenant {t:?} must be 1 to 64 characters"));
    }
    if t.starts_with('_') {
        return Err(format!(
            "tenant {t:?} starts with `_`, which is reserved for the collector's own tenants"
        ));
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "tenant {t:?} may only hold letters, digits, `-`, `_` and `.`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_holds_every_role() {
        let p = Principal::new("t", &[Role::Admin], "x");
        assert!(p.has(Role::Ingest) && p.has(Role::Read));
        let p = Principal::new("t", &[Role::Ingest], "x");
        assert!(!p.has(Role::Read) && !p.is_admin());
        assert!(p.require(Role::Read).is_err());
    }

    #[test]
    fn tenant_names() {
        assert!(check_tenant("acme-prod.eu").is_ok());
        assert!(check_tenant("_system").is_err());
        assert!(check_tenant("").is_err());
        assert!(check_tenant("a b").is_err());
    }
}
