//! Issue 14, holes 1 and 6 in the core: every value the core accepts is storable by every
//! backend, and every shared resource gives one principal only a bounded share.

use std::time::Duration;

use atmls_ds::auth::{DsMethod, RequestAuth, RequestSource};
use atmls_ds::{
    CreateMailboxError, EnvelopeRule, MAX_EPOCH, MailboxFull, MailboxKind, OutgoingEnvelope,
    SendEnvelopesError, SendWelcomeError, Store,
};

use crate::harness::{Harness, config, key, public};
use crate::on_both_stores;

on_both_stores!(
    epochs_are_bounded_where_every_backend_can_store_them,
    a_mailbox_holds_at_most_its_bytes,
    an_inbox_takes_a_bounded_byte_rate,
    replay_cache_shares,
);

fn epochs_are_bounded_where_every_backend_can_store_them<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    // 2^63 - 1 used to be accepted, and a commit on it then failed the store's write.
    for epoch in [(1u64 << 63) - 1, u64::MAX, MAX_EPOCH + 1] {
        let e =
            h.ds.create_mailbox("did:plc:a", MailboxKind::Group, &public(&k), epoch)
                .unwrap_err();
        assert!(
            matches!(
                e,
                CreateMailboxError::EpochOutOfRange { max: MAX_EPOCH, .. }
            ),
            "{e:?}"
        );
        assert_eq!(e.name(), "InvalidRequest");
    }
    // An inbox ignores the epoch.
    h.ds.create_mailbox("did:plc:a", MailboxKind::Inbox, &public(&k), u64::MAX)
        .expect("inbox");
    // The largest epoch is storable, but no commit may move past it.
    let top = h.group("did:plc:a", &k, MAX_EPOCH);
    let e = h
        .send(
            &k,
            &top,
            vec![OutgoingEnvelope::commit(
                MAX_EPOCH,
                b"c".to_vec(),
                public(&key(2)),
            )],
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            SendEnvelopesError::InvalidEnvelope {
                index: 0,
                rule: EnvelopeRule::EpochOverflow
            }
        ),
        "{e:?}"
    );
    // One below moves to it, and the store holds it.
    let below = h.group("did:plc:a", &k, MAX_EPOCH - 1);
    let r = h
        .send(
            &k,
            &below,
            vec![OutgoingEnvelope::commit(
                MAX_EPOCH - 1,
                b"c".to_vec(),
                public(&key(2)),
            )],
        )
        .expect("commit");
    assert_eq!(r.epoch, MAX_EPOCH);
    assert_eq!(h.info(&key(2), &below).unwrap().epoch, Some(MAX_EPOCH));
}

fn a_mailbox_holds_at_most_its_bytes<S: Store>(store: S) {
    // 1024-byte envelopes, 3000 bytes per mailbox.
    let mut h = Harness::with_config(store, config().with_max_mailbox_bytes(3000));
    let (k, owner) = (key(1), key(2));
    let group = h.group("did:plc:a", &k, 0);
    let msg = |n| OutgoingEnvelope::message(vec![7; n]);
    h.send(&k, &group, vec![msg(1000), msg(1000)])
        .expect("2000 bytes");
    let e = h.send(&k, &group, vec![msg(600), msg(600)]).unwrap_err();
    assert!(
        matches!(
            e,
            SendEnvelopesError::MailboxFull(MailboxFull::Bytes {
                stored: 2000,
                adding: 1200,
                max: 3000
            })
        ),
        "{e:?}"
    );
    assert_eq!(e.name(), "MailboxFull");
    // Exactly up to the cap is fine; other mailboxes are unaffected.
    h.send(&k, &group, vec![msg(1000)]).expect("3000 bytes");
    h.send(&k, &group, vec![msg(1)]).unwrap_err();
    let other = h.group("did:plc:a", &key(3), 0);
    h.send(&key(3), &other, vec![msg(1000)])
        .expect("another mailbox");

    // An inbox: full until its owner deletes, then room again.
    let inbox = h.inbox("did:plc:a", &owner);
    h.welcome(&inbox, &[1; 1000]).unwrap();
    h.welcome(&inbox, &[1; 1000]).unwrap();
    h.welcome(&inbox, &[1; 1000]).unwrap();
    let e = h.welcome(&inbox, &[1; 10]).unwrap_err();
    assert!(matches!(e, SendWelcomeError::MailboxFull(_)), "{e:?}");
    assert_eq!(h.delete(&owner, &inbox, &[1, 2]).unwrap(), 2);
    assert_eq!(
        h.ds.store().mailbox(&inbox).unwrap().unwrap().stored_bytes,
        1000
    );
    h.welcome(&inbox, &[1; 1000]).expect("room after deletion");

    // Retention frees bytes too.
    let mut h2 = h;
    h2.advance(Duration::from_secs(1));
    let mut cfg_h = Harness::with_config(
        crate::harness::memory_store(),
        config()
            .with_max_mailbox_bytes(1000)
            .with_group_retention(Some(Duration::from_secs(10))),
    );
    let g = cfg_h.group("did:plc:a", &k, 0);
    cfg_h.send(&k, &g, vec![msg(1000)]).unwrap();
    cfg_h.send(&k, &g, vec![msg(1)]).unwrap_err();
    cfg_h.advance(Duration::from_secs(11));
    let now = cfg_h.now;
    assert_eq!(cfg_h.ds.expire(now).unwrap().group_envelopes, 1);
    cfg_h
        .send(&k, &g, vec![msg(1000)])
        .expect("room after expiry");
    drop(h2);
}

