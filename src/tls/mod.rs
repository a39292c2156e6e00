//! TLS for the collector's two listeners (rustls, ring provider): loads the certificate chain,
//! its private key and the optional client CA (`[tls]`), keeps them swappable, and reloads
//! them on SIGHUP.
//!
//! - **One certificate, two listeners.** The gRPC port negotiates ALPN `h2`, the HTTP port
//!   `http/1.1`; both use the same certificate and the same client-certificate rule.
//! - **Reload** ([`Tls::reload`]): the files are read and checked completely before anything
//!   changes; then connections accepted from that moment use the new ones, while connections
//!   already open keep theirs. A reload that fails (missing file, key that does not match...)
//!   changes nothing: it is logged, counted, shown by `/readyz`, and the old certificate stays.
//!   Each reload builds a fresh rustls config, so a session resumed after it cannot skip a
//!   changed client CA.
//! - **mTLS**: with `tls.client_ca`, clients must present a certificate that chains to it
//!   (`client_auth = "optional"` also lets clients without a certificate in; a certificate that
//!   does not chain is refused either way).
//!
//! Not here: the accept loops ([`incoming`] has the gRPC one; `api/serve.rs` does the HTTP
//! handshake in its own loop), and any use of the client's certificate as a credential: it
//! only decides whether the TLS handshake succeeds.

pub mod incoming;
pub mod x509;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Checked `[tls]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The leaf certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; `None`: no client
    /// certificates are asked for.
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
    /// A TLS handshake must finish within this, so a client that stalls in it cannot hold a
    /// connection slot.
    pub handshake_timeout: Duration,
}

/// Whether a client certificate is required when `tls.client_ca` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    Required,
    Optional,
}

impl ClientAuth {
    pub const NAMES: &'static [&'static str] = &["required", "optional"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "required" => Some(Self::Required),
            "optional" => Some(Self::Optional),
            _ => None,
        }
    }
}

/// Which listener a handshake is for; decides the ALPN protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Grpc,
    Http,
}

impl Listener {
    pub fn name(self) -> &'static str {
        match self {
            Listener::Grpc => "grpc",
            Listener::Http => "http",
        }
    }
}

/// A certificate, key or CA file that cannot be used. Each message names the config key and
/// the path, and says what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`{key}`: cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{key}`: {} is not valid PEM: {reason}", path.display())]
    BadPem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("`{key}`: no PEM {what} found in {}; expected a `-----BEGIN {marker}-----` block", path.display())]
    NoPem {
        key: &'static str,
        path: PathBuf,
        what: &'static str,
        marker: &'static str,
    },
    #[error("`tls.key`: {} does not match the certificate in {} (`tls.cert`); give the private key the certificate was issued for", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("`{key}`: {} cannot be used: {reason}", path.display())]
    Unusable {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// What was loaded, for logs and `/readyz`.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The leaf certificate's details; `None` if its DER could not be summarised (it was
    /// still accepted by rustls).
    pub cert: Option<x509::Summary>,
    pub at: OffsetDateTime,
}

/// A reload that failed, kept until the next one succeeds.
#[derive(Debug, Clone)]
pub struct Failure {
    pub at: OffsetDateTime,
    pub reason: String,
}

/// The live TLS configuration of both listeners.
struct Current {
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
    loaded: Loaded,
}

/// The collector's TLS: the settings, the configs in use, and the last reload failure.
pub struct Tls {
    config: TlsConfig,
    current: RwLock<Current>,
    failure: Mutex<Option<Failure>>,
    metrics: Arc<Metrics>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the files named by `config`; any problem is an error naming the file.
    pub fn load(config: TlsConfig, metrics: Arc<Metrics>) -> Result<Arc<Self>, TlsError> {
        let current = build(&config)?;
        observe(&metrics, &current.loaded);
        Ok(Arc::new(Self {
            config,
            current: RwLock::new(current),
            failure: Mutex::new(None),
            metrics,
        }))
    }

    pub fn config(&self) -> &TlsConfig {
        &self.config
    }

    /// Re-reads the certificate, key and client CA. On success new connections use them; on
    /// failure nothing changes and the failure is kept for `/readyz` until a reload succeeds.
    pub fn reload(&self) -> Result<Loaded, TlsError> {
        match build(&self.config) {
            Ok(next) => {
                let loaded = next.loaded.clone();
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                observe(&self.metrics, &loaded);
                self.count_reload("ok");
                Ok(loaded)
            }
            Err(e) => {
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(Failure {
                    at: OffsetDateTime::now_utc(),
                    reason: e.to_string(),
                });
                self.count_reload("error");
                Err(e)
            }
        }
    }

    fn count_reload(&self, outcome: &str) {
        self.metrics
            .tls_reloads
            .get_or_create(&vec![("outcome".into(), outcome.into())])
            .inc();
    }

    /// The acceptor for a new connection on `listener`, with the configuration in force now.
    pub fn acceptor(&self, listener: Listener) -> tokio_rustls::TlsAcceptor {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let config = match listener {
            Listener::Grpc => current.grpc.clone(),
            Listener::Http => current.http.clone(),
        };
        tokio_rustls::TlsAcceptor::from(config)
    }

    pub fn handshake_timeout(&self) -> Duration {
        self.config.handshake_timeout
    }

    /// What is being served now.
    pub fn loaded(&self) -> Loaded {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .loaded
            .clone()
    }

