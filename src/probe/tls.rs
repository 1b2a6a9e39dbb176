//! TLS as the HTTP client uses it: which CAs to trust (`--cacert`, `ca_file`), the client
//! certificate (`--cert`/`--key`, `client_cert`/`client_key`), and a verifier that reads
//! every certificate the server sends, so expiry means the whole chain served.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::aws_lc_rs::kx_group;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CipherSuite, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::cert;
use super::trace::ConnectionTrace;
use crate::outcome::CertExpiry;

/// A PEM bundle of CAs to trust instead of the system's.
pub(crate) struct Roots {
    path: PathBuf,
    store: Arc<RootCertStore>,
}

impl Roots {
    /// Reads the CA bundle at `path`; the error says why it cannot be used.
    pub(crate) fn load(path: &Path) -> Result<Arc<Roots>, String> {
        let pem = read(path)?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| format!("'{}' is not a PEM file: {err}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("'{}' holds no PEM certificates", path.display()));
        }
        let mut store = RootCertStore::empty();
        let (added, _) = store.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!(
                "none of the certificates in '{}' can be used as a CA",
                path.display()
            ));
        }
        Ok(Arc::new(Roots {
            path: path.to_owned(),
            store: Arc::new(store),
        }))
    }
}

/// A client certificate chain and its private key, for servers that ask for one.
pub(crate) struct Identity {
    cert_path: PathBuf,
    key_path: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// Which of an identity's two files is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdentityFile {
    /// The certificate (`--cert`, `client_cert`).
    Cert,
    /// The private key (`--key`, `client_key`).
    Key,
}

impl Identity {
    /// Reads the certificate chain at `cert_path` and the private key at `key_path` (or,
    /// without one, from the certificate's file, as curl does); the error names the file
    /// at fault and says why.
    pub(crate) fn load(
        cert_path: &Path,
        key_path: Option<&Path>,
    ) -> Result<Arc<Identity>, (IdentityFile, String)> {
        let cert_pem = read(cert_path).map_err(|why| (IdentityFile::Cert, why))?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| {
                let why = format!("'{}' is not a PEM file: {err}", cert_path.display());
                (IdentityFile::Cert, why)
            })?;
        if chain.is_empty() {
            let why = format!("'{}' holds no PEM certificate", cert_path.display());
            return Err((IdentityFile::Cert, why));
        }
        let (key_path, key_pem, key_file) = match key_path {
            Some(path) => (
                path,
                read(path).map_err(|why| (IdentityFile::Key, why))?,
                IdentityFile::Key,
            ),
            None => (cert_path, cert_pem, IdentityFile::Cert),
        };
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
            let why = match err {
                rustls::pki_types::pem::Error::NoItemsFound => format!(
                    "'{}' holds no PEM private key{}",
                    key_path.display(),
                    if key_file == IdentityFile::Cert {
                        " (give the key with --key or client_key)"
                    } else {
                        ""
                    }
                ),
                err => format!("'{}' is not a PEM private key: {err}", key_path.display()),
            };
            (key_file, why)
        })?;
        let identity = Identity {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            chain,
            key,
        };
        // Building a configuration checks that the key is usable and matches the certificate.
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|err| (IdentityFile::Key, err.to_string()))?
            .with_root_certificates(RootCertStore::empty())
            .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(|err| {
                let why = format!(
                    "'{}' and '{}' cannot be used together: {err}",
                    identity.cert_path.display(),
                    identity.key_path.display()
                );
                (IdentityFile::Key, why)
            })?;
        Ok(Arc::new(identity))
    }
}

/// What TLS trusts and presents for some targets; each setting left unset keeps the default.
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    /// CAs to trust instead of the system's.
    pub(crate) roots: Option<Arc<Roots>>,
    /// The client certificate to present.
    pub(crate) identity: Option<Arc<Identity>>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Paths only: the key itself is never printed.
        f.debug_tuple("TlsSettings").field(&self.key()).finish()
    }
}

/// What tells two TLS settings apart: the files they were read from.
pub(crate) type TlsKey = (Option<PathBuf>, Option<(PathBuf, PathBuf)>);

impl TlsSettings {
    /// Whether nothing is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.roots.is_none() && self.identity.is_none()
    }

    /// These settings, with `defaults` for what they leave unset.
    pub(crate) fn or(&self, defaults: &TlsSettings) -> TlsSettings {
        TlsSettings {
            roots: self.roots.clone().or_else(|| defaults.roots.clone()),
            identity: self.identity.clone().or_else(|| defaults.identity.clone()),
        }
    }

    /// The files these settings come from, so that one client serves all targets that share them.
    pub(crate) fn key(&self) -> TlsKey {
        (
            self.roots.as_ref().map(|roots| roots.path.clone()),
            self.identity
                .as_ref()
                .map(|identity| (identity.cert_path.clone(), identity.key_path.clone())),
        )
    }
}

