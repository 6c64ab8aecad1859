//! `chat.mls.ds.getKeyPackages`: gathers, for up to 100 DIDs, the declaration and the
//! KeyPackage records with their `com.atproto.sync.getRecord` proofs from each DID's own
//! PDS. The DS verifies nothing here: clients check every proof against the DID's key.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use atmls_identity::{Did, DidResolver};
use atrium_api::com::atproto::sync::get_record;
use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Request, StatusCode, Uri};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout};

use atmls_ds::Timestamp;
use atmls_ds::auth::RequestSource;
use atmls_ds::proto::codec::server as codec;
use atmls_xrpc::Outbound;

use super::budget::{RateWindows, RetryAfter};
use super::config::KeyPackageConfig;

/// The declaration collection and its one record key.
const DECLARATION: &str = "chat.mls.declaration";
/// The KeyPackage collection.
const KEY_PACKAGE: &str = "chat.mls.keyPackage";
/// Most KeyPackage records returned per DID (the lexicon's `maxLength`).
const MAX_KEY_PACKAGES: usize = 100;

pub use atmls_ds::proto::{DidResult, DidStatus, ProvenRecord};

/// The answer for a DID that could not be gathered.
fn failed(did: &str, status: DidStatus, message: impl Into<String>) -> DidResult {
    DidResult {
        did: did.to_owned(),
        status,
        message: Some(message.into()),
        declaration: None,
        key_packages: Vec::new(),
    }
}

/// Longest `message` of a result (the lexicon allows 1024 bytes).
const MAX_MESSAGE_BYTES: usize = 1000;

/// `message`, cut to [`MAX_MESSAGE_BYTES`] at a character boundary.
fn bounded_message(mut m: String) -> String {
    if m.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
    }
    m
}

/// The `getKeyPackages#didResult` JSON of a result, through the wire crate's codec. A
/// record whose CID (as its PDS sent it) does not parse turns the result into
/// `unreachable`: the DS passes on nothing it could not encode as the lexicon says.
pub(crate) fn did_result_bytes(r: &DidResult) -> Bytes {
    let mut r = r.clone();
    r.message = r.message.take().map(bounded_message);
    let encoded = codec::did_result(&r).or_else(|e| {
        codec::did_result(&failed(
            &r.did,
            DidStatus::Unreachable,
            format!("the PDS sent a malformed record: {e}"),
        ))
    });
    // The fallback holds only the DID, which the caller parsed: it always encodes.
    encoded
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok())
        .map(Bytes::from)
        .unwrap_or_default()
}

/// A failure fetching from a PDS.
#[derive(Debug)]
enum Fetch {
    /// 404, or an XRPC `RecordNotFound` / `RepoNotFound`.
    Missing,
    /// Anything else: transport, timeout, status, size, malformed body.
    Failed(String),
}

/// Encoded answers per DID (`didResult` JSON), each encoded once, bounded in entries and
/// bytes.
#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, (Instant, Bytes)>,
    order: VecDeque<(Instant, String)>,
    bytes: usize,
}

impl Cache {
    fn evict_oldest(&mut self) -> bool {
        let Some((at, key)) = self.order.pop_front() else {
            return false;
        };
        if self.entries.get(&key).is_some_and(|(e, _)| *e == at)
            && let Some((_, json)) = self.entries.remove(&key)
        {
            self.bytes -= json.len();
        }
        true
    }
}

/// Most sources with a running lookup window at once.
const MAX_LOOKUP_SOURCES: usize = 100_000;

/// Gathers KeyPackages from PDSes, with bounded concurrency, per-request timeouts, a
/// bounded TTL cache of encoded answers per DID, a bound on answer bytes, and a budget of
/// PDS lookups per source.
pub struct KeyPackageFetcher {
    resolver: Arc<dyn DidResolver>,
    client: Outbound,
    config: KeyPackageConfig,
    cache: Mutex<Cache>,
    lookups: RateWindows<RequestSource>,
}

impl std::fmt::Debug for KeyPackageFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPackageFetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A `getKeyPackages` call refused before anything was fetched: the source used its
/// lookup budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LookupBudgetSpent {
    pub(crate) retry_after: std::time::Duration,
}

