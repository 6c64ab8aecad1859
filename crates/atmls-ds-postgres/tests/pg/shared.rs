//! State shared across processes: what one store (process) accepted, another knows.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use atmls_ds::store::{Claimed, GroupClaim, SavedNonce, SharedNonce, Store};
use atmls_ds::{EnvelopeKind, MailboxId, Timestamp};
use atmls_ds_postgres::{
    JtiVerdict, NonceClaim, NonceShares, NonceVerdict, RateLimit, RateScope, RateVerdict,
};

use atmls_testkit::ds_store::{batch, group};

use crate::common::{count, fresh_schema, store_in};

const SHARES: NonceShares = NonceShares {
    per_key: 3,
    per_mailbox: 4,
};

fn claim(key: u8, nonce: u8, mailbox: u8, expires: u64) -> NonceClaim {
    NonceClaim {
        key: [key; 32],
        nonce: [nonce; 16],
        mailbox: MailboxId::from_bytes([mailbox; 32]),
        expires: Timestamp::from_millis(expires),
    }
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

#[test]
fn a_nonce_used_in_one_process_is_a_replay_in_another() {
    let schema = fresh_schema();
    let (a, b) = (store_in(&schema), store_in(&schema));
    let c = claim(1, 1, 1, 1000);
    assert_eq!(
        a.claim_nonce(&c, SHARES, at(0)).unwrap(),
        NonceVerdict::Fresh
    );
    assert_eq!(
        b.claim_nonce(&c, SHARES, at(10)).unwrap(),
        NonceVerdict::Replayed
    );
    // Kept through its expiry, forgotten after it.
    assert_eq!(
        b.claim_nonce(&c, SHARES, at(1000)).unwrap(),
        NonceVerdict::Replayed
    );
    let later = claim(1, 1, 1, 3000);
    assert_eq!(
        b.claim_nonce(&later, SHARES, at(1001)).unwrap(),
        NonceVerdict::Fresh
    );
    // A restarted process (a new store) forgets nothing.
    drop(a);
    let again = store_in(&schema);
    assert_eq!(
        again.claim_nonce(&later, SHARES, at(1002)).unwrap(),
        NonceVerdict::Replayed
    );
}

#[test]
fn shares_hold_across_processes() {
    let schema = fresh_schema();
    let (a, b) = (store_in(&schema), store_in(&schema));
    // Key 1 may hold 3 entries, wherever they were made.
    for (n, s) in [(1, &a), (2, &b), (3, &a)] {
        assert_eq!(
            s.claim_nonce(&claim(1, n, 1, 100), SHARES, at(0)).unwrap(),
            NonceVerdict::Fresh
        );
    }
    assert_eq!(
        b.claim_nonce(&claim(1, 4, 2, 100), SHARES, at(0)).unwrap(),
        NonceVerdict::KeyShareFull
    );
    // Mailbox 1 holds 3; one more from another key fills it.
    assert_eq!(
        b.claim_nonce(&claim(2, 1, 1, 100), SHARES, at(0)).unwrap(),
        NonceVerdict::Fresh
    );
    assert_eq!(
        a.claim_nonce(&claim(3, 1, 1, 100), SHARES, at(0)).unwrap(),
        NonceVerdict::MailboxShareFull
    );
    // Others are not affected.
    assert_eq!(
        a.claim_nonce(&claim(3, 1, 2, 100), SHARES, at(0)).unwrap(),
        NonceVerdict::Fresh
    );
    // A released claim frees its share; expired ones stop counting and are swept.
    assert!(a.release_nonce(&[1; 32], &[3; 16]).unwrap());
    assert!(!a.release_nonce(&[1; 32], &[3; 16]).unwrap());
    assert_eq!(
        b.claim_nonce(&claim(1, 5, 2, 100), SHARES, at(0)).unwrap(),
        NonceVerdict::Fresh
    );
    assert_eq!(
        b.claim_nonce(&claim(1, 6, 2, 300), SHARES, at(101))
            .unwrap(),
        NonceVerdict::Fresh
    );
    let swept = a.sweep(at(101), Duration::from_secs(60)).unwrap();
    assert_eq!(swept.nonces, 5);
}

/// Many processes claim the same nonce at once: exactly one wins. Many claim distinct
/// nonces of one key at once: exactly the share wins.
#[test]
fn concurrent_claims_are_exact() {
    let schema = fresh_schema();
    let stores: Vec<_> = (0..4).map(|_| Arc::new(store_in(&schema))).collect();
    for same_nonce in [true, false] {
        let start = Arc::new(Barrier::new(8));
        let key = if same_nonce { 7 } else { 8 };
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let (s, start) = (stores[usize::from(i) % 4].clone(), start.clone());
                std::thread::spawn(move || {
                    let c = claim(key, if same_nonce { 1 } else { i }, 9 + i, 100);
                    start.wait();
                    s.claim_nonce(&c, SHARES, at(0)).unwrap()
                })
            })
            .collect();
        let fresh = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|v| *v == NonceVerdict::Fresh)
            .count();
        assert_eq!(
            fresh,
            if same_nonce { 1 } else { 3 },
            "same nonce: {same_nonce}"
        );
    }
}

