//! Configuration: TOML file, then `MCP_AUDIT_*` environment, then command-line flags, merged
//! into one raw table, parsed strictly ([`RawConfig`], unknown keys are errors) and checked
//! once into [`Config`]. The running code only sees checked values.
//!
//! Every value remembers where it came from (file, environment variable or flag), so every
//! error names the key and its source: "`index.writer_threads`: invalid type: string "abc",
//! expected a whole number (env MCP_AUDIT_INDEX_WRITER_THREADS)". Type errors get their key
//! path from `serde_path_to_error`; range checks in [`RawConfig::validate`] name their key.
//!
//! Environment names are `MCP_AUDIT_<KEY>` for top-level keys and
//! `MCP_AUDIT_<SECTION>_<KEY>` for keys of a section, e.g. `MCP_AUDIT_DATA_DIR`,
//! `MCP_AUDIT_GRPC_LISTEN`, `MCP_AUDIT_INDEX_COMMIT_INTERVAL_MS`, `MCP_AUDIT_TLS_CERT`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::scrub::{CustomDetector, ScrubConfig};

/// Environment variables with this prefix configure `serve`.
pub const ENV_PREFIX: &str = "MCP_AUDIT_";
/// Variables with the prefix that are not config keys: the config file's path (read by the
/// command line), the log filter and the client commands' settings (`ship`, `search`, `wrap`...).
const NOT_KEYS: &[&str] = &[
    "CONFIG",
    "LOG",
    "ENDPOINT",
    "TOKEN",
    "HTTP_ENDPOINT",
    "CA_CERT",
    "CLIENT_CERT",
    "CLIENT_KEY",
    "USER",
    "SPOOL",
];

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
    pub rules: RawRules,
    pub alerts: RawAlerts,
    pub webhooks: Vec<RawWebhook>,
    pub tls: RawTls,
    pub auth: RawAuth,
    pub chain: RawChain,
}

/// `[auth]`: lockouts, quotas, and `[auth.jwt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    pub max_failures_per_minute: u64,
    pub lockout_secs: u64,
    /// Events per second per credential; 0 is unlimited.
    pub ingest_events_per_sec: u64,
    /// Events a credential may send at once above its rate (default: two seconds' worth).
    pub ingest_burst: u64,
    /// API requests per second per credential; 0 is unlimited.
    pub api_requests_per_sec: u64,
    pub api_burst: u64,
    pub jwt: Option<RawJwt>,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            max_failures_per_minute: 20,
            lockout_secs: 60,
            ingest_events_per_sec: 0,
            ingest_burst: 0,
            api_requests_per_sec: 0,
            api_burst: 0,
            jwt: None,
        }
    }
}

/// `[auth.jwt]`: OAuth 2.1 access tokens from an identity provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_min_secs: u64,
}

fn default_tenant_claim() -> String {
    "tenant".into()
}

fn default_jwks_refresh() -> u64 {
    30
}

impl RawAuth {
    fn validate(self) -> Result<crate::auth::AuthConfig, KeyError> {
        use crate::auth::limits::RateLimit;
        in_range(
            "auth.max_failures_per_minute",
            self.max_failures_per_minute,
            1..=1_000_000,
        )?;
        in_range("auth.lockout_secs", self.lockout_secs, 1..=86_400)?;
        let rate = |per_sec: u64, burst: u64| {
            (per_sec > 0).then(|| RateLimit {
                per_sec: per_sec as f64,
                burst: if burst == 0 {
                    (per_sec * 2) as f64
                } else {
                    burst as f64
                },
            })
        };
        let jwt = match self.jwt {
            None => None,
            Some(j) => Some(j.validate()?),
        };
        Ok(crate::auth::AuthConfig {
            max_failures_per_minute: u32::try_from(self.max_failures_per_minute)
                .unwrap_or(u32::MAX),
            lockout: Duration::from_secs(self.lockout_secs),
            ingest: rate(self.ingest_events_per_sec, self.ingest_burst),
            api: rate(self.api_requests_per_sec, self.api_burst),
            jwt,
        })
    }
}

impl RawJwt {
    fn validate(self) -> Result<crate::auth::jwt::JwtConfig, KeyError> {
        let url = url::Url::parse(&self.jwks_url).map_err(|e| {
            key_error(
                "auth.jwt.jwks_url",
                format!("`auth.jwt.jwks_url` {:?} is not a URL: {e}", self.jwks_url),
            )
        })?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err(key_error(
                "auth.jwt.jwks_url",
                format!(
                    "`auth.jwt.jwks_url` {:?} must be https (http only for a loopback address)",
                    self.jwks_url
                ),
            ));
        }
        for (key, v) in [
            ("auth.jwt.issuer", &self.issuer),
            ("auth.jwt.audience", &self.audience),
            ("auth.jwt.tenant_claim", &self.tenant_claim),
        ] {
            if v.trim().is_empty() {
                return Err(key_error(key, format!("`{key}` must not be empty")));
            }
        }
        in_range(
            "auth.jwt.jwks_refresh_min_secs",
            self.jwks_refresh_min_secs,
            0..=86_400,
        )?;
        Ok(crate::auth::jwt::JwtConfig {
            jwks_url: url,
            issuer: self.issuer,
            audience: self.audience,
            tenant_claim: self.tenant_claim,
            resource: self.resource,
            refresh_min: Duration::from_secs(self.jwks_refresh_min_secs),
        })
    }
}

