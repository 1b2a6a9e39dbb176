//! What a failed attempt means: the `error_kind` and sentence for the errors probes meet.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use super::resolve::DnsError;
use crate::outcome::{ErrorKind, Failure};

/// Redirects followed before giving up, as browsers and curl do by default.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// Why a redirect was not followed.
#[derive(Debug)]
pub(crate) enum RedirectRefused {
    /// More than [`MAX_REDIRECTS`] in a row.
    TooMany,
    /// To a scheme other than http and https.
    Scheme(String),
    /// To a `Location` that is not a URL.
    BadLocation,
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectRefused::TooMany => write!(f, "more than {MAX_REDIRECTS} redirects"),
            RedirectRefused::Scheme(scheme) => {
                write!(f, "redirect to a {scheme}: URL, which is never followed")
            }
            RedirectRefused::BadLocation => f.write_str("redirect to an unparsable Location"),
        }
    }
}

/// The failure of a name that did not resolve.
pub(crate) fn dns_failure(err: &DnsError) -> Failure {
    Failure::new(ErrorKind::Dns, err.to_string())
}

/// Decides the `error_kind` of a failed HTTP exchange from the errors that caused it.
pub(crate) fn classify_http_error(err: &reqwest::Error) -> Failure {
    let causes = Causes::of(err);
    if let Some(dns) = causes.find::<DnsError>() {
        return dns_failure(dns);
    }
    if let Some(tls) = causes.find::<rustls::Error>() {
        return Failure::new(ErrorKind::Tls, describe_tls(tls));
    }
    if err.is_timeout() {
        return Failure::new(ErrorKind::Timeout, "timed out");
    }
    let io_error = causes.find::<io::Error>();
    if err.is_connect() {
        let message = io_error.map_or_else(|| causes.innermost(), describe_io);
        return Failure::new(ErrorKind::Connect, message);
    }
    if err.is_request() || err.is_body() || err.is_decode() {
        let message = io_error.map_or_else(|| causes.innermost(), describe_io);
        return Failure::new(ErrorKind::Protocol, message);
    }
    Failure::new(ErrorKind::Other, causes.innermost())
}

/// The failure of a body or banner (`what`) that did not contain `needle` in the `read`
/// bytes looked at.
pub(crate) fn text_missing(what: &str, needle: &str, read: usize) -> Failure {
    let unit = if read == 1 { "byte" } else { "bytes" };
    Failure::new(
        ErrorKind::Body,
        format!("{what} does not contain {needle:?} (read {read} {unit})"),
    )
}

/// A sentence for a failed handshake. rustls words a certificate's faults that carry
/// their context (the name, the dates) but names the others only by their variant.
fn describe_tls(err: &rustls::Error) -> String {
    use rustls::CertificateError as Cert;
    let rustls::Error::InvalidCertificate(fault) = err else {
        return format!("TLS handshake failed: {err}");
    };
    let why = match fault {
        Cert::UnknownIssuer => {
            "not signed by a trusted CA (--cacert names the CAs to trust; -k checks none)"
                .to_owned()
        }
        Cert::Expired => "expired".to_owned(),
        Cert::NotValidYet => "not valid yet".to_owned(),
        Cert::Revoked => "revoked".to_owned(),
        Cert::BadSignature => "its signature does not verify".to_owned(),
        Cert::BadEncoding => "not a well-formed certificate".to_owned(),
        Cert::NotValidForName => "not valid for the name asked for".to_owned(),
        Cert::InvalidPurpose => "not issued for a server (extended key usage)".to_owned(),
        Cert::UnsupportedSignatureAlgorithmContext { .. }
        | Cert::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "signed with an algorithm not supported".to_owned()
        }
        Cert::UnhandledCriticalExtension => "has a critical extension not understood".to_owned(),
        Cert::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::CaUsedAsEndEntity) => {
                "a CA's certificate (CA:TRUE), served as the server's own".to_owned()
            }
            Some(webpki::Error::EndEntityUsedAsCa) => {
                "issued by a certificate that is not a CA's".to_owned()
            }
            _ => other.to_string(),
        },
        _ => fault.to_string(),
    };
    format!("TLS handshake failed: the server's certificate is refused: {why}")
}

/// Whether `err` means this process (or the system) has no file descriptor to spare: a
/// sign to slow down, not something wrong with the target.
pub(crate) fn is_out_of_files(err: &io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    matches!(err.raw_os_error(), Some(EMFILE | ENFILE))
}

/// A short sentence for an I/O error, without the OS error number.
pub(crate) fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".to_owned(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_owned(),
        io::ErrorKind::UnexpectedEof => "connection closed before a complete response".to_owned(),
        io::ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        io::ErrorKind::TimedOut => "connection timed out".to_owned(),
        _ => err.to_string(),
    }
}

/// The chain of errors behind one error, looking inside `io::Error`s too (whose `source`
/// skips the error they wrap).
pub(crate) struct Causes<'a> {
    chain: Vec<&'a (dyn StdError + 'static)>,
}

impl<'a> Causes<'a> {
    /// The chain behind `err`, `err` first.
    pub(crate) fn of(err: &'a (dyn StdError + 'static)) -> Self {
        let mut chain = Vec::new();
        let mut next = Some(err);
        while let Some(current) = next {
            chain.push(current);
            next = match current
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
            {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => current.source(),
            };
        }
        Causes { chain }
    }

    /// The first error of type `E` in the chain.
    pub(crate) fn find<E: StdError + 'static>(&self) -> Option<&'a E> {
        self.chain.iter().find_map(|err| err.downcast_ref::<E>())
    }

    /// The innermost error's sentence.
    pub(crate) fn innermost(&self) -> String {
        self.chain
            .last()
            .map_or_else(|| "unknown error".to_owned(), |err| err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_faults_read_as_sentences() {
        use rustls::{CertificateError, OtherError};
        use std::sync::Arc;
        let said = |fault| describe_tls(&rustls::Error::InvalidCertificate(fault));
        assert_eq!(
            said(CertificateError::UnknownIssuer),
            "TLS handshake failed: the server's certificate is refused: \
             not signed by a trusted CA (--cacert names the CAs to trust; -k checks none)"
        );
        let ca = OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity));
        assert!(said(CertificateError::Other(ca))
            .ends_with("refused: a CA's certificate (CA:TRUE), served as the server's own"));
        // What rustls words with its context is kept as it is.
        let name = CertificateError::NotValidForNameContext {
            expected: rustls::pki_types::ServerName::try_from("a.example").expect("a name"),
            presented: vec!["DnsName(\"b.example\")".to_owned()],
        };
        assert!(said(name).contains("certificate not valid for name \"a.example\""));
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(
            describe_tls(&alert),
            format!("TLS handshake failed: {alert}")
        );
    }

    #[test]
    fn missing_text_counts_what_was_read_in_words() {
        let one = text_missing("banner", "SSH", 1);
        assert_eq!(one.kind, ErrorKind::Body);
        assert_eq!(
            one.message,
            r#"banner does not contain "SSH" (read 1 byte)"#
        );
        let many = text_missing("body", "up", 2048);
        assert_eq!(
            many.message,
            r#"body does not contain "up" (read 2048 bytes)"#
        );
    }
}
