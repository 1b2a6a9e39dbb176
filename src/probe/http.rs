//! The HTTP probe: one request through the run's client for the target's TLS settings,
//! judged by status, body and certificate chain.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use hyper_util::client::legacy::connect::HttpInfo;
use reqwest::header::{HeaderMap, HeaderValue, CONNECTION, LOCATION, RETRY_AFTER};
use reqwest::redirect::Policy;
use reqwest::{Client, Method, Response, StatusCode, Url};

use super::attempt::Attempt;
use super::classify::{
    classify_http_error, is_out_of_files, text_missing, Causes, RedirectRefused, MAX_REDIRECTS,
};
use super::connect::TraceLayer;
use super::environment::ShownProxy;
use super::resolve::SystemResolver;
use super::settings::{ClientSettings, TargetSettings};
use super::tls::{self, ChainExpiries, TlsKey, TlsSettings};
use super::trace::{self, AttemptTrace};
use super::Reuse;
use crate::calendar::{rfc3339, unix_now};
use crate::outcome::{millis, CertExpiry, ErrorKind, Failure};
use crate::values::StatusSet;

/// How long an idle connection is kept for reuse: long enough for the next target on the
/// same host in a bulk run (the scheduler starts it as soon as a probe to that host ends),
/// short enough that hosts a list stops naming do not hoard connections (about 30 KiB
/// each). Connections to hosts no recent line names are closed at once ([`Reuse::Close`]).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_millis(250);

/// Times a request goes again after failing over an idle connection the server had
/// closed: the pool hands out one such connection at most per host in practice (it drops
/// those it has seen closed), and a few more are still a race, not a fault of the target.
const CLOSED_CONNECTION_RESENDS: u32 = 4;

/// Body bytes read after a verdict that needs no body, only when already arrived, so the
/// connection can be reused without ever waiting on a slow body.
const DRAIN_READY_BYTES: usize = 64 * 1024;

/// The run's HTTP clients, one per distinct TLS settings, and what they do the same for
/// every target.
pub(crate) struct HttpProber {
    settings: ClientSettings,
    /// Clients by the files their TLS settings come from; built the first time needed.
    clients: Mutex<HashMap<TlsKey, Client>>,
    /// The earliest expiry of each chain served, by leaf.
    chains: Arc<ChainExpiries>,
    max_body: u64,
    follow_redirects: bool,
    cert_min_days: Option<u32>,
}

impl HttpProber {
    /// Builds the client for the command line's TLS settings (`defaults`), so that what
    /// cannot work fails before any probing.
    pub(crate) fn new(settings: &ClientSettings, defaults: &TlsSettings) -> anyhow::Result<Self> {
        // The process default is the provider the clients use; installing it can fail only
        // when it already is.
        let _ = tls::provider().as_ref().clone().install_default();
        let prober = HttpProber {
            settings: settings.clone(),
            clients: Mutex::new(HashMap::new()),
            chains: Arc::new(ChainExpiries::default()),
            max_body: settings.max_body,
            follow_redirects: settings.follow_redirects,
            cert_min_days: settings.cert_min_days,
        };
        prober.client_for(defaults)?;
        Ok(prober)
    }