#[test]
fn service_auth_token_ids_are_shared() {
    let schema = fresh_schema();
    let (a, b) = (store_in(&schema), store_in(&schema));
    assert_eq!(
        a.claim_jti("did:plc:a", "j1", 100, 10, 2).unwrap(),
        JtiVerdict::Fresh
    );
    assert_eq!(
        b.claim_jti("did:plc:a", "j1", 100, 11, 2).unwrap(),
        JtiVerdict::Replayed
    );
    assert_eq!(
        b.claim_jti("did:plc:b", "j1", 100, 11, 2).unwrap(),
        JtiVerdict::Fresh
    );
    assert_eq!(
        b.claim_jti("did:plc:a", "j2", 100, 11, 2).unwrap(),
        JtiVerdict::Fresh
    );
    assert_eq!(
        a.claim_jti("did:plc:a", "j3", 100, 12, 2).unwrap(),
        JtiVerdict::IssuerShareFull
    );
    // After the tokens expired (seconds): usable again, and swept.
    assert_eq!(
        a.claim_jti("did:plc:a", "j1", 300, 101, 2).unwrap(),
        JtiVerdict::Fresh
    );
    let swept = b.sweep(at(101_000), Duration::from_secs(60)).unwrap();
    assert_eq!(swept.jtis, 2);
}

#[test]
fn rate_windows_are_shared_and_exact() {
    let schema = fresh_schema();
    let (a, b) = (store_in(&schema), store_in(&schema));
    let limit = RateLimit {
        window: Duration::from_secs(60),
        count: 3,
        bytes: 100,
    };
    let inbox = [5u8; 32];
    let take = |s: &atmls_ds_postgres::PgStore, len, now| {
        s.take_rate(RateScope::InboxDeposits, &inbox, len, at(now), limit)
            .unwrap()
    };
    let allowed = |v| matches!(v, RateVerdict::Allowed { .. });
    assert!(allowed(take(&a, 10, 1000)));
    assert!(allowed(take(&b, 10, 2000)));
    let third = take(&a, 10, 3000);
    assert_eq!(
        third,
        RateVerdict::Allowed {
            window_start: at(1000)
        }
    );
    assert_eq!(
        take(&b, 10, 4000),
        RateVerdict::Limited {
            retry_after: Duration::from_millis(57_000)
        }
    );
    // A write that failed gives its count back.
    a.give_back_rate(RateScope::InboxDeposits, &inbox, 10, at(1000))
        .unwrap();
    assert!(allowed(take(&b, 10, 5000)));
    // Bytes: 40 used of 100; 61 more would pass.
    let other = [6u8; 32];
    let t = |s: &atmls_ds_postgres::PgStore, len, now| {
        s.take_rate(RateScope::InboxDeposits, &other, len, at(now), limit)
            .unwrap()
    };
    assert!(allowed(t(&a, 60, 0)));
    assert!(!allowed(t(&b, 41, 1)));
    assert!(allowed(t(&b, 40, 1)));
    assert!(
        !allowed(t(&a, 101, 100_000)),
        "larger than a window's bytes"
    );
    // A new window after the old one ended.
    assert!(allowed(take(&b, 10, 61_000)));
    // The other scope is counted apart.
    assert!(allowed(
        a.take_rate(RateScope::Principal, &inbox, 0, at(4000), limit)
            .unwrap()
    ));
    // Concurrent takes from four processes let through exactly the limit.
    let stores: Vec<_> = (0..4).map(|_| Arc::new(store_in(&schema))).collect();
    let start = Arc::new(Barrier::new(12));
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let (s, start) = (stores[i % 4].clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                s.take_rate(RateScope::Principal, b"did:plc:z", 1, at(500), limit)
                    .unwrap()
            })
        })
        .collect();
    let through = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|v| matches!(v, RateVerdict::Allowed { .. }))
        .count();
    assert_eq!(through, 3);
}

fn saved(key: u8, nonce: u8, mailbox: &MailboxId, expires: u64) -> SavedNonce {
    SavedNonce {
        key: [key; 32],
        nonce: [nonce; 16],
        mailbox: *mailbox,
        expires: Timestamp::from_millis(expires),
    }
}

const STORE_SHARES: atmls_ds::store::NonceShares = atmls_ds::store::NonceShares {
    per_key: 3,
    per_mailbox: 4,
};

