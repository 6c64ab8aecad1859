//! The raw openmls fixture: the same MLS work as the client, without the client, in
//! either suite, on either crypto provider (libcrux as the client, or RustCrypto), with
//! memory or SQLite storage.

use std::rc::Rc;

use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_sqlite_storage::{Codec, SqliteStorageProvider};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::random::OpenMlsRand;

use super::on_disk;

/// serde_json codec for the SQLite storage (as the client uses).
#[derive(Default)]
pub struct Json;

impl Codec for Json {
    type Error = serde_json::Error;
    fn to_vec<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, Self::Error> {
        serde_json::to_vec(v)
    }
    fn from_slice<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, Self::Error> {
        serde_json::from_slice(b)
    }
}

/// A crypto provider for the raw fixture.
pub trait Crypto: OpenMlsCrypto + OpenMlsRand + 'static {
    /// Its name in benchmark ids.
    const NAME: &'static str;
    fn make() -> Self;
}

/// The client's provider (decision 0027): the raw baseline by default.
pub type Libcrux = openmls_libcrux_crypto::CryptoProvider;

impl Crypto for Libcrux {
    const NAME: &'static str = "libcrux";
    fn make() -> Self {
        Self::new().unwrap()
    }
}

impl Crypto for openmls_rust_crypto::RustCrypto {
    const NAME: &'static str = "rustcrypto";
    fn make() -> Self {
        Self::default()
    }
}

/// Crypto `C` with openmls_sqlite_storage on an in-memory database with the client's
/// pragmas: raw openmls persisting what the client persists, each step in one transaction
/// as the client does ([`RawProvider::step`]).
/// With `ATMLS_BENCH_STORAGE=file` the database is a file with the client's on-disk
/// pragmas (WAL, `synchronous = FULL`), as the client's devices then are.
pub struct SqlProvider<C: Crypto = Libcrux> {
    crypto: C,
    conn: Rc<rusqlite::Connection>,
    storage: SqliteStorageProvider<Json, Rc<rusqlite::Connection>>,
    _dir: Option<tempfile::TempDir>,
}

impl<C: Crypto> Default for SqlProvider<C> {
    fn default() -> Self {
        let (mut conn, dir) = if on_disk() {
            let dir = tempfile::tempdir().unwrap();
            let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.pragma_update(None, "synchronous", "FULL").unwrap();
            (conn, Some(dir))
        } else {
            (rusqlite::Connection::open_in_memory().unwrap(), None)
        };
        conn.pragma_update(None, "secure_delete", "ON").unwrap();
        SqliteStorageProvider::<Json, &mut rusqlite::Connection>::new(&mut conn)
            .run_migrations()
            .unwrap();
        let conn = Rc::new(conn);
        Self {
            crypto: C::make(),
            storage: SqliteStorageProvider::new(conn.clone()),
            conn,
            _dir: dir,
        }
    }
}

impl<C: Crypto> SqlProvider<C> {
    /// The stored size (bytes, serde_json) of each group's `data_type` record
    /// (`message_secrets`, `tree`, …) in this database, summed.
    pub fn group_data_len(&self, data_type: &str) -> usize {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(length(group_data)), 0) FROM openmls_group_data \
                 WHERE data_type = ?1",
                [data_type],
                |r| r.get::<_, i64>(0),
            )
            .map_or(0, |n| usize::try_from(n).unwrap_or(0))
    }
}

impl<C: Crypto> OpenMlsProvider for SqlProvider<C> {
    type CryptoProvider = C;
    type RandProvider = C;
    type StorageProvider = SqliteStorageProvider<Json, Rc<rusqlite::Connection>>;
    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &C {
        &self.crypto
    }
    fn rand(&self) -> &C {
        &self.crypto
    }
}

/// A provider the raw fixture can use.
pub trait RawProvider: OpenMlsProvider + Default {
    /// Its label in benchmark ids.
    fn label() -> String;
    /// Runs one step (an operation of one party) as one unit of persistence.
    fn step<T>(&self, f: impl FnOnce() -> T) -> T {
        f()
    }
}
impl RawProvider for openmls_rust_crypto::OpenMlsRustCrypto {
    fn label() -> String {
        "openmls-rustcrypto".into()
    }
}
impl RawProvider for openmls_libcrux_crypto::Provider {
    fn label() -> String {
        "openmls-libcrux".into()
    }
}
impl<C: Crypto> RawProvider for SqlProvider<C> {
    fn label() -> String {
        format!("openmls+sqlite-{}", C::NAME)
    }
    /// One SQLite transaction, as the client's `State::transaction`.
    fn step<T>(&self, f: impl FnOnce() -> T) -> T {
        self.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let out = f();
        self.conn.execute_batch("COMMIT").unwrap();
        out
    }
}

