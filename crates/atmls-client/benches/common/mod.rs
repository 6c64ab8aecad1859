//! Shared by the client benchmarks: fixtures for the client (devices over the in-memory
//! network, SQLite state) and for raw openmls (memory storage) doing the same work.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion};

use atmls_client::transport::memory::{MemoryDs, MemoryNetwork, MemoryPds};
use atmls_client::transport::{Ds as _, Pds as _, RecordWrite};
use atmls_client::{Device, DeviceConfig, Did, GroupId, Storage, content};
use base64::Engine as _;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::{OpenMlsRustCrypto, RustCrypto};
use openmls_sqlite_storage::{Codec, SqliteStorageProvider};

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

/// RustCrypto with openmls_sqlite_storage on an in-memory database with the client's
/// pragmas: raw openmls persisting what the client persists, each step in one transaction
/// as the client does ([`RawProvider::step`]).
/// With `ATMLS_BENCH_STORAGE=file` the database is a file with the client's on-disk
/// pragmas (WAL, `synchronous = FULL`), as the client's devices then are.
pub struct SqlProvider {
    crypto: RustCrypto,
    conn: Rc<rusqlite::Connection>,
    storage: SqliteStorageProvider<Json, Rc<rusqlite::Connection>>,
    _dir: Option<tempfile::TempDir>,
}

/// Whether device state goes to files (`ATMLS_BENCH_STORAGE=file`) instead of memory.
pub fn on_disk() -> bool {
    std::env::var("ATMLS_BENCH_STORAGE").is_ok_and(|v| v == "file")
}

impl Default for SqlProvider {
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
            crypto: RustCrypto::default(),
            storage: SqliteStorageProvider::new(conn.clone()),
            conn,
            _dir: dir,
        }
    }
}

impl OpenMlsProvider for SqlProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = SqliteStorageProvider<Json, Rc<rusqlite::Connection>>;
    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &RustCrypto {
        &self.crypto
    }
    fn rand(&self) -> &RustCrypto {
        &self.crypto
    }
}

/// A provider the raw fixture can use.
pub trait RawProvider: OpenMlsProvider + Default {
    /// Runs one step (an operation of one party) as one unit of persistence.
    fn step<T>(&self, f: impl FnOnce() -> T) -> T {
        f()
    }
}
impl RawProvider for OpenMlsRustCrypto {}
impl RawProvider for SqlProvider {
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
fn raw_did(prefix: &str, i: usize) -> String {
    use sha2::Digest as _;
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    let b32 = spec.encoding().unwrap();
    let digest = sha2::Sha256::digest(format!("{prefix}{i}").as_bytes());
    format!("did:plc:{}", &b32.encode(&digest)[..24])
}

pub type Dev = Device<MemoryPds, MemoryDs>;

pub const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

pub fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(1)
        .with_self_update_interval(None)
        .with_own_device_check_interval(Duration::from_secs(1 << 30))
}

fn capabilities() -> Capabilities {
    Capabilities::builder()
        .ciphersuites(vec![SUITE])
        .extensions(vec![
            ExtensionType::Unknown(atmls_client::group::GROUP_DATA_EXTENSION_TYPE),
            ExtensionType::Unknown(atmls_client::group::DEVICE_BINDING_EXTENSION_TYPE),
            ExtensionType::LastResort,
        ])
        .proposals(vec![ProposalType::Custom(
            atmls_client::group::LEAF_PROOFS_PROPOSAL_TYPE,
        )])
        .credentials(vec![CredentialType::Basic])
        .build()
}

/// A raw openmls KeyPackage for `identity` (its private parts in `provider`).
pub fn raw_key_package(
    provider: &impl OpenMlsProvider,
    identity: &str,
    last_resort: bool,
) -> (KeyPackage, SignatureKeyPair) {
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
    signer.store(provider.storage()).unwrap();
    let kp = build_key_package(provider, identity, last_resort, &signer, None);
    (kp, signer)
}

