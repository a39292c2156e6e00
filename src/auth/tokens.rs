//! Collector tokens: created and revoked by `mcp-audit token`, checked by the running
//! collector.
//!
//! A token is `mcat_<id>_<secret>`: `id` (12 hex digits) names it in `token list` and logs,
//! `secret` is 32 random bytes (base64url). Only the SHA-256 of the secret is stored; the
//! secret has 256 bits of entropy, so a fast hash is enough, and the stored hash is compared
//! in constant time.
//!
//! ## On disk
//! ```text
//! <data dir>/tokens.json   { "version": 1, "tokens": [ { "id", "name", "tenant", "role",
//!                            "created_at", "expires_at"?, "revoked_at"?, "secret_sha256" } ] }
//! ```
//! Mode 0600, written whole (tmp, fsync, rename, fsync of the folder) under an exclusive lock
//! of `tokens.lock`, so two `token` commands never lose each other's change. The collector
//! re-reads the file when its modification time or size changes.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;

use super::Role;

const PREFIX: &str = "mcat_";
const FILE: &str = "tokens.json";

/// One stored token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub tenant: String,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    secret_sha256: String,
}

impl TokenRecord {
    /// Why this token cannot be used now, if it cannot.
    pub fn unusable(&self, now: OffsetDateTime) -> Option<&'static str> {
        if self.revoked_at.is_some() {
            Some("revoked")
        } else if self.expires_at.is_some_and(|e| e <= now) {
            Some("expired")
        } else {
            None
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenRecord>,
}

/// The tokens of a data dir.
#[derive(Debug, Default, Clone)]
pub struct Tokens {
    records: Vec<TokenRecord>,
}

/// Why a presented token was not accepted (what the failure log and `_system` event say; the
/// caller only learns "unknown, expired or revoked").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Malformed,
    Unknown,
    WrongSecret,
    Expired,
    Revoked,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Malformed => "malformed",
            Refused::Unknown => "unknown",
            Refused::WrongSecret => "wrong_secret",
            Refused::Expired => "expired",
            Refused::Revoked => "revoked",
        }
    }
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Whether `credential` looks like one of our tokens (rather than a JWT).
pub fn is_token(credential: &str) -> bool {
    credential.starts_with(PREFIX)
}

/// The id part of a token (`mcat_<id>_<secret>`), or of a bare `mcat_<id>`.
pub fn id_of(credential: &str) -> Option<&str> {
    credential.strip_prefix(PREFIX)?.split('_').next()
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Tokens {
    /// Reads the tokens of `data_dir`; no file means no tokens.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let p = path(data_dir);
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => anyhow::bail!(
                "cannot read {}: {}; fix its permissions",
                p.display(),
                crate::error::describe_io(&e)
            ),
        };
        let file: TokenFile = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is damaged (line {}, column {}: {e}); restore it from a backup or move it away and create the tokens again",
                p.display(),
                e.line(),
                e.column()
            )
        })?;
        if file.version != 1 {
            anyhow::bail!(
                "{} has version {}, this mcp-audit reads version 1; use a matching mcp-audit",
                p.display(),
                file.version
            );
        }
        Ok(Self {
            records: file.tokens,
        })
    }

    pub fn records(&self) -> &[TokenRecord] {
        &self.records
    }

    /// Whether any token was ever created (revoked and expired ones count: revoking every
    /// token must never reopen the collector).
    pub fn any(&self) -> bool {
        !self.records.is_empty()
    }

    /// The record of a presented token, or why it is refused. The secret's hash is compared
    /// in constant time; the id is public.
    pub fn check(&self, credential: &str, now: OffsetDateTime) -> Result<&TokenRecord, Refused> {
        let rest = credential.strip_prefix(PREFIX).ok_or(Refused::Malformed)?;
        let (id, secret) = rest.split_once('_').ok_or(Refused::Malformed)?;
        let record = self
            .records
            .iter()
            .find(|r| r.id == id)
            .ok_or(Refused::Unknown)?;
        let presented = digest(secret);
        if !bool::from(presented.as_bytes().ct_eq(record.secret_sha256.as_bytes())) {
            return Err(Refused::WrongSecret);
        }
        match record.unusable(now) {
            Some("revoked") => Err(Refused::Revoked),
            Some(_) => Err(Refused::Expired),
            None => Ok(record),
        }
    }
}

/// What `token create` asks for.
pub struct NewToken<'a> {
    pub tenant: &'a str,
    pub role: Role,
    pub name: &'a str,
    pub expires_at: Option<OffsetDateTime>,
}

