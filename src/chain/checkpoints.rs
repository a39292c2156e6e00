//! Signed checkpoints: where one tenant's hash chain stood at one moment, signed.
//!
//! A line of `checkpoints.jsonl`:
//! ```text
//! {"tenant":"acme","seq":10000,"hash":"<64 hex>","wal_next":123456,"time":"2026-01-02T03:04:05Z","sig":"<base64>"}
//! ```
//! `hash` is the chain hash of the tenant's event `seq`, and every event of the tenant up to
//! `seq` has a WAL position below `wal_next`. `sig` is the ed25519 signature of
//! [`SignedCheckpoint::message`].

use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::jsonl::{self, Lines};
use super::key::{self, SigningKey};
use super::{ChainError, Message};
use crate::event::decode_hash;

pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";

pub fn path(chain_dir: &Path) -> PathBuf {
    chain_dir.join(CHECKPOINTS_FILE)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    pub tenant: String,
    pub seq: u64,
    /// Hex SHA-256: the chain hash of event `seq`.
    pub hash: String,
    pub wal_next: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Base64 ed25519 signature of [`Self::message`].
    pub sig: String,
}

impl SignedCheckpoint {
    pub fn sign(
        key: &SigningKey,
        tenant: &str,
        seq: u64,
        hash: &[u8; 32],
        wal_next: u64,
        time: OffsetDateTime,
    ) -> Self {
        let mut cp = SignedCheckpoint {
            tenant: tenant.to_string(),
            seq,
            hash: hex::encode(hash),
            wal_next,
            time,
            sig: String::new(),
        };
        let sig = key.sign(&cp.message(hash));
        cp.sig = base64::engine::general_purpose::STANDARD.encode(sig);
        cp
    }

    /// The signed bytes.
    fn message(&self, hash: &[u8; 32]) -> Vec<u8> {
        let mut m = Message::new("mcp-audit checkpoint v1");
        m.bytes(self.tenant.as_bytes())
            .u64(self.seq)
            .bytes(hash)
            .u64(self.wal_next)
            .time(self.time);
        m.into_bytes()
    }

    /// The chain hash it signs, or why it is unreadable.
    pub fn hash_bytes(&self) -> Result<[u8; 32], String> {
        decode_hash(&self.hash)
            .ok_or_else(|| format!("`hash` {:?} is not 64 hex digits", self.hash))
    }

    /// Checks the signature against `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), String> {
        let hash = self.hash_bytes()?;
        let sig: [u8; 64] = base64::engine::general_purpose::STANDARD
            .decode(&self.sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("`sig` is not a base64 ed25519 signature")?;
        if key::verify(key, &self.message(&hash), &sig) {
            Ok(())
        } else {
            Err("the signature does not verify".into())
        }
    }
}

/// Every line of the checkpoint file (read-only).
pub fn read_all(chain_dir: &Path) -> Result<Lines<SignedCheckpoint>, ChainError> {
    jsonl::read(&path(chain_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_every_value() {
        let key = SigningKey::from_seed([7; 32]);
        let t = OffsetDateTime::now_utc();
        let cp = SignedCheckpoint::sign(&key, "acme", 5, &[3; 32], 9, t);
        cp.verify(&key.public()).unwrap();
        let json = serde_json::to_string(&cp).unwrap();
        let back: SignedCheckpoint = serde_json::from_str(&json).unwrap();
        back.verify(&key.public()).unwrap();
        for tampered in [
            SignedCheckpoint {
                seq: 6,
                ..cp.clone()
            },
            SignedCheckpoint {
                tenant: "other".into(),
                ..cp.clone()
            },
            SignedCheckpoint {
                hash: hex::encode([4u8; 32]),
                ..cp.clone()
            },
            SignedCheckpoint {
                wal_next: 10,
                ..cp.clone()
            },
            SignedCheckpoint {
                time: t + time::Duration::seconds(1),
                ..cp.clone()
            },
        ] {
            assert!(tampered.verify(&key.public()).is_err());
        }
        let other = SigningKey::from_seed([8; 32]);
        assert!(cp.verify(&other.public()).is_err());
        let bad = SignedCheckpoint {
            sig: "!!".into(),
            ..cp
        };
        assert!(bad.verify(&key.public()).unwrap_err().contains("`sig`"));
    }
}
