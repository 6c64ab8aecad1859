//! The decisions without any transport: two or three openmls members in this process,
//! each with its own in-memory device database; envelopes and intents handed over by
//! hand, outcomes asserted.

use atmls_ds::{EnvelopeKind, MailboxId, Timestamp};
use atmls_identity::Did;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::storage::StorageProvider as _;
use rusqlite::Connection;
use sha2::{Digest as _, Sha256};

use super::commit::{self, BuiltCommit, Intent};
use super::envelope::{self, EnvelopeOutcome, PendingFate, Refusal};
use super::welcome::{self, WelcomeRefusal};
use crate::content;
use crate::device::store::{self, KeyPackageRow, Provider};
use crate::error::{FailureKind, KeyPackageRefusal, PolicyViolation};
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
    crypto: RustCrypto,
    signer: SignatureKeyPair,
    group: Option<MlsGroup>,
    packages: Vec<KeyPackageRow>,
}

impl Member {
    fn new(name: &'static str) -> Self {
        let conn = store::open_in_memory().expect("db");
        let crypto = RustCrypto::default();
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
                ciphersuite: SUITE,
                did: self.did.as_str(),
                device_id: self.name,
                inbox_ds: ds().as_str(),
                inbox_mailbox: &inbox.to_string(),
                lifetime_secs: 30 * 86_400,
                last_resort: false,
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
        }
    }

    /// Builds the commit for `intent` (left pending in the group).
    fn build(&mut self, intent: &Intent) -> Option<BuiltCommit> {
        let me = self.did.clone();
        let (provider, group, signer) = self.parts();
        commit::build(&provider, group, signer, &me, intent, MAX).expect("build")
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
        let out = group
            .create_message(&provider, signer, &bytes)
            .expect("message");
        let encoded = out.tls_serialize_detached().expect("encode");
        (content::pad(encoded, MAX), sent)
    }

    /// Opens and joins a sealed welcome.
    fn open_and_join(&mut self, sealed: &[u8]) -> Result<welcome::Joined, WelcomeRefusal> {
        let provider = self.provider();
        let opened =
            welcome::open(&provider, SUITE, self.packages.clone(), sealed).expect("storage")?;
        welcome::join(&provider, opened, None)
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
    seal::seal_welcome(&alice.crypto, SUITE, &plan.targets[i].init_key, &info).expect("seal")
}