impl KeyPackageFetcher {
    /// A fetcher resolving DIDs with `resolver` and fetching through `client` (whose
    /// address policy is checked after DNS resolution).
    pub fn new(resolver: Arc<dyn DidResolver>, config: KeyPackageConfig, client: Outbound) -> Self {
        Self {
            resolver,
            client,
            lookups: RateWindows::new(
                config.lookups_per_source_per_minute,
                u64::MAX,
                MAX_LOOKUP_SOURCES,
            ),
            config,
            cache: Mutex::default(),
        }
    }

    /// The answers for `dids`, in the same order, repeated DIDs once (at their first
    /// place). Never fails as a whole: a DID that could not be gathered has its status.
    pub async fn fetch(&self, dids: &[Did]) -> Vec<DidResult> {
        let permits = Semaphore::new(self.config.concurrency.max(1));
        let distinct = distinct(dids);
        join_all(distinct.iter().map(|did| self.lookup_timed(did, &permits))).await
    }

    /// The JSON body of `getKeyPackages` for `dids` asked by `source` at `now`: one
    /// `didResult` per distinct DID, in the order of first appearance, taken from the
    /// cache (encoded once) or gathered from PDSes. The DIDs not cached are charged to
    /// the source's lookup budget first, all or none. Results that would take the body
    /// past [`KeyPackageConfig::max_response_bytes`] are answered `unreachable` instead
    /// (the first one is always whole).
    pub(crate) async fn answer(
        &self,
        dids: &[Did],
        source: RequestSource,
        now: Timestamp,
    ) -> Result<Bytes, LookupBudgetSpent> {
        let distinct = distinct(dids);
        let mut encoded: Vec<Option<Bytes>> =
            distinct.iter().map(|d| self.cached(d.as_str())).collect();
        let missing: Vec<usize> = (0..distinct.len())
            .filter(|&i| encoded[i].is_none())
            .collect();
        if !missing.is_empty() {
            self.lookups
                .charge(source, missing.len() as u64, 0, now)
                .map_err(|RetryAfter(retry_after)| LookupBudgetSpent { retry_after })?;
            let permits = Semaphore::new(self.config.concurrency.max(1));
            let fetched = join_all(
                missing
                    .iter()
                    .map(|&i| self.lookup_timed(distinct[i], &permits)),
            )
            .await;
            for (i, result) in missing.into_iter().zip(fetched) {
                let json = did_result_bytes(&result);
                if result.status != DidStatus::Unreachable {
                    self.remember(distinct[i].as_str(), json.clone());
                }
                encoded[i] = Some(json);
            }
        }
        let mut body = Vec::from(&b"{\"results\":["[..]);
        for (i, (did, json)) in distinct.iter().zip(encoded).enumerate() {
            let mut json = json.unwrap_or_default();
            if i > 0 && body.len() + json.len() + 3 > self.config.max_response_bytes {
                json = did_result_bytes(&failed(
                    did.as_str(),
                    DidStatus::Unreachable,
                    "left out: the answer reached its size limit; ask for this DID alone",
                ));
            }
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(&json);
        }
        body.extend_from_slice(b"]}");
        Ok(Bytes::from(body))
    }

    async fn lookup_timed(&self, did: &Did, permits: &Semaphore) -> DidResult {
        match timeout(self.config.did_timeout, self.lookup(did, permits)).await {
            Ok(r) => r,
            Err(_) => failed(did.as_str(), DidStatus::Unreachable, "timed out"),
        }
    }

