//! The client fixture: devices over the in-memory network (the real DS core, signed
//! repos), SQLite state, in one suite; their transports note what they send
//! ([`super::spy`]).

use std::time::Duration;

use atmls_client::suite::SuitePolicy;
use atmls_client::transport::memory::{MemoryDs, MemoryNetwork, MemoryPds};
use atmls_client::transport::{Ds as _, Pds as _, RecordWrite};
use atmls_client::{Device, DeviceConfig, Did, GroupId, Storage, content};
use base64::Engine as _;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;

use super::on_disk;
use super::raw::{BENCH_DEVICE, build_key_package};
use super::spy::{Log, Sent, Spy};

pub type Dev = Device<Spy<MemoryPds>, Spy<MemoryDs>>;

/// The suite policy that makes a device publish, and its groups use, `suite` only.
fn policy(suite: Ciphersuite) -> SuitePolicy {
    if suite == atmls_client::suite::XWING {
        SuitePolicy::Require
    } else {
        SuitePolicy::Off
    }
}

/// The DS's and the devices' envelope limit in X-Wing (4 MiB instead of 1 MiB): at
/// 1,000 members a self-update of the bench group (built by one committer, so its parent
/// nodes are blank and an UpdatePath encrypts to about every leaf) is about 1.1 MB in
/// X-Wing (1,120-byte encapsulations), over the default 1 MiB, and the DS refuses it
/// (`EnvelopeTooLarge`). 0x0001 keeps the default.
pub const XWING_ENVELOPE_BYTES: usize = 4 << 20;

fn envelope_bytes(suite: Ciphersuite) -> usize {
    if suite == atmls_client::suite::XWING {
        XWING_ENVELOPE_BYTES
    } else {
        1 << 20
    }
}

pub fn config(suite: Ciphersuite) -> DeviceConfig {
    DeviceConfig::default()
        .with_max_envelope_bytes(envelope_bytes(suite))
        .with_one_time_key_packages(1)
        .with_suite_policy(policy(suite))
        .with_self_update_interval(None)
        .with_own_device_check_interval(Duration::from_secs(1 << 30))
}

/// Publishes a declaration and one last-resort KeyPackage in `suite` (built by raw
/// openmls on libcrux, bound to a device record as the client's are) for a fresh
/// account of the network; its welcomes go to `inbox`.
pub async fn publish_member(
    net: &MemoryNetwork,
    suite: Ciphersuite,
    name: &str,
    inbox: &str,
) -> Did {
    let pds = net.account(name);
    let did = pds.did();
    let provider = openmls_libcrux_crypto::Provider::default();
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
    let signer = SignatureKeyPair::new(suite.signature_algorithm()).unwrap();
    signer.store(provider.storage()).unwrap();
    let binding = atmls_client::group::binding::DeviceBinding::sign(
        &device_key,
        did.as_str(),
        BENCH_DEVICE,
        u16::from(suite),
        signer.public(),
        proof,
    );
    let kp = build_key_package(
        &provider,
        suite,
        did.as_str(),
        true,
        &signer,
        Some(binding.extension()),
    );
    let kp_ref = kp.hash_ref(provider.crypto()).unwrap();
    let bytes = MlsMessageOut::from(kp).tls_serialize_detached().unwrap();
    let code = u16::from(suite);
    pds.apply_writes(vec![
        RecordWrite::Create {
            collection: "chat.mls.declaration".into(),
            rkey: "self".into(),
            value: serde_json::json!({
                "$type": "chat.mls.declaration", "deliveryService": net.ds_did().as_str(),
                "invitePolicy": "anyone", "ciphersuites": [code], "createdAt": fmt(now),
            }),
        },
        RecordWrite::Create {
            collection: "chat.mls.keyPackage".into(),
            rkey: "3jzfcijpj2z2a".into(),
            value: serde_json::json!({
                "$type": "chat.mls.keyPackage",
                "keyPackage": { "$bytes": b64.encode(&bytes) },
                "keyPackageRef": { "$bytes": b64.encode(kp_ref.as_slice()) },
                "ciphersuite": code, "deviceId": BENCH_DEVICE, "lastResort": true,
                "inbox": { "service": net.ds_did().as_str(), "mailbox": inbox },
                "createdAt": fmt(now), "expiresAt": fmt(now + chrono::Duration::days(30)),
            }),
        },
    ])
    .await
    .unwrap();
    did
}

