//! The decisions without any transport: two or three openmls members in this process,
//! each with its own in-memory device database; envelopes and intents handed over by
//! hand, outcomes asserted.

use crate::device::store::Crypto;
use atmls_ds_proto::{MailboxId, Timestamp};
use atmls_identity::Did;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::storage::StorageProvider as _;
use rusqlite::Connection;

use super::commit::{self, BuiltCommit, Intent};
use super::envelope::{self, EnvelopeOutcome};
use super::welcome::{self, WelcomeRefusal};
use crate::content;
use crate::device::store::{self, KeyPackageRow, Provider};
use crate::group::binding::Binder;
use crate::group::proofs::Documents;
use crate::group::seal::{self, WelcomeInfo};
use crate::group::{self as grp};
use crate::keypackage::VerifiedKeyPackage;
use crate::keypackage::build::{KeyPackageParams, build_key_package};

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const MAX: usize = 1 << 20;
/// When the DS accepted the envelopes fed here (time comes in; no clock is read).
const ACCEPTED: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn ds() -> Did {
    Did::new("did:web:ds.example.com").expect("did")
}

/// One member device: its database, its signer, its group once it has one.
struct Member {
    did: Did,
    name: &'static str,
    conn: Connection,
    crypto: Crypto,
    signer: SignatureKeyPair,
    group: Option<MlsGroup>,
    packages: Vec<KeyPackageRow>,
    /// Its device key, with no repo behind it (these tests have no PDS).
    binder: Binder,
    /// The suite of its KeyPackages and of the groups it creates.
    suite: Ciphersuite,
}

impl Member {
    fn new(name: &'static str) -> Self {
        Self::new_in(name, SUITE)
    }

    /// A member whose KeyPackages and groups are in `suite`.
    fn new_in(name: &'static str, suite: Ciphersuite) -> Self {
        let conn = store::open_in_memory().expect("db");
        let crypto = crate::device::store::new_crypto().unwrap();
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("signer");
        signer
            .store(Provider::new(&crypto, &conn).storage())
            .expect("store signer");
        Self {
            did: Did::new(format!("did:plc:{name:a<24}")).expect("did"),
            name,
            conn,
            crypto,
            signer,
            group: None,
            packages: Vec::new(),
            binder: Binder {
                key: ed25519_dalek::SigningKey::from_bytes(&rand::random()),
                did: format!("did:plc:{name:a<24}"),
                device_id: name.into(),
                proof: Vec::new(),
            },
            suite,
        }
    }

