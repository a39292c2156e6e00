//! Secret scrubbing: removes credentials from every string of an event before anything is
//! written anywhere.
//!
//! TODO(scrub helper): implementation (see issue 3).

use crate::event::{Event, Redaction};

#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// A custom detector or allowlist pattern from config is invalid.
    #[error("`{key}`: {reason}")]
    Config { key: String, reason: String },
    #[error("scrub key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
}

/// A user-defined detector from config (`[[scrub.detectors]]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDetector {
    /// Kind written into the redaction marker, e.g. `acme_token`.
    pub kind: String,
    /// Regex; the whole match is the secret, or capture group `secret` if present.
    pub regex: String,
    /// Literal keywords that must appear for the regex to run (prefilter). Optional.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// Checked scrubber settings.
#[derive(Debug, Clone, Default)]
pub struct ScrubConfig {
    pub detectors: Vec<CustomDetector>,
    /// Regexes: a candidate secret that matches any of these is left alone.
    pub allowlist: Vec<String>,
}

/// The scrubber: built once, shared by all ingest tasks (`Send + Sync`).
pub struct Scrubber {}

impl Scrubber {
    /// Builds the detectors; `key` is the per-installation HMAC key for fingerprints.
    pub fn new(_config: &ScrubConfig, _key: [u8; 32]) -> Result<Self, ScrubError> {
        Ok(Self {})
    }

    /// Replaces every secret in every string of the event (arguments, result, error, labels
    /// and the other free-text fields) with `[REDACTED:<kind>:<fp>]` and returns what was
    /// removed, one entry per (kind, path).
    pub fn scrub(&self, _event: &mut Event) -> Vec<Redaction> {
        Vec::new()
    }
}

/// Loads the installation key from `path`, or generates one there (mode 0600) if absent.
pub fn load_or_create_key(_path: &std::path::Path) -> Result<[u8; 32], ScrubError> {
    Ok([0u8; 32])
}

/// Scrubs JSON Lines (placeholder until the scrubber lands).
pub fn scrub_jsonl(
    _s: &Scrubber,
    _input: impl std::io::BufRead,
    _output: impl std::io::Write,
) -> std::io::Result<String> {
    todo!()
}