    /// The client for targets with TLS settings `tls`, shared with every target that has the same.
    fn client_for(&self, tls: &TlsSettings) -> anyhow::Result<Client> {
        let key = tls.key();
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = self.build_client(tls)?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    fn build_client(&self, tls: &TlsSettings) -> anyhow::Result<Client> {
        let settings = &self.settings;
        let config = tls::client_config(tls, settings.insecure, self.chains.clone())?;
        let mut builder = Client::builder().no_proxy();
        if let Some(proxy) = settings.proxies.client_proxy() {
            builder = builder.proxy(proxy);
        }
        // Redirects are followed by `send`, which knows whose headers a request may carry;
        // no Referer is sent (curl's default), as it would carry the first URL's query.
        Ok(builder
            .redirect(Policy::none())
            .referer(false)
            .tls_backend_preconfigured(config)
            .pool_max_idle_per_host(settings.idle_per_host)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            // A connection lives one check or an idle pool's 250 ms, and `-t` bounds each
            // check: keepalive probes (after 15 s) and a 30 s user timeout would never act,
            // and setting them took five system calls per connection.
            .tcp_keepalive(None)
            .tcp_keepalive_interval(None)
            .tcp_keepalive_retries(None)
            .tcp_user_timeout(None)
            .tls_info(true)
            .dns_resolver(Arc::new(SystemResolver {
                rules: settings.addresses.clone(),
            }))
            .connector_layer(TraceLayer {
                rules: settings.addresses.clone(),
            })
            .user_agent(concat!("upcheck/", env!("CARGO_PKG_VERSION")))
            .build()?)
    }

    /// Makes one request to `url` as `settings` say; `started` is when the attempt began,
    /// and `trace` notes where its time goes.
    pub(crate) async fn exchange(
        &self,
        url: &Url,
        settings: &TargetSettings,
        reuse: Reuse,
        started: Instant,
        trace: &AttemptTrace,
    ) -> Attempt {
        let client = match self.client_for(&settings.tls) {
            Ok(client) => client,
            Err(err) => {
                return Attempt::failed(
                    started.elapsed(),
                    Failure::new(ErrorKind::Other, format!("cannot set up TLS: {err:#}")),
                )
            }
        };
        let mut response = match self
            .send_over_live(&client, url, settings, reuse, trace)
            .await
        {
            Sent::Response(response) => response,
            Sent::Refused(status, refused) => {
                let (timings, address) = trace.failed_timings();
                return Attempt {
                    status: Some(status.as_u16()),
                    ..Attempt::failed(
                        started.elapsed(),
                        Failure::new(ErrorKind::Redirect, refused.to_string()),
                    )
                }
                .traced(timings, address);
            }
            Sent::Failed(err, proxy) => {
                if let Some(exhausted) = Causes::of(&err)
                    .find::<io::Error>()
                    .filter(|e| is_out_of_files(e))
                {
                    return Attempt::out_of_files(started.elapsed(), exhausted);
                }
                let mut failure = classify_http_error(&err);
                if let Some(proxy) = proxy {
                    failure.message = format!("{} (through proxy {proxy})", failure.message);
                }
                let (timings, address) = trace.failed_timings();
                return Attempt::failed(started.elapsed(), failure).traced(timings, address);
            }
        };
        let headers_at = Instant::now();
        let info = response.extensions().get::<HttpInfo>();
        let address = info.map(HttpInfo::remote_addr);
        let local = info.map(HttpInfo::local_addr);
        let mut timings = trace.response_timings(local, headers_at);
        let status = response.status();
        let cert = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(reqwest::tls::TlsInfo::peer_certificate)
            .and_then(|der| self.chains.expiry(der))
            // A connection tunnelled through a proxy carries no TLS details (reqwest leaves
            // them out): the chain noted as this attempt made the connection stands in.
            .or_else(|| {
                let not_after = trace.chain_expiry(local)?;
                Some(CertExpiry::seen_at(not_after, unix_now()))
            });
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                parse_retry_after(response.headers())
            }
            _ => None,
        };
        let failure = if !settings.expect_status.contains(status.as_u16()) {
            Some(status_failure(status, &settings.expect_status))
        } else if let Some(needle) = &settings.body_contains {
            let found = self.check_body(&mut response, needle).await;
            timings.body_ms = Some(millis(headers_at.elapsed()));
            found
        } else {
            None
        };
        let failure = failure.or_else(|| cert_failure(cert?, self.cert_min_days?));
        let latency = started.elapsed();
        drain_ready(&mut response);
        Attempt {
            latency,
            status: Some(status.as_u16()),
            failure,
            retry_after,
            out_of_files: false,
            cert,
            address,
            timings,
            banner: None,
        }
    }

    /// Sends the request for `url` as [`send`](Self::send) does, again while it fails on an
    /// idle connection the server had closed.
    ///
    /// HTTP/1.1 lets a server close an idle connection at any time, and one closing just
    /// as a request goes out makes that request fail (reset, or closed before a response)
    /// through no fault of the target. As browsers and Go's client do, an idempotent
    /// request that failed so, over a connection this attempt did not make, goes again;
    /// a failed connection leaves the pool, so soon it goes over a new connection, whose
    /// failure counts.
    async fn send_over_live(
        &self,
        client: &Client,
        url: &Url,
        settings: &TargetSettings,
        reuse: Reuse,
        trace: &AttemptTrace,
    ) -> Sent {
        let mut sends_left = 1 + CLOSED_CONNECTION_RESENDS;
        loop {
            let connections = trace.connections_begun();
            let sent = self.send(client, url, settings, reuse).await;
            sends_left -= 1;
            let Sent::Failed(err, _) = &sent else {
                return sent;
            };
            let over_reused = trace.connections_begun() == connections;
            if sends_left == 0
                || !over_reused
                || !settings.method.is_idempotent()
                || classify_http_error(err).kind != ErrorKind::Protocol
            {
                return sent;
            }
            trace.sending_again();
        }
    }

    /// Sends the request for `url`, and with redirects followed, the requests they ask for.
    ///
    /// Followed here rather than by the client because the target's `-H` headers belong to
    /// its origin: a hop to another scheme, host or port goes without them (the client
    /// alone would drop only `Authorization` and `Cookie`).
    async fn send(
        &self,
        client: &Client,
        url: &Url,
        settings: &TargetSettings,
        reuse: Reuse,
    ) -> Sent {
        let (mut next, mut method, mut followed) = (url.clone(), settings.method.clone(), 0);
        loop {
            let mut headers = if same_origin(&next, url) {
                settings.headers.clone()
            } else {
                HeaderMap::new()
            };
            // A Connection header of the user's own is theirs to choose.
            if reuse == Reuse::Close && !headers.contains_key(CONNECTION) {
                headers.insert(CONNECTION, HeaderValue::from_static("close"));
            }
            let request = client.request(method.clone(), next.clone());
            let mut response = match request.headers(headers).send().await {
                Ok(response) => response,
                Err(err) => {
                    let proxy = self
                        .settings
                        .proxies
                        .for_url(&next)
                        .map(|p| ShownProxy(p).to_string());
                    return Sent::Failed(err, proxy);
                }
            };
            let status = response.status();
            let location = match redirect_location(&response) {
                Some(_) if !self.follow_redirects => return Sent::Response(response),
                None => return Sent::Response(response),
                Some(Err(refused)) => return Sent::Refused(status, refused),
                Some(Ok(location)) => location,
            };
            if followed == MAX_REDIRECTS {
                return Sent::Refused(status, RedirectRefused::TooMany);
            }
            followed += 1;
            // As browsers and the client do: 301, 302 and 303 turn a POST (any method but
            // GET and HEAD) into a GET; 307 and 308 keep the method.
            let keeps_method = matches!(
                status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            );
            if !keeps_method && method != Method::GET && method != Method::HEAD {
                method = Method::GET;
            }
            drain_ready(&mut response);
            trace::note_redirect();
            next = location;
        }
    }

    /// Reads up to `--max-body` bytes, stopping as soon as `needle` is seen.
    async fn check_body(&self, response: &mut Response, needle: &str) -> Option<Failure> {
        let needle = needle.as_bytes();
        let limit = usize::try_from(self.max_body).unwrap_or(usize::MAX);
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
        Some(text_missing(
            "body",
            &String::from_utf8_lossy(needle),
            body.len(),
        ))
    }
}