/// `[tls]`: TLS on both listeners when `cert` and `key` are set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// CA whose certificates clients must present (mTLS).
    pub client_ca: Option<PathBuf>,
    /// `required` (default) or `optional`; only with `client_ca`.
    pub client_auth: Option<String>,
    pub handshake_timeout_ms: u64,
}

impl Default for RawTls {
    fn default() -> Self {
        Self {
            cert: None,
            key: None,
            client_ca: None,
            client_auth: None,
            handshake_timeout_ms: 10_000,
        }
    }
}

/// `[chain]`: signed checkpoints of every tenant's hash chain (see `chain/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawChain {
    pub checkpoint_every_events: u64,
    pub checkpoint_every_secs: u64,
}

impl Default for RawChain {
    fn default() -> Self {
        let d = crate::chain::ChainConfig::default();
        Self {
            checkpoint_every_events: d.checkpoint_every_events,
            checkpoint_every_secs: d.checkpoint_every.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlerts {
    pub group_by: Vec<String>,
    pub group_wait_secs: u64,
    pub group_interval_secs: u64,
    pub repeat_interval_secs: u64,
    pub resolve_after_secs: u64,
    pub first_retry_ms: u64,
    pub external_url: String,
}

impl Default for RawAlerts {
    fn default() -> Self {
        let d = crate::alerts::AlertsConfig::default();
        Self {
            group_by: vec!["rule".into(), "group_key".into()],
            group_wait_secs: d.group_wait.as_secs(),
            group_interval_secs: d.group_interval.as_secs(),
            repeat_interval_secs: d.repeat_interval.as_secs(),
            resolve_after_secs: d.resolve_after.as_secs(),
            first_retry_ms: d.first_retry.as_millis() as u64,
            external_url: String::new(),
        }
    }
}

/// One `[[webhooks]]` table.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: String,
    pub url: String,
    #[serde(default = "default_format")]
    pub format: String,
    pub secret: String,
    /// Secrets being rotated out: deliveries carry a signature for each as well.
    #[serde(default)]
    pub previous_secrets: Vec<String>,
    #[serde(default = "default_min_severity")]
    pub min_severity: String,
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default = "default_webhook_timeout")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub allow_private: bool,
}

impl std::fmt::Debug for RawWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawWebhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn default_format() -> String {
    "generic".into()
}
fn default_min_severity() -> String {
    "low".into()
}
fn default_webhook_timeout() -> u64 {
    10_000
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
            auth: RawAuth::default(),
            rules: RawRules::default(),
            alerts: RawAlerts::default(),
            webhooks: Vec::new(),
            tls: RawTls::default(),
            chain: RawChain::default(),
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
    /// A request head must arrive within this, counted from the connection's start or the
    /// end of the previous response (so it also closes idle keep-alive connections).
    pub header_timeout_ms: u64,
    /// A connection on which the client neither sends its request body nor reads the
    /// response for this long is closed.
    pub idle_timeout_ms: u64,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: u64,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 64 << 20,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
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
    pub search_timeout_ms: u64,
    pub search_concurrency: u64,
    /// `log`, `fewer` or `none` (see [`crate::index::layout`]).
    pub merge_policy: String,
    /// `lz4`, `none`, `zstd` or `zstd<level>`.
    pub docstore_compression: String,
    pub docstore_block_kib: u64,
}

impl Default for RawIndex {
    fn default() -> Self {
        Self {
            commit_interval_ms: 1000,
            writer_memory_mb: 128,
            writer_threads: 2,
            search_timeout_ms: 5000,
            search_concurrency: 4,
            merge_policy: "log".into(),
            docstore_compression: "lz4".into(),
            docstore_block_kib: 16,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRules {
    /// Extra rule files (`*.yml`); a missing folder has none.
    pub dir: PathBuf,
    /// Load the built-in MCP rule pack.
    pub builtin: bool,
    /// Built-in rule ids to leave out.
    pub disable: Vec<String>,
    /// Group keys each stateful rule keeps (least recently used go first).
    pub key_cap: u64,
    /// Evaluate rules at all.
    pub enabled: bool,
}

impl Default for RawRules {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./rules"),
            builtin: true,
            disable: Vec::new(),
            key_cap: crate::rules::engine_key_cap() as u64,
            enabled: true,
        }
    }
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
    pub http_header_timeout: Duration,
    pub http_idle_timeout: Duration,
    pub http_max_connections: usize,
    pub max_event_bytes: usize,
    pub max_batch_events: usize,
    pub max_future: Duration,
    pub wal_segment_bytes: u64,
    pub commit_interval: Duration,
    pub writer_memory_bytes: usize,
    pub writer_threads: usize,
    pub search_timeout: Duration,
    pub search_concurrency: usize,
    pub index_layout: crate::index::layout::Layout,
    pub scrub_key: Option<[u8; 32]>,
    pub scrub: ScrubConfig,
    pub rules: crate::rules::pack::Source,
    pub rules_enabled: bool,
    pub rules_key_cap: usize,
    pub alerts: crate::alerts::AlertsConfig,
    pub webhooks: Vec<crate::alerts::WebhookConfig>,
    /// TLS on both listeners; `None`: plain TCP.
    pub tls: Option<crate::tls::TlsConfig>,
    pub auth: crate::auth::AuthConfig,
    pub chain: crate::chain::ChainConfig,
    /// Fill a fresh instance with generated traffic.
    pub demo: bool,
}

/// Command-line overrides of `serve` (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub grpc_listen: Option<String>,
    pub http_listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub demo: bool,
}

impl Config {
    /// Whether the listeners speak TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// Loads the file (if any), overlays the environment and the flags, and checks the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> anyhow::Result<Self> {
        let mut layers = Layers::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let table = text
                .parse::<toml::Table>()
                .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
            layers.add_file(table, path);
        }
        layers.add_env(env)?;
        if let Some(d) = &flags.data_dir {
            let value = toml::Value::String(d.display().to_string());
            layers.set("data_dir", value, Source::Flag("--data-dir"))?;
        }
        if let Some(a) = &flags.grpc_listen {
            let value = toml::Value::String(a.clone());
            layers.set("grpc.listen", value, Source::Flag("--grpc-listen"))?;
        }
        if let Some(a) = &flags.http_listen {
            let value = toml::Value::String(a.clone());
            layers.set("http.listen", value, Source::Flag("--http-listen"))?;
        }
        for (key, flag, path) in [
            ("tls.cert", "--tls-cert", &flags.tls_cert),
            ("tls.key", "--tls-key", &flags.tls_key),
            ("tls.client_ca", "--tls-client-ca", &flags.tls_client_ca),
        ] {
            if let Some(p) = path {
                let value = toml::Value::String(p.display().to_string());
                layers.set(key, value, Source::Flag(flag))?;
            }
        }
        // An environment value that reads as a number or boolean is tried as the string it
        // was when the key wants a string (`MCP_AUDIT_DATA_DIR=2024`); once per variable.
        let mut retries = layers.env_strings.len();
        let raw: RawConfig = loop {
            match serde_path_to_error::deserialize(toml::Value::Table(layers.table.clone())) {
                Ok(raw) => break raw,
                Err(e) => {
                    let (key, message) = type_error(&e.path().to_string(), e.inner().message());
                    if retries > 0 {
                        if let Some(text) = layers.env_strings.remove(&key) {
                            retries -= 1;
                            let source = layers.source_of(&key);
                            layers.set(&key, toml::Value::String(text), source)?;
                            continue;
                        }
                    }
                    anyhow::bail!("{message} ({})", layers.source_of(&key));
                }
            }
        };
        let mut config = raw
            .validate()
            .map_err(|e| anyhow::anyhow!("{} ({})", e.message, layers.source_of(e.key)))?;
        config.demo = flags.demo;
        Ok(config)
    }
}