/// The identity of raw member `name`: a did:plc made as the in-memory network makes its
/// accounts' (24 base32 characters of a digest of the name), so that credentials, and
/// with them the trees and member lists openmls stores, are the same size on both sides.
pub fn raw_did(prefix: &str, i: usize) -> String {
    use sha2::Digest as _;
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    let b32 = spec.encoding().unwrap();
    let digest = sha2::Sha256::digest(format!("{prefix}{i}").as_bytes());
    format!("did:plc:{}", &b32.encode(&digest)[..24])
}

/// The bench devices' id (the leaf's `application_id`, the records' `deviceId`).
pub const BENCH_DEVICE: &str = "benchdevice0";

/// The capabilities the client's leaves advertise, in `suite`.
pub fn capabilities(suite: Ciphersuite) -> Capabilities {
    atmls_client::keypackage::leaf_capabilities(suite)
}

/// A raw openmls KeyPackage for `identity` in `suite` (its private parts in `provider`).
pub fn raw_key_package(
    provider: &impl OpenMlsProvider,
    suite: Ciphersuite,
    identity: &str,
    last_resort: bool,
) -> (KeyPackage, SignatureKeyPair) {
    let signer = SignatureKeyPair::new(suite.signature_algorithm()).unwrap();
    signer.store(provider.storage()).unwrap();
    let kp = build_key_package(provider, suite, identity, last_resort, &signer, None);
    (kp, signer)
}

/// Builds a KeyPackage with the client's leaf capabilities and application id (and
/// `binding`, the device binding extension, if given).
pub fn build_key_package(
    provider: &impl OpenMlsProvider,
    suite: Ciphersuite,
    identity: &str,
    last_resort: bool,
    signer: &SignatureKeyPair,
    binding: Option<Extension>,
) -> KeyPackage {
    let mut extensions = vec![Extension::ApplicationId(ApplicationIdExtension::new(
        BENCH_DEVICE.as_bytes(),
    ))];
    extensions.extend(binding);
    let mut b = KeyPackage::builder()
        .leaf_node_capabilities(capabilities(suite))
        .leaf_node_extensions(Extensions::from_vec(extensions).unwrap());
    if last_resort {
        b = b.mark_as_last_resort();
    }
    let bundle = b
        .build(
            suite,
            provider,
            signer,
            CredentialWithKey {
                credential: BasicCredential::new(identity.as_bytes().to_vec()).into(),
                signature_key: signer.public().into(),
            },
        )
        .unwrap();
    bundle.key_package().clone()
}

/// The raw openmls fixture: A (committer) and B (member) in a group of `n` leaves,
/// the same configuration as the client (ciphertext wire format, ratchet tree in
/// Welcomes, padding 32).
pub struct Raw<P: RawProvider> {
    pub suite: Ciphersuite,
    pub a: (P, SignatureKeyPair, MlsGroup),
    pub b: (P, MlsGroup),
    /// Commits B has not processed yet.
    pub backlog: Vec<MlsMessageOut>,
    next: usize,
    /// A's KeyPackage signer (the KeyPackage benchmark builds with it).
    pub kp_signer: SignatureKeyPair,
}

/// The client's `max_past_epochs`.
pub const MAX_PAST_EPOCHS: usize = 4;

pub fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .padding_size(32)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(32, 1000))
        .build()
}

impl<P: RawProvider> Raw<P> {
    pub fn new(n: usize, suite: Ciphersuite) -> Self {
        let pa = P::default();
        let (_, sa) = raw_key_package(&pa, suite, &raw_did("a", 0), false);
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(suite)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .padding_size(32)
            .max_past_epochs(MAX_PAST_EPOCHS)
            .sender_ratchet_configuration(SenderRatchetConfiguration::new(32, 1000))
            .capabilities(capabilities(suite))
            .build();
        let mut ga = MlsGroup::new(
            &pa,
            &sa,
            &config,
            CredentialWithKey {
                credential: BasicCredential::new(raw_did("a", 0).into_bytes()).into(),
                signature_key: sa.public().into(),
            },
        )
        .unwrap();
        let pb = P::default();
        let (kb, _) = raw_key_package(&pb, suite, &raw_did("b", 0), false);
        let mut kps = vec![kb];
        for i in 0..n.saturating_sub(2) {
            let p = openmls_libcrux_crypto::Provider::default();
            kps.push(raw_key_package(&p, suite, &raw_did("m", i), false).0);
        }
        let (_, welcome, _) = ga.add_members(&pa, &sa, &kps).unwrap();
        ga.merge_pending_commit(&pa).unwrap();
        let gb = join(&pb, welcome);
        let kp_signer = SignatureKeyPair::new(suite.signature_algorithm()).unwrap();
        kp_signer.store(pa.storage()).unwrap();
        let mut raw = Self {
            suite,
            a: (pa, sa, ga),
            b: (pb, gb),
            backlog: Vec::new(),
            next: 0,
            kp_signer,
        };
        // As the client fixture (which reaches its size in several commits): both parties
        // hold the secrets of `max_past_epochs` past epochs, the steady state whose
        // storage every later step rewrites.
        for _ in 0..=MAX_PAST_EPOCHS {
            let c = raw.commit();
            raw.process(c);
        }
        raw
    }

