//! Trust and client certificates: a private PKI made here (root, an intermediate that
//! expires in a few days, a server leaf, a client certificate), TLS servers on loopback
//! that serve the chain and may require the client certificate, and curl as the referee.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::support::names::PrivateEtc;
use crate::support::{assert_matches_schema, upcheck, Upcheck};

const DAY: i64 = 86_400;

/// The name the server leaf is issued for, besides 127.0.0.1, ::1 and localhost.
pub const TEST_NAME: &str = "api.upcheck.test";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// `der` as a PEM block labelled `label`.
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = String::new();
    for chunk in der.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let bits = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
        for index in 0..4 {
            if index <= chunk.len() {
                base64.push(ALPHABET[(bits >> (18 - 6 * index) & 63) as usize] as char);
            } else {
                base64.push('=');
            }
        }
    }
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap());
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// A private PKI written to a temporary folder: `ca.pem` (the root), `client.pem` and
/// `client-key.pem`, `client-combined.pem` (certificate and key in one file) and
/// `other-ca.pem` (a root that signed nothing here).
pub struct Pki {
    dir: TempDir,
    /// When the intermediate expires (Unix seconds): before the leaf.
    pub intermediate_not_after: i64,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
    root: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = |name: &str, not_after: i64| {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.not_before = at(now() - DAY);
            params.not_after = at(not_after);
            params
        };
        let root = CertifiedIssuer::self_signed(
            ca("upcheck test root", now() + 3650 * DAY),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let intermediate_not_after = now() + 3 * DAY + 3600;
        let intermediate = CertifiedIssuer::signed_by(
            ca("upcheck test intermediate", intermediate_not_after),
            KeyPair::generate().unwrap(),
            &root,
        )
        .unwrap();
        let mut leaf = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
            "localhost".to_owned(),
            TEST_NAME.to_owned(),
        ])
        .unwrap();
        leaf.not_before = at(now() - DAY);
        leaf.not_after = at(now() + 90 * DAY);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf.signed_by(&leaf_key, &intermediate).unwrap();

        let mut client = CertificateParams::new(vec!["upcheck-client".to_owned()]).unwrap();
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client = client.signed_by(&client_key, &root).unwrap();
        let other = CertifiedIssuer::self_signed(
            ca("someone else's root", now() + 3650 * DAY),
            KeyPair::generate().unwrap(),
        )
        .unwrap();

        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let client_pem = pem("CERTIFICATE", client.der());
        let client_key_pem = pem("PRIVATE KEY", &client_key.serialize_der());
        write("ca.pem", &pem("CERTIFICATE", root.der()));
        write("other-ca.pem", &pem("CERTIFICATE", other.der()));
        write("client.pem", &client_pem);
        write("client-key.pem", &client_key_pem);
        write(
            "client-combined.pem",
            &format!("{client_pem}{client_key_pem}"),
        );
        write("not-pem.pem", "this is not a certificate\n");
        Pki {
            dir,
            intermediate_not_after,
            chain: vec![leaf.der().clone(), intermediate.der().clone()],
            key: leaf_key.serialize_der(),
            root: root.der().clone(),
        }
    }

    /// The path of one of the PKI's files.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// The folder the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An HTTPS server on `addr` serving leaf and intermediate, answering `200 hello` to
    /// every request; when `require_client` it refuses clients without a certificate from
    /// the root.
    pub fn server(&self, addr: &str, require_client: bool) -> TlsServer {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.root.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(self.key.clone().into());
        let config = builder.with_single_cert(self.chain.clone(), key).unwrap();
        TlsServer::start(addr, TlsAcceptor::from(Arc::new(config)))
    }
}

