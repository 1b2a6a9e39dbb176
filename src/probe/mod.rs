//! One attempt at one target: an HTTP exchange or a TCP connect, and what its errors mean.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::redirect::Policy;
use reqwest::{Client, Method, Response, StatusCode, Url};
use tokio::net::TcpStream;

use crate::cert::CertExpiry;
use crate::checks::Overrides;
use crate::cli::StatusSet;
use crate::input::Target;
use crate::outcome::{ErrorKind, Failure};
use crate::resolve::{self, DnsError, SystemResolver};
use crate::text::human_duration;

/// Redirects followed before giving up, as browsers and curl do by default.
pub const MAX_REDIRECTS: usize = 10;

/// How long an idle connection is kept for reuse: long enough for the next target on the
/// same host in a bulk run, short enough that a list of many hosts does not hoard sockets.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// Body bytes read after a verdict that needs no body, only when already arrived, so the
/// connection can be reused without ever waiting on a slow body.
const DRAIN_READY_BYTES: usize = 64 * 1024;

/// What an HTTP or TCP probe is asked to do.
#[derive(Clone, Debug)]
pub struct ProbeSettings {
    /// Limit for one attempt.
    pub timeout: Duration,
    /// HTTP method.
    pub method: Method,
    /// Extra request headers.
    pub headers: HeaderMap,
    /// Healthy status codes.
    pub expect_status: StatusSet,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// Most body bytes read.
    pub max_body: u64,
    /// Whether redirects are followed.
    pub follow_redirects: bool,
    /// Whether invalid certificates are accepted.
    pub insecure: bool,
    /// Idle connections kept per host, matched to the per-host limit.
    pub idle_per_host: usize,
    /// Unhealthy when the TLS certificate expires within this many days.
    pub cert_min_days: Option<u32>,
}

/// What one attempt found.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// Time from the attempt's start until its verdict was known.
    pub latency: Duration,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// `None` when healthy.
    pub failure: Option<Failure>,
    /// How long the server asked us to wait (`Retry-After` on a 429 or 503).
    pub retry_after: Option<Duration>,
    /// The attempt never reached the network: this process was out of file descriptors.
    pub out_of_files: bool,
    /// The expiry of the TLS certificate that served the response.
    pub cert: Option<CertExpiry>,
}

impl Attempt {
    fn failed(latency: Duration, failure: Failure) -> Self {
        Attempt {
            latency,
            status: None,
            failure: Some(failure),
            retry_after: None,
            out_of_files: false,
            cert: None,
        }
    }

    fn out_of_files(latency: Duration, err: &io::Error) -> Self {
        Attempt {
            out_of_files: true,
            ..Attempt::failed(
                latency,
                Failure::new(
                    ErrorKind::Other,
                    format!("out of file descriptors ({err}): raise 'ulimit -n' or lower -c"),
                ),
            )
        }
    }
}

/// Makes attempts; one per run, shared by all tasks so HTTP connections are reused.
pub struct Prober {
    client: Client,
    settings: ProbeSettings,
}

