//! The installation key: the HMAC key behind every marker's fingerprint.
//!
//! File format: the 32 key bytes as 64 lowercase hex digits and a newline, mode 0600. It is
//! generated on first start; a file that exists but does not hold exactly that is an error,
//! never overwritten, because a new key would break following secrets across old events.

use std::io::{ErrorKind, Write};
use std::path::Path;

use rand::RngCore;

use super::ScrubError;

/// Parses 64 hex digits (surrounding whitespace allowed), e.g. a key given in config.
pub fn key_from_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    hex::decode_to_slice(text, &mut key).ok()?;
    Some(key)
}

/// The installation key's file name in a data dir.
pub const KEY_FILE: &str = "scrub.key";

/// Loads the installation key from `path`, or generates one there (mode 0600) if absent.
pub fn load_or_create_key(path: &Path) -> Result<[u8; 32], ScrubError> {
    let fail = |source: std::io::Error| ScrubError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => key_from_hex(&text).ok_or_else(|| {
            fail(std::io::Error::new(
                ErrorKind::InvalidData,
                "expected 64 hex digits (a 32-byte key); not overwriting it",
            ))
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => create(path).map_err(fail),
        Err(e) => Err(fail(e)),
    }
}

fn create(path: &Path) -> std::io::Result<[u8; 32]> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(format!("{}\n", hex::encode(key)).as_bytes())?;
    file.sync_all()?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_then_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/scrub.key");
        let key = load_or_create_key(&path).unwrap();
        assert_eq!(load_or_create_key(&path).unwrap(), key);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_file_is_an_error_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scrub.key");
        std::fs::write(&path, "not a key\n").unwrap();
        let err = load_or_create_key(&path).unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key\n");
    }

    #[test]
    fn hex_keys() {
        assert_eq!(key_from_hex(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(key_from_hex("abcd"), None);
        assert_eq!(key_from_hex(&"zz".repeat(32)), None);
    }
}