/// Where a config value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    /// The environment variable's name.
    Env(String),
    /// The flag's name, e.g. `--grpc-listen`.
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// The merged table and the source of each key set in it (dotted paths; a later layer
/// replaces the source of the keys it sets).
#[derive(Default)]
struct Layers {
    table: toml::Table,
    sources: BTreeMap<String, Source>,
    /// Environment values that were parsed as TOML into something other than a string,
    /// by key, as the text they were.
    env_strings: BTreeMap<String, String>,
}

/// The sections of the config, for splitting `MCP_AUDIT_<SECTION>_<KEY>`.
const SECTIONS: &[&str] = &[
    "grpc", "http", "ingest", "wal", "index", "scrub", "rules", "alerts", "tls", "auth_jwt",
    "auth", "chain",
];

impl Layers {
    fn add_file(&mut self, table: toml::Table, path: &Path) {
        fn record(prefix: &str, table: &toml::Table, path: &Path, out: &mut Layers) {
            for (k, v) in table {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if let toml::Value::Table(t) = v {
                    record(&key, t, path, out);
                }
                out.sources.insert(key, Source::File(path.to_path_buf()));
            }
        }
        record("", &table, path, self);
        self.table = table;
    }

    /// Puts every `MCP_AUDIT_*` variable into the table, as a TOML value when it parses as
    /// one (numbers, booleans, arrays) and as a string otherwise.
    fn add_env(&mut self, env: impl IntoIterator<Item = (String, String)>) -> anyhow::Result<()> {
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if NOT_KEYS.contains(&rest) {
                continue;
            }
            let lower = rest.to_ascii_lowercase();
            let key = match SECTIONS
                .iter()
                .find(|s| lower.strip_prefix(*s).is_some_and(|r| r.starts_with('_')))
            {
                // `auth_jwt` is the table `[auth.jwt]`.
                Some(section) => format!(
                    "{}.{}",
                    section.replace('_', "."),
                    &lower[section.len() + 1..]
                ),
                None => lower,
            };
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"));
            let parsed = match parsed {
                Some(v @ toml::Value::String(_)) => v,
                Some(v) => {
                    self.env_strings.insert(key.clone(), value);
                    v
                }
                None => toml::Value::String(value),
            };
            self.set(&key, parsed, Source::Env(name))?;
        }
        Ok(())
    }

    /// Sets a top-level key or a `section.key`.
    /// Sets a top-level key, a `section.key` or a `section.table.key`.
    fn set(&mut self, key: &str, value: toml::Value, source: Source) -> anyhow::Result<()> {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or(key);
        let mut table = &mut self.table;
        let mut path = String::new();
        for part in parts {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(part);
            let t = table
                .entry(part)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(t) = t else {
                let at = match self.sources.get(&path) {
                    Some(s) => s.to_string(),
                    None => Source::Default.to_string(),
                };
                anyhow::bail!("`{path}` must be a table, so `{key}` cannot be set ({at})");
            };
            table = t;
        }
        table.insert(last.to_string(), value);
        self.sources.insert(key.to_string(), source);
        Ok(())
    }

    /// The source of `key` or of the nearest enclosing key that has one
    /// (`scrub.detectors[0].name` → `scrub.detectors`).
    fn source_of(&self, key: &str) -> Source {
        let mut k = key;
        loop {
            if let Some(s) = self.sources.get(k) {
                return s.clone();
            }
            match k.rfind(['.', '[']) {
                Some(i) => k = &k[..i],
                None => return Source::Default,
            }
        }
    }
}