/// Alice creates a group and adds `others` in one commit (with `proofs` in it); each
/// joins from its welcome. Returns the adding commit.
fn group_of(alice: &mut Member, others: &mut [&mut Member]) -> BuiltCommit {
    let provider = alice.provider();
    let group = grp::create::create(
        &provider,
        &alice.signer,
        &alice.did,
        alice.name,
        SUITE,
        &ds(),
        "tea",
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

#[test]
fn a_valid_message_is_shown_with_its_sender() {
    let (mut alice, mut bob) = (Member::new("alice"), Member::new("bob"));
    group_of(&mut alice, &mut [&mut bob]);
    let (payload, sent) = alice.message("hello bob");
    match bob.decide(&payload, &no_documents()) {
        EnvelopeOutcome::Message {
            sender,
            sender_device,
            content: got,
        } => {
            assert_eq!(sender, alice.did);
            assert_eq!(sender_device.as_deref(), Some("alice"));
            assert_eq!(content::encode(&got).ok(), content::encode(&sent).ok());
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn a_replayed_message_is_refused_for_good() {
    let (mut alice, mut bob) = (Member::new("alice"), Member::new("bob"));
    group_of(&mut alice, &mut [&mut bob]);
    let (payload, _) = alice.message("once");
    assert!(matches!(
        bob.decide(&payload, &no_documents()),
        EnvelopeOutcome::Message { .. }
    ));
    match bob.decide(&payload, &no_documents()) {
        EnvelopeOutcome::Refused(r @ Refusal::Malformed(_)) => {
            assert_eq!(r.kind(), FailureKind::Permanent);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn bad_padding_is_refused() {
    let (mut alice, mut bob) = (Member::new("alice"), Member::new("bob"));
    group_of(&mut alice, &mut [&mut bob]);
    let (mut payload, _) = alice.message("padded");
    *payload.last_mut().expect("padding") = 1;
    assert!(matches!(
        bob.decide(&payload, &no_documents()),
        EnvelopeOutcome::Refused(Refusal::Malformed(_))
    ));
}

#[test]
fn a_commit_is_merged_and_a_past_epoch_one_ignored() {
    let (mut alice, mut bob) = (Member::new("alice"), Member::new("bob"));
    group_of(&mut alice, &mut [&mut bob]);
    let before = bob.epoch();
    let built = alice
        .build(&Intent::SelfUpdate { rotate: false })
        .expect("a commit");
    assert_eq!(built.epoch, before);
    alice.merge_pending();
    match bob.decide(&built.payload, &no_documents()) {
        EnvelopeOutcome::Merged {
            committer,
            epoch,
            removed_self: false,
        } => {
            assert_eq!(committer, alice.did);
            assert_eq!(epoch, before + 1);
        }
        other => panic!("expected a merge, got {other:?}"),
    }
    assert_eq!(bob.epoch(), alice.epoch());
    // The same commit again (a replay, or a DS that serves it twice): its epoch is past.
    assert!(matches!(
        bob.decide(&built.payload, &no_documents()),
        EnvelopeOutcome::Ignored(_)
    ));
    assert_eq!(bob.epoch(), before + 1);
}

#[test]
fn a_commit_that_adds_plans_the_welcome_and_the_welcome_joins() {
    let (mut alice, mut bob, mut carol) = (
        Member::new("alice"),
        Member::new("bob"),
        Member::new("carol"),
    );
    group_of(&mut alice, &mut [&mut bob]);
    let kp = carol.key_package(Vec::new());
    let init_key = kp.key_package.hpke_init_key().as_slice().to_vec();
    let epoch = alice.epoch();
    let built = alice.build(&Intent::Add(vec![kp])).expect("a commit");
    let plan = &built.pending.plan;
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.targets[0].did, carol.did.as_str());
    assert_eq!(plan.targets[0].init_key, init_key);
    assert_eq!(
        plan.targets[0].inbox,
        MailboxId::from_bytes([7; 32]).to_string()
    );
    assert!(plan.ratchet_tree.is_none(), "the tree fits inline");
    assert_eq!(built.pending.epoch, epoch);
    assert_eq!(built.pending.intent, "add");
    assert_eq!(
        built.pending.digest,
        Sha256::digest(&built.payload).to_vec()
    );
    assert_eq!(
        built.payload.len(),
        content::padded_len(built.payload.len(), MAX)
    );
    alice.merge_pending();
    let sealed = sealed_welcome(&alice, &built, 0, [0; 32]);
    let joined = carol.open_and_join(&sealed).expect("joined");
    assert_eq!(joined.group.epoch().as_u64(), alice.epoch());
    assert_eq!(joined.data.name, "tea");
    assert_eq!(joined.cursor, 1);
    assert_eq!(
        joined.package.key_package_ref,
        carol.packages[0].key_package_ref
    );
    // Intent reached already (a package with a signature key the group has): nothing.
    let again = carol.key_package(Vec::new());
    assert!(alice.build(&Intent::Add(vec![again])).is_none());
}

#[test]
fn an_add_without_a_leaf_proof_is_refused_for_good() {
    let (mut alice, mut bob, mut carol) = (
        Member::new("alice"),
        Member::new("bob"),
        Member::new("carol"),
    );
    group_of(&mut alice, &mut [&mut bob]);
    let before = bob.epoch();
    let kp = carol.key_package(Vec::new());
    let built = alice.build(&Intent::Add(vec![kp])).expect("a commit");
    match bob.decide(&built.payload, &no_documents()) {
        EnvelopeOutcome::Refused(r @ Refusal::Policy(PolicyViolation::LeafProofMissing { .. })) => {
            assert_eq!(r.kind(), FailureKind::Permanent);
            let Refusal::Policy(PolicyViolation::LeafProofMissing { did }) = r else {
                unreachable!()
            };
            assert_eq!(did, carol.did.as_str());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(bob.epoch(), before, "a refused commit is not merged");
}

#[test]
fn a_bad_leaf_proof_needs_the_document_then_is_refused_for_good() {
    let (mut alice, mut bob, mut carol) = (
        Member::new("alice"),
        Member::new("bob"),
        Member::new("carol"),
    );
    group_of(&mut alice, &mut [&mut bob]);
    let before = bob.epoch();
    let kp = carol.key_package(vec![0xde, 0xad]);
    let built = alice.build(&Intent::Add(vec![kp])).expect("a commit");
    match bob.decide_undone(&built.payload, &no_documents()) {
        EnvelopeOutcome::NeedDocuments(dids) => assert_eq!(dids, vec![carol.did.clone()]),
        other => panic!("expected a request for documents, got {other:?}"),
    }
    assert_eq!(bob.epoch(), before);
    let mut documents = no_documents();
    documents.insert(carol.did.clone(), Err("not found".into()));
    match bob.decide(&built.payload, &documents) {
        EnvelopeOutcome::Refused(r) => {
            assert_eq!(r.kind(), FailureKind::Permanent);
            assert!(
                matches!(
                    &r,
                    Refusal::Policy(PolicyViolation::LeafProofRefused {
                        did,
                        reason: KeyPackageRefusal::DidDocument(_),
                    }) if did == carol.did.as_str()
                ),
                "{r:?}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(bob.epoch(), before, "a refused commit is not merged");
}

#[test]
fn a_removed_member_learns_it_and_a_leave_proposal_is_stored() {
    let (mut alice, mut bob, mut carol) = (
        Member::new("alice"),
        Member::new("bob"),
        Member::new("carol"),
    );
    group_of(&mut alice, &mut [&mut bob, &mut carol]);
    // Carol asks to leave: Alice stores the proposal.
    let (provider, group, signer) = carol.parts();
    let proposal = group.leave_group(&provider, signer).expect("leave");
    let payload = content::pad(proposal.tls_serialize_detached().expect("encode"), MAX);
    match alice.decide(&payload, &no_documents()) {
        EnvelopeOutcome::LeaveProposed { did } => assert_eq!(did, carol.did),
        other => panic!("expected a leave proposal, got {other:?}"),
    }
    assert_eq!(
        alice
            .group
            .as_ref()
            .expect("group")
            .pending_proposals()
            .count(),
        1
    );
    assert!(matches!(
        bob.decide(&payload, &no_documents()),
        EnvelopeOutcome::LeaveProposed { .. }
    ));
    // The admin commits it; Bob does not while an admin stays.
    assert!(commit::commits_leaves(
        alice.group.as_ref().expect("group"),
        &alice.did
    ));
    assert!(!commit::commits_leaves(
        bob.group.as_ref().expect("group"),
        &bob.did
    ));
    // Alice removes Bob: Bob learns he is out.
    let built = alice
        .build(&Intent::Remove(vec![bob.did.clone()]))
        .expect("a commit");
    match bob.decide(&built.payload, &no_documents()) {
        EnvelopeOutcome::Merged {
            removed_self: true,
            committer,
            ..
        } => assert_eq!(committer, alice.did),
        other => panic!("expected a removal, got {other:?}"),
    }
}

#[test]
fn a_commit_by_a_non_admin_is_refused() {
    let (mut alice, mut bob, mut carol) = (
        Member::new("alice"),
        Member::new("bob"),
        Member::new("carol"),
    );
    group_of(&mut alice, &mut [&mut bob, &mut carol]);
    // Bob is no admin: building it is refused locally ...
    let me = bob.did.clone();
    let (provider, group, signer) = bob.parts();
    let remove = Intent::Remove(vec![carol.did.clone()]);
    assert!(matches!(
        commit::build(&provider, group, signer, &me, &remove, MAX),
        Err(crate::Error::NotAdmin)
    ));
    // ... and one built around that check is refused by every receiver.
    let carol_leaf = group
        .members()
        .find(|m| grp::credential_did(&m.credential).ok().as_ref() == Some(&carol.did))
        .expect("carol")
        .index;
    let (out, _, _) = group
        .remove_members(&provider, signer, &[carol_leaf])
        .expect("remove");
    let payload = content::pad(out.tls_serialize_detached().expect("encode"), MAX);
    let before = alice.epoch();
    assert!(matches!(
        alice.decide(&payload, &no_documents()),
        EnvelopeOutcome::Refused(Refusal::Policy(PolicyViolation::NotAdmin(_)))
    ));
    assert_eq!(alice.epoch(), before);
}

#[test]
fn a_rotating_self_update_records_the_new_signer() {
    let (mut alice, mut bob) = (Member::new("alice"), Member::new("bob"));
    group_of(&mut alice, &mut [&mut bob]);
    let built = alice
        .build(&Intent::SelfUpdate { rotate: true })
        .expect("a commit");
    let public = built.pending.new_signer.clone().expect("a new signer");
    assert_ne!(public, alice.signer.to_public_vec());
    let stored = SignatureKeyPair::read(
        alice.provider().storage(),
        &public,
        SUITE.signature_algorithm(),
    );
    assert!(stored.is_some(), "the new key is kept for the group");
    assert!(matches!(
        bob.decide(&built.payload, &no_documents()),
        EnvelopeOutcome::Merged { .. }
    ));
}

#[test]
fn a_welcome_for_another_device_is_refused() {
    let (mut alice, mut bob, mut carol) = (
        Member::new("alice"),
        Member::new("bob"),
        Member::new("carol"),
    );
    group_of(&mut alice, &mut [&mut bob]);
    let kp = carol.key_package(Vec::new());
    let built = alice.build(&Intent::Add(vec![kp])).expect("a commit");
    let sealed = sealed_welcome(&alice, &built, 0, [0; 32]);
    // Dave holds none of Carol's KeyPackages.
    let mut dave = Member::new("dave");
    dave.key_package(Vec::new());
    assert_eq!(
        dave.open_and_join(&sealed).err(),
        Some(WelcomeRefusal::NotForThisDevice)
    );
}

#[test]
fn a_welcome_naming_another_mailbox_is_refused_and_not_kept() {
    let (mut alice, mut bob, mut carol) = (
        Member::new("alice"),
        Member::new("bob"),
        Member::new("carol"),
    );
    group_of(&mut alice, &mut [&mut bob]);
    let kp = carol.key_package(Vec::new());
    let built = alice.build(&Intent::Add(vec![kp])).expect("a commit");
    let sealed = sealed_welcome(&alice, &built, 0, [9; 32]);
    assert_eq!(
        carol.open_and_join(&sealed).err(),
        Some(WelcomeRefusal::MailboxMismatch)
    );
    let id = alice.group.as_ref().expect("group").group_id().clone();
    let kept = MlsGroup::load(carol.provider().storage(), &id).expect("load");
    assert!(kept.is_none(), "the refused group is deleted");
}

#[test]
fn the_pending_commit_is_accepted_lost_or_untouched() {
    let ours = [1u8; 32];
    let theirs = [2u8; 32];
    let fate = envelope::pending_fate;
    assert_eq!(
        fate(EnvelopeKind::Commit, &ours, Some(&ours)),
        PendingFate::Accepted
    );
    assert_eq!(
        fate(EnvelopeKind::Commit, &theirs, Some(&ours)),
        PendingFate::Lost
    );
    assert_eq!(
        fate(EnvelopeKind::Message, &theirs, Some(&ours)),
        PendingFate::Untouched
    );
    assert_eq!(
        fate(EnvelopeKind::Commit, &theirs, None),
        PendingFate::Untouched
    );
}