/// The benchmarks' database key: a raw key (no KDF in the measured path).
static BENCH_KEY: std::sync::LazyLock<atmls_client::at_rest::DatabaseKey> =
    std::sync::LazyLock::new(atmls_client::at_rest::DatabaseKey::random);

/// Where a device's database goes: memory, or a file in `dir` ([`on_disk`]).
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

/// The client fixture: Alice (admin) and Bob (member) devices in a group of `n` leaves in
/// `suite`; `keys`, a device of its own that publishes one KeyPackage per rotation.
pub struct Client {
    pub suite: Ciphersuite,
    pub rt: tokio::runtime::Runtime,
    pub net: MemoryNetwork,
    pub alice: Dev,
    pub bob: Dev,
    pub keys: Dev,
    pub group: GroupId,
    pub sink: String,
    /// What Alice sent last (and, for `keys`, its own log).
    pub sent: Log,
    pub keys_sent: Log,
    next: std::cell::Cell<usize>,
    dir: tempfile::TempDir,
}

async fn device(
    net: &MemoryNetwork,
    dir: &tempfile::TempDir,
    name: &str,
    config: DeviceConfig,
    log: &Log,
) -> Dev {
    Device::create(
        storage(dir, name).as_storage(),
        Spy {
            inner: net.account(name),
            log: log.clone(),
        },
        Spy {
            inner: net.ds(),
            log: log.clone(),
        },
        net.ds_did(),
        config,
    )
    .await
    .unwrap()
}

impl Client {
    pub fn new(n: usize, suite: Ciphersuite) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let net = MemoryNetwork::with_ds_config(
            atmls_ds::DsConfig::default().with_max_envelope_bytes(envelope_bytes(suite)),
        );
        let dir = tempfile::tempdir().unwrap();
        let sent = Log::default();
        let keys_sent = Log::default();
        let (alice, bob, keys, group, sink) = rt.block_on(async {
            let alice = device(&net, &dir, "alice", config(suite), &sent).await;
            let bob = device(&net, &dir, "bob", config(suite), &Log::default()).await;
            // One last-resort package and no one-time ones: a rotation builds one.
            let keys = device(
                &net,
                &dir,
                "keys",
                config(suite).with_one_time_key_packages(0),
                &keys_sent,
            )
            .await;
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
                dids.push(publish_member(&net, suite, &format!("member{i}"), &sink).await);
            }
            for chunk in dids.chunks(100) {
                alice.add_members(&group, chunk).await.unwrap();
            }
            bob.sync().await.unwrap();
            (alice, bob, keys, group, sink)
        });
        let client = Self {
            suite,
            rt,
            net,
            alice,
            bob,
            keys,
            group,
            sink,
            sent,
            keys_sent,
            next: std::cell::Cell::new(0),
            dir,
        };
        let info = client
            .rt
            .block_on(client.alice.group(&client.group))
            .unwrap();
        assert_eq!(info.members.len(), n.max(2), "the group has {n} members");
        assert_eq!(
            info.ciphersuite,
            u16::from(suite),
            "the group is in the bench's suite"
        );
        client
    }

    /// What Alice sent last.
    pub fn last_sent(&self) -> Sent {
        self.sent.lock().unwrap().clone()
    }

    /// A fresh account with a published KeyPackage (untimed setup).
    pub fn fresh_did(&self) -> Did {
        self.next.set(self.next.get() + 1);
        let name = format!("fresh{}", self.next.get());
        self.rt
            .block_on(publish_member(&self.net, self.suite, &name, &self.sink))
    }

    /// A fresh device of a fresh account (untimed setup).
    pub fn fresh_device(&self) -> Dev {
        self.next.set(self.next.get() + 1);
        let name = format!("joiner{}", self.next.get());
        self.rt.block_on(device(
            &self.net,
            &self.dir,
            &name,
            config(self.suite),
            &Log::default(),
        ))
    }

    /// The `keys` device replaces its KeyPackage: builds one (binding signed, private
    /// keys stored), refreshes its device record's proof and publishes the record in
    /// one repo commit that deletes the old one.
    pub fn key_package(&self) {
        self.rt.block_on(self.keys.rotate_key_packages()).unwrap();
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