/// The key at fault and a message naming it, from serde's error at `path`.
fn type_error(path: &str, message: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let key = path.to_string();
        let known = rest
            .split_once(", expected ")
            .map(|(_, k)| format!("; expected {k}"))
            .unwrap_or_default();
        let message = format!("`{key}` is not a config key{known}");
        return (key, message);
    }
    let mut message = message.to_string();
    for int in ["u64", "u32", "usize"] {
        message = message.replace(&format!("expected {int}"), "expected a whole number");
    }
    (path.to_string(), format!("`{path}`: {message}"))
}

/// A checked value that is out of range, naming its key.
#[derive(Debug)]
pub struct KeyError {
    pub key: &'static str,
    pub message: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KeyError {}

fn key_error(key: &'static str, message: String) -> KeyError {
    KeyError { key, message }
}

/// Checks that `value` of `key` lies in `range`.
fn in_range(
    key: &'static str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<(), KeyError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(key_error(
        key,
        format!(
            "`{key}` must be between {} and {}, got {value}",
            range.start(),
            range.end()
        ),
    ))
}

fn parse_addr(key: &'static str, value: &str) -> Result<SocketAddr, KeyError> {
    use std::net::ToSocketAddrs;
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            key_error(
                key,
                format!("`{key}` must be a socket address like 127.0.0.1:8080, got {value:?}"),
            )
        })
}

impl RawAlerts {
    fn validate(self) -> Result<crate::alerts::AlertsConfig, KeyError> {
        use crate::alerts::GroupBy;
        let mut group_by = Vec::new();
        for g in &self.group_by {
            group_by.push(GroupBy::parse(g).ok_or_else(|| {
                key_error(
                    "alerts.group_by",
                    format!(
                        "`alerts.group_by` takes {}, got {g:?}",
                        GroupBy::NAMES.join(", ")
                    ),
                )
            })?);
        }
        in_range("alerts.group_wait_secs", self.group_wait_secs, 0..=86_400)?;
        in_range(
            "alerts.group_interval_secs",
            self.group_interval_secs,
            1..=86_400 * 7,
        )?;
        in_range(
            "alerts.repeat_interval_secs",
            self.repeat_interval_secs,
            1..=86_400 * 30,
        )?;
        in_range(
            "alerts.resolve_after_secs",
            self.resolve_after_secs,
            1..=86_400 * 30,
        )?;
        in_range(
            "alerts.first_retry_ms",
            self.first_retry_ms,
            100..=3_600_000,
        )?;
        if !self.external_url.is_empty() && url::Url::parse(&self.external_url).is_err() {
            return Err(key_error("alerts.external_url", format!("`alerts.external_url` must be a URL like https://mcp-audit.example.com, got {:?}", self.external_url)));
        }
        Ok(crate::alerts::AlertsConfig {
            group_by,
            group_wait: Duration::from_secs(self.group_wait_secs),
            group_interval: Duration::from_secs(self.group_interval_secs),
            repeat_interval: Duration::from_secs(self.repeat_interval_secs),
            resolve_after: Duration::from_secs(self.resolve_after_secs),
            first_retry: Duration::from_millis(self.first_retry_ms),
            external_url: self.external_url,
        })
    }
}