impl Prober {
    /// Builds the shared HTTP client for `settings`.
    pub fn new(settings: ProbeSettings) -> anyhow::Result<Self> {
        // Only one provider is compiled in, so installing it can fail only when it already is.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let redirect = if settings.follow_redirects {
            Policy::custom(|attempt| {
                let scheme = attempt.url().scheme();
                if !matches!(scheme, "http" | "https") {
                    let refused = RedirectRefused::Scheme(scheme.to_owned());
                    attempt.error(refused)
                } else if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error(RedirectRefused::TooMany)
                } else {
                    attempt.follow()
                }
            })
        } else {
            Policy::none()
        };
        let client = Client::builder()
            .redirect(redirect)
            .tls_danger_accept_invalid_certs(settings.insecure)
            .pool_max_idle_per_host(settings.idle_per_host)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .tls_info(true)
            .dns_resolver(Arc::new(SystemResolver))
            .user_agent(concat!("upcheck/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Prober { client, settings })
    }

    /// The per-attempt timeout for a target with these `overrides`.
    pub fn timeout(&self, overrides: Option<&Overrides>) -> Duration {
        overrides
            .and_then(|o| o.timeout)
            .unwrap_or(self.settings.timeout)
    }

    /// Makes one attempt at `target`, bounded by the per-attempt timeout; `overrides`, from
    /// a checks file, replace the command line's settings for this target.
    pub async fn attempt(&self, target: &Target, overrides: Option<&Overrides>) -> Attempt {
        let started = Instant::now();
        let timeout = self.timeout(overrides);
        let exchange = async {
            match target {
                Target::Http(url) => self.http_exchange(url, overrides, started).await,
                Target::Tcp { host, port } => tcp_connect(host, *port, started).await,
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt::failed(
                started.elapsed(),
                Failure::new(
                    ErrorKind::Timeout,
                    format!("no answer within {}", human_duration(timeout)),
                ),
            ),
        }
    }

    async fn http_exchange(
        &self,
        url: &Url,
        overrides: Option<&Overrides>,
        started: Instant,
    ) -> Attempt {
        let settings = &self.settings;
        let method = overrides.and_then(|o| o.method.as_ref());
        let expect_status = overrides
            .and_then(|o| o.expect_status.as_ref())
            .unwrap_or(&settings.expect_status);
        let body_contains = overrides
            .and_then(|o| o.body_contains.as_ref())
            .or(settings.body_contains.as_ref());
        let request = self
            .client
            .request(method.unwrap_or(&settings.method).clone(), url.clone())
            .headers(merged_headers(&settings.headers, overrides));
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                if let Some(exhausted) = Causes::of(&err)
                    .find::<io::Error>()
                    .filter(|e| is_out_of_files(e))
                {
                    return Attempt::out_of_files(started.elapsed(), exhausted);
                }
                return Attempt::failed(started.elapsed(), classify_http_error(&err));
            }
        };
        let status = response.status();
        let cert = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(reqwest::tls::TlsInfo::peer_certificate)
            .and_then(|der| CertExpiry::of_der(der).ok());
        if self.settings.follow_redirects {
            if let Some(refused) = unfollowed_redirect(&response) {
                return Attempt {
                    latency: started.elapsed(),
                    status: Some(status.as_u16()),
                    failure: Some(Failure::new(ErrorKind::Redirect, refused.to_string())),
                    retry_after: None,
                    out_of_files: false,
                    cert,
                };
            }
        }
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                parse_retry_after(response.headers())
            }
            _ => None,
        };
        let failure = if !expect_status.contains(status.as_u16()) {
            Some(status_failure(status, expect_status))
        } else if let Some(needle) = body_contains {
            self.check_body(&mut response, needle).await
        } else {
            None
        };
        let failure = failure.or_else(|| cert_failure(cert?, settings.cert_min_days?));
        let latency = started.elapsed();
        drain_ready(&mut response);
        Attempt {
            latency,
            status: Some(status.as_u16()),
            failure,
            retry_after,
            out_of_files: false,
            cert,
        }
    }

    /// Reads up to `--max-body` bytes, stopping as soon as `needle` is seen.
    async fn check_body(&self, response: &mut Response, needle: &str) -> Option<Failure> {
        let needle = needle.as_bytes();
        let limit = usize::try_from(self.settings.max_body).unwrap_or(usize::MAX);
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let searched_up_to = body.len().saturating_sub(needle.len().saturating_sub(1));
                    let room = limit - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if contains(&body[searched_up_to..], needle) {
                        return None;
                    }
                    if body.len() >= limit {
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => return Some(classify_http_error(&err)),
            }
        }
        Some(Failure::new(
            ErrorKind::Body,
            format!(
                "body does not contain {:?} (read {} bytes)",
                String::from_utf8_lossy(needle),
                body.len()
            ),
        ))
    }
}

/// The command line's headers with those an entry sets replaced by its own.
fn merged_headers(defaults: &HeaderMap, overrides: Option<&Overrides>) -> HeaderMap {
    let Some(own) = overrides.map(|o| &o.headers).filter(|h| !h.is_empty()) else {
        return defaults.clone();
    };
    let mut headers = defaults.clone();
    for name in own.keys() {
        headers.remove(name);
    }
    for (name, value) in own {
        headers.append(name, value.clone());
    }
    headers
}

/// The failure of a certificate that expires within `min_days` days (or has expired).
fn cert_failure(cert: CertExpiry, min_days: u32) -> Option<Failure> {
    if cert.days_left >= i64::from(min_days) {
        return None;
    }
    let when = crate::cert::rfc3339(cert.not_after);
    let message = match cert.days_left {
        days if days < 0 => format!("certificate expired at {when}"),
        0 => format!(
            "certificate expires at {when}, in less than a day (--cert-min-days {min_days})"
        ),
        1 => format!("certificate expires at {when}, in 1 day (--cert-min-days {min_days})"),
        days => {
            format!("certificate expires at {when}, in {days} days (--cert-min-days {min_days})")
        }
    };
    Some(Failure::new(ErrorKind::CertExpiry, message))
}

/// A redirect the client handed back instead of following: its `Location` names a URL it
/// cannot request (`file:`, `ftp:`, ...), which the redirect policy never gets to see.
fn unfollowed_redirect(response: &Response) -> Option<RedirectRefused> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let scheme = match response.url().join(location) {
        Ok(next) => next.scheme().to_owned(),
        Err(_) => return Some(RedirectRefused::BadLocation),
    };
    Some(RedirectRefused::Scheme(scheme))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Reads what has already arrived of the body, never waiting: a fully read body lets the
/// connection go back to the pool.
fn drain_ready(response: &mut Response) {
    let mut drained = 0;
    while drained < DRAIN_READY_BYTES {
        match response.chunk().now_or_never() {
            Some(Ok(Some(chunk))) => drained += chunk.len(),
            _ => return,
        }
    }
}

fn status_failure(status: StatusCode, expected: &StatusSet) -> Failure {
    let kind = if status == StatusCode::TOO_MANY_REQUESTS {
        ErrorKind::RateLimited
    } else {
        ErrorKind::Status
    };
    let status = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    };
    Failure::new(
        kind,
        format!("got {status}, expected {}", expected.as_written()),
    )
}