/// The earliest notAfter of each chain served whose intermediates expire before its leaf,
/// by leaf: a reused connection shows only its leaf, and most chains need no entry.
#[derive(Debug, Default)]
pub(crate) struct ChainExpiries {
    earlier_than_leaf: Mutex<HashMap<Vec<u8>, i64>>,
}

impl ChainExpiries {
    /// Notes the chain `leaf` + `intermediates` as served; returns its earliest expiry.
    fn note(&self, leaf: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Option<i64> {
        let leaf_expiry = cert::not_after(leaf).ok()?;
        let earliest = intermediates
            .iter()
            .filter_map(|der| cert::not_after(der).ok())
            .min()
            .filter(|earliest| *earliest < leaf_expiry);
        let mut map = self
            .earlier_than_leaf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match earliest {
            Some(earliest) => {
                map.insert(leaf.to_vec(), earliest);
            }
            None => {
                map.remove(leaf.as_ref());
            }
        }
        Some(earliest.unwrap_or(leaf_expiry))
    }

    /// The earliest expiry of the chain last served with the leaf `der`.
    pub(crate) fn expiry(&self, der: &[u8]) -> Option<CertExpiry> {
        let leaf = cert::not_after(der).ok()?;
        let earlier = self
            .earlier_than_leaf
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(der)
            .copied();
        Some(CertExpiry::seen_at(
            earlier.unwrap_or(leaf),
            crate::calendar::unix_now(),
        ))
    }
}

/// The one crypto provider compiled in (aws-lc-rs: its X25519, a quarter of a TLS check's
/// CPU with ring, takes half as long), offering AES-128 before AES-256: both are strong,
/// and the AES-256 suites hash with SHA-384, which CPUs do in software where SHA-256 has
/// instructions of its own (a TLS check's CPU went down by a tenth). The key exchange
/// groups are the classical three, as before the switch from ring: a health check keeps
/// no secret for later, and a server preferring a post-quantum group it was offered could
/// ask again for its 1,184-byte key share, a round trip more.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    provider.cipher_suites.sort_by_key(|suite| {
        matches!(
            suite.suite(),
            CipherSuite::TLS13_AES_256_GCM_SHA384
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        )
    });
    Arc::new(provider)
}

/// The TLS configuration for `settings`: the system's CAs unless roots are given (then
/// only those), none checked when `insecure`; every new connection makes a full handshake,
/// so the chain is verified, and read into `chains`, every time.
pub(crate) fn client_config(
    settings: &TlsSettings,
    insecure: bool,
    chains: Arc<ChainExpiries>,
) -> anyhow::Result<ClientConfig> {
    let provider = provider();
    let inner: Arc<dyn ServerCertVerifier> = if insecure {
        Arc::new(AcceptAny {
            algorithms: provider.signature_verification_algorithms,
        })
    } else if let Some(roots) = &settings.roots {
        WebPkiServerVerifier::builder_with_provider(roots.store.clone(), provider.clone())
            .build()?
    } else {
        Arc::new(rustls_platform_verifier::Verifier::new(provider.clone())?)
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recording { inner, chains }));
    let mut config = match &settings.identity {
        Some(identity) => {
            builder.with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// Reads `path` whole; the error says why not.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|err| format!("cannot read '{}': {err}", path.display()))
}

/// A verifier that notes the chain served and when the handshake began, then lets
/// `inner` decide.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    chains: Arc<ChainExpiries>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let earliest = self.chains.note(end_entity, intermediates);
        if let (Some(connection), Some(earliest)) = (ConnectionTrace::current(), earliest) {
            connection.served_chain_expiring(earliest);
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    /// Asked first when the ClientHello is written, right after the TCP connection is
    /// made: the start of the handshake.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        if let Some(connection) = ConnectionTrace::current() {
            connection.tls_started();
        }
        self.inner.supported_verify_schemes()
    }
}

/// `--insecure`: any certificate is accepted, but the handshake's signatures are still
/// checked against it, as curl's `-k` does.
#[derive(Debug)]
struct AcceptAny {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAny {
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

    // The handshake's signature proves only that the server holds the key of a certificate
    // nobody checked, which anyone in the middle does too: checking it under --insecure
    // cost a seventh of an HTTPS check's CPU for nothing (curl -k checks it, reqwest's
    // danger_accept_invalid_certs does not).
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
        self.algorithms.supported_schemes()
    }
}