impl RawTls {
    fn validate(self) -> Result<Option<crate::tls::TlsConfig>, KeyError> {
        use crate::tls::{ClientAuth, TlsConfig};
        for (key, value) in [
            ("tls.cert", &self.cert),
            ("tls.key", &self.key),
            ("tls.client_ca", &self.client_ca),
        ] {
            if value.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(key_error(
                    key,
                    format!("`{key}` is empty; give the path of a PEM file, or leave it unset"),
                ));
            }
        }
        in_range(
            "tls.handshake_timeout_ms",
            self.handshake_timeout_ms,
            100..=600_000,
        )?;
        let client_auth = match &self.client_auth {
            None => ClientAuth::Required,
            Some(s) => ClientAuth::parse(s).ok_or_else(|| {
                key_error(
                    "tls.client_auth",
                    format!(
                        "`tls.client_auth` takes {}, got {s:?}",
                        ClientAuth::NAMES.join(" or ")
                    ),
                )
            })?,
        };
        if self.client_auth.is_some() && self.client_ca.is_none() {
            return Err(key_error(
                "tls.client_auth",
                "`tls.client_auth` needs `tls.client_ca`, the CA that signs the client certificates".into(),
            ));
        }
        match (self.cert, self.key) {
            (Some(cert), Some(key)) => Ok(Some(TlsConfig {
                cert,
                key,
                client_ca: self.client_ca,
                client_auth,
                handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            })),
            (Some(_), None) => Err(key_error(
                "tls.cert",
                "`tls.key` is not set: `tls.cert` needs the certificate's private key (PEM) in `tls.key`".into(),
            )),
            (None, Some(_)) => Err(key_error(
                "tls.key",
                "`tls.cert` is not set: `tls.key` needs the certificate chain (PEM) in `tls.cert`".into(),
            )),
            (None, None) if self.client_ca.is_some() => Err(key_error(
                "tls.client_ca",
                "`tls.client_ca` needs `tls.cert` and `tls.key`: client certificates are only asked for over TLS".into(),
            )),
            (None, None) => Ok(None),
        }
    }
}

impl RawWebhook {
    fn validate(self, i: usize) -> Result<crate::alerts::WebhookConfig, KeyError> {
        use crate::alerts::{webhook, Format};
        let at = |what: String| {
            key_error(
                "webhooks",
                format!("webhook #{} ({:?}): {what}", i + 1, self.name),
            )
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(at("`name` must be letters, digits, `-` and `_`".into()));
        }
        let format = Format::parse(&self.format).ok_or_else(|| {
            at(format!(
                "`format` takes {}, got {:?}",
                Format::NAMES.join(", "),
                self.format
            ))
        })?;
        let min_severity = crate::rules::Severity::parse(&self.min_severity).ok_or_else(|| {
            at(format!(
                "`min_severity` takes {}, got {:?}",
                crate::rules::Severity::NAMES.join(", "),
                self.min_severity
            ))
        })?;
        let mut secrets = Vec::new();
        for s in std::iter::once(&self.secret).chain(&self.previous_secrets) {
            secrets.push(webhook::parse_secret(s).map_err(|e| at(format!("`secret`: {e}")))?);
        }
        if !(100..=120_000).contains(&self.timeout_ms) {
            return Err(at(format!(
                "`timeout_ms` must be between 100 and 120000, got {}",
                self.timeout_ms
            )));
        }
        let w = crate::alerts::WebhookConfig {
            name: self.name.clone(),
            url: self.url.clone(),
            format,
            secrets,
            min_severity,
            rules: self.rules,
            tags: self.tags,
            timeout: Duration::from_millis(self.timeout_ms),
            allow_private: self.allow_private,
        };
        webhook::check_url(&w).map_err(|e| key_error("webhooks", e))?;
        Ok(w)
    }
}

