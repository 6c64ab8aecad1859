//! The outbound HTTP(S) client every atmls component uses: TLS with rustls (ring
//! provider), HTTP/1.1, and a [`PolicyConnector`] underneath.

use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::connect::PolicyConnector;
use crate::policy::AddressPolicy;

/// The connector: TLS (or plain http) over a policy-checked TCP connection.
pub type Connector = HttpsConnector<PolicyConnector>;

/// A hyper client with the [`Connector`], for request bodies of type `B`.
pub type HttpClient<B> = Client<Connector, B>;

/// Settings of the outbound client.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    policy: AddressPolicy,
    connect_timeout: Duration,
    tls: Option<rustls::ClientConfig>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            policy: AddressPolicy::public_only(),
            connect_timeout: Duration::from_secs(5),
            tls: None,
        }
    }
}

impl OutboundConfig {
    /// Defaults: public addresses only, 5 s connect timeout, web PKI roots.
    pub fn new() -> Self {
        Self::default()
    }

    /// The address policy (default [`AddressPolicy::public_only`]).
    #[must_use]
    pub fn with_policy(mut self, policy: AddressPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Time allowed to establish a TCP connection (default 5 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Trust what `tls` trusts instead of the web PKI roots (a private CA, a test's
    /// self-signed certificate).
    #[must_use]
    pub fn with_tls(mut self, tls: rustls::ClientConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The address policy.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// The connector these settings describe.
    pub fn connector(&self) -> Connector {
        let tcp = PolicyConnector::new(self.policy, self.connect_timeout);
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match &self.tls {
            Some(tls) => builder.with_tls_config(tls.clone()),
            None => builder.with_webpki_roots(),
        };
        builder.https_or_http().enable_http1().wrap_connector(tcp)
    }

    /// A client over [`Self::connector`]. Redirects are never followed by hyper.
    pub fn client<B>(&self) -> HttpClient<B>
    where
        B: hyper::body::Body + Send,
        B::Data: Send,
    {
        Client::builder(TokioExecutor::new()).build(self.connector())
    }
}
