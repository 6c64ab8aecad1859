//! Service auth (`getServiceAuth`) and `atproto-proxy` decisions: which endpoint a
//! proxied call goes to, and the token it carries.

use std::sync::Arc;
use std::time::Duration;

use atmls_identity::plc::PlcError;
use atmls_identity::plc::directory::Directory;
use atmls_identity::resolve::{HistoryFuture, ResolveError, ResolveFuture};
use atmls_identity::service_auth::{self, Claims, unix_secs};
use atmls_identity::{Did, DidDocument, DidHistory, DidResolver, PlcDid};
use atmls_syntax::Nsid;
use atmls_syntax::Timestamp;

use crate::accounts::Caller;
use crate::error::HostError;
use crate::host::Host;

/// Longest lifetime of a `getServiceAuth` token without `lxm` (as the official PDS).
const UNBOUND_TOKEN_SECS: u64 = 60;

/// Where an `atproto-proxy` header sends a call: `did#service`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyTarget {
    /// The service's DID.
    pub did: Did,
    /// The service id in its DID document, without `#` (e.g. `chat_mls_ds`).
    pub service_id: String,
}

impl ProxyTarget {
    /// Parses an `atproto-proxy` header value.
    pub fn parse(header: &str) -> Result<Self, HostError> {
        let bad = || HostError::InvalidRequest(format!("invalid atproto-proxy header: {header:?}"));
        let (did, id) = header.trim().split_once('#').ok_or_else(bad)?;
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(bad());
        }
        let did = Did::new(did).map_err(|_| bad())?;
        Ok(ProxyTarget {
            did,
            service_id: id.to_owned(),
        })
    }

    /// The service's endpoint in the target's DID document: an `http(s)` URL without a
    /// trailing `/`.
    pub fn endpoint(&self, doc: &DidDocument) -> Result<String, HostError> {
        let endpoint = doc.service_endpoint(&self.service_id).map_err(|_| {
            HostError::ProxyTargetNotFound(format!(
                "could not resolve proxy service {}#{}",
                self.did, self.service_id
            ))
        })?;
        if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
            return Err(HostError::ProxyTargetNotFound(format!(
                "proxy service {}#{} has no http(s) endpoint",
                self.did, self.service_id
            )));
        }
        Ok(endpoint.trim_end_matches('/').to_owned())
    }
}

impl Host {
    /// `getServiceAuth`: a service-auth JWT signed with the caller's repo key, for
    /// audience `aud` (a DID, optionally `#service`), method `lxm`, expiring at `exp`
    /// (seconds since the Unix epoch, the JWT unit; default 60 s from now, at most
    /// [`HostConfig::max_service_auth`] ahead, and at most 60 s without `lxm`).
    ///
    /// [`HostConfig::max_service_auth`]: crate::HostConfig::max_service_auth
    pub fn service_auth(
        &self,
        caller: &Caller,
        aud: &str,
        lxm: Option<&str>,
        exp: Option<i64>,
        now: Timestamp,
    ) -> Result<String, HostError> {
        let issued_at = now;
        let now = unix_secs(now);
        let aud_did = aud.split_once('#').map_or(aud, |(d, _)| d);
        Did::new(aud_did).map_err(|e| HostError::InvalidRequest(format!("invalid aud: {e}")))?;
        if let Some(lxm) = lxm {
            Nsid::new(lxm).map_err(|e| HostError::InvalidRequest(format!("invalid lxm: {e}")))?;
        }
        let exp = match exp {
            None => now + UNBOUND_TOKEN_SECS,
            Some(e) if e <= now as i64 => {
                return Err(HostError::BadExpiration("expiration is in the past".into()));
            }
            Some(e) => e as u64,
        };
        let max = if lxm.is_some() {
            self.config.max_service_auth.as_secs()
        } else {
            UNBOUND_TOKEN_SECS
        };
        if exp - now > max {
            return Err(HostError::BadExpiration(format!(
                "expiration may be at most {max} seconds ahead{}",
                if lxm.is_none() {
                    " for a token without lxm"
                } else {
                    ""
                }
            )));
        }
        self.mint(caller, aud, lxm, issued_at, Duration::from_secs(exp - now))
    }

    /// The token a call proxied for `caller` to `target` carries: audience the target's
    /// bare DID, `lxm` the method, lifetime [`HostConfig::proxy_auth`].
    ///
    /// [`HostConfig::proxy_auth`]: crate::HostConfig::proxy_auth
    pub fn proxy_token(
        &self,
        caller: &Caller,
        target: &ProxyTarget,
        lxm: &Nsid,
        now: Timestamp,
    ) -> Result<String, HostError> {
        self.mint(
            caller,
            target.did.as_str(),
            Some(lxm.as_str()),
            now,
            self.config.proxy_auth,
        )
    }

