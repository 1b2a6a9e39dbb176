//! Where an attempt's time went: each new connection's phases, noted as they happen.
//!
//! The HTTP client makes connections out of sight, so what happens on the way is noted
//! through two thread-locals, set only while a future of ours is being polled (the run
//! has one runtime thread, and a poll never moves threads): the attempt being made, and
//! the connection being set up. The resolver, the TLS verifier and the connector look
//! them up; outside such a poll they are empty and nothing is noted.

use std::cell::RefCell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::outcome::Timings;

thread_local! {
    static ATTEMPT: RefCell<Option<Arc<AttemptTrace>>> = const { RefCell::new(None) };
    static CONNECTION: RefCell<Option<Arc<ConnectionTrace>>> = const { RefCell::new(None) };
}

/// What one attempt went through: the connections it set up and when its request went out.
#[derive(Debug)]
pub(crate) struct AttemptTrace {
    inner: Mutex<AttemptInner>,
}

#[derive(Debug)]
struct AttemptInner {
    /// When the request now in flight was handed over: the attempt's start, or the last redirect.
    request_sent: Instant,
    /// Connections set up during the attempt, oldest first.
    connections: Vec<Arc<ConnectionTrace>>,
}

/// One connection being set up: to which port, and when each phase began and ended.
#[derive(Debug)]
pub(crate) struct ConnectionTrace {
    /// The destination port, which the resolver needs for `--resolve` and is not told.
    pub(crate) port: u16,
    inner: Mutex<ConnectionInner>,
}

#[derive(Debug, Default)]
struct ConnectionInner {
    started: Option<Instant>,
    dns: Option<(Instant, Instant)>,
    tls_started: Option<Instant>,
    ready: Option<Instant>,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    /// The earliest notAfter (Unix seconds) of the certificate chain the server sent.
    chain_expiry: Option<i64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn millis_between(from: Instant, to: Instant) -> f64 {
    crate::outcome::millis(to.saturating_duration_since(from))
}

impl AttemptTrace {
    /// A trace for an attempt whose request goes out now.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(AttemptTrace {
            inner: Mutex::new(AttemptInner {
                request_sent: Instant::now(),
                connections: Vec::new(),
            }),
        })
    }

    /// Notes that a request goes out again now (a redirect followed, or a request sent
    /// anew over another connection): its time to headers counts from here.
    pub(crate) fn sending_again(&self) {
        lock(&self.inner).request_sent = Instant::now();
    }

    /// How many connections this attempt has begun to set up.
    pub(crate) fn connections_begun(&self) -> usize {
        lock(&self.inner).connections.len()
    }

    /// The connection set up in this attempt whose local address is `local`.
    fn connection_at(&self, local: SocketAddr) -> Option<Arc<ConnectionTrace>> {
        lock(&self.inner)
            .connections
            .iter()
            .rev()
            .find(|connection| lock(&connection.inner).local == Some(local))
            .cloned()
    }

    /// The last connection this attempt began to set up.
    fn last_connection(&self) -> Option<Arc<ConnectionTrace>> {
        lock(&self.inner).connections.last().cloned()
    }

    /// The phases of a response whose headers came at `headers` over the connection from
    /// local address `local`: those of its setup when this attempt made it, none when it
    /// was reused; time to headers counts from the connection being ready or, reused,
    /// from the request going out.
    pub(crate) fn response_timings(&self, local: Option<SocketAddr>, headers: Instant) -> Timings {
        let request_sent = lock(&self.inner).request_sent;
        let made = local.and_then(|local| self.connection_at(local));
        let (mut timings, ready) = match &made {
            Some(connection) => (connection.timings(), lock(&connection.inner).ready),
            None => (Timings::default(), None),
        };
        let from = ready.map_or(request_sent, |ready| ready.max(request_sent));
        timings.ttfb_ms = Some(millis_between(from, headers));
        timings
    }

    /// The earliest expiry of the chain served over the connection this attempt made from
    /// local address `local`; none for a connection it did not make.
    pub(crate) fn chain_expiry(&self, local: Option<SocketAddr>) -> Option<i64> {
        let connection = self.connection_at(local?)?;
        let expiry = lock(&connection.inner).chain_expiry;
        expiry
    }

    /// The phases of a failed attempt: those of the last connection it tried to set up.
    pub(crate) fn failed_timings(&self) -> (Timings, Option<SocketAddr>) {
        match self.last_connection() {
            Some(connection) => {
                let remote = lock(&connection.inner).remote;
                (connection.timings(), remote)
            }
            None => (Timings::default(), None),
        }
    }

    /// Runs `future` with this attempt as the one being made.
    pub(crate) fn during<F: Future>(self: &Arc<Self>, future: F) -> Traced<F> {
        Traced {
            future: Box::pin(future),
            attempt: Some(self.clone()),
            connection: None,
        }
    }
}