/// The bench devices' id (the leaf's `application_id`, the records' `deviceId`).
const BENCH_DEVICE: &str = "benchdevice0";

fn build_key_package(
    provider: &impl OpenMlsProvider,
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
        .leaf_node_capabilities(capabilities())
        .leaf_node_extensions(Extensions::from_vec(extensions).unwrap());
    if last_resort {
        b = b.mark_as_last_resort();
    }
    let bundle = b
        .build(
            SUITE,
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

/// Publishes a declaration and one last-resort KeyPackage (built by raw openmls) for a
/// fresh account of the network; its welcomes go to `inbox`.
pub async fn publish_member(net: &MemoryNetwork, name: &str, inbox: &str) -> Did {
    let pds = net.account(name);
    let did = pds.did();
    let provider = OpenMlsRustCrypto::default();
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let now = chrono::Utc::now();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    // The device record and its proof first: the KeyPackage's leaf carries the binding
    // (docs/spec.md §11.16).
    let device_key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    pds.apply_writes(vec![RecordWrite::Create {
        collection: atmls_client::group::DEVICE_COLLECTION.into(),
        rkey: BENCH_DEVICE.into(),
        value: serde_json::json!({
            "$type": atmls_client::group::DEVICE_COLLECTION, "deviceId": BENCH_DEVICE,
            "deviceKey": { "$bytes": b64.encode(device_key.verifying_key().as_bytes()) },
            "createdAt": fmt(now),
        }),
    }])
    .await
    .unwrap();
    let proof = pds
        .record_proof(&did, atmls_client::group::DEVICE_COLLECTION, BENCH_DEVICE)
        .await
        .unwrap();
    let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
    signer.store(provider.storage()).unwrap();
    let binding = atmls_client::group::binding::DeviceBinding::sign(
        &device_key,
        did.as_str(),
        BENCH_DEVICE,
        u16::from(SUITE),
        signer.public(),
        proof,
    );
    let kp = build_key_package(
        &provider,
        did.as_str(),
        true,
        &signer,
        Some(binding.extension()),
    );
    let kp_ref = kp.hash_ref(provider.crypto()).unwrap();
    let bytes = MlsMessageOut::from(kp).tls_serialize_detached().unwrap();
    pds.apply_writes(vec![
        RecordWrite::Create {
            collection: "chat.mls.declaration".into(),
            rkey: "self".into(),
            value: serde_json::json!({
                "$type": "chat.mls.declaration", "deliveryService": net.ds_did().as_str(),
                "invitePolicy": "anyone", "ciphersuites": [1], "createdAt": fmt(now),
            }),
        },
        RecordWrite::Create {
            collection: "chat.mls.keyPackage".into(),
            rkey: "3jzfcijpj2z2a".into(),
            value: serde_json::json!({
                "$type": "chat.mls.keyPackage",
                "keyPackage": { "$bytes": b64.encode(&bytes) },
                "keyPackageRef": { "$bytes": b64.encode(kp_ref.as_slice()) },
                "ciphersuite": 1, "deviceId": BENCH_DEVICE, "lastResort": true,
                "inbox": { "service": net.ds_did().as_str(), "mailbox": inbox },
                "createdAt": fmt(now), "expiresAt": fmt(now + chrono::Duration::days(30)),
            }),
        },
    ])
    .await
    .unwrap();
    did
}

/// Where a device's database goes: memory, or a file in `dir` ([`on_disk`]).
/// The benchmarks' database key: a raw key (no KDF in the measured path).
static BENCH_KEY: std::sync::LazyLock<atmls_client::at_rest::DatabaseKey> =
    std::sync::LazyLock::new(atmls_client::at_rest::DatabaseKey::random);

pub enum DbPath {
    Memory,
    File(std::path::PathBuf),
}

impl DbPath {
    pub fn as_storage(&self) -> Storage<'_> {
        match self {
            DbPath::Memory => Storage::Memory,
            DbPath::File(p) => Storage::File(p, &*BENCH_KEY),
        }
    }
}

fn storage(dir: &tempfile::TempDir, name: &str) -> DbPath {
    if on_disk() {
        DbPath::File(dir.path().join(format!("{name}.db")))
    } else {
        DbPath::Memory
    }
}

/// The client fixture: Alice (admin) and Bob (member) devices in a group of `n` leaves.
pub struct Client {
    pub rt: tokio::runtime::Runtime,
    pub net: MemoryNetwork,
    pub alice: Dev,
    pub bob: Dev,
    pub group: GroupId,
    pub sink: String,
    next: std::cell::Cell<usize>,
    dir: tempfile::TempDir,
}

impl Client {
    pub fn new(n: usize) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let net = MemoryNetwork::new();
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob, group, sink) = rt.block_on(async {
            let alice = Device::create(
                storage(&dir, "alice").as_storage(),
                net.account("alice"),
                net.ds(),
                net.ds_did(),
                config(),
            )
            .await
            .unwrap();
            let bob = Device::create(
                storage(&dir, "bob").as_storage(),
                net.account("bob"),
                net.ds(),
                net.ds_did(),
                config(),
            )
            .await
            .unwrap();
            let group = alice.create_group("bench").await.unwrap();
            alice
                .add_members(&group, &[bob.did().clone()])
                .await
                .unwrap();
            let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
            let sink = net
                .ds()
                .create_mailbox(
                    &net.ds_did(),
                    "did:plc:sink",
                    atmls_ds_proto::MailboxKind::Inbox,
                    key.verifying_key().to_bytes(),
                    0,
                )
                .await
                .unwrap()
                .to_string();
            let mut dids = Vec::new();
            for i in 0..n.saturating_sub(2) {
                dids.push(publish_member(&net, &format!("member{i}"), &sink).await);
            }
            for chunk in dids.chunks(100) {
                alice.add_members(&group, chunk).await.unwrap();
            }
            bob.sync().await.unwrap();
            (alice, bob, group, sink)
        });
        Self {
            rt,
            net,
            alice,
            bob,
            group,
            sink,
            next: std::cell::Cell::new(0),
            dir,
        }
    }

    /// A fresh account with a published KeyPackage (untimed setup).
    pub fn fresh_did(&self) -> Did {
        self.next.set(self.next.get() + 1);
        let name = format!("fresh{}", self.next.get());
        self.rt
            .block_on(publish_member(&self.net, &name, &self.sink))
    }

    /// A fresh device of a fresh account (untimed setup).
    pub fn fresh_device(&self) -> Dev {
        self.next.set(self.next.get() + 1);
        let name = format!("joiner{}", self.next.get());
        self.rt
            .block_on(Device::create(
                storage(&self.dir, &name).as_storage(),
                self.net.account(&name),
                self.net.ds(),
                self.net.ds_did(),
                config(),
            ))
            .unwrap()
    }

    pub fn commit(&self) {
        self.rt
            .block_on(self.alice.self_update(&self.group, false))
            .unwrap();
    }

    pub fn process(&self) {
        self.rt.block_on(self.bob.sync()).unwrap();
    }

    pub fn add(&self, did: &Did) {
        self.rt
            .block_on(
                self.alice
                    .add_members(&self.group, std::slice::from_ref(did)),
            )
            .unwrap();
    }

    /// Removes an account again (untimed), keeping the group's size constant.
    pub fn remove(&self, did: &Did) {
        self.rt
            .block_on(
                self.alice
                    .remove_members(&self.group, std::slice::from_ref(did)),
            )
            .unwrap();
    }

    pub fn send_receive(&self) {
        self.rt.block_on(async {
            self.alice
                .send(&self.group, content::text("hello"))
                .await
                .unwrap();
            self.bob.sync().await.unwrap();
        });
    }
}