/// Creates a token and returns it (the only time its secret exists outside the caller).
pub fn create(data_dir: &Path, new: NewToken<'_>) -> anyhow::Result<(TokenRecord, String)> {
    super::check_tenant(new.tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let mut id = [0u8; 6];
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut id);
    rand::rng().fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let record = TokenRecord {
        id: id.clone(),
        name: new.name.to_string(),
        tenant: new.tenant.to_string(),
        role: new.role,
        created_at: OffsetDateTime::now_utc(),
        expires_at: new.expires_at,
        revoked_at: None,
        secret_sha256: digest(&secret),
    };
    update(data_dir, |tokens| {
        tokens.push(record.clone());
        Ok(())
    })?;
    Ok((record, format!("{PREFIX}{id}_{secret}")))
}

/// Revokes the token `id` (the id `token list` shows, or a whole token).
pub fn revoke(data_dir: &Path, id: &str) -> anyhow::Result<TokenRecord> {
    let id = id_of(id).unwrap_or(id);
    let mut revoked = None;
    update(data_dir, |tokens| {
        let r = tokens.iter_mut().find(|r| r.id == id).ok_or_else(|| {
            anyhow::anyhow!("no token with id {id:?}; `mcp-audit token list` shows the ids")
        })?;
        if r.revoked_at.is_none() {
            r.revoked_at = Some(OffsetDateTime::now_utc());
        }
        revoked = Some(r.clone());
        Ok(())
    })?;
    revoked.ok_or_else(|| anyhow::anyhow!("token {id:?} vanished while revoking it"))
}

/// Reads, changes and rewrites the token file under its lock.
fn update(
    data_dir: &Path,
    change: impl FnOnce(&mut Vec<TokenRecord>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    fs::create_dir_all(data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create data dir {}: {e}", data_dir.display()))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join("tokens.lock"))
        .map_err(|e| anyhow::anyhow!("cannot open {}/tokens.lock: {e}", data_dir.display()))?;
    lock.lock()
        .map_err(|e| anyhow::anyhow!("cannot lock {}/tokens.lock: {e}", data_dir.display()))?;
    let mut tokens = Tokens::load(data_dir)?.records;
    change(&mut tokens)?;
    let body = serde_json::to_vec_pretty(&TokenFile { version: 1, tokens })?;
    let target = path(data_dir);
    let tmp = data_dir.join("tokens.json.tmp");
    let write = || -> std::io::Result<()> {
        let mut f = open_private(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        fs::rename(&tmp, &target)?;
        File::open(data_dir)?.sync_all()
    };
    write().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", target.display()))
}

#[cfg(unix)]
fn open_private(p: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(p)
}

#[cfg(not(unix))]
fn open_private(p: &Path) -> std::io::Result<File> {
    File::create(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_check_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let (rec, token) = create(
            dir.path(),
            NewToken {
                tenant: "acme",
                role: Role::Read,
                name: "ci",
                expires_at: None,
            },
        )
        .unwrap();
        let stored = fs::read_to_string(path(dir.path())).unwrap();
        let secret = token.rsplit('_').next().unwrap();
        assert!(!stored.contains(secret), "the secret itself is stored");
        let now = OffsetDateTime::now_utc();
        let tokens = Tokens::load(dir.path()).unwrap();
        assert_eq!(tokens.check(&token, now).unwrap().tenant, "acme");
        let mut wrong = token.clone();
        wrong.pop();
        wrong.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(tokens.check(&wrong, now), Err(Refused::WrongSecret));
        assert_eq!(tokens.check("mcat_nope", now), Err(Refused::Malformed));
        assert_eq!(
            tokens.check("mcat_000000000000_x", now),
            Err(Refused::Unknown)
        );
        revoke(dir.path(), &rec.id).unwrap();
        let tokens = Tokens::load(dir.path()).unwrap();
        assert_eq!(tokens.check(&token, now), Err(Refused::Revoked));
        assert!(tokens.any());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, token) = create(
            dir.path(),
            NewToken {
                tenant: "acme",
                role: Role::Ingest,
                name: "",
                expires_at: Some(OffsetDateTime::now_utc() - time::Duration::seconds(1)),
            },
        )
        .unwrap();
        let tokens = Tokens::load(dir.path()).unwrap();
        assert_eq!(
            tokens.check(&token, OffsetDateTime::now_utc()),
            Err(Refused::Expired)
        );
    }
}