impl RawConfig {
    pub fn validate(self) -> Result<Config, KeyError> {
        in_range("retention_days", self.retention_days.into(), 1..=36_500)?;
        // An event must fit one WAL record (64 MiB) once stored as JSON, which can be several
        // times its wire size; ingest still refuses the rare event that does not.
        in_range(
            "ingest.max_event_bytes",
            self.ingest.max_event_bytes,
            1024..=16 << 20,
        )?;
        in_range(
            "ingest.max_batch_events",
            self.ingest.max_batch_events,
            1..=100_000,
        )?;
        in_range(
            "grpc.max_message_bytes",
            self.grpc.max_message_bytes,
            1 << 20..=256 << 20,
        )?;
        in_range(
            "http.max_body_bytes",
            self.http.max_body_bytes,
            1 << 20..=256 << 20,
        )?;
        in_range(
            "http.header_timeout_ms",
            self.http.header_timeout_ms,
            10..=3_600_000,
        )?;
        in_range(
            "http.idle_timeout_ms",
            self.http.idle_timeout_ms,
            10..=3_600_000,
        )?;
        in_range(
            "http.max_connections",
            self.http.max_connections,
            1..=1_000_000,
        )?;
        in_range(
            "wal.segment_bytes",
            self.wal.segment_bytes,
            1 << 16..=1 << 30,
        )?;
        in_range(
            "index.commit_interval_ms",
            self.index.commit_interval_ms,
            10..=60_000,
        )?;
        in_range(
            "index.writer_memory_mb",
            self.index.writer_memory_mb,
            20..=16_384,
        )?;
        in_range("index.writer_threads", self.index.writer_threads, 1..=16)?;
        in_range(
            "index.search_timeout_ms",
            self.index.search_timeout_ms,
            100..=600_000,
        )?;
        in_range(
            "index.search_concurrency",
            self.index.search_concurrency,
            1..=1024,
        )?;
        in_range(
            "index.docstore_block_kib",
            self.index.docstore_block_kib,
            4..=1024,
        )?;
        let index_layout = crate::index::layout::Layout {
            merge: crate::index::layout::parse_merge(&self.index.merge_policy).map_err(|e| {
                key_error("index.merge_policy", format!("`index.merge_policy`: {e}"))
            })?,
            docstore: crate::index::layout::parse_compression(&self.index.docstore_compression)
                .map_err(|e| {
                    key_error(
                        "index.docstore_compression",
                        format!("`index.docstore_compression`: {e}"),
                    )
                })?,
            docstore_block_bytes: (self.index.docstore_block_kib as usize) << 10,
        };
        in_range("rules.key_cap", self.rules.key_cap, 100..=10_000_000)?;
        in_range(
            "chain.checkpoint_every_events",
            self.chain.checkpoint_every_events,
            1..=100_000_000,
        )?;
        in_range(
            "chain.checkpoint_every_secs",
            self.chain.checkpoint_every_secs,
            1..=86_400,
        )?;
        let scrub_key = match &self.scrub.key {
            None => None,
            Some(hexkey) => {
                let bytes = hex::decode(hexkey.trim()).ok().filter(|b| b.len() == 32).ok_or_else(|| key_error("scrub.key", "`scrub.key` must be 64 hex digits (32 bytes); generate one with `openssl rand -hex 32`".into()))?;
                let mut k = [0u8; 32];
                k.copy_from_slice(&bytes);
                Some(k)
            }
        };
        let alerts = self.alerts.validate()?;
        let tls = self.tls.validate()?;
        let mut webhooks: Vec<crate::alerts::WebhookConfig> = Vec::new();
        for (i, w) in self.webhooks.into_iter().enumerate() {
            let w = w.validate(i)?;
            if webhooks.iter().any(|o| o.name == w.name) {
                return Err(key_error(
                    "webhooks",
                    format!("two webhooks are named {:?}; names must differ", w.name),
                ));
            }
            webhooks.push(w);
        }
        let auth = self.auth.validate()?;
        Ok(Config {
            auth,
            alerts,
            webhooks,
            tls,
            chain: crate::chain::ChainConfig {
                checkpoint_every_events: self.chain.checkpoint_every_events,
                checkpoint_every: Duration::from_secs(self.chain.checkpoint_every_secs),
            },
            grpc_listen: parse_addr("grpc.listen", &self.grpc.listen)?,
            http_listen: parse_addr("http.listen", &self.http.listen)?,
            data_dir: self.data_dir,
            retention_days: self.retention_days,
            grpc_max_message_bytes: usize::try_from(self.grpc.max_message_bytes)
                .unwrap_or(usize::MAX),
            http_max_body_bytes: usize::try_from(self.http.max_body_bytes).unwrap_or(usize::MAX),
            http_header_timeout: Duration::from_millis(self.http.header_timeout_ms),
            http_idle_timeout: Duration::from_millis(self.http.idle_timeout_ms),
            http_max_connections: self.http.max_connections as usize,
            max_event_bytes: usize::try_from(self.ingest.max_event_bytes).unwrap_or(usize::MAX),
            max_batch_events: usize::try_from(self.ingest.max_batch_events).unwrap_or(usize::MAX),
            max_future: Duration::from_secs(self.ingest.max_future_secs),
            wal_segment_bytes: self.wal.segment_bytes,
            commit_interval: Duration::from_millis(self.index.commit_interval_ms),
            writer_memory_bytes: (self.index.writer_memory_mb as usize) << 20,
            writer_threads: self.index.writer_threads as usize,
            search_timeout: Duration::from_millis(self.index.search_timeout_ms),
            search_concurrency: self.index.search_concurrency as usize,
            index_layout,
            scrub_key,
            scrub: ScrubConfig {
                detectors: self.scrub.detectors,
                allowlist: self.scrub.allowlist,
            },
            rules: crate::rules::pack::Source {
                dir: Some(self.rules.dir),
                builtin: self.rules.builtin,
                disable: self.rules.disable,
            },
            rules_enabled: self.rules.enabled,
            rules_key_cap: self.rules.key_cap as usize,
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

    fn err(toml: &str, env: &[(&str, &str)], flags: Overrides) -> String {
        load(toml, env, flags).unwrap_err().to_string()
    }

    #[test]
    fn type_errors_name_the_key_and_the_source() {
        let e = err(
            "",
            &[("MCP_AUDIT_INDEX_WRITER_THREADS", "abc")],
            Overrides::default(),
        );
        assert_eq!(
            e,
            "`index.writer_threads`: invalid type: string \"abc\", expected a whole number (env MCP_AUDIT_INDEX_WRITER_THREADS)"
        );
        let e = err(
            "[index]\nwriter_threads = \"two\"\n",
            &[],
            Overrides::default(),
        );
        assert!(
            e.starts_with("`index.writer_threads`: invalid type: string \"two\""),
            "{e}"
        );
        assert!(e.ends_with("c.toml)") && e.contains("(file "), "{e}");
        let e = err("retention_days = -1", &[], Overrides::default());
        assert!(
            e.starts_with("`retention_days`: invalid value: integer `-1`"),
            "{e}"
        );
        assert!(e.contains("(file "), "{e}");
        let e = err("[http]\nlisten = 8080", &[], Overrides::default());
        assert!(
            e.starts_with("`http.listen`: invalid type: integer `8080`"),
            "{e}"
        );
        // A later layer takes over the key's source.
        let e = err(
            "[index]\nwriter_threads = 2",
            &[("MCP_AUDIT_INDEX_WRITER_THREADS", "true")],
            Overrides::default(),
        );
        assert!(e.ends_with("(env MCP_AUDIT_INDEX_WRITER_THREADS)"), "{e}");
        let e = err(
            "[[scrub.detectors]]\nkind = 3\nregex = \"x\"\n",
            &[],
            Overrides::default(),
        );
        assert!(e.starts_with("`scrub.detectors[0].kind`"), "{e}");
        assert!(e.contains("(file "), "{e}");
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_source() {
        let e = err("[grpc]\nlistne = \"x\"", &[], Overrides::default());
        assert!(
            e.starts_with("`grpc.listne` is not a config key; expected `listen`"),
            "{e}"
        );
        assert!(e.contains("(file "), "{e}");
        let e = err("", &[("MCP_AUDIT_HTTP_LISTNE", "x")], Overrides::default());
        assert!(e.starts_with("`http.listne` is not a config key"), "{e}");
        assert!(e.ends_with("(env MCP_AUDIT_HTTP_LISTNE)"), "{e}");
        let e = err("colour = 1", &[], Overrides::default());
        assert!(e.starts_with("`colour` is not a config key"), "{e}");
    }

    #[test]
    fn range_errors_name_the_key_and_the_source() {
        let e = err("retention_days = 0", &[], Overrides::default());
        assert!(
            e.starts_with("`retention_days` must be between 1 and 36500, got 0 (file "),
            "{e}"
        );
        let e = err(
            "",
            &[("MCP_AUDIT_INDEX_WRITER_THREADS", "0")],
            Overrides::default(),
        );
        assert_eq!(
            e,
            "`index.writer_threads` must be between 1 and 16, got 0 (env MCP_AUDIT_INDEX_WRITER_THREADS)"
        );
        let flags = Overrides {
            grpc_listen: Some("nope".into()),
            ..Default::default()
        };
        let e = err("[grpc]\nlisten = \"127.0.0.1:1\"", &[], flags);
        assert_eq!(
            e,
            "`grpc.listen` must be a socket address like 127.0.0.1:8080, got \"nope\" (flag --grpc-listen)"
        );
        let e = err(
            "",
            &[("MCP_AUDIT_HTTP_HEADER_TIMEOUT_MS", "1")],
            Overrides::default(),
        );
        assert!(
            e.starts_with("`http.header_timeout_ms` must be between 10 and"),
            "{e}"
        );
        let e = err("[scrub]\nkey = \"abc\"", &[], Overrides::default());
        assert!(
            e.starts_with("`scrub.key` must be 64 hex digits") && e.contains("(file "),
            "{e}"
        );
    }

    #[test]
    fn chain_checkpoint_settings() {
        let c = load("", &[], Overrides::default()).unwrap();
        assert_eq!(c.chain, crate::chain::ChainConfig::default());
        let c = load(
            "[chain]\ncheckpoint_every_events = 5\n",
            &[("MCP_AUDIT_CHAIN_CHECKPOINT_EVERY_SECS", "2")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.chain.checkpoint_every_events, 5);
        assert_eq!(c.chain.checkpoint_every, Duration::from_secs(2));
        let e = err(
            "",
            &[("MCP_AUDIT_CHAIN_CHECKPOINT_EVERY_SECS", "0")],
            Overrides::default(),
        );
        assert_eq!(
            e,
            "`chain.checkpoint_every_secs` must be between 1 and 86400, got 0 (env MCP_AUDIT_CHAIN_CHECKPOINT_EVERY_SECS)"
        );
    }

    #[test]
    fn environment_strings_that_look_like_numbers_stay_strings() {
        let c = load("", &[("MCP_AUDIT_DATA_DIR", "2024")], Overrides::default()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("2024"));
        // Not config keys: the config file's path and the client settings.
        let c = load(
            "",
            &[
                ("MCP_AUDIT_CONFIG", "/etc/x.toml"),
                ("MCP_AUDIT_LOG", "debug"),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.retention_days, 30);
        let c = load(
            "",
            &[
                ("MCP_AUDIT_HTTP_HEADER_TIMEOUT_MS", "250"),
                ("MCP_AUDIT_HTTP_IDLE_TIMEOUT_MS", "500"),
                ("MCP_AUDIT_HTTP_MAX_CONNECTIONS", "7"),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.http_header_timeout, Duration::from_millis(250));
        assert_eq!(c.http_idle_timeout, Duration::from_millis(500));
        assert_eq!(c.http_max_connections, 7);
    }

    #[test]
    fn tls_from_file_env_and_flags() {
        use crate::tls::ClientAuth;
        assert!(load("", &[], Overrides::default()).unwrap().tls.is_none());
        let c = load(
            "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
            &[
                ("MCP_AUDIT_TLS_CLIENT_CA", "ca.pem"),
                ("MCP_AUDIT_TLS_CLIENT_AUTH", "optional"),
                // The client commands' variables are not config keys.
                ("MCP_AUDIT_CA_CERT", "x"),
                ("MCP_AUDIT_CLIENT_CERT", "x"),
                ("MCP_AUDIT_CLIENT_KEY", "x"),
            ],
            Overrides {
                tls_key: Some("flag.pem".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert, PathBuf::from("c.pem"));
        assert_eq!(tls.key, PathBuf::from("flag.pem"));
        assert_eq!(tls.client_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(tls.client_auth, ClientAuth::Optional);
        assert_eq!(tls.handshake_timeout, Duration::from_secs(10));
        let c = load(
            "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n",
            &[],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.tls.unwrap().client_auth, ClientAuth::Required);
    }

    #[test]
    fn tls_errors_name_the_key_and_the_source() {
        let e = err("[tls]\ncert = \"c.pem\"\n", &[], Overrides::default());
        assert!(
            e.starts_with("`tls.key` is not set: `tls.cert` needs") && e.contains("(file "),
            "{e}"
        );
        let e = err("", &[("MCP_AUDIT_TLS_KEY", "k.pem")], Overrides::default());
        assert_eq!(e, "`tls.cert` is not set: `tls.key` needs the certificate chain (PEM) in `tls.cert` (env MCP_AUDIT_TLS_KEY)");
        let flags = Overrides {
            tls_client_ca: Some("ca.pem".into()),
            ..Default::default()
        };
        let e = err("", &[], flags);
        assert!(
            e.starts_with("`tls.client_ca` needs `tls.cert` and `tls.key`")
                && e.ends_with("(flag --tls-client-ca)"),
            "{e}"
        );
        let tls = "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let e = err(
            tls,
            &[("MCP_AUDIT_TLS_CLIENT_AUTH", "always")],
            Overrides::default(),
        );
        assert_eq!(e, "`tls.client_auth` takes required or optional, got \"always\" (env MCP_AUDIT_TLS_CLIENT_AUTH)");
        let e = err(
            tls,
            &[("MCP_AUDIT_TLS_CLIENT_AUTH", "optional")],
            Overrides::default(),
        );
        assert!(
            e.starts_with("`tls.client_auth` needs `tls.client_ca`"),
            "{e}"
        );
        let e = err(tls, &[("MCP_AUDIT_TLS_CERT", "")], Overrides::default());
        assert!(e.starts_with("`tls.cert` is empty"), "{e}");
        let e = err(
            tls,
            &[("MCP_AUDIT_TLS_HANDSHAKE_TIMEOUT_MS", "5")],
            Overrides::default(),
        );
        assert!(
            e.starts_with("`tls.handshake_timeout_ms` must be between 100 and"),
            "{e}"
        );
        let e = err("[tls]\ncrt = \"c.pem\"\n", &[], Overrides::default());
        assert!(e.starts_with("`tls.crt` is not a config key"), "{e}");
    }
}
