//! Both ciphersuites through the decisions: the group is in its creator's suite, the
//! welcome is sealed with that suite's HPKE KEM (X-Wing's 1120-byte encapsulation), and
//! the sizes of what goes on the wire (docs/spec.md §11.19).

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{Ciphersuite, MlsMessageIn};

use super::{Member, group_of, no_documents, sealed_welcome};
use crate::decide::commit::Intent;
use crate::decide::envelope::EnvelopeOutcome;
use crate::suite::{CLASSIC, XWING};

/// The MLSMessage at the start of a padded payload, without the padding.
fn unpadded(payload: &[u8]) -> usize {
    let mut rest = payload;
    MlsMessageIn::tls_deserialize(&mut rest).expect("an MLSMessage");
    payload.len() - rest.len()
}

#[derive(Debug)]
struct Sizes {
    key_package: usize,
    add_commit: usize,
    add_commit_padded: usize,
    welcome: usize,
    sealed: usize,
    enc: usize,
    update_commit: usize,
    message: usize,
}

fn run(suite: Ciphersuite) -> Sizes {
    let (mut alice, mut bob, mut carol) = (
        Member::new_in("alice", suite),
        Member::new_in("bob", suite),
        Member::new_in("carol", suite),
    );
    group_of(&mut alice, &mut [&mut bob]);
    for m in [&alice, &bob] {
        assert_eq!(m.group.as_ref().expect("member").ciphersuite(), suite);
    }
    // Carol joins from a welcome sealed to her init key in the group's suite.
    let kp = carol.key_package(Vec::new());
    let key_package = kp
        .key_package
        .tls_serialize_detached()
        .expect("encode")
        .len();
    let built = alice.build(&Intent::Add(vec![kp])).expect("a commit");
    alice.merge_pending();
    let sealed = sealed_welcome(&alice, &built, 0, [0; 32]);
    let enc = usize::from(u16::from_be_bytes([sealed[1], sealed[2]]));
    let joined = carol.open_and_join(&sealed).expect("carol joins");
    assert_eq!(joined.group.ciphersuite(), suite);
    carol.group = Some(joined.group);
    assert_eq!(carol.epoch(), alice.epoch());
    // A commit Carol processes, then a message she reads.
    let update = alice
        .build(&Intent::SelfUpdate { rotate: false })
        .expect("a commit");
    alice.merge_pending();
    assert!(matches!(
        carol.decide(&update.payload, &no_documents()),
        EnvelopeOutcome::Merged { .. }
    ));
    let (message, sent) = alice.message("hello");
    match carol.decide(&message, &no_documents()) {
        EnvelopeOutcome::Message { content, .. } => assert_eq!(*content, sent),
        other => panic!("expected the message, got {other:?}"),
    }
    Sizes {
        key_package,
        add_commit: unpadded(&built.payload),
        add_commit_padded: built.payload.len(),
        welcome: built.pending.plan.welcome.len(),
        sealed: sealed.len(),
        enc,
        update_commit: unpadded(&update.payload),
        message: unpadded(&message),
    }
}

#[test]
fn both_suites_join_commit_and_talk_and_x_wing_seals_with_x_wing() {
    let classic = run(CLASSIC);
    let xwing = run(XWING);
    // The sealed welcome's `enc` is the KEM's: 32 bytes for DHKEM(X25519), the 1120-byte
    // X-Wing ciphertext (ML-KEM-768 1088 + X25519 32) for X-Wing.
    assert_eq!(classic.enc, 32);
    assert_eq!(xwing.enc, 1120);
    // The KeyPackage carries a 1216-byte X-Wing init key instead of 32 bytes.
    assert!(xwing.key_package >= classic.key_package + 1184);
    // Path secrets are encrypted to X-Wing keys: commits with a path grow.
    assert!(xwing.update_commit > classic.update_commit + 1000);
    for s in [&classic, &xwing] {
        // Padding follows the larger objects into larger buckets (§11.5).
        assert_eq!(
            s.add_commit_padded,
            crate::content::padded_len(s.add_commit, super::MAX)
        );
        // The sealed welcome: 1 + 2 + enc + 4 + (plaintext with the Welcome) + tag.
        assert!(s.sealed > s.welcome + s.enc);
        // Application messages do not depend on the suite's KEM.
        assert!(s.message < 512);
    }
    eprintln!("sizes (bytes), 3 members: classic {classic:?}\nX-Wing {xwing:?}");
}
