//! The data dir's ed25519 signing key, and the text form of its public key.
//!
//! File format: the 32-byte secret key as 64 lowercase hex digits and a newline, mode 0600,
//! created on first start. The collector refuses to start on a key file that group or others
//! may read (anyone who reads it can sign a forged history), and on one that does not hold
//! exactly a key: it is never overwritten, because a new key does not verify the checkpoints
//! already signed. `verify` and `chain export-public-key` only read it.
//!
//! A public key is written `ed25519:<base64 of its 32 bytes>`.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, VerifyingKey};
use rand::RngCore;

use super::ChainError;

pub const KEY_FILE: &str = "signing.key";
const PUBLIC_PREFIX: &str = "ed25519:";

/// The secret key that signs checkpoints and erasure records.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    pub fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// A key for tests.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }
}

/// Checks a signature made by [`SigningKey::sign`].
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

pub fn key_path(chain_dir: &Path) -> PathBuf {
    chain_dir.join(KEY_FILE)
}

/// Loads the signing key of `chain_dir`, or creates it (mode 0600) if there is none. Refuses a
/// key file that group or others can read, or that does not hold a key.
pub fn load_or_create(chain_dir: &Path) -> Result<SigningKey, ChainError> {
    let path = key_path(chain_dir);
    match read(&path)? {
        Some(key) => {
            check_mode(&path)?;
            Ok(key)
        }
        None => create(chain_dir, &path),
    }
}

/// The public key of `chain_dir`'s signing key, `None` when there is no key file. Reads only.
pub fn load_public(chain_dir: &Path) -> Result<Option<VerifyingKey>, ChainError> {
    Ok(read(&key_path(chain_dir))?.map(|k| k.public()))
}

fn read(path: &Path) -> Result<Option<SigningKey>, ChainError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == ErrorKind::InvalidData => {
            return Err(damaged(path, "it is not text"));
        }
        Err(source) => {
            return Err(ChainError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let text = text.trim();
    let mut seed = [0u8; 32];
    if text.len() != 64 || hex::decode_to_slice(text, &mut seed).is_err() {
        return Err(damaged(path, "it does not hold 64 hex digits"));
    }
    Ok(Some(SigningKey(ed25519_dalek::SigningKey::from_bytes(
        &seed,
    ))))
}

fn damaged(path: &Path, why: &str) -> ChainError {
    ChainError::Key {
        path: path.to_path_buf(),
        reason: format!(
            "the key file is damaged ({why}). Restore it from a backup: a new key would not verify the checkpoints already signed. To start a new key on purpose, move the file away (keep it to verify the old checkpoints) and start again"
        ),
    }
}

#[cfg(unix)]
fn check_mode(path: &Path) -> Result<(), ChainError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(super::io_err(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(ChainError::Key {
            path: path.to_path_buf(),
            reason: format!(
                "the key file has mode {:04o}: group or others can read it, and whoever reads it can sign a forged history. Run `chmod 600 {}` and start again (and rotate the key if others may have read it)",
                mode & 0o7777,
                path.display()
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &Path) -> Result<(), ChainError> {
    Ok(())
}

fn create(chain_dir: &Path, path: &Path) -> Result<SigningKey, ChainError> {
    std::fs::create_dir_all(chain_dir).map_err(super::io_err(chain_dir))?;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write = || -> std::io::Result<()> {
        let mut file = options.open(path)?;
        file.write_all(format!("{}\n", hex::encode(seed)).as_bytes())?;
        file.sync_all()?;
        std::fs::File::open(chain_dir)?.sync_all()
    };
    write().map_err(super::io_err(path))?;
    let key = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed));
    tracing::info!(
        path = %path.display(),
        public_key = %format_public_key(&key.public()),
        "chain: created the signing key of this data dir; export its public key with `mcp-audit chain export-public-key` and keep it elsewhere"
    );
    Ok(key)
}

/// `ed25519:<base64>`.
pub fn format_public_key(key: &VerifyingKey) -> String {
    format!(
        "{PUBLIC_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
    )
}

/// Reads a public key written by [`format_public_key`] (the `ed25519:` prefix may be left out).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    let b64 = text.strip_prefix(PUBLIC_PREFIX).unwrap_or(text);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "it is not base64".to_string())?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("it is {} bytes, an ed25519 key is 32", b.len()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "it is not a valid ed25519 public key".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let chain = dir.path().join("chain");
        assert!(load_public(&chain).unwrap().is_none());
        let a = load_or_create(&chain).unwrap();
        let b = load_or_create(&chain).unwrap();
        assert_eq!(a.public(), b.public());
        assert_eq!(load_public(&chain).unwrap(), Some(a.public()));
        let sig = a.sign(b"m");
        assert!(verify(&b.public(), b"m", &sig));
        assert!(!verify(&b.public(), b"n", &sig));
        let text = format_public_key(&a.public());
        assert!(text.starts_with("ed25519:"), "{text}");
        assert_eq!(parse_public_key(&text).unwrap(), a.public());
        assert!(parse_public_key("ed25519:AAAA").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_or_damaged_key_is_refused_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let chain = dir.path().join("chain");
        load_or_create(&chain).unwrap();
        let path = key_path(&chain);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(&chain).err().unwrap().to_string();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not a key\n").unwrap();
        let e = load_or_create(&chain).err().unwrap().to_string();
        assert!(e.contains("damaged"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key\n");
    }
}