    fn mint(
        &self,
        caller: &Caller,
        aud: &str,
        lxm: Option<&str>,
        now: Timestamp,
        lifetime: Duration,
    ) -> Result<String, HostError> {
        let account = self.account(&caller.did)?;
        if !account.is_active() {
            return Err(HostError::AccountDeactivated(account.did));
        }
        let key = self.signing_key(&caller.did)?;
        let mut claims = Claims::new(&caller.did, aud, lxm.unwrap_or_default(), now, lifetime);
        if lxm.is_none() {
            claims.lxm = None;
        }
        Ok(service_auth::issue(&key, &claims))
    }
}

/// A [`DidResolver`] that answers did:plc DIDs from the local dev directory and asks
/// `fallback` (e.g. an HTTP resolver) for the rest.
pub struct LocalResolver {
    directory: Arc<Directory>,
    fallback: Option<Arc<dyn DidResolver>>,
}

impl std::fmt::Debug for LocalResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalResolver")
            .field("directory", &self.directory.len())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl LocalResolver {
    /// A resolver over `directory`, with an optional `fallback`.
    pub fn new(directory: Arc<Directory>, fallback: Option<Arc<dyn DidResolver>>) -> Self {
        LocalResolver {
            directory,
            fallback,
        }
    }

    /// The local directory's answer, `None` if it does not know the DID. A DID it
    /// knows as tombstoned is [`ResolveError::Gone`] (a permanent refusal), not a miss.
    fn local(&self, did: &Did) -> Option<Result<Arc<DidDocument>, ResolveError>> {
        let plc = PlcDid::new(did.as_str()).ok()?;
        match self.directory.document(&plc) {
            Ok(doc) => Some(Ok(Arc::new(doc))),
            Err(PlcError::Tombstoned) => Some(Err(ResolveError::Gone)),
            Err(_) => None,
        }
    }

    /// The local directory's history of the DID (its audit log), `None` if unknown.
    fn local_history(&self, did: &Did) -> Option<Result<Arc<DidHistory>, ResolveError>> {
        let plc = PlcDid::new(did.as_str()).ok()?;
        let log = self.directory.audit_log(&plc).ok()?;
        Some(
            DidHistory::from_plc_audit_log(&plc, &log)
                .map(Arc::new)
                .map_err(ResolveError::from),
        )
    }
}

impl DidResolver for LocalResolver {
    fn resolve<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        Box::pin(async move {
            if let Some(answer) = self.local(did) {
                return answer;
            }
            match &self.fallback {
                Some(f) => f.resolve(did).await,
                None => Err(ResolveError::NotFound),
            }
        })
    }

    fn resolve_fresh<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        Box::pin(async move {
            if let Some(answer) = self.local(did) {
                return answer;
            }
            match &self.fallback {
                Some(f) => f.resolve_fresh(did).await,
                None => Err(ResolveError::NotFound),
            }
        })
    }

    fn resolve_history<'a>(&'a self, did: &'a Did) -> HistoryFuture<'a> {
        Box::pin(async move {
            if let Some(answer) = self.local_history(did) {
                return answer;
            }
            match &self.fallback {
                Some(f) => f.resolve_history(did).await,
                None => Err(ResolveError::NotFound),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DID the local directory knows as tombstoned is `Gone` (permanent), not a miss
    /// handed to the fallback (before: `NotFound`, or whatever the fallback said); its
    /// history still names the document in force before the tombstone.
    #[tokio::test]
    async fn tombstoned_local_did_is_gone() {
        use atmls_crypto::{Algorithm, SigningKey};
        use atmls_identity::plc::{GenesisBuilder, Tombstone};
        let rotation = SigningKey::generate(Algorithm::Es256k);
        let key = SigningKey::generate(Algorithm::Es256k);
        let genesis = GenesisBuilder::new(&rotation.public_key(), &key.public_key())
            .handle("a.test")
            .pds("http://127.0.0.1:1")
            .sign(&rotation);
        let did = genesis.did().unwrap();
        let dir = Arc::new(Directory::in_memory());
        let t0 = Timestamp::from_millis(1_800_000_000_000);
        let t1 = Timestamp::from_millis(1_800_000_001_000);
        let prev = genesis.cid().unwrap().to_string();
        dir.submit(&did, genesis, t0).unwrap();
        dir.submit(&did, Tombstone { prev }.sign(&rotation), t1)
            .unwrap();
        let r = LocalResolver::new(dir, None);
        assert_eq!(r.resolve(did.as_did()).await, Err(ResolveError::Gone));
        assert_eq!(r.resolve_fresh(did.as_did()).await, Err(ResolveError::Gone));
        let h = r.resolve_history(did.as_did()).await.unwrap();
        assert_eq!(h.at(t0).unwrap().atproto_key().unwrap(), key.public_key());
        assert!(h.at(t1).is_err());
    }

    #[test]
    fn proxy_headers_parse() {
        let t = ProxyTarget::parse("did:web:ds.example.com#chat_mls_ds").unwrap();
        assert_eq!(t.did.as_str(), "did:web:ds.example.com");
        assert_eq!(t.service_id, "chat_mls_ds");
        for bad in ["did:web:x", "did:web:x#", "nodid#svc", "did:web:x#a b", ""] {
            assert!(ProxyTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
