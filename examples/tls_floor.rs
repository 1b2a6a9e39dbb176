//! The CPU floor of an HTTPS check, for the bench README's tls figures: the same checks
//! as upcheck's tls scenario, with nothing around them.
//!
//! ```text
//! cargo run --release --example tls_floor -- LIST CONCURRENCY bare|reqwest
//! ```
//!
//! LIST holds `https://HOST:PORT/PATH` lines (an IP literal for HOST). Every check is a
//! TCP connection, a TLS handshake with certificates accepted unchecked (as `-k`), one
//! `GET` with `Connection: close`, and the status line read back, CONCURRENCY at a time
//! on one current-thread runtime. `bare` writes the request by hand over tokio-rustls and
//! drops the connection once the answer's head is in; `reqwest` sends it through a
//! reqwest client set up as upcheck's (HTTP/1.1, no pool, no proxy, a 10 s timeout).
//! Prints one line per check, `ok` or the reason it failed.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How the checks are made.
#[derive(Clone)]
enum Client {
    Bare(TlsConnector),
    Reqwest(reqwest::Client),
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [list, concurrency, kind] = args.as_slice() else {
        bail!("usage: tls_floor LIST CONCURRENCY bare|reqwest");
    };
    let concurrency: usize = concurrency
        .parse()
        .with_context(|| format!("CONCURRENCY {concurrency:?} is not a count"))?;
    let text = std::fs::read_to_string(list).with_context(|| format!("cannot read {list}"))?;
    let urls: Vec<String> = text.lines().map(str::to_owned).collect();
    let config = Arc::new(tls_config()?);
    let client = match kind.as_str() {
        "bare" => Client::Bare(TlsConnector::from(config)),
        "reqwest" => Client::Reqwest(
            reqwest::Client::builder()
                .use_preconfigured_tls(ClientConfig::clone(&config))
                .http1_only()
                .pool_max_idle_per_host(0)
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()?,
        ),
        other => bail!("the third argument is bare or reqwest, not {other:?}"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let urls = Rc::new(urls);
    let next = Rc::new(Cell::new(0));
    let out = Rc::new(RefCell::new(std::io::BufWriter::new(std::io::stdout())));
    let checks = tokio::task::LocalSet::new();
    for _ in 0..concurrency {
        let (urls, next, out, client) = (urls.clone(), next.clone(), out.clone(), client.clone());
        checks.spawn_local(async move {
            while let Some(url) = urls.get(next.get()) {
                next.set(next.get() + 1);
                let verdict = match check(&client, url).await {
                    Ok(()) => "ok".to_owned(),
                    Err(error) => format!("{error:#}"),
                };
                writeln!(out.borrow_mut(), "{url} {verdict}")?;
            }
            anyhow::Ok(())
        });
    }
    runtime.block_on(checks);
    out.borrow_mut().flush()?;
    Ok(())
}

/// TLS as upcheck's `-k`: aws-lc-rs, no resumption, any certificate.
fn tls_config() -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Unchecked))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// One check of `url`: Ok when the answer is 200.
async fn check(client: &Client, url: &str) -> anyhow::Result<()> {
    match client {
        Client::Reqwest(client) => {
            let response = client.get(url).send().await?;
            let status = response.status();
            response.bytes().await?;
            if status != 200 {
                bail!("status {status}");
            }
        }
        Client::Bare(connector) => {
            let rest = url.strip_prefix("https://").context("not an https URL")?;
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let (host, _) = authority.rsplit_once(':').context("no port")?;
            let tcp = tokio::net::TcpStream::connect(authority).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(host.to_owned())?;
            let mut tls = connector.connect(name, tcp).await?;
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
            tls.write_all(request.as_bytes()).await?;
            let mut head = Vec::with_capacity(1024);
            while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                if tls.read_buf(&mut head).await? == 0 || head.len() > 16 * 1024 {
                    bail!("no complete answer");
                }
            }
            if !head.starts_with(b"HTTP/1.1 200 ") {
                bail!("not 200");
            }
        }
    }
    Ok(())
}

/// Accepts any certificate and signature: the floor of `-k`.
#[derive(Debug)]
struct Unchecked;

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
