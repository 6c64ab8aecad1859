//! Resolution over HTTP(S): did:plc from a PLC directory, did:web, handles.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use atmls_net::{AddressPolicy, HttpClient, OutboundConfig};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Request, StatusCode, Uri};

use super::{
    DidResolver, HandleFuture, HandleResolver, HistoryFuture, ResolveError, ResolveFuture,
};
use crate::plc::{AuditEntry, PlcState, SignedOperation};
use crate::{AtprotoDid, Did, DidDocument, DidHistory, DocumentError, Handle, PlcDid};

/// Settings of an [`HttpResolver`].
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    plc_url: String,
    timeout: Duration,
    max_body: usize,
    allow_loopback_http: bool,
    host_overrides: HashMap<String, String>,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            plc_url: "https://plc.directory".to_owned(),
            timeout: Duration::from_secs(5),
            max_body: 64 * 1024,
            allow_loopback_http: false,
            host_overrides: HashMap::new(),
        }
    }
}

impl ResolverConfig {
    /// The PLC directory base URL (default `https://plc.directory`).
    pub fn with_plc_url(mut self, url: impl Into<String>) -> Self {
        self.plc_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Time allowed for one whole request, connect to last body byte (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest response body accepted (default 64 KiB).
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// The development allowance (default off: development and tests only): connect to
    /// loopback addresses at all, and use plain `http://` for did:web and handles on
    /// `localhost` / `127.0.0.1`. Private, link-local and metadata addresses stay refused
    /// either way ([`atmls_net::AddressPolicy`]).
    pub fn allow_loopback_http(mut self, allow: bool) -> Self {
        self.allow_loopback_http = allow;
        self
    }

    /// Fetch did:web documents and handle files of `host` from `base_url` instead
    /// (like curl's `--resolve`; development and tests only).
    pub fn with_host_override(mut self, host: &str, base_url: impl Into<String>) -> Self {
        let base = base_url.into().trim_end_matches('/').to_owned();
        self.host_overrides.insert(host.to_ascii_lowercase(), base);
        self
    }

    /// The configured PLC directory URL.
    pub fn plc_url(&self) -> &str {
        &self.plc_url
    }

    /// The address policy outbound fetches obey: public addresses, plus loopback under
    /// [`Self::allow_loopback_http`].
    pub fn address_policy(&self) -> AddressPolicy {
        AddressPolicy::public_only().with_loopback(self.allow_loopback_http)
    }
}

/// Resolves DIDs and handles over HTTP(S) with a timeout and a body size limit.
/// Redirects are not followed; destinations are checked by the configuration's
/// [`ResolverConfig::address_policy`] after DNS resolution. Pair it with
/// [`super::CachingResolver`].
#[derive(Clone)]
pub struct HttpResolver {
    client: HttpClient<Full<Bytes>>,
    config: Arc<ResolverConfig>,
}

impl std::fmt::Debug for HttpResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpResolver {
    /// A resolver with these settings (web PKI roots, rustls with the ring provider).
    pub fn new(config: ResolverConfig) -> Self {
        let client = OutboundConfig::new()
            .with_policy(config.address_policy())
            .with_connect_timeout(config.timeout)
            .client();
        HttpResolver {
            client,
            config: Arc::new(config),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    /// The URL a DID document is fetched from.
    pub fn document_url(&self, did: &Did) -> Result<String, ResolveError> {
        match AtprotoDid::try_from(did)? {
            AtprotoDid::Plc(plc) => Ok(format!("{}/{}", self.config.plc_url, plc)),
            AtprotoDid::Web(web) => Ok(format!(
                "{}/.well-known/did.json",
                self.base_url(web.host(), &web.authority())
            )),
        }
    }

    fn base_url(&self, host: &str, authority: &str) -> String {
        if let Some(base) = self.config.host_overrides.get(host) {
            return base.clone();
        }
        let loopback = host == "localhost" || host == "127.0.0.1";
        if loopback && self.config.allow_loopback_http {
            format!("http://{authority}")
        } else {
            format!("https://{authority}")
        }
    }

    /// GETs `url`: the status and a body of at most `max_body` bytes, within the timeout.
    pub(crate) async fn get(&self, url: &str) -> Result<(StatusCode, Bytes), ResolveError> {
        self.send(url, None).await
    }

    /// Sends a GET (no body) or a JSON POST, returning the status and a bounded body.
    async fn send(
        &self,
        url: &str,
        json_body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ResolveError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ResolveError::InvalidUrl(url.to_owned()))?;
        let builder = match json_body {
            None => Request::get(uri),
            Some(_) => Request::post(uri).header(hyper::header::CONTENT_TYPE, "application/json"),
        };
        let request = builder
            .header(hyper::header::ACCEPT, "application/json, text/plain")
            .body(Full::new(Bytes::from(json_body.unwrap_or_default())))
            .map_err(|_| ResolveError::InvalidUrl(url.to_owned()))?;
        let limit = self.config.max_body;
        let work = async {
            let response = self.client.request(request).await.map_err(|e| {
                if atmls_net::is_refused(&e) {
                    ResolveError::Refused
                } else {
                    ResolveError::Transport(e.to_string())
                }
            })?;
            let status = response.status();
            let declared = response
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit as u64) {
                return Err(ResolveError::TooLarge { limit });
            }
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        ResolveError::TooLarge { limit }
                    } else {
                        ResolveError::Transport(e.to_string())
                    }
                })?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.config.timeout, work)
            .await
            .map_err(|_| ResolveError::Timeout)?
    }

    async fn fetch_document(&self, did: &Did) -> Result<std::sync::Arc<DidDocument>, ResolveError> {
        let url = self.document_url(did)?;
        let (status, body) = self.get(&url).await?;
        check_status(status)?;
        let doc = DidDocument::from_json(&body)?;
        if &doc.id != did {
            return Err(ResolveError::IdMismatch {
                expected: did.clone(),
                found: doc.id,
            });
        }
        Ok(std::sync::Arc::new(doc))
    }

    async fn fetch_handle(&self, handle: &Handle) -> Result<Did, ResolveError> {
        // Handles are case-insensitive; the lowercase form is the host name to ask.
        let handle = handle.to_normalized();
        let url = format!(
            "{}/.well-known/atproto-did",
            self.base_url(handle.as_str(), handle.as_str())
        );
        let (status, body) = self.get(&url).await?;
        check_status(status)?;
        let text = std::str::from_utf8(&body).map_err(|_| ResolveError::InvalidHandleResponse)?;
        Did::new(text.trim()).map_err(|_| ResolveError::InvalidHandleResponse)
    }
}

