//! Device inboxes: anonymous deposits, rate limit, owner-key listing and deletion.

use std::time::Duration;

use atmls_ds::{
    AuthError, EnvelopeKind, EnvelopeRule, InboxError, MailboxKind, OutgoingEnvelope,
    SendEnvelopesError, SendWelcomeError, Store,
};

use crate::harness::{Harness, config, key};
use crate::on_both_stores;

fn deposits_and_listing<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let owner = key(1);
    let inbox = h.inbox("did:plc:a", &owner);
    assert_eq!(h.welcome(&inbox, b"w1").unwrap(), 1);
    assert_eq!(h.welcome(&inbox, b"w2").unwrap(), 2);
    let page = h.list(&owner, &inbox, 0).unwrap();
    assert_eq!(page.cursor, 2);
    assert_eq!(page.items.len(), 2);
    assert!(
        page.items
            .iter()
            .all(|e| e.kind == EnvelopeKind::Welcome && e.epoch.is_none())
    );
    assert_eq!(page.items[1].payload, b"w2");
    assert_eq!(h.list(&owner, &inbox, 1).unwrap().items.len(), 1);
    let e = h.list(&owner, &inbox, 3).unwrap_err();
    assert_eq!(e.name(), "FutureCursor");
    // getMailbox with the owner key; no epoch for an inbox.
    let info = h.info(&owner, &inbox).unwrap();
    assert_eq!(
        (info.kind, info.epoch, info.seq),
        (MailboxKind::Inbox, None, 2)
    );
}

fn only_the_owner<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let (owner, other) = (key(1), key(2));
    let inbox = h.inbox("did:plc:a", &owner);
    h.welcome(&inbox, b"w").unwrap();
    let e = h.list(&other, &inbox, 0).unwrap_err();
    assert!(matches!(e, InboxError::Auth(AuthError::NotOwner)));
    assert_eq!(e.name(), "NotOwner");
    assert_eq!(
        h.delete(&other, &inbox, &[1]).unwrap_err().name(),
        "NotOwner"
    );
    assert_eq!(h.info(&other, &inbox).unwrap_err().name(), "NotOwner");
    assert_eq!(
        h.read(&other, &inbox, 0, 10).unwrap_err().name(),
        "NotOwner"
    );
    // Nothing was deleted.
    assert_eq!(h.list(&owner, &inbox, 0).unwrap().items.len(), 1);
}

fn wrong_kinds<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let group = h.group("did:plc:a", &k, 0);
    let inbox = h.inbox("did:plc:a", &k);
    let e = h.welcome(&group, b"w").unwrap_err();
    assert!(matches!(e, SendWelcomeError::NotAnInbox));
    assert_eq!(e.name(), "NotAnInbox");
    assert_eq!(h.list(&k, &group, 0).unwrap_err().name(), "NotAnInbox");
    assert_eq!(h.delete(&k, &group, &[1]).unwrap_err().name(), "NotAnInbox");
    // An inbox accepts nothing but sendWelcome.
    let e = h
        .send(&k, &inbox, vec![OutgoingEnvelope::message(b"m".to_vec())])
        .unwrap_err();
    assert!(matches!(
        e,
        SendEnvelopesError::InvalidEnvelope {
            index: 0,
            rule: EnvelopeRule::NotAGroup
        }
    ));
    assert_eq!(h.info(&k, &inbox).unwrap().seq, 0);
}

fn welcome_size_limits<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let inbox = h.inbox("did:plc:a", &key(1));
    let max = config().max_envelope_bytes();
    let e = h.welcome(&inbox, &vec![0; max + 1]).unwrap_err();
    assert!(matches!(e, SendWelcomeError::EnvelopeTooLarge { .. }));
    assert_eq!(e.name(), "EnvelopeTooLarge");
    assert_eq!(h.welcome(&inbox, b"").unwrap_err().name(), "InvalidRequest");
    assert_eq!(h.welcome(&inbox, &vec![0; max]).unwrap(), 1);
}

fn deposit_rate_limit_and_window_reset<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let owner = key(1);
    let inbox = h.inbox("did:plc:a", &owner);
    let other = h.inbox("did:plc:b", &owner);
    let per_minute = config().inbox_deposits_per_minute();
    for i in 0..per_minute {
        h.welcome(&inbox, b"w").unwrap();
        h.advance(Duration::from_secs(1) * i);
    }
    // 0+1+2+3+4 = 10 s into the window.
    let e = h.welcome(&inbox, b"w").unwrap_err();
    assert!(
        matches!(
            e,
            SendWelcomeError::RateLimitExceeded {
                retry_after_ms: 50_000
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.name(), "RateLimitExceeded");
    // Refused deposits are not stored and do not count; another inbox is unaffected.
    assert_eq!(h.welcome(&other, b"w").unwrap(), 1);
    h.advance(Duration::from_millis(49_999));
    assert!(h.welcome(&inbox, b"w").is_err());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.welcome(&inbox, b"w").unwrap(), u64::from(per_minute) + 1);
    assert_eq!(
        h.list(&owner, &inbox, 0).unwrap().items.len(),
        per_minute as usize + 1
    );
}

fn deletion<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let owner = key(1);
    let inbox = h.inbox("did:plc:a", &owner);
    for _ in 0..4 {
        h.welcome(&inbox, b"w").unwrap();
    }
    assert_eq!(h.delete(&owner, &inbox, &[1, 3, 99]).unwrap(), 2);
    // Already gone is not an error.
    assert_eq!(h.delete(&owner, &inbox, &[1, 3]).unwrap(), 0);
    let page = h.list(&owner, &inbox, 0).unwrap();
    assert_eq!(
        page.items.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 4]
    );
    assert_eq!(
        h.delete(&owner, &inbox, &[]).unwrap_err().name(),
        "InvalidRequest"
    );
    assert_eq!(
        h.delete(&owner, &inbox, &[1; 101]).unwrap_err().name(),
        "InvalidRequest"
    );
    // Deleting everything does not rewind the sequence.
    assert_eq!(h.delete(&owner, &inbox, &[2, 4]).unwrap(), 2);
    assert_eq!(h.welcome(&inbox, b"w").unwrap(), 5);
    assert!(matches!(h.list(&owner, &inbox, 0).unwrap().items[..], [ref e] if e.seq == 5));
}

on_both_stores!(
    deposits_and_listing,
    only_the_owner,
    wrong_kinds,
    welcome_size_limits,
    deposit_rate_limit_and_window_reset,
    deletion,
);