    /// A builds one last-resort KeyPackage (its private keys stored: one step).
    pub fn key_package(&self) -> KeyPackage {
        let (p, _, _) = &self.a;
        p.step(|| build_key_package(p, self.suite, &raw_did("a", 0), true, &self.kp_signer, None))
    }

    pub fn commit(&mut self) -> MlsMessageOut {
        let (p, s, g) = &mut self.a;
        p.step(|| {
            let bundle = g.self_update(p, s, LeafNodeParameters::default()).unwrap();
            g.merge_pending_commit(p).unwrap();
            bundle.into_messages().0
        })
    }

    pub fn process(&mut self, commit: MlsMessageOut) {
        let (p, g) = &mut self.b;
        let m = MlsMessageIn::from(commit)
            .try_into_protocol_message()
            .unwrap();
        p.step(|| {
            let processed = g.process_message(p, m).unwrap();
            if let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() {
                g.merge_staged_commit(p, *staged).unwrap();
            }
        })
    }

    /// A fresh KeyPackage (untimed setup) and its provider.
    pub fn fresh(&mut self) -> (P, KeyPackage) {
        self.next += 1;
        let p = P::default();
        let (kp, _) = raw_key_package(&p, self.suite, &raw_did("fresh", self.next), false);
        (p, kp)
    }

    /// A adds the member of `kp`: its commit goes to the backlog; the Welcome.
    pub fn add(&mut self, kp: KeyPackage) -> MlsMessageOut {
        let (commit, welcome) = self.add_with_commit(kp);
        self.backlog.push(commit);
        welcome
    }

    /// A adds the member of `kp`: the commit (not queued for B) and the Welcome.
    pub fn add_with_commit(&mut self, kp: KeyPackage) -> (MlsMessageOut, MlsMessageOut) {
        let (p, s, g) = &mut self.a;
        p.step(|| {
            let (commit, welcome, _) = g.add_members(p, s, &[kp]).unwrap();
            g.merge_pending_commit(p).unwrap();
            (commit, welcome)
        })
    }

    /// Removes the last leaf again (untimed), keeping the group's size constant.
    pub fn remove_last(&mut self) {
        let (p, s, g) = &mut self.a;
        let last = g.members().map(|m| m.index).max().unwrap();
        let (commit, _, _) = g.remove_members(p, s, &[last]).unwrap();
        g.merge_pending_commit(p).unwrap();
        self.backlog.push(commit);
    }

    /// B processes the commits it missed (untimed).
    pub fn catch_up(&mut self) {
        for c in std::mem::take(&mut self.backlog) {
            self.process(c);
        }
    }

    pub fn send_receive(&mut self) {
        let (p, s, g) = &mut self.a;
        let m = p.step(|| {
            g.create_message(p, s, b"hello, padded like a content object")
                .unwrap()
        });
        let (pb, gb) = &mut self.b;
        let m = MlsMessageIn::from(m).try_into_protocol_message().unwrap();
        pb.step(|| gb.process_message(pb, m).unwrap());
    }

    /// The TLS encoding of A's ratchet tree (what a Welcome carries inline, or the
    /// out-of-band tree before its encryption).
    pub fn tree_len(&self) -> usize {
        self.a
            .2
            .export_ratchet_tree()
            .tls_serialize_detached()
            .unwrap()
            .len()
    }
}

pub fn join(provider: &impl RawProvider, welcome: MlsMessageOut) -> MlsGroup {
    let bytes = welcome.tls_serialize_detached().unwrap();
    let MlsMessageBodyIn::Welcome(w) =
        <MlsMessageIn as openmls::prelude::tls_codec::Deserialize>::tls_deserialize_exact(
            bytes.as_slice(),
        )
        .unwrap()
        .extract()
    else {
        panic!("not a welcome")
    };
    provider.step(|| {
        StagedWelcome::new_from_welcome(provider, &join_config(), w, None)
            .unwrap()
            .into_group(provider)
            .unwrap()
    })
}