/// The raw openmls fixture: A (committer) and B (member) in a group of `n` leaves,
/// memory storage, the same configuration (ciphertext wire format, ratchet tree in
/// Welcomes, padding 32).
pub struct Raw<P: RawProvider = OpenMlsRustCrypto> {
    pub a: (P, SignatureKeyPair, MlsGroup),
    pub b: (P, MlsGroup),
    /// Commits B has not processed yet.
    pub backlog: Vec<MlsMessageOut>,
    next: usize,
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
    pub fn new(n: usize) -> Self {
        let pa = P::default();
        let (_, sa) = raw_key_package(&pa, &raw_did("a", 0), false);
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(SUITE)
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .padding_size(32)
            .max_past_epochs(MAX_PAST_EPOCHS)
            .sender_ratchet_configuration(SenderRatchetConfiguration::new(32, 1000))
            .capabilities(capabilities())
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
        let (kb, _) = raw_key_package(&pb, &raw_did("b", 0), false);
        let mut kps = vec![kb];
        for i in 0..n.saturating_sub(2) {
            let p = OpenMlsRustCrypto::default();
            kps.push(raw_key_package(&p, &raw_did("m", i), false).0);
        }
        let (_, welcome, _) = ga.add_members(&pa, &sa, &kps).unwrap();
        ga.merge_pending_commit(&pa).unwrap();
        let gb = join(&pb, welcome);
        let mut raw = Self {
            a: (pa, sa, ga),
            b: (pb, gb),
            backlog: Vec::new(),
            next: 0,
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
        let (kp, _) = raw_key_package(&p, &raw_did("fresh", self.next), false);
        (p, kp)
    }

    pub fn add(&mut self, kp: KeyPackage) -> MlsMessageOut {
        let (p, s, g) = &mut self.a;
        let (commit, welcome) = p.step(|| {
            let (commit, welcome, _) = g.add_members(p, s, &[kp]).unwrap();
            g.merge_pending_commit(p).unwrap();
            (commit, welcome)
        });
        self.backlog.push(commit);
        welcome
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

/// The clock of every measurement: wall time, or with `ATMLS_BENCH_CLOCK=cpu` the CPU
/// time of the whole process (all threads, openmls' rayon workers included), which other
/// work on a shared machine does not inflate.
#[derive(Debug, Clone, Copy)]
pub struct Clock;

fn cpu_clock() -> bool {
    static CPU: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CPU.get_or_init(|| std::env::var("ATMLS_BENCH_CLOCK").is_ok_and(|v| v == "cpu"))
}

/// The current reading of the configured clock.
pub fn now() -> Duration {
    if cpu_clock() {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        )
    } else {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

impl Measurement for Clock {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        now()
    }
    fn end(&self, start: Duration) -> Duration {
        now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

/// Criterion with the configured [`Clock`].
pub fn criterion() -> Criterion<Clock> {
    Criterion::default().with_measurement(Clock)
}

/// `iters` rounds on `ctx` of `setup` (untimed), `op` (timed) and `cleanup` (untimed);
/// the total time of the `op`s.
pub fn rounds<C, S, T>(
    iters: u64,
    ctx: &mut C,
    mut setup: impl FnMut(&mut C) -> S,
    mut op: impl FnMut(&mut C, S) -> T,
    mut cleanup: impl FnMut(&mut C, T),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let s = setup(ctx);
        let t = now();
        let out = op(ctx, s);
        total += now().saturating_sub(t);
        cleanup(ctx, out);
    }
    total
}

/// The measured operations.
#[derive(Debug, Clone, Copy)]
enum Op {
    Commit,
    ProcessCommit,
    SendReceive,
    AddMember,
    Join,
}

impl Op {
    const ALL: [Op; 5] = [
        Op::Commit,
        Op::ProcessCommit,
        Op::SendReceive,
        Op::AddMember,
        Op::Join,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::Commit => "commit",
            Op::ProcessCommit => "process-commit",
            Op::SendReceive => "send-receive",
            Op::AddMember => "add-member",
            Op::Join => "join",
        }
    }
}

/// Every operation, for the client and for raw openmls (memory storage, and SQLite
/// storage as the client persists), at each size. The three variants of an operation run
/// back to back, so that a change of load on the machine hits all three alike.
pub fn bench_sizes(c: &mut Criterion<Clock>, sizes: &[usize]) {
    for &n in sizes {
        let mut g = c.benchmark_group(format!("client/{n}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        if n >= 10_000 {
            // Operations take up to seconds here: ten samples of one iteration each
            // instead of criterion's 1 + 2 + … + 10 iterations.
            g.sampling_mode(criterion::SamplingMode::Flat);
        }
        let client = Client::new(n);
        let mut mem = Raw::<OpenMlsRustCrypto>::new(n);
        let mut sql = Raw::<SqlProvider>::new(n);
        for op in Op::ALL {
            client_op(&mut g, &client, op);
            raw_op(&mut g, &mut mem, "openmls", op);
            raw_op(&mut g, &mut sql, "openmls+sqlite", op);
        }
        g.finish();
    }
}

type Group<'a> = criterion::BenchmarkGroup<'a, Clock>;

fn client_op(g: &mut Group<'_>, client: &Client, op: Op) {
    let id = BenchmarkId::new(op.name(), "atmls");
    let mut c = client;
    match op {
        Op::Commit => g.bench_function(id, |b| b.iter(|| client.commit())),
        Op::ProcessCommit => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                rounds(
                    iters,
                    &mut c,
                    |c| c.commit(),
                    |c, ()| c.process(),
                    |_, ()| {},
                )
            })
        }),
        Op::SendReceive => g.bench_function(id, |b| b.iter(|| client.send_receive())),
        // Added accounts are removed again (untimed) so that the group keeps its size.
        Op::AddMember => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let total = rounds(
                    iters,
                    &mut c,
                    |c| c.fresh_did(),
                    |c, did| {
                        c.add(&did);
                        did
                    },
                    |c, did| c.remove(&did),
                );
                client.process();
                total
            })
        }),
        Op::Join => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let total = rounds(
                    iters,
                    &mut c,
                    |c| {
                        let d = c.fresh_device();
                        c.add(d.did());
                        d
                    },
                    |c, d| {
                        c.rt.block_on(d.sync()).unwrap();
                        d
                    },
                    |c, d| c.remove(d.did()),
                );
                client.process();
                total
            })
        }),
    };
}