    /// The last reload's failure, while no later reload succeeded.
    pub fn failure(&self) -> Option<Failure> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// "client certificates required" and the like, for logs and `/readyz`.
    pub fn client_certs(&self) -> &'static str {
        match (&self.config.client_ca, self.config.client_auth) {
            (None, _) => "no client certificates",
            (Some(_), ClientAuth::Required) => "client certificates required",
            (Some(_), ClientAuth::Optional) => "client certificates optional",
        }
    }

    /// Logs what a listener serves, once at start.
    pub fn log_listener(&self, listener: Listener, addr: std::net::SocketAddr) {
        let loaded = self.loaded();
        let (subject, serial, expires) = describe(&loaded);
        tracing::info!(
            listener = listener.name(),
            %addr,
            client_certs = self.client_certs(),
            %subject,
            %serial,
            %expires,
            "tls: listener serves TLS"
        );
    }
}

/// A time as RFC 3339 (`2026-11-29T16:44:16Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Subject, serial and expiry as log fields ("unknown" where the summary is missing).
fn describe(loaded: &Loaded) -> (String, String, String) {
    match &loaded.cert {
        Some(c) => (c.subject.clone(), c.serial.clone(), rfc3339(c.not_after)),
        None => ("unknown".into(), "unknown".into(), "unknown".into()),
    }
}

/// Publishes the certificate's expiry and warns when it is near or past.
fn observe(metrics: &Metrics, loaded: &Loaded) {
    let Some(cert) = &loaded.cert else {
        return;
    };
    metrics.tls_cert_expiry.set(cert.not_after.unix_timestamp());
    let left = cert.not_after - OffsetDateTime::now_utc();
    if left.is_negative() {
        tracing::error!(subject = %cert.subject, expired = %rfc3339(cert.not_after), "tls: the certificate has EXPIRED; clients will refuse it. Replace `tls.cert` and `tls.key`, then send SIGHUP");
    } else if left < time::Duration::days(14) {
        tracing::warn!(subject = %cert.subject, expires = %rfc3339(cert.not_after), "tls: the certificate expires in less than 14 days; renew it and send SIGHUP");
    }
}

/// Reads and checks every file, then builds the two listeners' configs.
fn build(config: &TlsConfig) -> Result<Current, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = read_certs("tls.cert", &config.cert)?;
    let key = read_key(&config.key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable("tls.cert", &config.cert, e))?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("tls.client_ca", path)? {
                roots
                    .add(cert)
                    .map_err(|e| unusable("tls.client_ca", path, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match config.client_auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| unusable("tls.client_ca", path, e))?,
            )
        }
    };
    let summary = chain.first().and_then(|c| x509::Summary::parse(c).ok());
    let base = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch {
                cert: config.cert.clone(),
                key: config.key.clone(),
            }
        }
        // The key parsed as PEM but the provider cannot use it, or the leaf certificate
        // is not a certificate at all.
        rustls::Error::General(_) => unusable("tls.key", &config.key, e),
        e => unusable("tls.cert", &config.cert, e),
    })?;
    let mut grpc = base.clone();
    grpc.alpn_protocols = vec![b"h2".to_vec()];
    let mut http = base;
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Current {
        grpc: Arc::new(grpc),
        http: Arc::new(http),
        loaded: Loaded {
            cert: summary,
            at: OffsetDateTime::now_utc(),
        },
    })
}

fn unusable(key: &'static str, path: &Path, reason: impl fmt::Display) -> TlsError {
    TlsError::Unusable {
        key,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(key: &'static str, path: &Path, e: pem::Error) -> TlsError {
    match e {
        pem::Error::Io(source) => TlsError::Read {
            key,
            path: path.to_path_buf(),
            source,
        },
        e => TlsError::BadPem {
            key,
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    }
}

/// Every `CERTIFICATE` block of a PEM file; at least one.
pub fn read_certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(key, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            key,
            path: path.to_path_buf(),
            what: "certificate",
            marker: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = read("tls.key", path)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound if contains(&text, b"-----BEGIN ENCRYPTED PRIVATE KEY") => {
            unusable(
                "tls.key",
                path,
                "the key is encrypted; give it unencrypted (`openssl pkey -in KEY -out PLAIN`) and keep the file readable by the collector only",
            )
        }
        pem::Error::NoItemsFound => TlsError::NoPem {
            key: "tls.key",
            path: path.to_path_buf(),
            what: "private key",
            marker: "PRIVATE KEY",
        },
        e => pem_error("tls.key", path, e),
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reloads `tls` on every SIGHUP until `stop`. A failed reload keeps the old certificate.
pub fn reload_on_sighup(
    tls: Arc<Tls>,
    audit: crate::audit::AuditTrail,
    mut stop: watch::Receiver<bool>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "tls: cannot listen for SIGHUP; restart the collector to load a new certificate");
                return;
            }
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hup.recv() => if got.is_none() { return },
                    _ = stop.wait_for(|s| *s) => return,
                }
                let t = tls.clone();
                let outcome = match tokio::task::spawn_blocking(move || t.reload()).await {
                    Ok(Ok(loaded)) => {
                        let (subject, serial, expires) = describe(&loaded);
                        tracing::info!(%subject, %serial, %expires, client_certs = tls.client_certs(), "tls: reloaded on SIGHUP; new connections use this certificate");
                        serde_json::json!({ "subject": subject.to_string(), "serial": serial.to_string(), "expires": expires.to_string() })
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "tls: reload on SIGHUP failed; still serving the certificate loaded before");
                        serde_json::json!({ "error": e.to_string() })
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "tls: reload on SIGHUP failed; still serving the certificate loaded before");
                        serde_json::json!({ "error": e.to_string() })
                    }
                };
                audit.record(
                    crate::audit::Record::new("config", "tls_reload", "sighup", "")
                        .details(outcome),
                );
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = (tls, &mut stop);
    }
}

#[cfg(test)]
mod tests;