/// The failure of a certificate that expires within `min_days` days (or has expired).
fn cert_failure(cert: CertExpiry, min_days: u32) -> Option<Failure> {
    if cert.days_left >= i64::from(min_days) {
        return None;
    }
    let when = rfc3339(cert.not_after);
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

/// What sending a request came to, redirects followed.
enum Sent {
    /// The final response.
    Response(Response),
    /// A redirect not followed: the status that asked for it, and why.
    Refused(StatusCode, RedirectRefused),
    /// No response: why, and the proxy it went through (shown), if any.
    Failed(reqwest::Error, Option<String>),
}

/// Where a redirect response sends the next request: `None` for a response that is not a
/// redirect to follow (another status, or no `Location`); refused for a `Location` that is
/// not a URL (not UTF-8, unparsable) or names a scheme other than http and https.
fn redirect_location(response: &Response) -> Option<Result<Url, RedirectRefused>> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.headers().get(LOCATION)?;
    let next = std::str::from_utf8(location.as_bytes())
        .ok()
        .and_then(|location| response.url().join(location).ok());
    Some(match next {
        None => Err(RedirectRefused::BadLocation),
        Some(next) if !matches!(next.scheme(), "http" | "https") => {
            Err(RedirectRefused::Scheme(next.scheme().to_owned()))
        }
        Some(next) => Ok(next),
    })
}

/// Whether `a` and `b` share scheme, host and port: the origin a target's headers are for.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether `needle` occurs in `haystack` (an empty needle always does).
pub(super) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
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
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // More seconds than a u64 holds is still a wait, the longest there is.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
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
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("99999999999999999999"),
        );
        assert_eq!(
            parse_retry_after(&headers),
            Some(Duration::from_secs(u64::MAX))
        );
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
