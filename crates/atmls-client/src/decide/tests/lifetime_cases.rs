//! The message lifetime in the group data (§11.18): set by an admin's commit, refused
//! from anyone else.

use openmls::prelude::tls_codec::Serialize as _;

use super::{MAX, Member, group_of, no_documents};
use crate::content;
use crate::decide::commit::{DataChange, Intent};
use crate::decide::envelope::{EnvelopeOutcome, Refusal};
use crate::error::PolicyViolation;
use crate::group::{self as grp, MessageLifetime};

fn lifetime(m: &Member) -> Option<MessageLifetime> {
    grp::group_data(m.group.as_ref().expect("a member").extensions())
        .expect("group data")
        .message_lifetime
}

#[test]
fn an_admin_sets_the_lifetime_and_every_member_sees_it() {
    let (mut alice, mut bob) = (Member::new("alice"), Member::new("bob"));
    group_of(&mut alice, &mut [&mut bob]);
    let day = MessageLifetime::from_seconds(86_400).expect("in bounds");
    let built = alice
        .build(&Intent::Update(DataChange {
            message_lifetime: Some(day),
            ..DataChange::default()
        }))
        .expect("a commit");
    assert!(matches!(
        bob.decide(&built.payload, &no_documents()),
        EnvelopeOutcome::Merged { .. }
    ));
    alice.merge_pending();
    assert_eq!((lifetime(&alice), lifetime(&bob)), (day, day));
}

#[test]
fn a_lifetime_change_by_a_non_admin_is_refused() {
    let (mut alice, mut bob) = (Member::new("alice"), Member::new("bob"));
    group_of(&mut alice, &mut [&mut bob]);
    let minute = MessageLifetime::from_seconds(60).expect("in bounds");
    // Bob is no admin: the intent is refused locally ...
    let me = bob.did.clone();
    let binder = bob.binder.clone();
    let change = Intent::Update(DataChange {
        message_lifetime: Some(minute),
        ..DataChange::default()
    });
    {
        let (provider, group, signer) = bob.parts();
        assert!(matches!(
            crate::decide::commit::build(&provider, group, signer, &me, &change, MAX, &binder),
            Err(crate::Error::NotAdmin)
        ));
    }
    // ... and the same change built around that check is refused by the receivers.
    let (provider, group, signer) = bob.parts();
    let mut data = grp::group_data(group.extensions()).expect("data");
    data.message_lifetime = minute;
    let extensions = grp::with_data(group.extensions(), &data).expect("extensions");
    let (out, _, _) = group
        .update_group_context_extensions(&provider, extensions, signer)
        .expect("commit");
    let payload = content::pad(out.tls_serialize_detached().expect("encode"), MAX);
    let before = alice.epoch();
    assert!(matches!(
        alice.decide(&payload, &no_documents()),
        EnvelopeOutcome::Refused(Refusal::Policy(PolicyViolation::NotAdmin(_)))
    ));
    assert_eq!(alice.epoch(), before);
    assert_eq!(lifetime(&alice), None);
}
