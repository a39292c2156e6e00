//! Signed, tamper-evident history: the data dir's ed25519 signing key, signed checkpoints of
//! every tenant's hash chain, and the signed records of erasures.
//!
//! The WAL chains each tenant's events by hash (`wal/`), which finds an edited, reordered or
//! deleted event *inside* the chain, but not the newest events deleted from its end, nor a
//! chain rebuilt from scratch. So every tenant's chain head is signed every
//! `chain.checkpoint_every_events` events or `chain.checkpoint_every_secs` seconds
//! ([`signer`]), and `mcp-audit verify` checks the stored chain against those signatures: a
//! chain that ends before its last signed checkpoint lost its newest events. Checked against
//! a public key exported earlier and kept elsewhere (`mcp-audit chain export-public-key`),
//! a chain re-signed with a new key is found too.
//!
//! Erasure ([`erase`]) removes a user's events from the WAL and the index but keeps each
//! erased event's tenant, seq and hash, in an erasure marker in the WAL and in a signed
//! erasure record here, so the chain stays verifiable across the hole.
//!
//! What it does not do: keep anything off this machine. Whoever can write the data dir can
//! read the key in it too; the exported public key only tells a re-keyed history apart, and
//! copies of the checkpoint file kept elsewhere are what prove a truncated one.
//!
//! ## On disk
//! ```text
//! <data dir>/chain/signing.key          the ed25519 secret key: 64 hex digits, mode 0600
//! <data dir>/chain/checkpoints.jsonl    one signed checkpoint a line, append-only, fsynced
//! <data dir>/chain/erasures.jsonl       one signed erasure record a line, append-only, fsynced
//! <data dir>/chain/erasures.applied     ids of the erasures fully applied, one a line
//! ```
//! A signature covers a canonical byte string ([`Message`]), never the JSON as written, so
//! reformatting a line does not break it while changing any value does.

pub mod checkpoints;
pub mod erase;
mod jsonl;
pub mod key;
pub mod signer;

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

pub use checkpoints::SignedCheckpoint;
pub use key::{format_public_key, parse_public_key, SigningKey};
pub use signer::{Signer, Tips};

/// The folder of this module's files in the data dir.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("chain")
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("signing key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{path}: {}", crate::error::describe_io(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ChainError + '_ {
    move |source| ChainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checked `[chain]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// Sign a tenant's head after this many events (over all tenants) since the last round.
    pub checkpoint_every_events: u64,
    /// Sign heads that moved at least this often.
    pub checkpoint_every: std::time::Duration,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            checkpoint_every_events: 10_000,
            checkpoint_every: std::time::Duration::from_secs(60),
        }
    }
}

/// The canonical bytes a signature covers: a domain string, then each value with its length
/// or at a fixed width, so no two different records share their bytes.
pub(crate) struct Message(Vec<u8>);

impl Message {
    pub fn new(domain: &str) -> Self {
        let mut m = Message(Vec::with_capacity(256));
        m.bytes(domain.as_bytes());
        m
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(b.len() as u64).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    pub fn time(&mut self, t: OffsetDateTime) -> &mut Self {
        self.0
            .extend_from_slice(&t.unix_timestamp_nanos().to_be_bytes());
        self
    }

    /// An optional value: a presence byte, then the value.
    pub fn opt_time(&mut self, t: Option<OffsetDateTime>) -> &mut Self {
        match t {
            None => self.0.push(0),
            Some(t) => {
                self.0.push(1);
                self.time(t);
            }
        }
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_do_not_run_values_together() {
        let mut a = Message::new("d");
        a.bytes(b"ab").bytes(b"c");
        let mut b = Message::new("d");
        b.bytes(b"a").bytes(b"bc");
        assert_ne!(a.into_bytes(), b.into_bytes());
        let mut c = Message::new("d");
        c.opt_time(None).u64(1);
        let mut d = Message::new("d");
        d.opt_time(Some(OffsetDateTime::UNIX_EPOCH));
        assert_ne!(c.into_bytes(), d.into_bytes());
    }
}
