//! The account's PDS (and other accounts' PDSes, found through their DID documents).

use std::sync::Arc;
use std::time::Duration;

use atmls_identity::{Did, DidDocument, DidHistory, DidResolver};
use hyper::Method;
use tokio::sync::RwLock;

use super::client::{XrpcClient, encode};
use crate::error::TransportError;
use crate::transport::{BlobRef, ListedRecord, Pds, RecordWrite, resolve_failure};

#[derive(Debug, Clone)]
struct Session {
    access: String,
    refresh: String,
}

/// A session on the account's PDS (`com.atproto.server.createSession`), with access-token
/// refresh; other accounts' repos are read from the PDS named in their DID document.
pub struct HttpPds {
    xrpc: XrpcClient,
    base: String,
    did: Did,
    session: RwLock<Session>,
    resolver: Arc<dyn DidResolver>,
}

impl std::fmt::Debug for HttpPds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPds")
            .field("base", &self.base)
            .field("did", &self.did)
            .finish_non_exhaustive()
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl HttpPds {
    /// Logs in at `base` (e.g. `https://pds.example.com`) with a handle or DID and a
    /// password.
    pub async fn login(
        base: &str,
        identifier: &str,
        password: &str,
        resolver: Arc<dyn DidResolver>,
    ) -> Result<Self, TransportError> {
        let xrpc = XrpcClient::new(TIMEOUT);
        let base = base.trim_end_matches('/').to_owned();
        let body = serde_json::json!({ "identifier": identifier, "password": password });
        let v = xrpc
            .json(
                Method::POST,
                &format!("{base}/xrpc/com.atproto.server.createSession"),
                &[],
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await?;
        Self::from_session(xrpc, base, &v, resolver)
    }

    /// Creates an account at `base` and logs in (development hosts).
    pub async fn create_account(
        base: &str,
        handle: &str,
        email: &str,
        password: &str,
        resolver: Arc<dyn DidResolver>,
    ) -> Result<Self, TransportError> {
        let xrpc = XrpcClient::new(TIMEOUT);
        let base = base.trim_end_matches('/').to_owned();
        let body = serde_json::json!({ "handle": handle, "email": email, "password": password });
        let v = xrpc
            .json(
                Method::POST,
                &format!("{base}/xrpc/com.atproto.server.createAccount"),
                &[],
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await?;
        Self::from_session(xrpc, base, &v, resolver)
    }

    fn from_session(
        xrpc: XrpcClient,
        base: String,
        v: &serde_json::Value,
        resolver: Arc<dyn DidResolver>,
    ) -> Result<Self, TransportError> {
        let field = |name: &str| {
            v[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| TransportError::Malformed(format!("session without {name}")))
        };
        let did = Did::new(field("did")?).map_err(|e| TransportError::Malformed(e.to_string()))?;
        Ok(Self {
            xrpc,
            base,
            did,
            session: RwLock::new(Session {
                access: field("accessJwt")?,
                refresh: field("refreshJwt")?,
            }),
            resolver,
        })
    }

    /// The PDS base URL of this session.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Resumes a session saved earlier (see [`Self::tokens`]); an expired access token is
    /// refreshed on first use.
    pub fn resume(
        base: &str,
        did: Did,
        access_jwt: String,
        refresh_jwt: String,
        resolver: Arc<dyn DidResolver>,
    ) -> Self {
        Self {
            xrpc: XrpcClient::new(TIMEOUT),
            base: base.trim_end_matches('/').to_owned(),
            did,
            session: RwLock::new(Session {
                access: access_jwt,
                refresh: refresh_jwt,
            }),
            resolver,
        }
    }

    /// An unauthenticated XRPC query to this PDS (e.g. `com.atproto.identity.resolveHandle`,
    /// or `chat.mls.ds.describeServer` where the DS shares the host).
    pub async fn query(
        &self,
        nsid: &str,
        params: &[(&str, &str)],
    ) -> Result<serde_json::Value, TransportError> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let url = format!("{}/xrpc/{nsid}?{}", self.base, query.join("&"));
        self.xrpc.json(Method::GET, &url, &[], None).await
    }

    /// The session's current access and refresh tokens (they change on refresh), to save
    /// and [`Self::resume`] later.
    pub async fn tokens(&self) -> (String, String) {
        let s = self.session.read().await;
        (s.access.clone(), s.refresh.clone())
    }

    /// Calls the procedure `nsid` of another service through this PDS: `proxy` is the
    /// `atproto-proxy` header value, `<service DID>#<service id>` (e.g.
    /// `did:web:ds.example.com#chat_mls_ds`). The PDS checks the session, mints a
    /// service-auth token for that service and forwards the call (docs/spec.md §2a, §13).
    pub async fn proxied_procedure(
        &self,
        proxy: &str,
        nsid: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, TransportError> {
        let body = self
            .proxied_procedure_bytes(proxy, nsid, body.to_string().into_bytes())
            .await?;
        serde_json::from_slice(&body).map_err(|e| TransportError::Malformed(e.to_string()))
    }

    /// [`Self::proxied_procedure`] with the JSON body as bytes, answering the raw body.
    pub(crate) async fn proxied_procedure_bytes(
        &self,
        proxy: &str,
        nsid: &str,
        body: Vec<u8>,
    ) -> Result<bytes::Bytes, TransportError> {
        let r = self
            .authed_with(
                Method::POST,
                nsid,
                "",
                &[("atproto-proxy", proxy)],
                Some(("application/json", body)),
            )
            .await?;
        Ok(r.body)
    }

    /// An authenticated request; refreshes the session once on `ExpiredToken`.
    async fn authed(
        &self,
        method: Method,
        nsid: &str,
        query: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<super::client::Response, TransportError> {
        self.authed_with(method, nsid, query, &[], body).await
    }

    /// [`Self::authed`] with extra request headers.
    async fn authed_with(
        &self,
        method: Method,
        nsid: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<super::client::Response, TransportError> {
        let url = if query.is_empty() {
            format!("{}/xrpc/{nsid}", self.base)
        } else {
            format!("{}/xrpc/{nsid}?{query}", self.base)
        };
        for attempt in 0..2 {
            let token = format!("Bearer {}", self.session.read().await.access);
            let mut all = vec![("authorization", token.as_str())];
            all.extend_from_slice(headers);
            match self
                .xrpc
                .send(method.clone(), &url, &all, body.clone())
                .await
            {
                Err(TransportError::Xrpc { error, .. })
                    if error == "ExpiredToken" && attempt == 0 =>
                {
                    self.refresh().await?;
                }
                other => return other,
            }
        }
        Err(TransportError::Network("session refresh failed".into()))
    }

    async fn refresh(&self) -> Result<(), TransportError> {
        let mut session = self.session.write().await;
        let token = format!("Bearer {}", session.refresh);
        let v = self
            .xrpc
            .json(
                Method::POST,
                &format!("{}/xrpc/com.atproto.server.refreshSession", self.base),
                &[("authorization", &token)],
                None,
            )
            .await?;
        if let (Some(a), Some(r)) = (v["accessJwt"].as_str(), v["refreshJwt"].as_str()) {
            *session = Session {
                access: a.to_owned(),
                refresh: r.to_owned(),
            };
        }
        Ok(())
    }

    /// The PDS of `did` (this session's for our own DID).
    async fn pds_of(&self, did: &Did) -> Result<String, TransportError> {
        if did == &self.did {
            return Ok(self.base.clone());
        }
        let doc = self.resolve(did).await?;
        doc.pds_endpoint()
            .map(|e| e.trim_end_matches('/').to_owned())
            .map_err(|e| TransportError::Malformed(e.to_string()))
    }
}

impl Pds for HttpPds {
    fn did(&self) -> Did {
        self.did.clone()
    }

    async fn apply_writes(&self, writes: Vec<RecordWrite>) -> Result<(), TransportError> {
        let writes: Vec<serde_json::Value> = writes
            .into_iter()
            .map(|w| match w {
                RecordWrite::Create {
                    collection,
                    rkey,
                    value,
                } => serde_json::json!({
                    "$type": "com.atproto.repo.applyWrites#create",
                    "collection": collection, "rkey": rkey, "value": value,
                }),
                RecordWrite::Delete { collection, rkey } => serde_json::json!({
                    "$type": "com.atproto.repo.applyWrites#delete",
                    "collection": collection, "rkey": rkey,
                }),
            })
            .collect();
        let body = serde_json::json!({ "repo": self.did.as_str(), "writes": writes });
        self.authed(
            Method::POST,
            "com.atproto.repo.applyWrites",
            "",
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await?;
        Ok(())
    }

    async fn list_records(
        &self,
        repo: &Did,
        collection: &str,
    ) -> Result<Vec<ListedRecord>, TransportError> {
        let base = self.pds_of(repo).await?;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let mut url = format!(
                "{base}/xrpc/com.atproto.repo.listRecords?repo={}&collection={}&limit=100",
                encode(repo.as_str()),
                encode(collection)
            );
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={}", encode(c)));
            }
            let v = self.xrpc.json(Method::GET, &url, &[], None).await?;
            let records = v["records"].as_array().cloned().unwrap_or_default();
            for r in &records {
                let Some(rkey) = r["uri"].as_str().and_then(|u| u.rsplit('/').next()) else {
                    continue;
                };
                out.push(ListedRecord {
                    rkey: rkey.to_owned(),
                    value: r["value"].clone(),
                });
            }
            cursor = v["cursor"].as_str().map(str::to_owned);
            if records.is_empty() || cursor.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn record_proof(
        &self,
        repo: &Did,
        collection: &str,
        rkey: &str,
    ) -> Result<Vec<u8>, TransportError> {
        let base = self.pds_of(repo).await?;
        let url = format!(
            "{base}/xrpc/com.atproto.sync.getRecord?did={}&collection={}&rkey={}",
            encode(repo.as_str()),
            encode(collection),
            encode(rkey)
        );
        Ok(self
            .xrpc
            .send(Method::GET, &url, &[], None)
            .await?
            .body
            .to_vec())
    }

    async fn resolve(&self, did: &Did) -> Result<DidDocument, TransportError> {
        self.resolver
            .resolve(did)
            .await
            .map(|d| (*d).clone())
            .map_err(resolve_failure)
    }

    async fn resolve_history(&self, did: &Did) -> Result<DidHistory, TransportError> {
        self.resolver
            .resolve_history(did)
            .await
            .map(|h| (*h).clone())
            .map_err(resolve_failure)
    }

    async fn upload_blob(
        &self,
        bytes: Vec<u8>,
        mime_type: &str,
    ) -> Result<BlobRef, TransportError> {
        let size = bytes.len() as u64;
        let r = self
            .authed(
                Method::POST,
                "com.atproto.repo.uploadBlob",
                "",
                Some((mime_type, bytes)),
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| TransportError::Malformed(e.to_string()))?;
        let link = v["blob"]["ref"]["$link"]
            .as_str()
            .ok_or_else(|| TransportError::Malformed("uploadBlob answer without ref".into()))?;
        Ok(BlobRef {
            cid: link
                .parse()
                .map_err(|e: cid::Error| TransportError::Malformed(e.to_string()))?,
            mime_type: mime_type.to_owned(),
            size,
        })
    }

    async fn blob(&self, did: &Did, cid: &cid::Cid) -> Result<Vec<u8>, TransportError> {
        let base = self.pds_of(did).await?;
        let url = format!(
            "{base}/xrpc/com.atproto.sync.getBlob?did={}&cid={}",
            encode(did.as_str()),
            encode(&cid.to_string())
        );
        Ok(self
            .xrpc
            .send(Method::GET, &url, &[], None)
            .await?
            .body
            .to_vec())
    }

    async fn service_auth(&self, aud: &Did, lxm: &str) -> Result<String, TransportError> {
        let query = format!("aud={}&lxm={}", encode(aud.as_str()), encode(lxm));
        let r = self
            .authed(
                Method::GET,
                "com.atproto.server.getServiceAuth",
                &query,
                None,
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| TransportError::Malformed(e.to_string()))?;
        v["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| TransportError::Malformed("getServiceAuth answer without token".into()))
    }
}