/// Client calls to a PLC directory (the configured one).
impl HttpResolver {
    /// Submits a signed operation for `did` (`POST /:did`). A refusal is
    /// [`ResolveError::Status`] with the directory's status code.
    pub async fn submit_plc_operation(
        &self,
        did: &PlcDid,
        op: &SignedOperation,
    ) -> Result<(), ResolveError> {
        let url = format!("{}/{}", self.config.plc_url, did);
        let body = op.to_json().to_string().into_bytes();
        let (status, _) = self.send(&url, Some(body)).await?;
        check_status(status)
    }

    /// The audit log of `did` (`GET /:did/log/audit`), nullified operations included.
    pub async fn plc_audit_log(&self, did: &PlcDid) -> Result<Vec<AuditEntry>, ResolveError> {
        let url = format!("{}/{}/log/audit", self.config.plc_url, did);
        let (status, body) = self.get(&url).await?;
        check_status(status)?;
        serde_json::from_slice(&body)
            .map_err(|e| ResolveError::InvalidDocument(DocumentError::Malformed(e.to_string())))
    }

    /// The current data of `did` (`GET /:did/data`) and the CID of its latest valid
    /// operation: what an update is built from ([`PlcState::to_update`]).
    pub async fn plc_state(&self, did: &PlcDid) -> Result<(PlcState, String), ResolveError> {
        let log = self.plc_audit_log(did).await?;
        let last = log
            .iter()
            .rev()
            .find(|e| !e.nullified)
            .ok_or(ResolveError::NotFound)?;
        let state = last.operation.state(did).map_err(|_| ResolveError::Gone)?;
        Ok((state, last.cid.clone()))
    }
}

fn check_status(status: StatusCode) -> Result<(), ResolveError> {
    match status {
        StatusCode::OK => Ok(()),
        StatusCode::NOT_FOUND => Err(ResolveError::NotFound),
        StatusCode::GONE => Err(ResolveError::Gone),
        other => Err(ResolveError::Status(other.as_u16())),
    }
}

impl HttpResolver {
    async fn fetch_history(&self, did: &Did) -> Result<Arc<DidHistory>, ResolveError> {
        match AtprotoDid::try_from(did)? {
            AtprotoDid::Plc(plc) => {
                let log = self.plc_audit_log(&plc).await?;
                Ok(Arc::new(DidHistory::from_plc_audit_log(&plc, &log)?))
            }
            // did:web keeps no history: the current document stands for every instant.
            AtprotoDid::Web(_) => Ok(Arc::new(DidHistory::current(
                (*self.fetch_document(did).await?).clone(),
            ))),
        }
    }
}

impl DidResolver for HttpResolver {
    fn resolve<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        Box::pin(self.fetch_document(did))
    }

    fn resolve_history<'a>(&'a self, did: &'a Did) -> HistoryFuture<'a> {
        Box::pin(self.fetch_history(did))
    }
}

impl HandleResolver for HttpResolver {
    fn resolve_handle<'a>(&'a self, handle: &'a Handle) -> HandleFuture<'a> {
        Box::pin(self.fetch_handle(handle))
    }
}
