//! TLS through the real binary: a CA, server and client certificates made at test time
//! (rcgen), `serve` with `MCP_AUDIT_TLS_*`, and the real `ship`, `search` and `demo` over
//! https://. Proves: HTTPS search and gRPC ship with `--ca-cert`, an untrusted certificate and
//! plain HTTP/gRPC refused, mTLS refusing clients without a certificate (or with one from
//! another CA), SIGHUP swapping the certificate for new connections, a broken certificate on
//! SIGHUP keeping the old one in service, bad files stopping start-up with their path, and
//! webhooks delivered to an https:// receiver.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::Collector;
use mcp_audit::tls::x509::Summary;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A certificate authority made for one test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let pem = p.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(p, key),
            pem,
        }
    }

    /// A leaf certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM, DER).
    fn leaf(&self, cn: &str, serial: u64, purpose: ExtendedKeyUsagePurpose) -> Leaf {
        let mut p =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        p.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

struct Leaf {
    cert: String,
    key: String,
    der: Vec<u8>,
}

/// The files of one test: the CA, the server's certificate and key, and a client's.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Pki {
    fn new() -> Self {
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: Ca::new("mcp-audit test CA"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn ca_file(&self) -> String {
        self.write("ca.pem", &self.ca.pem)
    }

    /// Writes a server certificate as `server.pem` / `server.key`.
    fn server(&self, cn: &str, serial: u64) -> Leaf {
        let leaf = self
            .ca
            .leaf(cn, serial, ExtendedKeyUsagePurpose::ServerAuth);
        self.write("server.pem", &leaf.cert);
        self.write("server.key", &leaf.key);
        leaf
    }

    /// The environment that turns TLS on with `server.pem` / `server.key`.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "MCP_AUDIT_TLS_CERT",
                self.path("server.pem").display().to_string(),
            ),
            (
                "MCP_AUDIT_TLS_KEY",
                self.path("server.key").display().to_string(),
            ),
        ]
    }

    /// An HTTP client that trusts the test CA, optionally with a client certificate.
    fn http_client(&self, identity: Option<&Leaf>) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca.pem.as_bytes()).unwrap());
        if let Some(id) = identity {
            let pem = format!("{}\n{}", id.cert, id.key);
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }
}

async fn start(
    pki: &Pki,
    data: &Path,
    extra: &[(&str, String)],
    identity: Option<&Leaf>,
) -> Collector {
    let mut env = pki.env();
    env.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match Collector::try_start_over(data, &env, "https", pki.http_client(identity)).await {
        Ok(c) => c,
        Err(log) => panic!("collector exited instead of starting:\n{log}"),
    }
}

