//! The HTTP probe: one request through the run's shared client, judged by status, body and
//! certificate.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode, Url};

use super::attempt::Attempt;
use super::cert;
use super::classify::{
    classify_http_error, is_out_of_files, Causes, RedirectRefused, MAX_REDIRECTS,
};
use super::resolve::SystemResolver;
use super::settings::{ClientSettings, TargetSettings};
use crate::calendar::rfc3339;
use crate::outcome::{CertExpiry, ErrorKind, Failure};
use crate::values::StatusSet;

/// How long an idle connection is kept for reuse: long enough for the next target on the
/// same host in a bulk run (the scheduler starts it as soon as a probe to that host ends),
/// short enough that a list of distinct hosts does not hoard connections to hosts it never
/// names again. Each costs about 30 KiB; at 1 s, 20,000 distinct names kept 2,000-3,000 of
/// them and peaked at 105 MiB, at 250 ms at 53 MiB (bench/README.md).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_millis(250);

/// Body bytes read after a verdict that needs no body, only when already arrived, so the
/// connection can be reused without ever waiting on a slow body.
const DRAIN_READY_BYTES: usize = 64 * 1024;

/// The run's HTTP client and what it does the same for every target.
pub(crate) struct HttpProber {
    client: Client,
    max_body: u64,
    follow_redirects: bool,
    cert_min_days: Option<u32>,
}

impl HttpProber {
    /// Builds the shared client for `settings`.
    pub(crate) fn new(settings: &ClientSettings) -> anyhow::Result<Self> {
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
        Ok(HttpProber {
            client,
            max_body: settings.max_body,
            follow_redirects: settings.follow_redirects,
            cert_min_days: settings.cert_min_days,
        })
    }

    /// Makes one request to `url` as `settings` say; `started` is when the attempt began.
    pub(crate) async fn exchange(
        &self,
        url: &Url,
        settings: &TargetSettings,
        started: Instant,
    ) -> Attempt {
        let request = self
            .client
            .request(settings.method.clone(), url.clone())
            .headers(settings.headers.clone());
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
            .and_then(|der| cert::expiry_of_der(der).ok());
        if self.follow_redirects {
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
        let failure = if !settings.expect_status.contains(status.as_u16()) {
            Some(status_failure(status, &settings.expect_status))
        } else if let Some(needle) = &settings.body_contains {
            self.check_body(&mut response, needle).await
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
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
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
