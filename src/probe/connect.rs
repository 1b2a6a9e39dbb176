//! A layer around the HTTP client's connector: each new connection is traced (where it
//! goes, when it was ready, between which addresses), and an IP literal of the family
//! `-4`/`-6` excludes is refused before any packet is sent.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use reqwest::Url;
use tower_layer::Layer;
use tower_service::Service;

use super::resolve::{ip_literal, AddressRules};
use super::trace::ConnectionTrace;

type BoxError = Box<dyn Error + Send + Sync>;

/// Wraps the client's connector in a [`Traced`] connector.
#[derive(Clone)]
pub(crate) struct TraceLayer {
    /// The run's pins and family.
    pub(crate) rules: Arc<AddressRules>,
}

impl<S> Layer<S> for TraceLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// A connector that traces every connection it makes.
#[derive(Clone)]
pub(crate) struct Traced<S> {
    inner: S,
    rules: Arc<AddressRules>,
}

impl<S, R, C> Service<R> for Traced<S>
where
    S: Service<R, Response = C, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: fmt::Debug + Send + 'static,
    C: Connection + Send + 'static,
{
    type Response = C;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // The client hides the destination behind a type it does not name; its debug form
        // is the one view of it, so what that form must look like is tested below.
        let Some((host, port)) = destination(&format!("{request:?}")) else {
            return Box::pin(async { Err(BoxError::from(UnknownDestination)) });
        };
        if let Some(ip) = ip_literal(&host) {
            if let Err(refused) = self.rules.check_literal(ip) {
                return Box::pin(async move { Err(BoxError::from(refused)) });
            }
        }
        // The ready clone serves this call; the clone left behind waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let connection = ConnectionTrace::start(port);
        let connecting = connection.during(async move { inner.call(request).await });
        Box::pin(async move {
            let connected = connecting.await?;
            let mut extras = http::Extensions::new();
            connected.connected().get_extras(&mut extras);
            let info = extras.get::<HttpInfo>();
            connection.ready(
                info.map(HttpInfo::local_addr),
                info.map(HttpInfo::remote_addr),
            );
            Ok(connected)
        })
    }
}

/// The host and port of a destination written as `Wrapper(scheme://host:port/)`.
fn destination(debug: &str) -> Option<(String, u16)> {
    let inside = debug.split_once('(')?.1.strip_suffix(')')?;
    let url = Url::parse(inside).ok()?;
    Some((url.host_str()?.to_owned(), url.port_or_known_default()?))
}

/// The connector was asked for a destination it could not read.
#[derive(Debug)]
struct UnknownDestination;

impl fmt::Display for UnknownDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot tell which host and port the connection is for")
    }
}

impl Error for UnknownDestination {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_read_with_their_port() {
        assert_eq!(
            destination("Unnameable(https://api.test:8443/)"),
            Some(("api.test".to_owned(), 8443))
        );
        assert_eq!(
            destination("Unnameable(https://api.test/)"),
            Some(("api.test".to_owned(), 443))
        );
        assert_eq!(
            destination("Unnameable(http://[::1]:80/)"),
            Some(("[::1]".to_owned(), 80))
        );
        assert_eq!(destination("Unnameable(garbage)"), None);
        assert_eq!(destination("no parentheses"), None);
    }

    #[test]
    fn the_clients_destination_prints_as_expected() {
        // What the client passes the connector: an http::Uri inside a tuple struct.
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Unnameable(http::Uri);
        let uri: http::Uri = "https://api.test:8443".parse().unwrap();
        assert_eq!(
            destination(&format!("{:?}", Unnameable(uri))),
            Some(("api.test".to_owned(), 8443))
        );
    }
}