    fn cached(&self, did: &str) -> Option<Bytes> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entries
            .get(did)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, json)| json.clone())
    }

    fn remember(&self, did: &str, json: Bytes) {
        if self.config.cache_capacity == 0 || json.len() > self.config.cache_max_bytes {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = cache.entries.remove(did) {
            cache.bytes -= old.len();
        }
        while cache.entries.len() >= self.config.cache_capacity
            || cache.bytes + json.len() > self.config.cache_max_bytes
        {
            if !cache.evict_oldest() {
                break;
            }
        }
        let expires = Instant::now() + self.config.cache_ttl;
        cache.bytes += json.len();
        cache.entries.insert(did.to_owned(), (expires, json));
        cache.order.push_back((expires, did.to_owned()));
    }

    /// Bytes of encoded answers cached.
    #[cfg(test)]
    fn cached_bytes(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }

    async fn lookup(&self, did: &Did, permits: &Semaphore) -> DidResult {
        let did_text = did.as_str();
        let fail = |status, message: String| failed(did_text, status, message);
        let doc = {
            let _permit = permits.acquire().await;
            self.resolver.resolve(did).await
        };
        let doc = match doc {
            Ok(doc) => doc,
            // A directory that may answer later is `unreachable`; a definite answer (not
            // found, tombstoned: 410) is `notFound`, cached, never retried as unreachable.
            Err(e) if e.is_transient() => {
                return fail(DidStatus::Unreachable, format!("DID resolution: {e}"));
            }
            Err(e) => return fail(DidStatus::NotFound, format!("DID resolution: {e}")),
        };
        let pds = match doc.pds_endpoint() {
            Ok(p) => p.trim_end_matches('/').to_owned(),
            Err(e) => return fail(DidStatus::Unreachable, format!("DID document: {e}")),
        };
        let allowed =
            pds.starts_with("https://") || (self.config.allow_http && pds.starts_with("http://"));
        if !allowed {
            return fail(
                DidStatus::Unreachable,
                format!("PDS endpoint {pds:?} is not https"),
            );
        }
        let pds = Pds {
            fetcher: self,
            base: &pds,
            did: did_text,
            permits,
        };
        let declarations = match pds.list(DECLARATION, 10).await {
            Ok(r) => r,
            Err(Fetch::Missing) => Vec::new(),
            Err(Fetch::Failed(m)) => return fail(DidStatus::Unreachable, m),
        };
        let Some(declaration) = declarations.into_iter().find(|(rkey, _, _)| rkey == "self") else {
            return fail(
                DidStatus::NoDeclaration,
                "no chat.mls.declaration/self".into(),
            );
        };
        let mut listed = match pds.list(KEY_PACKAGE, MAX_KEY_PACKAGES).await {
            Ok(r) => r,
            Err(Fetch::Missing) => Vec::new(),
            Err(Fetch::Failed(m)) => return fail(DidStatus::Unreachable, m),
        };
        listed.truncate(MAX_KEY_PACKAGES);
        let declaration = match pds.proven(DECLARATION, declaration).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return fail(
                    DidStatus::NoDeclaration,
                    "declaration deleted meanwhile".into(),
                );
            }
            Err(m) => return fail(DidStatus::Unreachable, m),
        };
        let proofs = join_all(listed.into_iter().map(|r| pds.proven(KEY_PACKAGE, r))).await;
        let mut key_packages = Vec::with_capacity(proofs.len());
        for proof in proofs {
            match proof {
                Ok(Some(r)) => key_packages.push(r),
                // Deleted between listing and fetching: no longer current.
                Ok(None) => {}
                Err(m) => return fail(DidStatus::Unreachable, m),
            }
        }
        DidResult {
            did: did_text.to_owned(),
            status: DidStatus::Ok,
            message: None,
            declaration: Some(declaration),
            key_packages,
        }
    }

    /// GETs `url` within the request timeout and a body limit.
    async fn get(&self, url: &str, limit: usize) -> Result<(StatusCode, Bytes), String> {
        let uri: Uri = url.parse().map_err(|_| format!("invalid URL {url:?}"))?;
        let request = Request::get(uri)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("PDS request failed: {e}"))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| format!("PDS response: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        timeout(self.config.request_timeout, work)
            .await
            .map_err(|_| "PDS request timed out".to_owned())?
    }
}

/// One DID's PDS, for one lookup.
struct Pds<'a> {
    fetcher: &'a KeyPackageFetcher,
    base: &'a str,
    did: &'a str,
    permits: &'a Semaphore,
}

/// A listed record: record key, AT-URI, CID.
type Listed = (String, String, String);