/// A minimal HTTPS server; stops when dropped.
pub struct TlsServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TlsServer {
    fn start(addr: &str, acceptor: TlsAcceptor) -> TlsServer {
        let listener = std::net::TcpListener::bind(addr)
            .unwrap_or_else(|err| panic!("cannot listen on {addr}: {err}"));
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept = async {
                    while let Ok((stream, _)) = listener.accept().await {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let Ok(mut stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let mut head = Vec::new();
                            let mut buf = [0u8; 4096];
                            loop {
                                let Ok(read) = stream.read(&mut buf).await else {
                                    return;
                                };
                                if read == 0 {
                                    return;
                                }
                                head.extend_from_slice(&buf[..read]);
                                while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n")
                                {
                                    head.drain(..end + 4);
                                    let reply = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
                                    if stream.write_all(reply.as_bytes()).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = accept => {}
                }
            });
        });
        TlsServer {
            addr,
            shutdown: Some(shutdown),
        }
    }

    /// `https://127.0.0.1:PORT/` (or the bracketed IPv6 form).
    pub fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Runs upcheck with `-f json` and `args`: the exit code and the first result, checked
/// against the schema.
pub fn check(args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["-f", "json", "-t", "5s"];
    all.extend_from_slice(args);
    let run = upcheck(&all);
    let document = run.json();
    assert_matches_schema(&document, "document");
    (run.code, document["results"][0].clone())
}

#[test]
fn cacert_trusts_a_private_root_instead_of_the_systems() {
    let pki = Pki::new();
    let server = pki.server("127.0.0.1:0", false);
    let (code, result) = check(&["--cacert", &pki.path("ca.pem"), "-u", &server.url()]);
    assert_eq!(code, Some(0), "{result}");
    assert_eq!(result["status"], 200);

    let (code, result) = check(&["-u", &server.url()]);
    assert_eq!(code, Some(1), "the system does not know the root: {result}");
    assert_eq!(result["error_kind"], "tls");

    let (_, result) = check(&["--cacert", &pki.path("other-ca.pem"), "-u", &server.url()]);
    assert_eq!(result["error_kind"], "tls", "another root: {result}");
}

#[test]
fn expiry_is_the_earliest_in_the_chain_served() {
    let pki = Pki::new();
    let server = pki.server("127.0.0.1:0", false);
    let ca = pki.path("ca.pem");
    let (code, result) = check(&["--cacert", &ca, "-u", &server.url()]);
    assert_eq!(code, Some(0), "{result}");
    assert_eq!(
        result["cert_days_left"], 3,
        "the intermediate's, not the leaf's 90: {result}"
    );
    let expected = at(pki.intermediate_not_after);
    assert!(
        result["cert_expires_at"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "{:04}-{:02}-{:02}",
                expected.year(),
                u8::from(expected.month()),
                expected.day()
            )),
        "{result}"
    );
    let (code, result) = check(&["--cacert", &ca, "--cert-min-days", "7", "-u", &server.url()]);
    assert_eq!(code, Some(1));
    assert_eq!(result["error_kind"], "cert_expiry", "{result}");

    let (_, result) = check(&["-k", "-u", &server.url()]);
    assert_eq!(
        result["cert_days_left"], 3,
        "-k reads the chain too: {result}"
    );

    let run = upcheck(&["-f", "prometheus", "--cacert", &ca, "-u", &server.url()]);
    let line = format!(
        "probe_ssl_earliest_cert_expiry{{target=\"{}\"}} {}",
        server.url(),
        pki.intermediate_not_after
    );
    assert!(run.stdout.contains(&line), "{}", run.stdout);
}

#[test]
fn a_server_that_requires_a_client_certificate_gets_one() {
    let pki = Pki::new();
    let server = pki.server("127.0.0.1:0", true);
    let ca = pki.path("ca.pem");
    let (code, result) = check(&["--cacert", &ca, "-u", &server.url()]);
    assert_eq!(code, Some(1), "no client certificate: {result}");
    assert_eq!(result["ok"], false);

    let (cert, key) = (pki.path("client.pem"), pki.path("client-key.pem"));
    let (code, result) = check(&[
        "--cacert",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
        "-u",
        &server.url(),
    ]);
    assert_eq!(code, Some(0), "{result}");
    assert_eq!(result["status"], 200);

    let combined = pki.path("client-combined.pem");
    let (code, result) = check(&["--cacert", &ca, "--cert", &combined, "-u", &server.url()]);
    assert_eq!(
        code,
        Some(0),
        "key in the certificate's file, as curl reads it: {result}"
    );
}