/// Runs the binary with no collector settings inherited from the environment.
fn mcp_audit(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-audit"));
    c.args(args);
    for v in [
        "MCP_AUDIT_TOKEN",
        "MCP_AUDIT_ENDPOINT",
        "MCP_AUDIT_HTTP_ENDPOINT",
        "MCP_AUDIT_CA_CERT",
        "MCP_AUDIT_CLIENT_CERT",
        "MCP_AUDIT_CLIENT_KEY",
    ] {
        c.env_remove(v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A JSON Lines file of `n` events labelled `run`.
fn events_file(pki: &Pki, run: &str, n: usize) -> String {
    let ts = (time::OffsetDateTime::now_utc() - time::Duration::minutes(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let lines: Vec<String> = (0..n)
        .map(|i| {
            json!({
                "event_id": format!("{run}-{i}"),
                "timestamp": ts,
                "method": "tools/call",
                "server": "filesystem",
                "tool": "read_file",
                "user": "alice",
                "arguments": {"path": "/srv/app/README.md"},
                "labels": {"run": run},
            })
            .to_string()
        })
        .collect();
    pki.write(&format!("{run}.jsonl"), &(lines.join("\n") + "\n"))
}

/// `mcp-audit search --json` over https until it finds `n` events of `run`.
fn search_until(c: &Collector, ca: &str, run: &str, n: u64) -> Value {
    let endpoint = format!("https://127.0.0.1:{}", c.http);
    let q = format!("labels.run:{run}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = mcp_audit(&[
            "search",
            "--endpoint",
            &endpoint,
            "--ca-cert",
            ca,
            "--json",
            "--since",
            "1h",
            &q,
        ]);
        assert!(out.status.success(), "search failed: {}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        if v["total"].as_u64() == Some(n) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "search never found {n} events of {run}: {v}\n{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TLS client that trusts `ca_pem` and offers `alpn`.
fn connector(ca_pem: &str, alpn: &[u8], identity: Option<&Leaf>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(id) => b
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(id.cert.as_bytes())
                    .map(|c| c.unwrap())
                    .collect(),
                rustls::pki_types::PrivateKeyDer::from_pem_slice(id.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A new TLS connection to `port`: the stream and the certificate the collector presented.
async fn connect(port: u16, ca_pem: &str, alpn: &[u8]) -> (Tls, Vec<u8>) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let stream = connector(ca_pem, alpn, None)
        .connect(name, tcp)
        .await
        .unwrap();
    let der = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn));
    (stream, der)
}

/// Sends one HTTP/1.1 request on an open connection and reads the status line.
async fn status_line(stream: &mut Tls, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

fn hup(c: &Collector) {
    let ok = Command::new("kill")
        .args(["-HUP", &c.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP failed");
}

/// Waits until the collector's log contains `text`.
fn wait_log(c: &Collector, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.log_text().contains(text) {
        assert!(
            Instant::now() < deadline,
            "log never said {text:?}:\n{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_search_and_grpc_ship_with_a_private_ca() {
    let pki = Pki::new();
    let server = pki.server("collector-1", 0x51);
    let ca = pki.ca_file();
    let data = pki.path("data");
    let timeout = [("MCP_AUDIT_TLS_HANDSHAKE_TIMEOUT_MS", "1000".to_string())];
    let c = start(&pki, &data, &timeout, None).await;

    let log = c.log_text();
    for listener in ["grpc", "http"] {
        assert!(
            log.lines().any(|l| l.contains("tls: listener serves TLS")
                && l.contains(&format!("listener=\"{listener}\""))
                && l.contains("no client certificates")
                && l.contains("CN=collector-1")),
            "no TLS start line for {listener}:\n{log}"
        );
    }
    let client = pki.http_client(None);
    let ready = client.get(c.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready = ready.text().await.unwrap();
    assert!(
        ready.contains("tls: grpc and http, no client certificates")
            && ready.contains("CN=collector-1")
            && ready.contains("serial 51"),
        "{ready}"
    );
    let (_, der) = connect(c.http, &pki.ca.pem, b"http/1.1").await;
    assert_eq!(der, server.der);
    let (_, der) = connect(c.grpc, &pki.ca.pem, b"h2").await;
    assert_eq!(der, server.der);

    // gRPC over TLS: `ship` gets every event acknowledged.
    let grpc = format!("https://127.0.0.1:{}", c.grpc);
    let file = events_file(&pki, "tls-ship", 5);
    let out = mcp_audit(&["ship", "--endpoint", &grpc, "--ca-cert", &ca, &file]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), c.log_text());
    assert!(
        stderr(&out).contains("shipped 5 of 5 events (0 rejected)"),
        "{}",
        stderr(&out)
    );
    // HTTPS: `search` finds them.
    let v = search_until(&c, &ca, "tls-ship", 5);
    assert_eq!(v["hits"].as_array().unwrap().len(), 5);
    // `demo` streams over TLS too.
    let out = mcp_audit(&[
        "demo",
        "--endpoint",
        &grpc,
        "--ca-cert",
        &ca,
        "--events",
        "30",
        "--rate",
        "1000",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("demo: sent 30 events (30 accepted)"),
        "{}",
        stderr(&out)
    );

    // Without the CA the collector's certificate is not trusted.
    let https = format!("https://127.0.0.1:{}", c.http);
    let out = mcp_audit(&["search", "--endpoint", &https, "x"]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("cannot reach the collector") && e.contains("certificate"),
        "{e}"
    );
    let out = mcp_audit(&["ship", "--endpoint", &grpc, &file]);
    assert!(!out.status.success());
    let e = stderr(&out);
    assert!(
        e.contains("cannot connect to the collector") && e.contains("certificate"),
        "{e}"
    );
    // A CA file that holds no certificate is named.
    let not_pem = pki.write("not-a-ca.pem", "hello\n");
    let out = mcp_audit(&["search", "--endpoint", &https, "--ca-cert", &not_pem, "x"]);
    let e = stderr(&out);
    assert!(
        e.contains("`--ca-cert`: no PEM certificate found in") && e.contains("not-a-ca.pem"),
        "{e}"
    );

    // Plain HTTP to the TLS port is told to use https://; plain gRPC fails.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/api/v1/search", c.http))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    let body: Value = plain.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("use https://"),
        "{body}"
    );
    let out = mcp_audit(&[
        "ship",
        "--endpoint",
        &format!("http://127.0.0.1:{}", c.grpc),
        "--retries",
        "1",
        &file,
    ]);
    assert!(!out.status.success(), "plain gRPC to the TLS port worked");
    assert!(stderr(&out).contains("use https://"), "{}", stderr(&out));
    // A client that connects and never finishes a handshake is closed after
    // `tls.handshake_timeout_ms` (1 s here), on both ports; others are served meanwhile.
    for port in [c.http, c.grpc] {
        let mut stalled = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        if port == c.grpc {
            // Half a ClientHello record header.
            stalled.write_all(&[0x16, 0x03]).await.unwrap();
        }
        let since = Instant::now();
        search_until(&c, &ca, "tls-ship", 5);
        let mut buf = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "port {port}: a stalled handshake was not closed: {closed:?}"
        );
        assert!(
            since.elapsed() >= Duration::from_millis(900),
            "closed too early"
        );
    }

    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_refuses_clients_without_a_certificate_from_the_ca() {
    let pki = Pki::new();
    pki.server("collector-mtls", 7);
    let ca = pki.ca_file();
    let client = pki
        .ca
        .leaf("gateway-1", 8, ExtendedKeyUsagePurpose::ClientAuth);
    let client_cert = pki.write("client.pem", &client.cert);
    let client_key = pki.write("client.key", &client.key);
    let rogue = Ca::new("another CA").leaf("gateway-x", 9, ExtendedKeyUsagePurpose::ClientAuth);
    let rogue_cert = pki.write("rogue.pem", &rogue.cert);
    let rogue_key = pki.write("rogue.key", &rogue.key);
    let data = pki.path("data");
    let c = start(
        &pki,
        &data,
        &[("MCP_AUDIT_TLS_CLIENT_CA", ca.clone())],
        Some(&client),
    )
    .await;
    assert!(
        c.log_text().contains("client certificates required"),
        "{}",
        c.log_text()
    );

    let https = format!("https://127.0.0.1:{}", c.http);
    let grpc = format!("https://127.0.0.1:{}", c.grpc);
    let file = events_file(&pki, "mtls", 3);

    // No client certificate: refused on both ports.
    let out = mcp_audit(&["search", "--endpoint", &https, "--ca-cert", &ca, "x"]);
    assert!(
        !out.status.success(),
        "search without a client certificate worked"
    );
    let out = mcp_audit(&[
        "ship",
        "--endpoint",
        &grpc,
        "--ca-cert",
        &ca,
        "--retries",
        "1",
        &file,
    ]);
    assert!(
        !out.status.success(),
        "ship without a client certificate worked"
    );
    assert!(!stderr(&out).contains("shipped 3"), "{}", stderr(&out));
    // A certificate from another CA: refused.
    let out = mcp_audit(&[
        "search",
        "--endpoint",
        &https,
        "--ca-cert",
        &ca,
        "--client-cert",
        &rogue_cert,
        "--client-key",
        &rogue_key,
        "x",
    ]);
    assert!(
        !out.status.success(),
        "search with another CA's certificate worked"
    );
    let out = mcp_audit(&[
        "ship",
        "--endpoint",
        &grpc,
        "--ca-cert",
        &ca,
        "--client-cert",
        &rogue_cert,
        "--client-key",
        &rogue_key,
        "--retries",
        "1",
        &file,
    ]);
    assert!(
        !out.status.success(),
        "ship with another CA's certificate worked"
    );
    // A certificate signed by the CA: served.
    let out = mcp_audit(&[
        "ship",
        "--endpoint",
        &grpc,
        "--ca-cert",
        &ca,
        "--client-cert",
        &client_cert,
        "--client-key",
        &client_key,
        &file,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("shipped 3 of 3 events (0 rejected)"),
        "{}",
        stderr(&out)
    );
    let q = "labels.run:mtls";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = mcp_audit(&[
            "search",
            "--endpoint",
            &https,
            "--ca-cert",
            &ca,
            "--client-cert",
            &client_cert,
            "--client-key",
            &client_key,
            "--json",
            q,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        if v["total"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Half an identity is a usage error, not a silent plain connection.
    let out = mcp_audit(&[
        "search",
        "--endpoint",
        &https,
        "--client-cert",
        &client_cert,
        "x",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--client-key"), "{}", stderr(&out));
    // The refusals were counted.
    let metrics = pki
        .http_client(Some(&client))
        .get(c.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for listener in ["grpc", "http"] {
        let line = format!("mcp_audit_tls_handshake_failures_total{{listener=\"{listener}\"}}");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_and_a_broken_one_keeps_the_old() {
    let pki = Pki::new();
    let first = pki.server("collector-a", 0xa1);
    let ca = pki.ca_file();
    let data = pki.path("data");
    let c = start(&pki, &data, &[], None).await;

    let (mut open, der) = connect(c.http, &pki.ca.pem, b"http/1.1").await;
    assert_eq!(der, first.der);
    let s = Summary::parse(&der).unwrap();
    assert_eq!(
        (s.subject.as_str(), s.serial.as_str()),
        ("CN=collector-a", "A1")
    );

    // A new certificate and key in place, then SIGHUP: new connections on both ports get it.
    let second = pki.server("collector-b", 0xb2);
    hup(&c);
    wait_log(&c, "tls: reloaded on SIGHUP");
    for (port, alpn) in [(c.http, &b"http/1.1"[..]), (c.grpc, &b"h2"[..])] {
        let (_, der) = connect(port, &pki.ca.pem, alpn).await;
        assert!(
            der == second.der,
            "port {port} presents {:?}, not the new certificate",
            Summary::parse(&der)
        );
        let s = Summary::parse(&der).unwrap();
        assert_eq!(
            (s.subject.as_str(), s.serial.as_str()),
            ("CN=collector-b", "B2")
        );
    }
    // A connection opened before the reload goes on with its certificate.
    assert_eq!(status_line(&mut open, "/healthz").await, "HTTP/1.1 200 OK");
    assert!(
        c.log_text().contains("subject=CN=collector-b"),
        "{}",
        c.log_text()
    );

    // A broken certificate file: the reload fails loudly, the collector keeps serving the
    // certificate it has, on new connections too, and says so in /readyz.
    std::fs::write(
        pki.path("server.pem"),
        "-----BEGIN CERTIFICATE-----\ntruncated",
    )
    .unwrap();
    hup(&c);
    wait_log(&c, "tls: reload on SIGHUP failed");
    let log = c.log_text();
    assert!(
        log.contains("server.pem") && log.contains("still serving the certificate loaded before"),
        "{log}"
    );
    let (_, der) = connect(c.http, &pki.ca.pem, b"http/1.1").await;
    assert_eq!(der, second.der);
    let ready = pki
        .http_client(None)
        .get(c.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready = ready.text().await.unwrap();
    assert!(
        ready.contains("CN=collector-b") && ready.contains("failed, still serving"),
        "{ready}"
    );
    let grpc = format!("https://127.0.0.1:{}", c.grpc);
    let file = events_file(&pki, "after-bad-reload", 2);
    let out = mcp_audit(&["ship", "--endpoint", &grpc, "--ca-cert", &ca, &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("shipped 2 of 2"), "{}", stderr(&out));
    let metrics = pki
        .http_client(None)
        .get(c.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mcp_audit_tls_reloads_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mcp_audit_tls_reloads_total{outcome=\"error\"} 1"),
        "{metrics}"
    );
    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificate_files_stop_start_up_naming_the_file() {
    let pki = Pki::new();
    pki.server("collector", 1);
    let other = pki.ca.leaf("other", 2, ExtendedKeyUsagePurpose::ServerAuth);
    let other_key = pki.write("other.key", &other.key);
    let missing = pki.path("missing.pem").display().to_string();
    let cases = [
        (
            vec![("MCP_AUDIT_TLS_CERT", missing.clone())],
            vec!["`tls.cert`: cannot read", "missing.pem"],
        ),
        (
            vec![("MCP_AUDIT_TLS_KEY", other_key)],
            vec![
                "`tls.key`",
                "other.key",
                "does not match the certificate in",
                "server.pem",
            ],
        ),
        (
            vec![("MCP_AUDIT_TLS_CERT", pki.write("empty.pem", "\n"))],
            vec!["`tls.cert`: no PEM certificate found in", "empty.pem"],
        ),
        (
            vec![("MCP_AUDIT_TLS_CLIENT_CA", missing)],
            vec!["`tls.client_ca`: cannot read", "missing.pem"],
        ),
    ];
    for (i, (overrides, wanted)) in cases.into_iter().enumerate() {
        let mut env = pki.env();
        for (k, v) in overrides {
            env.retain(|(e, _)| *e != k);
            env.push((k, v));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let data = pki.path(&format!("data-{i}"));
        let log = match Collector::try_start_over(&data, &env, "https", pki.http_client(None)).await
        {
            Ok(c) => {
                c.kill();
                panic!("case {i}: started with bad TLS files");
            }
            Err(log) => log,
        };
        for w in wanted {
            assert!(log.contains(w), "case {i}: {w:?} missing from:\n{log}");
        }
    }
}

/// A one-request HTTPS receiver on loopback serving `leaf`: answers 204 and hands back the
/// request head.
async fn https_receiver(leaf: &Leaf) -> (u16, tokio::task::JoinHandle<String>) {
    let chain = CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        // The first connection may be one that fails its handshake; a few are enough.
        for _ in 0..4 {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                let n = tls.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            tls.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let _ = tls.shutdown().await;
            return String::from_utf8_lossy(&head).into_owned();
        }
        String::new()
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_delivered_to_https_receivers() {
    let pki = Pki::new();
    let receiver = pki
        .ca
        .leaf("hooks.test", 3, ExtendedKeyUsagePurpose::ServerAuth);
    let ca = pki.ca_file();
    let (port, got) = https_receiver(&receiver).await;
    let config = pki.write(
        "hooks.toml",
        &format!(
            "[[webhooks]]\nname = \"secure\"\nurl = \"https://127.0.0.1:{port}/hook\"\nsecret = \"whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA==\"\nallow_private = true\n"
        ),
    );
    // Not trusted: the receiver's CA is not among the system's.
    let out = mcp_audit(&["webhook", "test", "secure", "--config", &config]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("not delivered") && said.contains("certificate"),
        "{said}"
    );
    // Trusted through the system roots' usual override: delivered, signed, over TLS.
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-audit"))
        .args(["webhook", "test", "secure", "--config", &config])
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}{}", stderr(&out));
    assert!(said.contains("delivered: secure answered 204"), "{said}");
    let head = tokio::time::timeout(Duration::from_secs(10), got)
        .await
        .unwrap()
        .unwrap();
    assert!(head.starts_with("POST /hook HTTP/1.1"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("webhook-signature: v1,"),
        "{head}"
    );
}
