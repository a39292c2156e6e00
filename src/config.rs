//! Configuration: TOML file, then `MCP_AUDIT_*` environment, then command-line flags, merged
//! into one raw table, parsed strictly ([`RawConfig`], unknown keys are errors) and checked
//! once into [`Config`]. The running code only sees checked values.
//!
//! Environment names are `MCP_AUDIT_<KEY>` for top-level keys and
//! `MCP_AUDIT_<SECTION>_<KEY>` for keys of a section, e.g. `MCP_AUDIT_DATA_DIR`,
//! `MCP_AUDIT_GRPC_LISTEN`, `MCP_AUDIT_INDEX_COMMIT_INTERVAL_MS`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::scrub::{CustomDetector, ScrubConfig};

/// Environment variables with this prefix configure `serve`.
pub const ENV_PREFIX: &str = "MCP_AUDIT_";
/// Client-side variables (used by `ship`, `search`...), not config keys of `serve`.
const CLIENT_ENV: &[&str] = &["ENDPOINT", "TOKEN", "HTTP_ENDPOINT", "LOG"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub data_dir: PathBuf,
    pub retention_days: u32,
    pub grpc: RawGrpc,
    pub http: RawHttp,
    pub ingest: RawIngest,
    pub wal: RawWal,
    pub index: RawIndex,
    pub scrub: RawScrub,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./mcp-audit-data"),
            retention_days: 30,
            grpc: RawGrpc::default(),
            http: RawHttp::default(),
            ingest: RawIngest::default(),
            wal: RawWal::default(),
            index: RawIndex::default(),
            scrub: RawScrub::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGrpc {
    pub listen: String,
    pub max_message_bytes: u64,
}

impl Default for RawGrpc {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4317".into(),
            max_message_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHttp {
    pub listen: String,
    pub max_body_bytes: u64,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIngest {
    pub max_event_bytes: u64,
    pub max_batch_events: u64,
    pub max_future_secs: u64,
}

impl Default for RawIngest {
    fn default() -> Self {
        Self {
            max_event_bytes: 1 << 20,
            max_batch_events: 10_000,
            max_future_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWal {
    pub segment_bytes: u64,
}

impl Default for RawWal {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIndex {
    pub commit_interval_ms: u64,
    pub writer_memory_mb: u64,
    pub writer_threads: u64,
}

impl Default for RawIndex {
    fn default() -> Self {
        Self {
            commit_interval_ms: 1000,
            writer_memory_mb: 128,
            writer_threads: 2,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScrub {
    /// Hex installation key (64 hex digits); when absent it is generated into the data dir.
    pub key: Option<String>,
    pub detectors: Vec<CustomDetector>,
    pub allowlist: Vec<String>,
}

/// Checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub retention_days: u32,
    pub grpc_listen: SocketAddr,
    pub grpc_max_message_bytes: usize,
    pub http_listen: SocketAddr,
    pub http_max_body_bytes: usize,
    pub max_event_bytes: usize,
    pub max_batch_events: usize,
    pub max_future: Duration,
    pub wal_segment_bytes: u64,
    pub commit_interval: Duration,
    pub writer_memory_bytes: usize,
    pub writer_threads: usize,
    pub scrub_key: Option<[u8; 32]>,
    pub scrub: ScrubConfig,
    /// Fill a fresh instance with generated traffic.
    pub demo: bool,
}

/// Command-line overrides of `serve` (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub grpc_listen: Option<String>,
    pub http_listen: Option<String>,
    pub demo: bool,
}

impl Config {
    /// Loads the file (if any), overlays the environment and the flags, and checks the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> anyhow::Result<Self> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("config file {} is not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        overlay_env(&mut table, env)?;
        let set = |table: &mut toml::Table, section: &str, key: &str, value: String| {
            let t = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = t {
                t.insert(key.into(), toml::Value::String(value));
            }
        };
        if let Some(d) = &flags.data_dir {
            table.insert(
                "data_dir".into(),
                toml::Value::String(d.display().to_string()),
            );
        }
        if let Some(a) = &flags.grpc_listen {
            set(&mut table, "grpc", "listen", a.clone());
        }
        if let Some(a) = &flags.http_listen {
            set(&mut table, "http", "listen", a.clone());
        }
        let raw: RawConfig = RawConfig::deserialize(toml::Value::Table(table))
            .map_err(|e| anyhow::anyhow!("config: {}", e.message()))?;
        let mut config = raw.validate()?;
        config.demo = flags.demo;
        Ok(config)
    }
}

/// Puts every `MCP_AUDIT_*` variable into the table, as a TOML value when it parses as one
/// (numbers, booleans, arrays) and as a string otherwise.
fn overlay_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    const SECTIONS: &[&str] = &["grpc", "http", "ingest", "wal", "index", "scrub"];
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if CLIENT_ENV.contains(&rest) {
            continue;
        }
        let lower = rest.to_ascii_lowercase();
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(value.clone()));
        let section = SECTIONS
            .iter()
            .find(|s| lower.strip_prefix(*s).is_some_and(|r| r.starts_with('_')));
        match section {
            Some(section) => {
                let key = &lower[section.len() + 1..];
                let t = table
                    .entry(*section)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match t {
                    toml::Value::Table(t) => {
                        t.insert(key.to_string(), parsed);
                    }
                    _ => bail!("config: `{section}` must be a table"),
                }
            }
            None => {
                table.insert(lower, parsed);
            }
        }
    }
    Ok(())
}

fn parse_addr(key: &str, value: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .with_context(|| {
            format!("`{key}` must be a socket address like 127.0.0.1:8080, got {value:?}")
        })
}

impl RawConfig {
    pub fn validate(self) -> anyhow::Result<Config> {
        if self.retention_days == 0 || self.retention_days > 36_500 {
            bail!(
                "`retention_days` must be between 1 and 36500, got {}",
                self.retention_days
            );
        }
        if self.ingest.max_event_bytes < 1024 {
            bail!(
                "`ingest.max_event_bytes` must be at least 1024, got {}",
                self.ingest.max_event_bytes
            );
        }
        if self.ingest.max_batch_events == 0 {
            bail!("`ingest.max_batch_events` must be at least 1");
        }
        if self.grpc.max_message_bytes < 1 << 20 {
            bail!(
                "`grpc.max_message_bytes` must be at least 1MiB, got {}",
                self.grpc.max_message_bytes
            );
        }
        if self.http.max_body_bytes < 1 << 20 {
            bail!(
                "`http.max_body_bytes` must be at least 1MiB, got {}",
                self.http.max_body_bytes
            );
        }
        if self.wal.segment_bytes < 1 << 16 {
            bail!(
                "`wal.segment_bytes` must be at least 65536, got {}",
                self.wal.segment_bytes
            );
        }
        if !(10..=60_000).contains(&self.index.commit_interval_ms) {
            bail!(
                "`index.commit_interval_ms` must be between 10 and 60000, got {}",
                self.index.commit_interval_ms
            );
        }
        if !(20..=16_384).contains(&self.index.writer_memory_mb) {
            bail!(
                "`index.writer_memory_mb` must be between 20 and 16384, got {}",
                self.index.writer_memory_mb
            );
        }
        if !(1..=16).contains(&self.index.writer_threads) {
            bail!(
                "`index.writer_threads` must be between 1 and 16, got {}",
                self.index.writer_threads
            );
        }
        let scrub_key = match &self.scrub.key {
            None => None,
            Some(hexkey) => {
                let bytes = hex::decode(hexkey.trim()).ok().filter(|b| b.len() == 32).context("`scrub.key` must be 64 hex digits (32 bytes); generate one with `openssl rand -hex 32`")?;
                let mut k = [0u8; 32];
                k.copy_from_slice(&bytes);
                Some(k)
            }
        };
        Ok(Config {
            grpc_listen: parse_addr("grpc.listen", &self.grpc.listen)?,
            http_listen: parse_addr("http.listen", &self.http.listen)?,
            data_dir: self.data_dir,
            retention_days: self.retention_days,
            grpc_max_message_bytes: self.grpc.max_message_bytes as usize,
            http_max_body_bytes: self.http.max_body_bytes as usize,
            max_event_bytes: self.ingest.max_event_bytes as usize,
            max_batch_events: self.ingest.max_batch_events as usize,
            max_future: Duration::from_secs(self.ingest.max_future_secs),
            wal_segment_bytes: self.wal.segment_bytes,
            commit_interval: Duration::from_millis(self.index.commit_interval_ms),
            writer_memory_bytes: (self.index.writer_memory_mb as usize) << 20,
            writer_threads: self.index.writer_threads as usize,
            scrub_key,
            scrub: ScrubConfig {
                detectors: self.scrub.detectors,
                allowlist: self.scrub.allowlist,
            },
            demo: false,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        RawConfig::default()
            .validate()
            .unwrap_or_else(|e| unreachable!("default config is valid: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)], flags: Overrides) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load(
            Some(&path),
            env.iter().map(|(a, b)| (a.to_string(), b.to_string())),
            &flags,
        )
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let c = load("", &[], Overrides::default()).unwrap();
        assert_eq!(c.grpc_listen.to_string(), "127.0.0.1:4317");
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.retention_days, 30);
        assert_eq!(c.max_event_bytes, 1 << 20);
    }

    #[test]
    fn file_then_env_then_flags() {
        let toml = "retention_days = 7\n[grpc]\nlisten = \"127.0.0.1:1\"\n[index]\ncommit_interval_ms = 500\n";
        let env = [
            ("MCP_AUDIT_GRPC_LISTEN", "127.0.0.1:2"),
            ("MCP_AUDIT_INDEX_COMMIT_INTERVAL_MS", "200"),
            ("MCP_AUDIT_TOKEN", "x"),
        ];
        let c = load(toml, &env, Overrides::default()).unwrap();
        assert_eq!(c.retention_days, 7);
        assert_eq!(c.grpc_listen.to_string(), "127.0.0.1:2");
        assert_eq!(c.commit_interval, Duration::from_millis(200));
        let c = load(
            toml,
            &env,
            Overrides {
                grpc_listen: Some("127.0.0.1:3".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.grpc_listen.to_string(), "127.0.0.1:3");
    }

    #[test]
    fn errors_name_the_key() {
        let e = load("retention_days = 0", &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`retention_days`"), "{e}");
        let e = load("[grpc]\nlisten = \"nope\"", &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`grpc.listen`"), "{e}");
        let e = load("[grpc]\nlistne = \"x\"", &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("listne"), "{e}");
        let e = load(
            "",
            &[("MCP_AUDIT_INDEX_WRITER_THREADS", "0")],
            Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`index.writer_threads`"), "{e}");
        let e = load("[scrub]\nkey = \"abc\"", &[], Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`scrub.key`"), "{e}");
    }
}
