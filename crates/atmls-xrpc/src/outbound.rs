//! The one outbound HTTP(S) client of a process. Every fetch a shell makes to a URL a
//! peer can influence (an `atproto-proxy` target, a PDS holding KeyPackages) goes through
//! the same [`Outbound`]: one connection pool, one address policy (issue 11's: loopback
//! only under the development allowance; private, link-local and metadata addresses
//! never), built once by the composition and handed to every shell that fetches.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::client::legacy::ResponseFuture;

pub use atmls_net::{AddressPolicy, OutboundConfig};

/// The shared outbound client: cheap to clone, clones share the connection pool.
#[derive(Clone)]
pub struct Outbound {
    client: atmls_net::HttpClient<Full<Bytes>>,
    policy: AddressPolicy,
}

impl Outbound {
    /// A client with these settings (policy, connect timeout, TLS roots).
    pub fn new(config: &OutboundConfig) -> Self {
        Outbound {
            client: config.client(),
            policy: config.policy(),
        }
    }

    /// A client with `policy` and the other settings at their defaults.
    pub fn with_policy(policy: AddressPolicy) -> Self {
        Self::new(&OutboundConfig::new().with_policy(policy))
    }

    /// The address policy every connection is checked against.
    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    /// Sends `request`; redirects are not followed. A refused address is an error for
    /// which [`atmls_net::is_refused`] holds.
    pub fn request(&self, request: Request<Full<Bytes>>) -> ResponseFuture {
        self.client.request(request)
    }
}

impl Default for Outbound {
    /// Public addresses only.
    fn default() -> Self {
        Self::with_policy(AddressPolicy::public_only())
    }
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clone refuses what the original refuses: one policy for every holder.
    #[tokio::test]
    async fn clones_share_the_policy() {
        let outbound = Outbound::default();
        let clone = outbound.clone();
        assert_eq!(clone.policy(), AddressPolicy::public_only());
        let request = Request::get("http://169.254.169.254/latest/meta-data/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = clone.request(request).await.unwrap_err();
        assert!(atmls_net::is_refused(&err), "{err}");
    }
}
