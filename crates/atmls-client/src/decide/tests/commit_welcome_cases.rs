//! Commits built for intents and the welcomes they plan, opened or refused.

use atmls_ds_proto::MailboxId;
use openmls::prelude::MlsGroup;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider as _;
use sha2::{Digest as _, Sha256};

use super::{MAX, Member, SUITE, group_of, no_documents, sealed_welcome};
use crate::content;
use crate::decide::commit::Intent;
use crate::decide::envelope::EnvelopeOutcome;
use crate::decide::welcome::WelcomeRefusal;

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
    // The new leaf key's device binding is checked against Alice's repo (§11.16.5):
    // her DID document is asked for first, and nothing is merged without it.
    match bob.decide_undone(&built.payload, &no_documents()) {
        EnvelopeOutcome::NeedDocuments(dids) => assert_eq!(dids, [alice.did.clone()]),
        other => panic!("expected a request for documents, got {other:?}"),
    }
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