/// Reads `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

async fn tcp_connect(host: &str, port: u16, started: Instant) -> Attempt {
    let addrs = match resolve::lookup(host, port).await {
        Ok(addrs) => addrs,
        Err(err) => return Attempt::failed(started.elapsed(), dns_failure(&err)),
    };
    match connect_any(&addrs).await {
        Ok(_stream) => Attempt {
            latency: started.elapsed(),
            status: None,
            failure: None,
            retry_after: None,
            out_of_files: false,
            cert: None,
        },
        Err(err) if is_out_of_files(&err) => Attempt::out_of_files(started.elapsed(), &err),
        Err(err) => Attempt::failed(
            started.elapsed(),
            Failure::new(ErrorKind::Connect, describe_io(&err)),
        ),
    }
}

/// Tries each address in turn, as a client library would, and keeps the first error.
async fn connect_any(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut first_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    Err(first_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address to connect to")))
}

/// Why a redirect was not followed.
#[derive(Debug)]
enum RedirectRefused {
    TooMany,
    Scheme(String),
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

impl StdError for RedirectRefused {}

fn dns_failure(err: &DnsError) -> Failure {
    Failure::new(ErrorKind::Dns, err.to_string())
}

/// Decides the `error_kind` of a failed HTTP exchange from the errors that caused it.
fn classify_http_error(err: &reqwest::Error) -> Failure {
    let causes = Causes::of(err);
    if let Some(refused) = causes.find::<RedirectRefused>() {
        return Failure::new(ErrorKind::Redirect, refused.to_string());
    }
    if let Some(dns) = causes.find::<DnsError>() {
        return dns_failure(dns);
    }
    if let Some(tls) = causes.find::<rustls::Error>() {
        return Failure::new(ErrorKind::Tls, format!("TLS handshake failed: {tls}"));
    }
    if err.is_timeout() {
        return Failure::new(ErrorKind::Timeout, "timed out");
    }
    if err.is_redirect() {
        return Failure::new(ErrorKind::Redirect, "redirect could not be followed");
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

/// Whether `err` means this process (or the system) has no file descriptor to spare: a
/// sign to slow down, not something wrong with the target.
fn is_out_of_files(err: &io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    matches!(err.raw_os_error(), Some(EMFILE | ENFILE))
}

/// A short sentence for an I/O error, without the OS error number.
fn describe_io(err: &io::Error) -> String {
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
struct Causes<'a> {
    chain: Vec<&'a (dyn StdError + 'static)>,
}

impl<'a> Causes<'a> {
    fn of(err: &'a (dyn StdError + 'static)) -> Self {
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

    fn find<E: StdError + 'static>(&self) -> Option<&'a E> {
        self.chain.iter().find_map(|err| err.downcast_ref::<E>())
    }

    fn innermost(&self) -> String {
        self.chain
            .last()
            .map_or_else(|| "unknown error".to_owned(), |err| err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(90));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = parse_retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn body_search_finds_the_needle_anywhere() {
        assert!(contains(b"hello world", b"o w"));
        assert!(!contains(b"hello", b"world"));
        assert!(contains(b"x", b""));
    }

    #[test]
    fn entry_headers_replace_those_of_the_same_name() {
        let mut defaults = HeaderMap::new();
        defaults.insert("x-a", HeaderValue::from_static("cli"));
        defaults.insert("x-b", HeaderValue::from_static("cli"));
        let mut overrides = Overrides::default();
        overrides
            .headers
            .append("x-b", HeaderValue::from_static("entry"));
        let merged = merged_headers(&defaults, Some(&overrides));
        assert_eq!(merged["x-a"], "cli");
        assert_eq!(merged.get_all("x-b").iter().count(), 1);
        assert_eq!(merged["x-b"], "entry");
        assert_eq!(merged_headers(&defaults, None), defaults);
    }

    #[test]
    fn certificates_fail_within_the_minimum_days() {
        let at = |days_left| CertExpiry {
            not_after: 0,
            days_left,
        };
        assert_eq!(cert_failure(at(7), 7), None);
        let soon = cert_failure(at(2), 7).unwrap();
        assert_eq!(soon.kind, ErrorKind::CertExpiry);
        assert!(soon.message.contains("in 2 days (--cert-min-days 7)"));
        assert!(cert_failure(at(-1), 0)
            .unwrap()
            .message
            .contains("expired at 1970-01-01T00:00:00Z"));
        assert_eq!(cert_failure(at(0), 0), None);
    }

    #[test]
    fn status_failures_name_the_status_and_the_set() {
        let set = StatusSet::parse("200").unwrap();
        let failure = status_failure(StatusCode::SERVICE_UNAVAILABLE, &set);
        assert_eq!(failure.kind, ErrorKind::Status);
        assert_eq!(failure.message, "got 503 Service Unavailable, expected 200");
        let failure = status_failure(StatusCode::TOO_MANY_REQUESTS, &set);
        assert_eq!(failure.kind, ErrorKind::RateLimited);
    }
}
