//! The TCP side: a resolver that drops refused addresses, and a connector that checks
//! IP-literal hosts and the address actually connected to.
//!
//! The addresses the resolver keeps are the ones hyper-util connects to: a name is
//! resolved once per connection, so a DNS answer that changes between the check and the
//! connect (rebinding) cannot slip a refused address through.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::policy::{AddressClass, AddressPolicy};

/// Why an outbound connection was not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Every address of the destination is refused by the [`AddressPolicy`]. The text is
    /// deliberately the same whatever the address and port.
    #[error("destination refused")]
    Refused(AddressClass),
    /// The host name did not resolve.
    #[error("destination unreachable")]
    Resolve(#[source] std::io::Error),
    /// The URI has no host.
    #[error("destination unreachable")]
    NoHost,
    /// No allowed address accepted the connection.
    #[error("destination unreachable")]
    Connect(#[source] std::io::Error),
}

impl ConnectError {
    /// The class of address that was refused, if this is a refusal.
    pub fn refused_class(&self) -> Option<AddressClass> {
        match self {
            ConnectError::Refused(class) => Some(*class),
            _ => None,
        }
    }
}

/// Whether `error` (or any error in its `source()` chain) is a policy refusal: for
/// callers that map a hyper client error to their own typed error.
pub fn is_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.downcast_ref::<ConnectError>()
            .is_some_and(|c| c.refused_class().is_some())
        {
            return true;
        }
        next = e.source();
    }
    false
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves a host name with the system resolver and keeps only the addresses the policy
/// allows; none left is [`ConnectError::Refused`].
#[derive(Debug, Clone, Copy)]
pub struct PolicyResolver {
    policy: AddressPolicy,
}

impl PolicyResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: AddressPolicy) -> Self {
        PolicyResolver { policy }
    }
}

/// Keeps the allowed addresses; the first refusal's class when none is allowed.
fn allowed(
    policy: AddressPolicy,
    addrs: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let mut refused = None;
    let mut kept = Vec::new();
    for addr in addrs {
        match policy.check(addr.ip()) {
            Ok(()) => kept.push(addr),
            Err(class) => {
                refused.get_or_insert(class);
            }
        }
    }
    match (kept.is_empty(), refused) {
        (false, _) => Ok(kept),
        (true, Some(class)) => Err(ConnectError::Refused(class)),
        (true, None) => Err(ConnectError::Resolve(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address",
        ))),
    }
}

impl Service<Name> for PolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ConnectError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(ConnectError::Resolve)?;
            let kept = allowed(policy, found).inspect_err(|e| {
                if let Some(class) = e.refused_class() {
                    tracing::info!(class = class.as_str(), "outbound destination refused");
                }
            })?;
            Ok(kept.into_iter())
        })
    }
}

/// An HTTP connector (no TLS) that connects only where its [`AddressPolicy`] allows:
/// names through a [`PolicyResolver`], IP-literal hosts checked directly, and the peer
/// address of the connected socket checked once more.
#[derive(Debug, Clone)]
pub struct PolicyConnector {
    inner: HttpConnector<PolicyResolver>,
    policy: AddressPolicy,
}

impl PolicyConnector {
    /// A connector enforcing `policy`, with a connect timeout; `http://` and `https://`
    /// URIs are both accepted (TLS is the wrapper's job).
    pub fn new(policy: AddressPolicy, connect_timeout: std::time::Duration) -> Self {
        let mut inner = HttpConnector::new_with_resolver(PolicyResolver::new(policy));
        inner.enforce_http(false);
        inner.set_connect_timeout(Some(connect_timeout));
        PolicyConnector { inner, policy }
    }

    /// The policy enforced.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }
}

/// The host of `uri` as an IP address, if it is an IP literal (`[…]` stripped).
fn literal_ip(uri: &Uri) -> Option<IpAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

fn refuse(class: AddressClass) -> BoxError {
    tracing::info!(class = class.as_str(), "outbound destination refused");
    Box::new(ConnectError::Refused(class))
}

impl Service<Uri> for PolicyConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let policy = self.policy;
        if uri.host().is_none() {
            return Box::pin(async { Err(Box::new(ConnectError::NoHost) as BoxError) });
        }
        if let Some(ip) = literal_ip(&uri)
            && let Err(class) = policy.check(ip)
        {
            return Box::pin(async move { Err(refuse(class)) });
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let stream = connecting.await.map_err(BoxError::from)?;
            // The socket's peer is what was really reached, whatever the path to it.
            let peer = stream.inner().peer_addr().map_err(BoxError::from)?;
            policy.check(peer.ip()).map_err(refuse)?;
            Ok(stream)
        })
    }
}

/// Opens a TCP connection to `host:port` where `policy` allows, for protocols that do not
/// go through hyper's connector (WebSocket subscriptions): an IP literal is checked, a
/// name resolved once and its allowed addresses tried in order.
pub async fn connect_tcp(
    policy: AddressPolicy,
    host: &str,
    port: u16,
) -> Result<TcpStream, ConnectError> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(ConnectError::Resolve)?
            .collect(),
    };
    let addrs = allowed(policy, addrs).inspect_err(|e| {
        if let Some(class) = e.refused_class() {
            tracing::info!(class = class.as_str(), "outbound destination refused");
        }
    })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(ConnectError::Connect(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let strict = AddressPolicy::public_only();
        let mixed = [addr("10.0.0.1:0"), addr("1.1.1.1:0"), addr("[::1]:0")];
        assert_eq!(allowed(strict, mixed).unwrap(), vec![addr("1.1.1.1:0")]);
        let internal = [addr("127.0.0.1:0"), addr("169.254.169.254:0")];
        assert!(matches!(
            allowed(strict, internal),
            Err(ConnectError::Refused(AddressClass::Loopback))
        ));
        assert!(matches!(allowed(strict, []), Err(ConnectError::Resolve(_))));
        assert_eq!(
            allowed(AddressPolicy::development(), internal).unwrap(),
            vec![addr("127.0.0.1:0")]
        );
    }

    #[test]
    fn literal_hosts_are_recognised() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(
            literal_ip(&uri("http://127.0.0.1:80/x")),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            literal_ip(&uri("https://[::ffff:a00:1]/")),
            Some("::ffff:10.0.0.1".parse().unwrap())
        );
        assert_eq!(literal_ip(&uri("https://example.com/")), None);
    }

    #[tokio::test]
    async fn raw_tcp_connections_obey_the_policy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        for host in ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"] {
            let refused = connect_tcp(AddressPolicy::public_only(), host, port).await;
            assert!(
                matches!(refused, Err(ConnectError::Refused(AddressClass::Loopback))),
                "{host}: {refused:?}"
            );
        }
        let metadata = connect_tcp(AddressPolicy::development(), "169.254.169.254", 80).await;
        assert!(matches!(
            metadata,
            Err(ConnectError::Refused(AddressClass::Metadata))
        ));
        let dev = connect_tcp(AddressPolicy::development(), "127.0.0.1", port).await;
        assert!(dev.is_ok(), "{dev:?}");
    }

    #[test]
    fn refusal_text_names_no_address() {
        let e = ConnectError::Refused(AddressClass::Private);
        assert_eq!(e.to_string(), "destination refused");
        assert!(is_refused(&e));
        assert!(!is_refused(&ConnectError::NoHost));
    }
}
