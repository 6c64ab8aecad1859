//! An in-memory network for deterministic tests: the real DS core
//! ([`atmls_ds::DeliveryService`] over its memory store, with real request signing) and
//! real signed repos ([`atmls_repo::Repo`]) whose proofs the client verifies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use atmls_crypto::{Algorithm, SigningKey as RepoKey};
use atmls_ds::auth::{DsMethod, RequestAuth, RequestToken};
use atmls_ds::{
    DeliveryService, DsConfig, Envelope, EnvelopeKind, MailboxId, MailboxKind, MemoryStore,
    OutgoingEnvelope, SendReceipt,
};
use atmls_identity::{
    Did, DidDocument, DidHistory, HistoryEntry, ResolveError, VerificationMethod,
};
use atmls_repo::{MemoryBlockStore, Nsid, RecordKey, Repo, RepoPath, Write};
use atmls_syntax::Timestamp;
use ed25519_dalek::SigningKey;
use rand::SeedableRng as _;
use tokio::sync::{Barrier, mpsc};

use super::{
    BlobRef, Delivery, DidStatus, Ds, GatheredRecords, ListedRecord, Page, Pds, ProvenRecord,
    RecordWrite, SubscribeTo, nonce,
};
use crate::error::TransportError;
use crate::keypackage::{
    DECLARATION_COLLECTION as DECLARATION, KEY_PACKAGE_COLLECTION as KEY_PACKAGES,
};
use atmls_ds::proto::ErrorName;

type Core = DeliveryService<MemoryStore, rand::rngs::StdRng>;

struct Account {
    key: RepoKey,
    store: MemoryBlockStore,
    doc: DidDocument,
    /// The documents before `doc` and when each took effect; `doc` from `doc_from`
    /// (the PLC audit log of a did:plc, docs/spec.md §11.13).
    past: Vec<HistoryEntry>,
    doc_from: Timestamp,
    blobs: HashMap<cid::Cid, Vec<u8>>,
}

struct State {
    ds: Core,
    /// How many of the next commits reach the DS without their `messageLifetime` (as
    /// from a member that leaves it out).
    strip_lifetimes: usize,
    /// What the DS and the signed requests read as now (the system clock by default).
    clock: Arc<dyn atmls_syntax::Clock>,
    accounts: HashMap<Did, Account>,
    subscribers: Vec<(MailboxId, mpsc::UnboundedSender<Delivery>)>,
    commit_barrier: Option<(Arc<Barrier>, usize)>,
    offline: bool,
    /// Whether the DS offers `getKeyPackages`, and how often it was asked.
    key_package_index: bool,
    key_package_requests: usize,
    envelope_reads: u64,
    /// DIDs whose resolution fails, and how (tests of vanished DIDs and directory
    /// outages).
    unresolvable: HashMap<Did, ResolveError>,
    resolutions: u64,
    /// Mailboxes whose DS requests fail, and how (tests of one failing mailbox).
    failing: HashMap<MailboxId, TransportError>,
    /// How many of the next `sendEnvelopes` are stored but answered with a network
    /// error (the answer lost after the DS accepted).
    lost_answers: usize,
    /// How many of the next `sendEnvelopes` are answered with a network error at once
    /// and stored only when the next send to the same mailbox arrives (a request still
    /// in flight when its client gave up).
    late_sends: usize,
    /// Sends held back by `late_sends`, stored before the next send to their mailbox.
    in_flight: Vec<(MailboxId, String, Vec<OutgoingEnvelope>)>,
    /// Application-message envelopes stored, in every mailbox.
    messages_stored: u64,
    /// How many of the next `sendWelcome` calls the DS refuses (429, as its inbox deposit
    /// limit does), storing nothing.
    welcome_refusals: usize,
}