    fn provider(&self) -> Provider<'_> {
        Provider::new(&self.crypto, &self.conn)
    }

    /// The provider, the group and the signer, borrowed together.
    fn parts(&mut self) -> (Provider<'_>, &mut MlsGroup, &SignatureKeyPair) {
        let group = self.group.as_mut().expect("a member");
        (Provider::new(&self.crypto, &self.conn), group, &self.signer)
    }

    fn epoch(&self) -> u64 {
        self.group.as_ref().expect("a member").epoch().as_u64()
    }

    /// A fresh KeyPackage of this device, as the committer has it after verifying its
    /// record (`proof` is what travels in the commit; empty: none).
    fn key_package(&mut self, proof: Vec<u8>) -> VerifiedKeyPackage {
        let inbox = MailboxId::from_bytes([7; 32]);
        let built = build_key_package(
            &self.provider(),
            &self.signer,
            &KeyPackageParams {
                ciphersuite: self.suite,
                did: self.did.as_str(),
                device_id: self.name,
                inbox_ds: ds().as_str(),
                inbox_mailbox: &inbox.to_string(),
                lifetime_secs: 30 * 86_400,
                last_resort: false,
                binder: &self.binder,
                // openmls checks MLS lifetimes against the system clock.
                now: chrono::Utc::now().timestamp_millis(),
            },
            "3jzfcijpj2z2a".into(),
        )
        .expect("key package");
        let hash_ref = crate::keypackage::key_package_ref(&built.key_package_ref).expect("ref");
        let bundle: KeyPackageBundle = self
            .provider()
            .storage()
            .key_package(&hash_ref)
            .expect("storage")
            .expect("stored bundle");
        self.packages.push(KeyPackageRow {
            key_package_ref: built.key_package_ref,
            rkey: built.rkey.clone(),
            last_resort: false,
            expires_at: built.expires_at,
            ciphersuite: u16::from(self.suite),
        });
        VerifiedKeyPackage {
            did: self.did.clone(),
            rkey: built.rkey,
            device_id: self.name.into(),
            inbox_ds: ds(),
            inbox,
            last_resort: false,
            key_package: bundle.key_package().clone(),
            rev: "3jzfcijpj2z2a".into(),
            proof,
            expires_at: i64::MAX,
        }
    }

    /// Builds the commit for `intent` (left pending in the group).
    fn build(&mut self, intent: &Intent) -> Option<BuiltCommit> {
        let me = self.did.clone();
        let binder = self.binder.clone();
        let (provider, group, signer) = self.parts();
        commit::build(&provider, group, signer, &me, intent, MAX, &binder).expect("build")
    }

    /// Merges this member's pending commit (the DS accepted it).
    fn merge_pending(&mut self) {
        let (provider, group, _) = self.parts();
        group.merge_pending_commit(&provider).expect("merge");
    }

    /// Decides an envelope from another member.
    fn decide(&mut self, payload: &[u8], documents: &Documents) -> EnvelopeOutcome {
        let (provider, group, _) = self.parts();
        envelope::decide(&provider, group, payload, ACCEPTED, documents).expect("decide")
    }

    /// Decides an envelope and undoes everything it did to the group (as the device
    /// does when documents are needed first: the transaction rolls back).
    fn decide_undone(&mut self, payload: &[u8], documents: &Documents) -> EnvelopeOutcome {
        self.conn.execute_batch("BEGIN").expect("begin");
        let outcome = self.decide(payload, documents);
        self.conn.execute_batch("ROLLBACK").expect("rollback");
        let id = self.group.as_ref().expect("a member").group_id().clone();
        self.group = MlsGroup::load(self.provider().storage(), &id).expect("load");
        outcome
    }

    /// An application message from this member, as its padded payload.
    fn message(&mut self, text: &str) -> (Vec<u8>, content::Content) {
        let sent = content::content(content::text(text), None);
        let bytes = content::encode(&sent).expect("encode");
        let (provider, group, signer) = self.parts();
        // As the device sends it: with the epoch tag (§11.17).
        grp::reentry::tag_next(group);
        let out = group
            .create_message(&provider, signer, &bytes)
            .expect("message");
        let encoded = out.tls_serialize_detached().expect("encode");
        (content::pad(encoded, MAX), sent)
    }

    /// Opens and joins a sealed welcome.
    fn open_and_join(&mut self, sealed: &[u8]) -> Result<welcome::Joined, WelcomeRefusal> {
        let provider = self.provider();
        let opened = welcome::open(&provider, self.packages.clone(), sealed).expect("storage")?;
        welcome::join(&provider, opened, None, &[])
    }
}

/// The welcome of `built` sealed to its `i`-th target, naming `mailbox`.
fn sealed_welcome(alice: &Member, built: &BuiltCommit, i: usize, mailbox: [u8; 32]) -> Vec<u8> {
    let plan = &built.pending.plan;
    let info = WelcomeInfo {
        welcome: plan.welcome.clone(),
        ds: ds(),
        mailbox: MailboxId::from_bytes(mailbox),
        from_seq: 2,
        ratchet_tree: None,
    };
    seal::seal_welcome(&alice.crypto, alice.suite, &plan.targets[i].init_key, &info).expect("seal")
}

/// Alice creates a group and adds `others` in one commit (with `proofs` in it); each
/// joins from its welcome. Returns the adding commit.
fn group_of(alice: &mut Member, others: &mut [&mut Member]) -> BuiltCommit {
    let provider = alice.provider();
    let group = grp::create::create(
        &provider,
        &alice.signer,
        &alice.did,
        alice.suite,
        &ds(),
        "tea",
        &alice.binder,
    )
    .expect("create");
    alice.group = Some(group);
    let packages = others
        .iter_mut()
        .map(|m| m.key_package(Vec::new()))
        .collect();
    let built = alice.build(&Intent::Add(packages)).expect("a commit");
    alice.merge_pending();
    for (i, m) in others.iter_mut().enumerate() {
        let sealed = sealed_welcome(alice, &built, i, [0; 32]);
        let joined = m.open_and_join(&sealed).expect("joined");
        m.group = Some(joined.group);
        assert_eq!(m.epoch(), alice.epoch());
    }
    built
}

fn no_documents() -> Documents {
    Documents::new()
}

mod commit_welcome_cases;
mod envelope_cases;
mod fork_cases;
mod lifetime_cases;
mod suite_cases;