impl ConnectionTrace {
    /// A connection to `port` starting now, counted in the attempt being made, if any.
    pub(crate) fn start(port: u16) -> Arc<Self> {
        let connection = Arc::new(ConnectionTrace {
            port,
            inner: Mutex::new(ConnectionInner {
                started: Some(Instant::now()),
                ..ConnectionInner::default()
            }),
        });
        ATTEMPT.with(|attempt| {
            if let Some(attempt) = attempt.borrow().as_ref() {
                lock(&attempt.inner).connections.push(connection.clone());
            }
        });
        connection
    }

    /// Notes that its host was looked up from `from` to `to`.
    pub(crate) fn looked_up(&self, from: Instant, to: Instant) {
        lock(&self.inner).dns = Some((from, to));
    }

    /// Notes that the TLS handshake began now (its first call only counts).
    pub(crate) fn tls_started(&self) {
        lock(&self.inner)
            .tls_started
            .get_or_insert_with(Instant::now);
    }

    /// Notes the earliest expiry (Unix seconds) of the certificate chain served.
    pub(crate) fn served_chain_expiring(&self, unix: i64) {
        lock(&self.inner).chain_expiry = Some(unix);
    }

    /// Notes that the connection is ready for requests, between `local` and `remote`.
    pub(crate) fn ready(&self, local: Option<SocketAddr>, remote: Option<SocketAddr>) {
        let mut inner = lock(&self.inner);
        inner.ready = Some(Instant::now());
        inner.local = local;
        inner.remote = remote;
    }

    /// Runs `future` with this connection as the one being set up.
    pub(crate) fn during<F: Future>(self: &Arc<Self>, future: F) -> Traced<F> {
        Traced {
            future: Box::pin(future),
            attempt: None,
            connection: Some(self.clone()),
        }
    }

    /// The connection being set up on this thread now, if any.
    pub(crate) fn current() -> Option<Arc<Self>> {
        CONNECTION.with(|connection| connection.borrow().clone())
    }

    /// Its phases so far: each measured from the end of the one before, none that did not
    /// happen or has not ended. Without TLS the connect phase lasts until it was ready.
    pub(crate) fn timings(&self) -> Timings {
        let inner = lock(&self.inner);
        let Some(started) = inner.started else {
            return Timings::default();
        };
        let dns_ms = inner.dns.map(|(from, to)| millis_between(from, to));
        let connect_from = inner.dns.map_or(started, |(_, to)| to);
        let connected = inner.tls_started.or(inner.ready);
        let connect_ms = connected.map(|to| millis_between(connect_from, to));
        let tls_ms = inner
            .tls_started
            .and_then(|from| Some(millis_between(from, inner.ready?)));
        Timings {
            dns_ms,
            connect_ms,
            tls_ms,
            ..Timings::default()
        }
    }
}

/// A future run with an attempt or a connection noted as current while it is polled.
pub(crate) struct Traced<F> {
    future: Pin<Box<F>>,
    attempt: Option<Arc<AttemptTrace>>,
    connection: Option<Arc<ConnectionTrace>>,
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let previous_attempt = this
            .attempt
            .as_ref()
            .map(|attempt| ATTEMPT.with(|slot| slot.replace(Some(attempt.clone()))));
        let previous_connection = this
            .connection
            .as_ref()
            .map(|connection| CONNECTION.with(|slot| slot.replace(Some(connection.clone()))));
        let polled = this.future.as_mut().poll(cx);
        if let Some(previous) = previous_attempt {
            ATTEMPT.with(|slot| slot.replace(previous));
        }
        if let Some(previous) = previous_connection {
            CONNECTION.with(|slot| slot.replace(previous));
        }
        polled
    }
}

/// Notes a redirect in the attempt being made, if any.
pub(crate) fn note_redirect() {
    ATTEMPT.with(|attempt| {
        if let Some(attempt) = attempt.borrow().as_ref() {
            attempt.sending_again();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_started_during_an_attempt_is_counted_in_it() {
        let attempt = AttemptTrace::new();
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let remote: SocketAddr = "127.0.0.1:443".parse().unwrap();
        let made = attempt
            .during(async {
                let connection = ConnectionTrace::start(443);
                connection
                    .during(async {
                        let current = ConnectionTrace::current().expect("noted as current");
                        current.looked_up(Instant::now(), Instant::now());
                        current.tls_started();
                    })
                    .await;
                connection.ready(Some(local), Some(remote));
                connection
            })
            .await;
        assert!(
            ConnectionTrace::current().is_none(),
            "cleared after the poll"
        );
        assert_eq!(made.port, 443);
        let timings = attempt.response_timings(Some(local), Instant::now());
        assert_eq!(attempt.failed_timings().1, Some(remote));
        for phase in [
            timings.dns_ms,
            timings.connect_ms,
            timings.tls_ms,
            timings.ttfb_ms,
        ] {
            assert!(phase.is_some(), "{timings:?}");
        }
        let reused: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let timings = attempt.response_timings(Some(reused), Instant::now());
        assert_eq!(
            (timings.dns_ms, timings.connect_ms, timings.tls_ms),
            (None, None, None)
        );
        assert!(timings.ttfb_ms.is_some());
    }
}