impl State {
    /// `getEnvelopes` with `key`, by the DS core's rule (docs/spec.md §9.3): a key of an
    /// ended epoch reads up to the commit that ended its epoch, and nothing after.
    fn read(
        &mut self,
        mailbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> Result<Page, TransportError> {
        let header = sign(self.clock.now(), key, DsMethod::GetEnvelopes, mailbox);
        self.ds
            .envelopes(
                mailbox,
                &RequestAuth::from_header(Some(&header), b""),
                cursor,
                1000,
                self.clock.now(),
            )
            .map(|page| Page {
                at_head: page.epoch.is_some() && page.cursor >= page.head_seq,
                cursor: page.cursor,
                envelopes: page.envelopes,
            })
            .map_err(|e| ds_error(e.name(), e.to_string()))
    }
}

/// A network in memory: one DS and any number of accounts. Clone it freely.
#[derive(Clone)]
pub struct MemoryNetwork {
    state: Arc<Mutex<State>>,
    ds_did: Did,
}

impl std::fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryNetwork")
            .field("ds", &self.ds_did)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryNetwork {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryNetwork {
    /// A network whose DS is `did:web:ds.test`.
    pub fn new() -> Self {
        Self::with_ds_config(DsConfig::default())
    }

    /// A network whose DS (`did:web:ds.test`) runs with `config`.
    pub fn with_ds_config(config: DsConfig) -> Self {
        let ds = DeliveryService::new(
            MemoryStore::new(),
            rand::rngs::StdRng::from_entropy(),
            config,
        );
        Self {
            state: Arc::new(Mutex::new(State {
                ds,
                strip_lifetimes: 0,
                clock: Arc::new(atmls_syntax::SystemClock),
                accounts: HashMap::new(),
                subscribers: Vec::new(),
                commit_barrier: None,
                offline: false,
                key_package_index: true,
                key_package_requests: 0,
                envelope_reads: 0,
                unresolvable: HashMap::new(),
                resolutions: 0,
                failing: HashMap::new(),
                lost_answers: 0,
                late_sends: 0,
                in_flight: Vec::new(),
                messages_stored: 0,
                welcome_refusals: 0,
            })),
            ds_did: Did::new("did:web:ds.test").unwrap_or_else(|_| unreachable!()),
        }
    }

    /// Flips one bit of every blob `did`'s PDS holds (a PDS serving tampered blobs);
    /// returns how many.
    pub fn tamper_blobs(&self, did: &Did) -> usize {
        let mut state = self.lock();
        let Some(account) = state.accounts.get_mut(did) else {
            return 0;
        };
        for bytes in account.blobs.values_mut() {
            if let Some(b) = bytes.first_mut() {
                *b ^= 1;
            }
        }
        account.blobs.len()
    }

    /// The DS's DID.
    pub fn ds_did(&self) -> Did {
        self.ds_did.clone()
    }

    /// How many `getEnvelopes` requests the DS has answered (or refused) so far.
    pub fn envelope_reads(&self) -> u64 {
        self.lock().envelope_reads
    }

    /// The DS reads `clock` from now on (its `receivedAt`, request ages, retention):
    /// tests move a [`atmls_syntax::ManualClock`] shared with the devices.
    pub fn set_clock(&self, clock: Arc<dyn atmls_syntax::Clock>) {
        self.lock().clock = clock;
    }

    /// The DS's now.
    fn now(&self) -> atmls_ds::Timestamp {
        self.lock().clock.now()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates an account (a did:plc derived from `name`) with an empty signed repo, and
    /// returns a PDS session for it.
    pub fn account(&self, name: &str) -> MemoryPds {
        let digest = atmls_crypto::sha256(name.as_bytes());
        let suffix: String = crate::content::base32(&digest).chars().take(24).collect();
        let did = Did::new(format!("did:plc:{suffix}")).unwrap_or_else(|_| unreachable!());
        let mut state = self.lock();
        if !state.accounts.contains_key(&did) {
            let key = RepoKey::generate(Algorithm::Es256k);
            let store = MemoryBlockStore::default();
            let _ = Repo::create(&store, did.clone(), key.clone());
            let doc = DidDocument {
                context: None,
                id: did.clone(),
                also_known_as: vec![format!("at://{name}.test")],
                verification_method: vec![VerificationMethod::multikey(
                    &did,
                    "atproto",
                    &key.public_key(),
                )],
                service: vec![],
            };
            state.accounts.insert(
                did.clone(),
                Account {
                    key,
                    store,
                    doc,
                    past: Vec::new(),
                    doc_from: Timestamp::EPOCH,
                    blobs: HashMap::new(),
                },
            );
        }
        MemoryPds {
            net: self.clone(),
            did,
        }
    }

    /// A DS client of this network.
    pub fn ds(&self) -> MemoryDs {
        MemoryDs { net: self.clone() }
    }

    /// A new device of account `name` (created on first use, [`Self::account`]) with its
    /// state in memory and its inbox on this network's DS.
    pub async fn device(
        &self,
        name: &str,
        config: crate::DeviceConfig,
    ) -> Result<crate::Device<MemoryPds, MemoryDs>, crate::Error> {
        crate::Device::create(
            crate::Storage::Memory,
            self.account(name),
            self.ds(),
            self.ds_did(),
            config,
        )
        .await
    }

    /// The next `n` commit sends wait until all `n` have arrived, then go through in
    /// arrival order: two devices build their commits on the same epoch, then race.
    pub fn hold_commits(&self, n: usize) {
        self.lock().commit_barrier = Some((Arc::new(Barrier::new(n)), n));
    }

    /// While offline, every DS call fails with a network error.
    pub fn set_offline(&self, offline: bool) {
        self.lock().offline = offline;
    }

    /// The next `n` envelope sends are stored (and pushed to subscribers) but answered
    /// with a network error, as when the connection breaks after the DS accepted.
    pub fn lose_answers(&self, n: usize) {
        self.lock().lost_answers = n;
    }

    /// The next `n` envelope sends are answered with a network error at once, and are
    /// stored only when the next send to the same mailbox arrives (just before it): a
    /// request the DS decides after its client gave up and read the mailbox.
    pub fn land_late(&self, n: usize) {
        self.lock().late_sends = n;
    }

    /// How many application-message envelopes the DS stored (duplicates included).
    pub fn messages_stored(&self) -> u64 {
        self.lock().messages_stored
    }

    /// Runs the DS's retention as if its clock read `now` (operator retention and each
    /// group's message lifetime, docs/spec.md §9.7): tests move time forward without
    /// waiting.
    pub fn expire_at(
        &self,
        now: atmls_ds::Timestamp,
    ) -> Result<atmls_ds::Expired, atmls_ds::StoreError> {
        self.lock().ds.expire(now)
    }

    /// The next `n` commits reach the DS without their `messageLifetime` (as from a member
    /// that leaves it out, or sets another): the DS's lifetime no longer matches the group.
    pub fn strip_message_lifetimes(&self, n: usize) {
        self.lock().strip_lifetimes = n;
    }

    /// The message lifetime the DS holds for `mailbox` (seconds), read from its store.
    pub fn mailbox_lifetime(&self, mailbox: &MailboxId) -> Option<u32> {
        atmls_ds::Store::mailbox(self.lock().ds.store(), mailbox)
            .ok()
            .flatten()
            .and_then(|m| m.message_lifetime)
    }

    /// How many envelopes of each kind the DS holds for `mailbox` (messages, commits),
    /// read as the store holds them, without a key (tests).
    pub fn stored_envelopes(&self, mailbox: &MailboxId) -> (usize, usize) {
        let state = self.lock();
        let all = atmls_ds::Store::envelopes(
            state.ds.store(),
            mailbox,
            0,
            atmls_ds::store::PageLimit {
                envelopes: usize::MAX,
                bytes: usize::MAX,
            },
        )
        .unwrap_or_default();
        let messages = all
            .iter()
            .filter(|e| e.kind == atmls_ds::EnvelopeKind::Message)
            .count();
        (messages, all.len() - messages)
    }

    /// Drops every subscription (as a server restart would).
    pub fn drop_subscriptions(&self) {
        let mut state = self.lock();
        for (_, tx) in state.subscribers.drain(..) {
            let _ = tx.send(Delivery::Closed(Some("ServerShuttingDown".into())));
        }
    }

    /// Whether the DS answers `getKeyPackages` (on by default); off, it answers
    /// `MethodNotImplemented` and clients read each PDS.
    pub fn set_key_package_index(&self, on: bool) {
        self.lock().key_package_index = on;
    }

    /// How many `getKeyPackages` requests the DS answered.
    pub fn key_package_requests(&self) -> usize {
        self.lock().key_package_requests
    }

    /// What `getKeyPackages` gathers for one DID (docs/spec.md §10.6): the declaration
    /// and the KeyPackage records, each with its `getRecord` proof.
    fn gather(&self, did: &Did) -> GatheredRecords {
        let proven = |r: &mut Repo<'_, MemoryBlockStore>, collection: &str, rkey: &str| {
            let proof = r
                .record_proof(&path(collection, rkey)?)
                .map_err(|e| e.to_string())?;
            let cid = r
                .record_cid(&path(collection, rkey)?)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "the record vanished".to_owned())?;
            Ok::<_, String>(ProvenRecord {
                uri: format!("at://{did}/{collection}/{rkey}"),
                cid: cid.to_string(),
                proof,
            })
        };
        let found = self.with_repo(did, |r| {
            let declaration = r
                .record(&path(DECLARATION, "self")?)
                .map_err(|e| e.to_string())?
                .map(|_| proven(r, DECLARATION, "self"))
                .transpose()?;
            let nsid = Nsid::new(KEY_PACKAGES).map_err(|e| e.to_string())?;
            let mut key_packages = Vec::new();
            for (p, _) in r
                .list_records(&nsid, None, 100)
                .map_err(|e| e.to_string())?
            {
                key_packages.push(proven(r, KEY_PACKAGES, p.rkey().as_ref())?);
            }
            Ok((declaration, key_packages))
        });
        let (status, declaration, key_packages) = match found {
            Ok((None, _)) => (DidStatus::NoDeclaration, None, Vec::new()),
            Ok((Some(d), kps)) => (DidStatus::Ok, Some(d), kps),
            Err(_) => (DidStatus::NotFound, None, Vec::new()),
        };
        GatheredRecords {
            did: did.clone(),
            status,
            declaration,
            key_packages,
        }
    }

    /// From now on, resolving `did` (and so reaching its PDS: its repo, its blobs) fails
    /// as a resolver that answered `failure` would (`None`: resolves again). The failure
    /// is classified exactly as the HTTP transport classifies its resolver's
    /// ([`super::resolve_failure`]): e.g. [`ResolveError::Gone`] for a DID that vanished
    /// (permanent), [`ResolveError::Timeout`] for a directory that is down (transient).
    pub fn fail_resolution(&self, did: &Did, failure: Option<ResolveError>) {
        let mut state = self.lock();
        match failure {
            Some(f) => state.unresolvable.insert(did.clone(), f),
            None => state.unresolvable.remove(did),
        };
    }

    /// From now on, every DS request on `mailbox` (read, send, list, delete) fails with
    /// `error` (`None`: works again), as if that mailbox's DS were down or refused it;
    /// other mailboxes are unaffected.
    pub fn fail_mailbox(&self, mailbox: &MailboxId, error: Option<TransportError>) {
        let mut state = self.lock();
        match error {
            Some(e) => state.failing.insert(*mailbox, e),
            None => state.failing.remove(mailbox),
        };
    }

    /// How many DID resolutions (or PDS lookups of other accounts) were asked so far.
    pub fn resolutions(&self) -> u64 {
        self.lock().resolutions
    }

    /// Resolves `did` as a client would before reaching its PDS.
    fn reach(&self, did: &Did) -> Result<DidDocument, TransportError> {
        let mut state = self.lock();
        state.resolutions += 1;
        if let Some(f) = state.unresolvable.get(did) {
            return Err(super::resolve_failure(f.clone()));
        }
        state
            .accounts
            .get(did)
            .map(|a| a.doc.clone())
            .ok_or_else(|| super::resolve_failure(ResolveError::NotFound))
    }

    /// The next `n` `sendWelcome` calls are refused with `429 RateLimitExceeded` (an inbox
    /// DS over its deposit limit) and store nothing.
    pub fn refuse_welcomes(&self, n: usize) {
        self.lock().welcome_refusals = n;
    }

    /// Replaces an account's DID document for all time, history included (tests of
    /// refusals).
    pub fn set_document(&self, doc: DidDocument) {
        if let Some(a) = self.lock().accounts.get_mut(&doc.id) {
            a.doc = doc;
            a.past.clear();
            a.doc_from = Timestamp::EPOCH;
        }
    }

    /// Rotates an account's `#atproto` key as a PDS migration does: from `at` on its
    /// document names a new key and its repo's next commits are signed by it; earlier
    /// instants keep the old document in the account's history (its PLC audit log).
    pub fn rotate_atproto_key(&self, did: &Did, at: Timestamp) {
        let mut state = self.lock();
        let Some(a) = state.accounts.get_mut(did) else {
            return;
        };
        let key = RepoKey::generate(Algorithm::Es256k);
        let mut doc = a.doc.clone();
        doc.verification_method = vec![VerificationMethod::multikey(
            did,
            "atproto",
            &key.public_key(),
        )];
        let old = std::mem::replace(&mut a.doc, doc);
        a.past.push(HistoryEntry {
            from: a.doc_from,
            document: Some(old),
        });
        a.doc_from = at;
        a.key = key;
    }

    fn history(&self, did: &Did) -> Result<DidHistory, TransportError> {
        self.reach(did)?;
        let state = self.lock();
        let a = state
            .accounts
            .get(did)
            .ok_or_else(|| super::resolve_failure(ResolveError::NotFound))?;
        let mut entries = a.past.clone();
        entries.push(HistoryEntry {
            from: a.doc_from,
            document: Some(a.doc.clone()),
        });
        DidHistory::from_entries(did.clone(), entries).map_err(|e| super::resolve_failure(e.into()))
    }

    fn with_repo<T>(
        &self,
        did: &Did,
        f: impl FnOnce(&mut Repo<'_, MemoryBlockStore>) -> Result<T, String>,
    ) -> Result<T, TransportError> {
        let state = self.lock();
        let account = state.accounts.get(did).ok_or_else(not_found)?;
        let mut repo = Repo::open(&account.store, did.clone(), account.key.clone())
            .map_err(|e| TransportError::Network(e.to_string()))?;
        f(&mut repo).map_err(|e| TransportError::Xrpc {
            status: 400,
            error: "InvalidRequest".into(),
            message: e,
        })
    }

    fn check_online(&self) -> Result<(), TransportError> {
        if self.lock().offline {
            return Err(TransportError::Network("offline".into()));
        }
        Ok(())
    }

    /// [`Self::check_online`], then the failure set for `mailbox`, if any.
    fn check_mailbox(&self, mailbox: &MailboxId) -> Result<(), TransportError> {
        self.check_online()?;
        match self.lock().failing.get(mailbox) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn publish(&self, mailbox: &MailboxId, envelopes: &[Envelope]) {
        let mut state = self.lock();
        state.subscribers.retain(|(m, tx)| {
            if m != mailbox {
                return !tx.is_closed();
            }
            envelopes.iter().all(|e| {
                tx.send(Delivery::Envelope {
                    mailbox: *mailbox,
                    envelope: e.clone(),
                })
                .is_ok()
            })
        });
    }
}

fn not_found() -> TransportError {
    TransportError::Xrpc {
        status: 404,
        error: "NotFound".into(),
        message: "no such account".into(),
    }
}

/// A DS core error as the HTTP DS answers it: the status of its name by the table of
/// docs/spec.md §7 (`atmls-ds-proto`), so that both transports give it the same
/// [`TransportError::kind`].
fn ds_error(name: ErrorName, message: String) -> TransportError {
    xrpc(name.status(), name.as_str(), message)
}

fn xrpc(status: u16, name: &str, message: String) -> TransportError {
    TransportError::Xrpc {
        status,
        error: name.into(),
        message,
    }
}

/// A PDS session of one account on a [`MemoryNetwork`].
#[derive(Debug, Clone)]
pub struct MemoryPds {
    net: MemoryNetwork,
    did: Did,
}

impl MemoryPds {
    /// The network.
    pub fn network(&self) -> &MemoryNetwork {
        &self.net
    }

    /// Another account's PDS is found through its DID document (as over HTTP); the
    /// session's own is known.
    fn reach(&self, did: &Did) -> Result<(), TransportError> {
        if did != &self.did {
            self.net.reach(did)?;
        }
        Ok(())
    }
}

impl Pds for MemoryPds {
    fn did(&self) -> Did {
        self.did.clone()
    }

    async fn apply_writes(&self, writes: Vec<RecordWrite>) -> Result<(), TransportError> {
        self.net.with_repo(&self.did, |repo| {
            let mut out = Vec::new();
            for w in writes {
                match w {
                    RecordWrite::Create {
                        collection,
                        rkey,
                        value,
                    } => {
                        let path = path(&collection, &rkey)?;
                        let record =
                            atmls_repo::json::record_to_ipld(&value).map_err(|e| e.to_string())?;
                        out.push(Write::create(path, record));
                    }
                    RecordWrite::Delete { collection, rkey } => {
                        out.push(Write::delete(path(&collection, &rkey)?));
                    }
                }
            }
            repo.apply_writes(out, None).map_err(|e| e.to_string())?;
            Ok(())
        })
    }

    async fn list_records(
        &self,
        repo: &Did,
        collection: &str,
    ) -> Result<Vec<ListedRecord>, TransportError> {
        self.reach(repo)?;
        self.net.with_repo(repo, |r| {
            let nsid = Nsid::new(collection).map_err(|e| e.to_string())?;
            let listed = r
                .list_records(&nsid, None, 1000)
                .map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            for (path, _) in listed {
                if let Some((_, value)) = r.record(&path).map_err(|e| e.to_string())? {
                    out.push(ListedRecord {
                        rkey: path.rkey().to_string(),
                        value: atmls_repo::json::from_ipld(&value).map_err(|e| e.to_string())?,
                    });
                }
            }
            Ok(out)
        })
    }

    async fn record_proof(
        &self,
        repo: &Did,
        collection: &str,
        rkey: &str,
    ) -> Result<Vec<u8>, TransportError> {
        self.reach(repo)?;
        self.net.with_repo(repo, |r| {
            r.record_proof(&path(collection, rkey)?)
                .map_err(|e| e.to_string())
        })
    }

    async fn resolve(&self, did: &Did) -> Result<DidDocument, TransportError> {
        self.net.reach(did)
    }

    async fn resolve_history(&self, did: &Did) -> Result<DidHistory, TransportError> {
        self.net.history(did)
    }

    async fn upload_blob(
        &self,
        bytes: Vec<u8>,
        mime_type: &str,
    ) -> Result<BlobRef, TransportError> {
        let cid = atmls_repo::cid::raw(&bytes);
        let size = bytes.len() as u64;
        let mut state = self.net.lock();
        let account = state.accounts.get_mut(&self.did).ok_or_else(not_found)?;
        account.blobs.insert(cid, bytes);
        Ok(BlobRef {
            cid,
            mime_type: mime_type.into(),
            size,
        })
    }

    async fn blob(&self, did: &Did, cid: &cid::Cid) -> Result<Vec<u8>, TransportError> {
        self.reach(did)?;
        let state = self.net.lock();
        let account = state.accounts.get(did).ok_or_else(not_found)?;
        account
            .blobs
            .get(cid)
            .cloned()
            .ok_or_else(|| xrpc(404, "BlobNotFound", "no such blob".into()))
    }

    async fn service_auth(&self, _aud: &Did, _lxm: &str) -> Result<String, TransportError> {
        // The memory DS takes the account from the token as is.
        Ok(self.did.to_string())
    }
}

fn path(collection: &str, rkey: &str) -> Result<RepoPath, String> {
    Ok(RepoPath::new(
        Nsid::new(collection).map_err(|e| e.to_string())?,
        RecordKey::new(rkey).map_err(|e| e.to_string())?,
    ))
}

/// The DS of a [`MemoryNetwork`] (any DS DID is routed to it).
#[derive(Debug, Clone)]
pub struct MemoryDs {
    net: MemoryNetwork,
}

fn sign(
    at: atmls_ds::Timestamp,
    key: &SigningKey,
    method: DsMethod,
    mailbox: &MailboxId,
) -> String {
    RequestToken::sign(key, method, mailbox, at, nonce(), b"").authorization_header()
}

impl MemoryDs {
    /// `sendEnvelopes` as the DS core decides it, then pushed to subscribers.
    fn store_envelopes(
        &self,
        mailbox: &MailboxId,
        header: &str,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> Result<SendReceipt, TransportError> {
        let at = self.net.now();
        let stored: Vec<(EnvelopeKind, Option<u64>, Vec<u8>)> = envelopes
            .iter()
            .map(|e| (e.kind, e.epoch, e.payload.clone()))
            .collect();
        let receipt = self
            .net
            .lock()
            .ds
            .send_envelopes(
                mailbox,
                &RequestAuth::from_header(Some(header), b""),
                envelopes,
                at,
            )
            .map_err(|e| match e {
                atmls_ds::SendEnvelopesError::EpochConflict {
                    current_epoch,
                    current_seq,
                } => TransportError::EpochConflict {
                    current_epoch,
                    current_seq,
                },
                e => ds_error(e.name(), e.to_string()),
            })?;
        let published: Vec<Envelope> = stored
            .into_iter()
            .zip(receipt.first_seq..)
            .map(|((kind, epoch, payload), seq)| Envelope {
                seq,
                kind,
                epoch: if kind == EnvelopeKind::Commit {
                    epoch
                } else {
                    None
                },
                payload,
                received_at: at,
            })
            .collect();
        self.net.lock().messages_stored += published
            .iter()
            .filter(|e| e.kind == EnvelopeKind::Message)
            .count() as u64;
        self.net.publish(mailbox, &published);
        Ok(receipt)
    }
}

impl Ds for MemoryDs {
    async fn describe(&self, _ds: &Did) -> Result<atmls_ds_proto::Limits, TransportError> {
        let state = self.net.lock();
        let core = state.ds.config();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Ok(atmls_ds_proto::Limits {
            max_envelope_bytes: count(core.max_envelope_bytes()),
            max_batch_envelopes: count(core.max_batch_envelopes()),
            max_mailboxes_per_account: core.max_mailboxes_per_account(),
            inbox_deposits_per_minute: u64::from(core.inbox_deposits_per_minute()),
            key_grace_seconds: core.key_grace().as_secs(),
            request_max_age_seconds: core.request_max_age().as_secs().max(1),
            max_subscription_mailboxes: 1000,
            max_mailbox_bytes: Some(core.max_mailbox_bytes()),
            inbox_deposit_bytes_per_minute: Some(core.inbox_deposit_bytes_per_minute()),
            group_retention_seconds: core.group_retention().map(|d| d.as_secs().max(1)),
            inbox_retention_seconds: core.inbox_retention().map(|d| d.as_secs().max(1)),
        })
    }

    async fn key_packages(
        &self,
        _ds: &Did,
        dids: &[Did],
    ) -> Result<Vec<GatheredRecords>, TransportError> {
        self.net.check_online()?;
        {
            let mut state = self.net.lock();
            if !state.key_package_index {
                return Err(ds_error(
                    ErrorName::MethodNotImplemented,
                    "getKeyPackages is off".into(),
                ));
            }
            state.key_package_requests += 1;
        }
        Ok(dids.iter().map(|d| self.net.gather(d)).collect())
    }

    async fn create_mailbox(
        &self,
        _ds: &Did,
        token: &str,
        kind: MailboxKind,
        key: [u8; 32],
        epoch: u64,
    ) -> Result<MailboxId, TransportError> {
        self.net.check_online()?;
        let mut state = self.net.lock();
        let info = state
            .ds
            .create_mailbox(token, kind, &key, epoch)
            .map_err(|e| ds_error(e.name(), e.to_string()))?;
        Ok(info.mailbox)
    }

    async fn mailbox_info(
        &self,
        _ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
    ) -> Result<atmls_ds_proto::MailboxInfo, TransportError> {
        self.net.check_mailbox(mailbox)?;
        let header = sign(self.net.now(), key, DsMethod::GetMailbox, mailbox);
        let mut state = self.net.lock();
        let at = state.clock.now();
        state
            .ds
            .mailbox(mailbox, &RequestAuth::from_header(Some(&header), b""), at)
            .map_err(|e| ds_error(e.name(), e.to_string()))
    }

    async fn send_envelopes(
        &self,
        _ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        mut envelopes: Vec<OutgoingEnvelope>,
    ) -> Result<SendReceipt, TransportError> {
        self.net.check_mailbox(mailbox)?;
        {
            let mut state = self.net.lock();
            if state.strip_lifetimes > 0 && envelopes.iter().any(|e| e.kind == EnvelopeKind::Commit)
            {
                state.strip_lifetimes -= 1;
                for e in &mut envelopes {
                    e.message_lifetime = None;
                }
            }
        }
        if envelopes.iter().any(|e| e.kind == EnvelopeKind::Commit) {
            let barrier = {
                let mut state = self.net.lock();
                match state.commit_barrier.take() {
                    Some((b, n)) if n > 1 => {
                        state.commit_barrier = Some((b.clone(), n - 1));
                        Some(b)
                    }
                    Some((b, _)) => Some(b),
                    None => None,
                }
            };
            if let Some(b) = barrier {
                b.wait().await;
            }
        }
        let header = sign(self.net.now(), key, DsMethod::SendEnvelopes, mailbox);
        let late: Vec<(String, Vec<OutgoingEnvelope>)> = {
            let mut state = self.net.lock();
            if state.late_sends > 0 {
                state.late_sends -= 1;
                state.in_flight.push((*mailbox, header, envelopes));
                return Err(TransportError::Network("the request timed out".into()));
            }
            let (late, rest) = std::mem::take(&mut state.in_flight)
                .into_iter()
                .partition(|(m, _, _)| m == mailbox);
            state.in_flight = rest;
            late.into_iter().map(|(_, h, e)| (h, e)).collect()
        };
        for (header, envelopes) in late {
            // The late request is decided now, as the DS would; its answer reaches nobody.
            let _ = self.store_envelopes(mailbox, &header, envelopes);
        }
        let receipt = self.store_envelopes(mailbox, &header, envelopes)?;
        let mut state = self.net.lock();
        if state.lost_answers > 0 {
            state.lost_answers -= 1;
            return Err(TransportError::Network("the connection broke".into()));
        }
        Ok(receipt)
    }

    async fn envelopes(
        &self,
        _ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> Result<Page, TransportError> {
        self.net.check_mailbox(mailbox)?;
        let mut state = self.net.lock();
        state.envelope_reads += 1;
        state.read(mailbox, key, cursor)
    }

    async fn send_welcome(
        &self,
        _ds: &Did,
        inbox: &MailboxId,
        payload: Vec<u8>,
    ) -> Result<u64, TransportError> {
        self.net.check_online()?;
        let at = self.net.now();
        let seq = {
            let mut state = self.net.lock();
            if state.welcome_refusals > 0 {
                state.welcome_refusals -= 1;
                return Err(ds_error(
                    ErrorName::RateLimitExceeded,
                    "inbox deposit limit".into(),
                ));
            }
            state
                .ds
                .send_welcome(inbox, payload.clone(), at)
                .map_err(|e| ds_error(e.name(), e.to_string()))?
        };
        self.net.publish(
            inbox,
            &[Envelope {
                seq,
                kind: EnvelopeKind::Welcome,
                epoch: None,
                payload,
                received_at: at,
            }],
        );
        Ok(seq)
    }

    async fn list_inbox(
        &self,
        _ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> Result<Page, TransportError> {
        self.net.check_mailbox(inbox)?;
        let header = sign(self.net.now(), key, DsMethod::ListInbox, inbox);
        let mut state = self.net.lock();
        let at = state.clock.now();
        let page = state
            .ds
            .list_inbox(
                inbox,
                &RequestAuth::from_header(Some(&header), b""),
                cursor,
                1000,
                at,
            )
            .map_err(|e| ds_error(e.name(), e.to_string()))?;
        Ok(Page {
            envelopes: page.items,
            cursor: page.cursor,
            at_head: false,
        })
    }

    async fn delete_inbox_items(
        &self,
        _ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        seqs: Vec<u64>,
    ) -> Result<(), TransportError> {
        self.net.check_mailbox(inbox)?;
        let header = sign(self.net.now(), key, DsMethod::DeleteInboxItems, inbox);
        let mut state = self.net.lock();
        let at = state.clock.now();
        state
            .ds
            .delete_inbox_items(
                inbox,
                &RequestAuth::from_header(Some(&header), b""),
                &seqs,
                at,
            )
            .map_err(|e| ds_error(e.name(), e.to_string()))?;
        Ok(())
    }

    async fn subscribe(
        &self,
        _ds: &Did,
        mailboxes: Vec<SubscribeTo>,
    ) -> Result<mpsc::UnboundedReceiver<Delivery>, TransportError> {
        self.net.check_online()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.net.lock();
        let mut ended = false;
        for m in &mailboxes {
            // As the server: authorised per mailbox; an ended epoch's key gets its backlog
            // up to the commit that ended its epoch, then the stream ends (`KeyExpired`).
            let header = sign(
                state.clock.now(),
                &m.key,
                DsMethod::SubscribeEnvelopes,
                &m.mailbox,
            );
            let at = state.clock.now();
            let sub = state
                .ds
                .authorize_subscription(
                    &m.mailbox,
                    &RequestAuth::from_header(Some(&header), b""),
                    Some(m.cursor),
                    at,
                )
                .map_err(|e| ds_error(e.name(), e.to_string()))?;
            ended |= sub.end_seq.is_some();
            let page = state.read(&m.mailbox, &m.key, m.cursor)?;
            for envelope in page.envelopes {
                let _ = tx.send(Delivery::Envelope {
                    mailbox: m.mailbox,
                    envelope,
                });
            }
        }
        if ended {
            let _ = tx.send(Delivery::Closed(Some(
                ErrorName::KeyExpired.as_str().into(),
            )));
        } else {
            for m in &mailboxes {
                state.subscribers.push((m.mailbox, tx.clone()));
            }
        }
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailureKind::{Permanent, Transient};

    /// DS refusals get the statuses the HTTP DS answers (spec §7), hence the same kinds.
    #[test]
    fn ds_errors_have_the_http_kinds() {
        for (name, kind) in [
            (ErrorName::KeyExpired, Permanent),
            (ErrorName::MailboxNotFound, Permanent),
            (ErrorName::InvalidEnvelope, Permanent),
            (ErrorName::EnvelopeTooLarge, Permanent),
            (ErrorName::RateLimitExceeded, Transient),
            // The memory table missed it: a full mailbox was a permanent refusal in memory
            // and a transient one over HTTP (429).
            (ErrorName::MailboxFull, Transient),
            (ErrorName::InternalServerError, Transient),
            (ErrorName::ServiceUnavailable, Transient),
        ] {
            assert_eq!(ds_error(name, String::new()).kind(), kind, "{name}");
        }
    }
}
