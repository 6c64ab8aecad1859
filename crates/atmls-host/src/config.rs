//! Host settings.

use std::time::Duration;

use crate::throttle::ThrottleConfig;

/// Settings of a [`Host`](crate::Host). Build with [`HostConfig::new`] and the `with_*`
/// setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostConfig {
    /// The URL clients reach the host at (the `#atproto_pds` endpoint written into new
    /// DID documents), e.g. `http://127.0.0.1:2583`.
    pub public_url: String,
    /// The host's own DID: the `aud` of its session tokens and the `did` of
    /// `describeServer`. Default `did:web:<host of public_url>`.
    pub service_did: String,
    /// Handle suffixes accounts may be created under (`describeServer`'s
    /// `availableUserDomains`). Default `[".test"]`.
    pub handle_domains: Vec<String>,
    /// Lifetime of access tokens (whole seconds count). Default 2 hours (as the official
    /// PDS).
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens (whole seconds count). Default 90 days (as the official
    /// PDS).
    pub refresh_ttl: Duration,
    /// Largest blob accepted by `uploadBlob`. Default 5 MiB.
    pub max_blob_bytes: u64,
    /// Longest lifetime of a token minted by `getServiceAuth` (whole seconds count).
    /// Default 1 hour.
    pub max_service_auth: Duration,
    /// Lifetime of the service-auth tokens minted for `atproto-proxy` (whole seconds
    /// count). Default 60 s.
    pub proxy_auth: Duration,
    /// Rate limits of `createSession` and `createAccount` (default
    /// [`ThrottleConfig::default`]).
    pub throttle: ThrottleConfig,
}

impl HostConfig {
    /// Defaults for a host reached at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        let public_url = public_url.into().trim_end_matches('/').to_owned();
        let service_did = format!("did:web:{}", did_web_authority(&public_url));
        HostConfig {
            public_url,
            service_did,
            handle_domains: vec![".test".to_owned()],
            access_ttl: Duration::from_secs(2 * 60 * 60),
            refresh_ttl: Duration::from_secs(90 * 24 * 60 * 60),
            max_blob_bytes: 5 * 1024 * 1024,
            max_service_auth: Duration::from_secs(60 * 60),
            proxy_auth: Duration::from_secs(60),
            throttle: ThrottleConfig::default(),
        }
    }

    /// Sets [`HostConfig::service_did`].
    pub fn with_service_did(mut self, did: impl Into<String>) -> Self {
        self.service_did = did.into();
        self
    }

    /// Sets [`HostConfig::handle_domains`] (each starting with `.`).
    pub fn with_handle_domains(mut self, domains: Vec<String>) -> Self {
        self.handle_domains = domains;
        self
    }

    /// Sets [`HostConfig::access_ttl`].
    pub fn with_access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Sets [`HostConfig::refresh_ttl`].
    pub fn with_refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Sets [`HostConfig::throttle`].
    pub fn with_throttle(mut self, throttle: ThrottleConfig) -> Self {
        self.throttle = throttle;
        self
    }

    /// Sets [`HostConfig::max_blob_bytes`].
    pub fn with_max_blob_bytes(mut self, bytes: u64) -> Self {
        self.max_blob_bytes = bytes;
        self
    }
}

/// The did:web form of a URL's authority: `host` or `host%3Aport`.
fn did_web_authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.replace(':', "%3A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_did_from_url() {
        assert_eq!(
            HostConfig::new("http://127.0.0.1:2583/").service_did,
            "did:web:127.0.0.1%3A2583"
        );
        assert_eq!(
            HostConfig::new("https://pds.example.com").service_did,
            "did:web:pds.example.com"
        );
    }
}