/// Claims written with a group commit: they commit with the appends, are replays for
/// every other process afterwards, and a claim another process made first refuses its
/// append and writes nothing of the group.
#[test]
fn claims_commit_with_the_group_or_not_at_all() {
    let schema = fresh_schema();
    let (mut a, mut b) = (store_in(&schema), store_in(&schema));
    let (g1, g2) = (group(1), group(2));
    a.create_mailbox("x", 10, &g1).unwrap();
    a.create_mailbox("x", 10, &g2).unwrap();
    let claims = [
        GroupClaim {
            entry: saved(1, 1, &g1.id, 1000),
            append: Some(0),
        },
        GroupClaim {
            entry: saved(2, 1, &g2.id, 1000),
            append: None,
        },
    ];
    let first = batch(&g1, EnvelopeKind::Message, 1, 1);
    assert_eq!(
        a.append_claimed(std::slice::from_ref(&first), &claims, STORE_SHARES, at(0))
            .unwrap(),
        Claimed::Written(vec![SharedNonce::Fresh, SharedNonce::Fresh])
    );
    // Both claims are replays at the other process now.
    for c in &claims {
        assert_eq!(
            Store::claim_nonce(&b, &c.entry, STORE_SHARES, at(1)).unwrap(),
            SharedNonce::Replayed
        );
    }
    // B's group: a fresh claim and append for g2, and a replayed claim tied to an append
    // to g1. Nothing of it is written.
    let g1_after = a.mailbox(&g1.id).unwrap().unwrap();
    let group_b = [
        batch(&g2, EnvelopeKind::Message, 1, 2),
        batch(&g1_after, EnvelopeKind::Message, 1, 2),
    ];
    let claims_b = [
        GroupClaim {
            entry: saved(2, 2, &g2.id, 1000),
            append: Some(0),
        },
        GroupClaim {
            entry: saved(1, 1, &g1.id, 1000),
            append: Some(1),
        },
    ];
    let refused = b
        .append_claimed(&group_b, &claims_b, STORE_SHARES, at(2))
        .unwrap();
    assert_eq!(
        refused,
        Claimed::Refused(vec![SharedNonce::Fresh, SharedNonce::Replayed])
    );
    assert_eq!(b.mailbox(&g2.id).unwrap().unwrap().head, 0);
    assert_eq!(b.mailbox(&g1.id).unwrap().unwrap().head, 1);
    // The fresh claim of the refused group was not recorded either.
    assert_eq!(
        Store::claim_nonce(&a, &claims_b[0].entry, STORE_SHARES, at(3)).unwrap(),
        SharedNonce::Fresh
    );
}

/// The share counters always equal the rows they count, through claims, reuse of an
/// expired pair for another mailbox, releases and sweeps; a share is decided on the
/// unexpired entries only.
#[test]
fn share_counters_follow_the_rows() {
    let schema = fresh_schema();
    let (a, b) = (store_in(&schema), store_in(&schema));
    let check = || {
        for (class, column) in [(0, "key"), (1, "mailbox")] {
            let drift = count(
                &schema,
                &format!(
                    "SELECT count(*) FROM (
                         SELECT {column} AS subject, count(*) AS n FROM replay_nonces
                         GROUP BY {column}) r
                     FULL JOIN (SELECT subject, entries FROM replay_shares
                                WHERE class = {class} AND entries > 0) s
                     ON r.subject = s.subject
                     WHERE r.n IS DISTINCT FROM s.entries"
                ),
            );
            assert_eq!(drift, 0, "class {class}");
        }
    };
    for n in 1..=3 {
        assert_eq!(
            a.claim_nonce(&claim(1, n, 1, 100), SHARES, at(0)).unwrap(),
            NonceVerdict::Fresh
        );
    }
    check();
    // The same pair after it expired, for another mailbox: reused, counted there.
    assert_eq!(
        b.claim_nonce(&claim(1, 1, 2, 300), SHARES, at(101))
            .unwrap(),
        NonceVerdict::Fresh
    );
    check();
    // Key 1 holds 3 rows, 2 of them expired: its share (3) is not full.
    assert_eq!(
        b.claim_nonce(&claim(1, 9, 3, 300), SHARES, at(101))
            .unwrap(),
        NonceVerdict::Fresh
    );
    assert_eq!(
        b.claim_nonce(&claim(1, 10, 3, 300), SHARES, at(101))
            .unwrap(),
        NonceVerdict::Fresh
    );
    assert_eq!(
        b.claim_nonce(&claim(1, 11, 3, 300), SHARES, at(101))
            .unwrap(),
        NonceVerdict::KeyShareFull
    );
    check();
    assert!(a.release_nonce(&[1; 32], &[9; 16]).unwrap());
    check();
    let swept = a.sweep(at(101), Duration::from_secs(60)).unwrap();
    assert_eq!(swept.nonces, 2);
    check();
    assert_eq!(
        count(
            &schema,
            "SELECT count(*) FROM replay_shares WHERE entries = 0"
        ),
        0
    );
}