#[test]
fn checks_file_entries_carry_their_own_trust_and_identity() {
    let pki = Pki::new();
    let plain = pki.server("127.0.0.1:0", false);
    let mutual = pki.server("127.0.0.1:0", true);
    let checks = pki.dir().join("checks.toml");
    // Relative paths are read from the checks file's folder.
    std::fs::write(
        &checks,
        format!(
            "[[check]]\nname = \"internal\"\nurl = \"{}\"\nca_file = \"ca.pem\"\n\n\
             [[check]]\nname = \"public\"\nurl = \"{}\"\n\n\
             [[check]]\nname = \"mutual\"\nurl = \"{}\"\nca_file = \"ca.pem\"\n\
             client_cert = \"client.pem\"\nclient_key = \"{}\"\n\n\
             [[check]]\nname = \"mutual, no cert\"\nurl = \"{}\"\nca_file = \"ca.pem\"\n\n\
             [[check]]\nurl = \"tcp://127.0.0.1:1\"\nca_file = \"ca.pem\"\n",
            plain.url(),
            plain.url(),
            mutual.url(),
            pki.path("client-key.pem"),
            mutual.url(),
        ),
    )
    .unwrap();
    let run = upcheck(&["-f", "json", "--checks", checks.to_str().unwrap()]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let results = run.results();
    let by_name = |name: &str| results.iter().find(|r| r["name"] == name).unwrap().clone();
    assert_eq!(by_name("internal")["ok"], true, "{results:#?}");
    assert_eq!(
        by_name("public")["error_kind"],
        "tls",
        "system roots for the rest"
    );
    assert_eq!(by_name("mutual")["ok"], true, "{results:#?}");
    assert_eq!(by_name("mutual, no cert")["ok"], false);
    let tcp = &results[4];
    assert_eq!(tcp["error_kind"], "invalid");
    assert!(
        tcp["error"].as_str().unwrap().contains("only to http://"),
        "{tcp}"
    );
}

#[test]
fn unusable_tls_files_are_usage_errors_naming_the_option() {
    let pki = Pki::new();
    let missing = pki.dir().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let not_pem = pki.path("not-pem.pem");
    let cert = pki.path("client.pem");
    let cases: [(&[&str], &str); 6] = [
        (&["--cacert", missing], "--cacert: cannot read"),
        (&["--cacert", &not_pem], "--cacert:"),
        (&["--cert", missing], "--cert: cannot read"),
        (&["--cert", &cert], "--cert:"),
        (&["--cert", &cert, "--key", &not_pem], "--key:"),
        (&["--cert", &cert, "--key", missing], "--key: cannot read"),
    ];
    for (args, expected) in cases {
        let mut all = args.to_vec();
        all.extend(["-u", "https://127.0.0.1:1/"]);
        let run = upcheck(&all);
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "nothing probed: {}", run.stdout);
    }
    let run = upcheck(&["--key", &cert, "-u", "https://127.0.0.1:1/"]);
    assert_eq!(run.code, Some(2), "--key needs --cert: {}", run.stderr);

    let checks = pki.dir().join("bad.toml");
    std::fs::write(
        &checks,
        "[[check]]\nurl = \"https://127.0.0.1:1/\"\nca_file = \"missing.pem\"\n",
    )
    .unwrap();
    let run = upcheck(&["--checks", checks.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("bad.toml:3: ca_file: cannot read"),
        "{}",
        run.stderr
    );
}

/// Whether curl, given `args`, fetches `url` successfully (writing the body to `body`),
/// seeing only `etc`'s names.
fn curl_succeeds(etc: &PrivateEtc, args: &[&str], url: &str, body: &str) -> bool {
    let launcher = etc.launcher();
    let mut curl = Command::new(&launcher[0]);
    curl.args(&launcher[1..])
        .arg("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "5",
            "--noproxy",
            "*",
            "-o",
            body,
        ])
        .args(args)
        .arg(url)
        .env_remove("CURL_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE");
    let output = curl.output().unwrap_or_else(|err| {
        panic!("cannot run curl (it must be installed for this test): {err}")
    });
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("not found"),
        "curl must be installed for this test: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "$ curl {} {url}  -> exit {:?} {}",
        args.join(" "),
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    output.status.success()
}

