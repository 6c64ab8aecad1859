//! Envelopes from other members: messages, commits, proposals, refusals.

use atmls_ds_proto::EnvelopeKind;
use openmls::prelude::tls_codec::Serialize as _;

use super::{MAX, Member, group_of, no_documents};
use crate::content;
use crate::decide::commit::{self, Intent};
use crate::decide::envelope::{self, EnvelopeOutcome, PendingFate, Refusal};
use crate::error::{FailureKind, KeyPackageRefusal, PolicyViolation};
use crate::group as grp;

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
    let binder = bob.binder.clone();
    let (provider, group, signer) = bob.parts();
    let remove = Intent::Remove(vec![carol.did.clone()]);
    assert!(matches!(
        commit::build(&provider, group, signer, &me, &remove, MAX, &binder),
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
