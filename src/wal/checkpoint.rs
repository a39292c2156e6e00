//! Chain heads and checkpoints: where a tenant's hash chain stands at a WAL position.
//!
//! The committer needs every tenant's last `seq` and hash to continue its chain. They come
//! from the WAL's own base file (heads as of some position at or after the oldest segment
//! kept), then from every record kept after it, and from the consumers' checkpoints (which
//! may be ahead of a WAL that lost its newest records). Merging keeps the highest `seq` per
//! tenant, so the order the sources are read in does not matter.
//!
//! ## On disk
//! ```text
//! <wal dir>/base.json     { "position": P, "heads": { tenant: { "seq", "hash" } } }
//! ```
//! written (tmp, fsync, rename, fsync of the folder) whenever segments are deleted.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::decode_hash;

/// The head of one tenant's hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: u64,
    /// Hex SHA-256.
    pub hash: String,
}

/// What a consumer durably covers: every event below `wal_next`, and the chain heads as of
/// then. The index keeps one (see `index/`); the WAL keeps one as its base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every event with a WAL position below this is covered.
    pub wal_next: u64,
    /// Chain heads as of `wal_next` (the last event below it, per tenant).
    pub heads: BTreeMap<String, ChainHead>,
}

/// Chain heads as the committer keeps them: tenant → (seq, hash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heads(pub HashMap<Arc<str>, (u64, [u8; 32])>);

impl Heads {
    /// Keeps, per tenant, the head with the higher `seq`.
    pub fn observe(&mut self, tenant: &str, seq: u64, hash: [u8; 32]) {
        match self.0.get_mut(tenant) {
            Some(head) if head.0 >= seq => {}
            Some(head) => *head = (seq, hash),
            None => {
                self.0.insert(Arc::from(tenant), (seq, hash));
            }
        }
    }

    /// Merges heads written in a checkpoint; a malformed hash is an error, never a zero hash.
    pub fn merge(
        &mut self,
        heads: &BTreeMap<String, ChainHead>,
        source: &str,
    ) -> Result<(), String> {
        for (tenant, head) in heads {
            let hash = decode_hash(&head.hash).ok_or_else(|| {
                format!(
                    "{source}: the chain head of tenant {tenant:?} is not 64 hex digits ({:?}); \
                     restore the file from a backup or run `mcp-audit verify`",
                    head.hash
                )
            })?;
            self.observe(tenant, head.seq, hash);
        }
        Ok(())
    }

    pub fn to_checkpoint_heads(&self) -> BTreeMap<String, ChainHead> {
        self.0
            .iter()
            .map(|(t, (seq, h))| {
                (
                    t.to_string(),
                    ChainHead {
                        seq: *seq,
                        hash: hex::encode(h),
                    },
                )
            })
            .collect()
    }
}

pub(crate) const BASE_FILE: &str = "base.json";

/// Reads a checkpoint file; a missing file is the empty checkpoint.
pub fn read(path: &Path) -> io::Result<Checkpoint> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a valid checkpoint ({e})", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Checkpoint::default()),
        Err(e) => Err(e),
    }
}

/// Writes a checkpoint file atomically: tmp file, fsync, rename, fsync of the folder.
pub fn write(path: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
    let bytes = serde_json::to_vec(checkpoint).map_err(io::Error::other)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut f = File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_keep_the_highest_seq_and_refuse_bad_hashes() {
        let mut h = Heads::default();
        h.observe("t", 5, [5; 32]);
        h.observe("t", 3, [3; 32]);
        assert_eq!(h.0.get("t"), Some(&(5, [5; 32])));
        let mut cp = BTreeMap::new();
        cp.insert(
            "t".to_string(),
            ChainHead {
                seq: 9,
                hash: hex::encode([9u8; 32]),
            },
        );
        h.merge(&cp, "x").unwrap();
        assert_eq!(h.0.get("t"), Some(&(9, [9; 32])));
        cp.insert(
            "u".to_string(),
            ChainHead {
                seq: 1,
                hash: "zz".into(),
            },
        );
        let e = h.merge(&cp, "checkpoint.json").unwrap_err();
        assert!(e.contains("tenant \"u\""), "{e}");
        assert_eq!(h.to_checkpoint_heads().get("t").map(|c| c.seq), Some(9));
    }

    #[test]
    fn files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BASE_FILE);
        assert_eq!(read(&path).unwrap(), Checkpoint::default());
        let cp = Checkpoint {
            wal_next: 7,
            heads: BTreeMap::new(),
        };
        write(&path, &cp).unwrap();
        assert_eq!(read(&path).unwrap(), cp);
        fs::write(&path, b"{").unwrap();
        assert!(read(&path).is_err());
    }
}
