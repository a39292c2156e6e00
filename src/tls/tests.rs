#![allow(clippy::unwrap_used)]

use std::path::Path;

use super::*;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A self-signed certificate for `cn` and its key, as `{name}.pem` and `{name}.key`.
    fn cert(&self, name: &str, cn: &str) -> (PathBuf, PathBuf) {
        let mut p = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (
            self.write(&format!("{name}.pem"), &cert.pem()),
            self.write(&format!("{name}.key"), &key.serialize_pem()),
        )
    }
}

fn config(cert: &Path, key: &Path) -> TlsConfig {
    TlsConfig {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        client_ca: None,
        client_auth: ClientAuth::Required,
        handshake_timeout: Duration::from_secs(5),
    }
}

fn load_err(c: TlsConfig) -> String {
    Tls::load(c, Metrics::new()).unwrap_err().to_string()
}

#[test]
fn loads_a_certificate_and_summarises_it() {
    let f = Files::new();
    let (cert, key) = f.cert("a", "collector-a");
    let tls = Tls::load(config(&cert, &key), Metrics::new()).unwrap();
    let loaded = tls.loaded();
    assert_eq!(loaded.cert.unwrap().subject, "CN=collector-a");
    assert_eq!(tls.client_certs(), "no client certificates");
    assert!(tls.failure().is_none());
}

#[test]
fn bad_files_name_the_key_the_path_and_the_fault() {
    let f = Files::new();
    let (cert, key) = f.cert("a", "a");
    let (_, other_key) = f.cert("b", "b");

    let missing = f.path("missing.pem");
    let e = load_err(config(&missing, &key));
    assert!(e.starts_with("`tls.cert`: cannot read "), "{e}");
    assert!(e.contains("missing.pem"), "{e}");

    let empty = f.write("empty.pem", "nothing here\n");
    let e = load_err(config(&empty, &key));
    assert!(
        e.starts_with("`tls.cert`: no PEM certificate found in ")
            && e.contains("empty.pem")
            && e.contains("-----BEGIN CERTIFICATE-----"),
        "{e}"
    );

    // A key given where the certificate belongs, and the other way round.
    let e = load_err(config(&key, &key));
    assert!(e.starts_with("`tls.cert`: no PEM certificate"), "{e}");
    let e = load_err(config(&cert, &cert));
    assert!(
        e.starts_with("`tls.key`: no PEM private key found in ") && e.contains("a.pem"),
        "{e}"
    );

    let e = load_err(config(&cert, &other_key));
    assert!(
        e.starts_with("`tls.key`: ")
            && e.contains("b.key")
            && e.contains("does not match the certificate in")
            && e.contains("a.pem"),
        "{e}"
    );

    let broken = f.write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\n!!!notbase64\n-----END CERTIFICATE-----\n",
    );
    let e = load_err(config(&broken, &key));
    assert!(
        e.starts_with("`tls.cert`: ") && e.contains("is not valid PEM"),
        "{e}"
    );

    let garbage_cert = f.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    );
    let e = load_err(config(&garbage_cert, &key));
    assert!(
        e.starts_with("`tls.cert`: ") && e.contains("cannot be used"),
        "{e}"
    );

    let garbage_key = f.write(
        "garbage.key",
        "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n",
    );
    let e = load_err(config(&cert, &garbage_key));
    assert!(
        e.starts_with("`tls.key`: ") && e.contains("garbage.key") && e.contains("cannot be used"),
        "{e}"
    );

    let encrypted = f.write(
        "enc.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\naGVsbG8=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let e = load_err(config(&cert, &encrypted));
    assert!(e.contains("the key is encrypted"), "{e}");

    let mut c = config(&cert, &key);
    c.client_ca = Some(f.write("ca.pem", "no ca\n"));
    let e = load_err(c);
    assert!(e.starts_with("`tls.client_ca`: no PEM certificate"), "{e}");
}

#[test]
fn a_failed_reload_keeps_the_old_certificate() {
    let f = Files::new();
    let (cert, key) = f.cert("live", "first");
    let tls = Tls::load(config(&cert, &key), Metrics::new()).unwrap();

    std::fs::write(&cert, "truncated").unwrap();
    let e = tls.reload().unwrap_err().to_string();
    assert!(e.contains("no PEM certificate"), "{e}");
    assert_eq!(tls.loaded().cert.unwrap().subject, "CN=first");
    assert!(tls.failure().unwrap().reason.contains("no PEM certificate"));

    let (new_cert, new_key) = f.cert("next", "second");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    let loaded = tls.reload().unwrap();
    assert_eq!(loaded.cert.unwrap().subject, "CN=second");
    assert_eq!(tls.loaded().cert.unwrap().subject, "CN=second");
    assert!(tls.failure().is_none());
}
