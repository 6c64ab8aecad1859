//! Fork and lag detection by the epoch tag (docs/spec.md §11.17).

use super::*;
use crate::group::reentry::{self, BrokenReason};

/// Alice, Bob and Carol in one group, then two commits for the same epoch — Alice's,
/// which Bob merges, and Carol's, which she merges herself (a DS that shows each a
/// different history, or a state gone astray). Bob and Carol are at the same epoch
/// number with different states.
fn forked() -> (Member, Member, Member) {
    let mut alice = Member::new("alice");
    let mut bob = Member::new("bob");
    let mut carol = Member::new("carol");
    group_of(&mut alice, &mut [&mut bob, &mut carol]);
    let a = alice
        .build(&Intent::SelfUpdate { rotate: false })
        .expect("alice's commit");
    carol
        .build(&Intent::SelfUpdate { rotate: false })
        .expect("carol's commit");
    carol.merge_pending();
    alice.merge_pending();
    assert!(matches!(
        bob.decide(&a.payload, &no_documents()),
        EnvelopeOutcome::Merged { .. }
    ));
    assert_eq!(bob.epoch(), carol.epoch());
    (alice, bob, carol)
}

#[test]
fn a_forked_member_learns_it_from_one_message() {
    let (mut alice, mut bob, mut carol) = forked();
    // Carol's first message at the forked epoch: Bob's tag differs, it does not decrypt.
    let (payload, _) = carol.message("from the other branch");
    assert!(matches!(
        bob.decide(&payload, &no_documents()),
        EnvelopeOutcome::Broken(BrokenReason::Forked)
    ));
    // Alice, on Bob's branch, reads him as before.
    let (payload, sent) = alice.message("same branch");
    match bob.decide(&payload, &no_documents()) {
        EnvelopeOutcome::Message { content, .. } => assert_eq!(content.id, sent.id),
        other => panic!("expected the message, got {other:?}"),
    }
}

#[test]
fn without_a_tag_a_forked_message_is_only_refused() {
    let (_alice, mut bob, mut carol) = forked();
    // A sender that carries no tag (or one this version does not know) proves nothing.
    let bytes = content::encode(&content::content(content::text("untagged"), None)).unwrap();
    let (provider, group, signer) = carol.parts();
    let out = group.create_message(&provider, signer, &bytes).unwrap();
    let payload = content::pad(out.tls_serialize_detached().unwrap(), MAX);
    assert!(matches!(
        bob.decide(&payload, &no_documents()),
        EnvelopeOutcome::Refused(_)
    ));
}

#[test]
fn a_message_of_a_later_epoch_means_this_member_is_behind() {
    let mut alice = Member::new("alice");
    let mut bob = Member::new("bob");
    group_of(&mut alice, &mut [&mut bob]);
    // Bob never merges Alice's commit (he refused it, or lost it).
    alice
        .build(&Intent::SelfUpdate { rotate: false })
        .expect("commit");
    alice.merge_pending();
    let (payload, _) = alice.message("one epoch on");
    assert!(matches!(
        bob.decide(&payload, &no_documents()),
        EnvelopeOutcome::Broken(BrokenReason::Behind)
    ));
}

#[test]
fn every_message_and_commit_carries_the_senders_epoch_tag() {
    let mut alice = Member::new("alice");
    let mut bob = Member::new("bob");
    group_of(&mut alice, &mut [&mut bob]);
    let tag = reentry::epoch_tag(
        alice
            .group
            .as_ref()
            .unwrap()
            .epoch_authenticator()
            .as_slice(),
    );
    let aad = |payload: &[u8]| {
        let message = content::unpad(payload).unwrap();
        match message.try_into_protocol_message().unwrap() {
            ProtocolMessage::PrivateMessage(p) => reentry::aad_tag(p.aad()),
            ProtocolMessage::PublicMessage(_) => None,
        }
    };
    let (payload, _) = alice.message("tagged");
    assert_eq!(aad(&payload), Some(tag));
    let built = alice
        .build(&Intent::SelfUpdate { rotate: false })
        .expect("commit");
    assert_eq!(aad(&built.payload), Some(tag));
}