fn raw_op<P: RawProvider>(g: &mut Group<'_>, raw: &mut Raw<P>, label: &str, op: Op) {
    let id = BenchmarkId::new(op.name(), label);
    match op {
        Op::Commit => g.bench_function(id, |b| {
            b.iter(|| {
                let c = raw.commit();
                raw.backlog.push(c);
            })
        }),
        Op::ProcessCommit => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                rounds(iters, raw, |r| r.commit(), |r, c| r.process(c), |_, ()| {})
            })
        }),
        Op::SendReceive => g.bench_function(id, |b| b.iter(|| raw.send_receive())),
        Op::AddMember => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let total = rounds(
                    iters,
                    raw,
                    |r| r.fresh().1,
                    |r, kp| {
                        r.add(kp);
                    },
                    |r, ()| r.remove_last(),
                );
                raw.catch_up();
                total
            })
        }),
        Op::Join => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let total = rounds(
                    iters,
                    raw,
                    |r| {
                        let (p, kp) = r.fresh();
                        let w = r.add(kp);
                        (p, w)
                    },
                    |_, (p, w)| {
                        join(&p, w);
                        p
                    },
                    |r, _| r.remove_last(),
                );
                raw.catch_up();
                total
            })
        }),
    };
    // B processes what it missed (commits of A), untimed.
    raw.catch_up();
}