impl Pds<'_> {
    async fn get(&self, path_and_query: &str, limit: usize) -> Result<Bytes, Fetch> {
        let _permit = self.permits.acquire().await;
        let url = format!("{}{path_and_query}", self.base);
        let (status, body) = self.fetcher.get(&url, limit).await.map_err(Fetch::Failed)?;
        if status.is_success() {
            return Ok(body);
        }
        // The PDS's error, typed by atrium's generated `com.atproto.sync.getRecord` errors
        // (which also name listRecords' `RepoNotFound`).
        let error = serde_json::from_slice::<get_record::Error>(&body).ok();
        match (status, error) {
            (StatusCode::NOT_FOUND, _)
            | (
                _,
                Some(get_record::Error::RecordNotFound(_) | get_record::Error::RepoNotFound(_)),
            ) => Err(Fetch::Missing),
            _ => Err(Fetch::Failed(format!("PDS answered {status}"))),
        }
    }

    /// `com.atproto.repo.listRecords` (one page): the records of `collection` whose URI
    /// is in this DID's repo.
    async fn list(&self, collection: &str, limit: usize) -> Result<Vec<Listed>, Fetch> {
        #[derive(Deserialize)]
        struct Page {
            records: Vec<Record>,
        }
        #[derive(Deserialize)]
        struct Record {
            uri: String,
            cid: String,
        }
        let query = format!(
            "/xrpc/com.atproto.repo.listRecords?repo={}&collection={collection}&limit={limit}",
            encode(self.did)
        );
        let body = self.get(&query, self.fetcher.config.max_list_bytes).await?;
        let page: Page = serde_json::from_slice(&body)
            .map_err(|e| Fetch::Failed(format!("listRecords: malformed answer: {e}")))?;
        let prefix = format!("at://{}/{collection}/", self.did);
        Ok(page
            .records
            .into_iter()
            .filter_map(|r| {
                let rkey = r.uri.strip_prefix(&prefix)?;
                let ok = !rkey.is_empty() && rkey.len() <= 512 && !rkey.contains('/');
                ok.then(|| (rkey.to_owned(), r.uri.clone(), r.cid))
            })
            .collect())
    }

    /// The record's proof from `com.atproto.sync.getRecord`; `None` if it is gone.
    async fn proven(
        &self,
        collection: &str,
        (rkey, uri, cid): Listed,
    ) -> Result<Option<ProvenRecord>, String> {
        let query = format!(
            "/xrpc/com.atproto.sync.getRecord?did={}&collection={collection}&rkey={}",
            encode(self.did),
            encode(&rkey)
        );
        match self.get(&query, self.fetcher.config.max_proof_bytes).await {
            Ok(proof) if proof.is_empty() => Err("getRecord: empty proof".into()),
            Ok(proof) => Ok(Some(ProvenRecord {
                uri,
                cid,
                proof: proof.to_vec(),
            })),
            Err(Fetch::Missing) => Ok(None),
            Err(Fetch::Failed(m)) => Err(m),
        }
    }
}

