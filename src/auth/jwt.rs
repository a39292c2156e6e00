//! OAuth 2.1 resource-server mode: JWT access tokens from the company's identity provider.
//!
//! A token is accepted when its signature verifies against a key of the provider's JWKS
//! (fetched from `auth.jwt.jwks_url`, cached by `kid`, fetched again when a token names an
//! unknown `kid`, at most once per `jwks_refresh_min_secs`), its `iss` and `aud` are the
//! configured ones, and it has not expired (`exp` required, `nbf` honoured, 60 s leeway).
//! Only asymmetric algorithms are accepted (RS*, PS*, ES*, EdDSA): a shared-secret HS* token
//! or `none` is refused whatever the key set says.
//!
//! Tenant and roles come from claims: the tenant from `tenant_claim`, roles from the
//! space-separated `scope` claim (or an `scp` array): `mcp-audit:ingest`, `mcp-audit:read`,
//! `mcp-audit:admin`. The resource metadata of RFC 9728 is built here too.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::{check_tenant, Principal, Role};

/// `[auth.jwt]`: checked settings.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub jwks_url: url::Url,
    pub issuer: String,
    pub audience: String,
    pub tenant_claim: String,
    /// The collector's own URL as clients reach it (RFC 9728 `resource`); empty takes the
    /// request's `Host`.
    pub resource: String,
    pub refresh_min: Duration,
}

/// Scope names of the three roles.
pub const SCOPES: [(&str, Role); 3] = [
    ("mcp-audit:ingest", Role::Ingest),
    ("mcp-audit:read", Role::Read),
    ("mcp-audit:admin", Role::Admin),
];

/// Keys by `kid`, and when they were fetched.
struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

pub struct Verifier {
    config: JwtConfig,
    client: reqwest::Client,
    keys: RwLock<KeySet>,
    /// One fetch at a time; callers that waited find the keys it brought.
    fetching: tokio::sync::Mutex<()>,
}

const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl Verifier {
    pub fn new(config: JwtConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            config,
            client,
            keys: RwLock::new(KeySet {
                keys: HashMap::new(),
                fetched: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// Fetches the key set now (at start, so the first request does not wait for it).
    pub async fn prefetch(&self) {
        if let Err(e) = self.fetch().await {
            tracing::error!(url = %self.config.jwks_url, error = %e, "auth: cannot fetch the identity provider's keys (`auth.jwt.jwks_url`); access tokens are refused until it answers");
        }
    }

    async fn fetch(&self) -> Result<(), String> {
        let resp = self
            .client
            .get(self.config.jwks_url.clone())
            .send()
            .await
            .map_err(|e| format!("cannot fetch {}: {e}", self.config.jwks_url))?;
        if !resp.status().is_success() {
            return Err(format!(
                "{} answered {}",
                self.config.jwks_url,
                resp.status()
            ));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("cannot read {}: {e}", self.config.jwks_url))?;
        if body.len() > 1 << 20 {
            return Err(format!("{} sent over 1 MiB of keys", self.config.jwks_url));
        }
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| format!("{} is not a JWK set: {e}", self.config.jwks_url))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(k) => {
                    keys.insert(kid, k);
                }
                Err(e) => tracing::warn!(kid, error = %e, "auth: skipped a key of the JWK set"),
            }
        }
        tracing::info!(keys = keys.len(), url = %self.config.jwks_url, "auth: fetched the identity provider's keys");
        if let Ok(mut k) = self.keys.write() {
            *k = KeySet {
                keys,
                fetched: Some(Instant::now()),
            };
        }
        Ok(())
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.keys.get(kid).cloned()
    }

    /// The key for `kid`, fetching the key set again when it is unknown and the last fetch
    /// is old enough.
    async fn key_for(&self, kid: &str) -> Result<DecodingKey, String> {
        if let Some(k) = self.key(kid) {
            return Ok(k);
        }
        let _one = self.fetching.lock().await;
        if let Some(k) = self.key(kid) {
            return Ok(k);
        }
        let recent = self
            .keys
            .read()
            .ok()
            .and_then(|k| k.fetched)
            .is_some_and(|at| at.elapsed() < self.config.refresh_min);
        if !recent {
            self.fetch().await?;
        }
        self.key(kid)
            .ok_or_else(|| format!("no key with kid {kid:?} in the identity provider's key set"))
    }

    /// Verifies an access token and maps its claims to a caller.
    pub async fn verify(&self, token: &str) -> Result<Principal, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT ({e})"))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(format!(
                "algorithm {:?} is not accepted (only asymmetric signatures)",
                header.alg
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| "the token header has no `kid`".to_string())?;
        let key = self.key_for(&kid).await?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.validate_nbf = true;
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &v)
            .map_err(|e| e.to_string())?;
        self.principal(&data.claims)
    }

    fn principal(&self, claims: &serde_json::Map<String, Value>) -> Result<Principal, String> {
        let claim = &self.config.tenant_claim;
        let tenant = claims.get(claim).and_then(Value::as_str).ok_or_else(|| {
            format!("the token has no string claim `{claim}` (`auth.jwt.tenant_claim`)")
        })?;
        check_tenant(tenant).map_err(|e| format!("claim `{claim}`: {e}"))?;
        let mut scopes: Vec<&str> = Vec::new();
        if let Some(s) = claims.get("scope").and_then(Value::as_str) {
            scopes.extend(s.split_whitespace());
        }
        if let Some(a) = claims.get("scp").and_then(Value::as_array) {
            scopes.extend(a.iter().filter_map(Value::as_str));
        }
        let roles: Vec<Role> = SCOPES
            .iter()
            .filter(|(name, _)| scopes.contains(name))
            .map(|(_, r)| *r)
            .collect();
        if roles.is_empty() {
            return Err(format!(
                "the token has none of the scopes {}",
                SCOPES.map(|(n, _)| n).join(", ")
            ));
        }
        let sub: String = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .chars()
            .filter(|c| !c.is_control())
            .take(128)
            .collect();
        Ok(Principal::new(tenant, &roles, &format!("jwt:{sub}")))
    }

    /// The RFC 9728 protected-resource metadata, for a collector reached as `resource`.
    pub fn metadata(&self, resource: &str) -> Value {
        serde_json::json!({
            "resource": resource,
            "authorization_servers": [self.config.issuer],
            "scopes_supported": SCOPES.map(|(n, _)| n),
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp-audit",
        })
    }
}