fn an_inbox_takes_a_bounded_byte_rate<S: Store>(store: S) {
    let mut h = Harness::with_config(
        store,
        config()
            .with_inbox_deposits_per_minute(100)
            .with_inbox_deposit_bytes_per_minute(2500),
    );
    let inbox = h.inbox("did:plc:a", &key(2));
    h.welcome(&inbox, &[1; 1000]).unwrap();
    h.welcome(&inbox, &[1; 1000]).unwrap();
    let e = h.welcome(&inbox, &[1; 1000]).unwrap_err();
    assert!(
        matches!(e, SendWelcomeError::RateLimitExceeded { .. }),
        "{e:?}"
    );
    // Another inbox has its own share.
    let other = h.inbox("did:plc:a", &key(3));
    h.welcome(&other, &[1; 1000]).unwrap();
    h.advance(Duration::from_secs(61));
    h.welcome(&inbox, &[1; 1000]).expect("next window");
}

/// Before: one key signing ~1,100 requests/s filled the whole replay cache and every
/// other key got `RateLimitExceeded`.
fn replay_cache_shares<S: Store>(store: S) {
    let mut h = Harness::with_config(
        store,
        config()
            .with_max_mailboxes_per_account(100)
            .with_replay_cache_capacity(100)
            .with_replay_share_per_key(10)
            .with_replay_share_per_mailbox(15)
            .with_replay_share_per_source(20),
    );
    let (attacker, honest) = (key(1), key(2));
    let a = h.group("did:plc:evil", &attacker, 0);
    for _ in 0..10 {
        h.info(&attacker, &a).expect("within the key's share");
    }
    let e = h.info(&attacker, &a).unwrap_err();
    assert_eq!(e.name(), "RateLimitExceeded");
    // The same key on a second mailbox is still over its share.
    let a2 = h.group("did:plc:evil", &attacker, 0);
    assert_eq!(
        h.info(&attacker, &a2).unwrap_err().name(),
        "RateLimitExceeded"
    );
    // Other keys of the same mailbox fill the mailbox's share (15), then stop.
    let k2 = key(3);
    let b = h.group("did:plc:evil", &k2, 0);
    for _ in 0..10 {
        h.info(&k2, &b).unwrap();
    }
    // An honest key is unaffected by all of it.
    let hm = h.group("did:plc:honest", &honest, 0);
    for _ in 0..10 {
        h.info(&honest, &hm).expect("honest key");
    }

    // From one source: its share (20) across keys and mailboxes.
    let src = RequestSource::from_ip("2001:db8::1".parse().unwrap());
    let from_source = |h: &mut Harness<S>, k: &ed25519_dalek::SigningKey, m| {
        let query = format!("mailbox={m}");
        let auth = h
            .token(k, DsMethod::GetMailbox, &m, query.as_bytes())
            .authorization_header();
        let checked = RequestAuth::from_header(Some(&auth), query.as_bytes())
            .check_signature(DsMethod::GetMailbox, &m)
            .with_source(src);
        let now = h.now;
        h.ds.mailbox(&m, &checked, now)
    };
    let mut accepted = 0;
    for n in 10..40u8 {
        let k = key(n);
        let m = h.group("did:plc:evil", &k, 0);
        if from_source(&mut h, &k, m).is_ok() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 20, "one source holds at most its share");
    // Honest traffic from elsewhere still fits.
    let fresh = key(99);
    let fm = h.group("did:plc:honest", &fresh, 0);
    h.info(&fresh, &fm)
        .expect("honest after the source's share");
    assert!(h.ds.replay_entries() <= 100);
}