/// `dids` without repetitions, in the order of first appearance.
fn distinct(dids: &[Did]) -> Vec<&Did> {
    let mut seen = std::collections::HashSet::new();
    dids.iter().filter(|d| seen.insert(d.as_str())).collect()
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use atmls_identity::ResolveError;
    use serde_json::Value;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("did:web:a%3A1"), "did%3Aweb%3Aa%253A1");
        assert_eq!(encode("3jzfcijpj2z2a"), "3jzfcijpj2z2a");
    }

    /// A resolver to which no DID exists: answers `notFound` without any network.
    struct NoDids;

    impl DidResolver for NoDids {
        fn resolve<'a>(&'a self, _did: &'a Did) -> atmls_identity::resolve::ResolveFuture<'a> {
            Box::pin(async { Err(ResolveError::NotFound) })
        }
    }

    /// A resolver whose directory answers `how` for every DID.
    struct Failing(ResolveError);

    impl DidResolver for Failing {
        fn resolve<'a>(&'a self, _did: &'a Did) -> atmls_identity::resolve::ResolveFuture<'a> {
            let e = self.0.clone();
            Box::pin(async move { Err(e) })
        }
    }

    /// Issue 17 item 6: a tombstoned DID (410) is a definite `notFound`; a directory
    /// answering 503 is `unreachable` (before: `notFound`, and cached as if definite).
    #[tokio::test]
    async fn tombstoned_is_not_found_and_a_directory_in_trouble_is_unreachable() {
        let src = RequestSource::from_bytes([1; 16]);
        let t = Timestamp::from_millis(1_000);
        for (e, want) in [
            (ResolveError::Gone, "notFound"),
            (ResolveError::Status(503), "unreachable"),
            (ResolveError::Timeout, "unreachable"),
        ] {
            let f = KeyPackageFetcher::new(
                Arc::new(Failing(e.clone())),
                KeyPackageConfig::default(),
                Outbound::default(),
            );
            let body = f.answer(&dids(["t"]), src, t).await.unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["results"][0]["status"], want, "{e:?}");
        }
    }

    fn fetcher(config: KeyPackageConfig) -> KeyPackageFetcher {
        KeyPackageFetcher::new(Arc::new(NoDids), config, Outbound::default())
    }

    /// `did:plc:` DIDs, one per name.
    fn dids<const N: usize>(names: [&str; N]) -> Vec<Did> {
        names
            .iter()
            .map(|n| Did::new(format!("did:plc:{n:a>24}")).unwrap())
            .collect()
    }

    /// Issue 14, hole 3: a repeated DID was answered once per repetition, from a cache
    /// entry re-encoded each time (~4 KB of request: ~1 GB of response).
    #[tokio::test]
    async fn repeated_dids_are_answered_once_and_budgeted() {
        let f = fetcher(KeyPackageConfig::default().with_lookups_per_source_per_minute(3));
        let src = RequestSource::from_bytes([1; 16]);
        let t = Timestamp::from_millis(1_000);
        // A DID that does not resolve: answered `notFound` once, and cached.
        let repeated: Vec<Did> = std::iter::repeat_n(dids(["nope"]).remove(0), 100).collect();
        let body = f.answer(&repeated, src, t).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["results"].as_array().unwrap().len(), 1);
        assert_eq!(v["results"][0]["status"], "notFound");
        // Cached: free, and the same bytes.
        let again = f.answer(&repeated, src, t).await.unwrap();
        assert_eq!(again, body);
        // Three distinct uncached DIDs fit the budget only once.
        let three = dids(["a", "b", "c"]);
        assert!(f.answer(&three[..2], src, t).await.is_ok());
        let spent = f.answer(&dids(["d", "e"]), src, t).await;
        assert!(spent.is_err(), "over the source's lookup budget");
        // Another source has its own budget; cached answers stay free.
        let other = RequestSource::from_bytes([2; 16]);
        assert!(f.answer(&dids(["d"]), other, t).await.is_ok());
        assert!(f.answer(&three[..2], src, t).await.is_ok());
    }

    #[tokio::test]
    async fn answer_and_cache_bytes_are_bounded() {
        let f = fetcher(
            KeyPackageConfig::default()
                .with_max_response_bytes(300)
                .with_cache_max_bytes(400),
        );
        let src = RequestSource::from_bytes([1; 16]);
        let t = Timestamp::from_millis(1_000);
        let names: Vec<String> = (0..20).map(|i| format!("x{i}")).collect();
        let many: Vec<Did> = names
            .iter()
            .map(|n| Did::new(format!("did:plc:{n:a>24}")).unwrap())
            .collect();
        let body = f.answer(&many, src, t).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 20);
        assert_eq!(results[0]["status"], "notFound");
        assert_eq!(results[19]["status"], "unreachable");
        assert!(results[19]["message"].as_str().unwrap().contains("alone"));
        // Left-out results are small: the body stays near its bound.
        assert!(body.len() < 300 + 20 * 200, "{}", body.len());
        assert!(f.cached_bytes() <= 400, "{}", f.cached_bytes());
    }

    #[test]
    fn statuses_and_messages_go_through_the_codec() {
        let r = failed(
            "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
            DidStatus::NoDeclaration,
            "é".repeat(600),
        );
        let v: Value = serde_json::from_slice(&did_result_bytes(&r)).unwrap();
        assert_eq!(v["status"], "noDeclaration");
        assert_eq!(v["keyPackages"], serde_json::json!([]));
        let message = v["message"].as_str().unwrap();
        assert!(message.len() <= MAX_MESSAGE_BYTES && message.len() >= MAX_MESSAGE_BYTES - 1);
    }

    /// A record whose CID, as the PDS sent it, does not parse is not passed on.
    #[test]
    fn a_malformed_record_makes_the_result_unreachable() {
        let mut r = failed("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", DidStatus::Ok, "");
        r.message = None;
        r.key_packages.push(ProvenRecord {
            uri: "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/chat.mls.keyPackage/3jzfcijpj2z2a".into(),
            cid: "not a cid".into(),
            proof: vec![1, 2, 3],
        });
        let v: Value = serde_json::from_slice(&did_result_bytes(&r)).unwrap();
        assert_eq!(v["status"], "unreachable");
        assert_eq!(v["keyPackages"], serde_json::json!([]));
    }
}