#[test]
fn curl_agrees_on_trust_client_certificates_and_pinned_names() {
    let pki = Pki::new();
    let plain = pki.server("127.0.0.1:0", false);
    let mutual = pki.server("127.0.0.1:0", true);
    let (ca, other) = (pki.path("ca.pem"), pki.path("other-ca.pem"));
    let (cert, key) = (pki.path("client.pem"), pki.path("client-key.pem"));
    let pin = format!("{TEST_NAME}:{}:127.0.0.1", plain.addr.port());
    let pinned_url = format!("https://{TEST_NAME}:{}/", plain.addr.port());
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--cacert", &ca], plain.url()),
        (vec!["--cacert", &other], plain.url()),
        (vec!["--cacert", &ca], mutual.url()),
        (
            vec!["--cacert", &ca, "--cert", &cert, "--key", &key],
            mutual.url(),
        ),
        (
            vec!["--cacert", &other, "--cert", &cert, "--key", &key],
            mutual.url(),
        ),
        (vec!["--cacert", &ca, "--resolve", &pin], pinned_url.clone()),
        (vec!["-k"], plain.url()),
    ];
    // Neither may ask this machine's resolver: a pin that failed would show as a failure.
    let etc = PrivateEtc::new("", None);
    for (args, url) in &cases {
        let curl = curl_succeeds(&etc, args, url, &pki.path("curl-body"));
        let run = Upcheck::new()
            .format("json")
            .args(["-t", "5s"])
            .args(args)
            .args(["-u", url])
            .via(etc.launcher())
            .run();
        let result = run.results()[0].clone();
        let ours = result["ok"] == true;
        eprintln!("{args:?} {url}: curl {curl}, upcheck {ours}");
        assert_eq!(
            curl, ours,
            "curl and upcheck disagree on {args:?} {url}: {result}"
        );
    }
}

#[test]
fn a_report_or_state_over_a_tls_file_is_refused() {
    let pki = Pki::new();
    let checks = pki.dir().join("checks.toml");
    std::fs::write(
        &checks,
        "[[check]]\nurl = \"https://127.0.0.1:1/\"\nca_file = \"ca.pem\"\n\
         client_cert = \"client.pem\"\nclient_key = \"client-key.pem\"\n",
    )
    .unwrap();
    let checks_arg = checks.to_str().unwrap();
    let originals: Vec<(String, Vec<u8>)> = ["ca.pem", "client.pem", "client-key.pem"]
        .iter()
        .map(|name| (pki.path(name), std::fs::read(pki.path(name)).unwrap()))
        .collect();
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client-key.pem"),
    );
    let tls_options = ["--cacert", &ca, "--cert", &cert, "--key", &key];
    for (file, reader) in [(&ca, "--cacert"), (&cert, "--cert"), (&key, "--key")] {
        // --state-reset, or reading the file as a state would refuse it first.
        for writer in [vec!["-o", file], vec!["--state-reset", "--state", file]] {
            // Named by a checks file, and by an option.
            let by_checks = upcheck(&[&["--checks", checks_arg][..], &writer].concat());
            assert_eq!(by_checks.code, Some(2), "{writer:?}: {by_checks:?}");
            assert!(
                by_checks.stderr.contains("named in"),
                "{}",
                by_checks.stderr
            );
            let by_option =
                upcheck(&[&tls_options[..], &["-u", "http://127.0.0.1:1/"], &writer].concat());
            assert_eq!(by_option.code, Some(2), "{writer:?}: {by_option:?}");
            let said =
                format!("cannot write '{file}': it is the input '{file} (read by {reader})'");
            assert!(by_option.stderr.contains(&said), "{}", by_option.stderr);
        }
    }
    for (file, bytes) in originals {
        assert_eq!(
            std::fs::read(&file).unwrap(),
            bytes,
            "{file} left as it was"
        );
    }
}
