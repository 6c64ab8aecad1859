//! The replay cache across a clean stop (spec §10.2.1): saved into the store at the stop,
//! taken back at the next start; without a recorded clean stop, nothing comes back.

use std::time::Duration;

use atmls_ds::auth::{DsMethod, RequestAuth};
use atmls_ds::{AuthError, OutgoingEnvelope, Restart, SendEnvelopesError, Store};

use crate::harness::{Harness, config, key};
use crate::on_both_stores;

fn send(
    h: &mut Harness<impl Store>,
    mb: &atmls_ds::MailboxId,
    header: &str,
) -> Result<u64, AuthError> {
    let now = h.now;
    match h.ds.send_envelopes(
        mb,
        &RequestAuth::from_header(Some(header), b"body"),
        vec![OutgoingEnvelope::message(b"m".to_vec())],
        now,
    ) {
        Ok(r) => Ok(r.first_seq),
        Err(SendEnvelopesError::Auth(e)) => Err(e),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// A stop that saved the cache: a token used before it is still refused after it, and
/// the saved state is taken only once.
fn a_clean_stop_keeps_replays_refused<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let used = h
        .token(&k, DsMethod::SendEnvelopes, &mb, b"body")
        .authorization_header();
    assert_eq!(send(&mut h, &mb, &used), Ok(1));
    let stopped_at = h.now;
    assert_eq!(h.ds.save_replay(stopped_at).unwrap(), 1);

    // Restarted 10 s later over the same store.
    let store = h.ds.into_store();
    let mut h = Harness::new(store);
    h.now = stopped_at;
    h.advance(Duration::from_secs(10));
    let now = h.now;
    assert_eq!(
        h.ds.restore_replay(now).unwrap(),
        Restart::Restored { entries: 1 }
    );
    assert_eq!(send(&mut h, &mb, &used), Err(AuthError::ReplayedRequest));
    // This harness numbers nonces from 1 again: skip the one used before the stop.
    h.next_nonce();
    let fresh = h
        .token(&k, DsMethod::SendEnvelopes, &mb, b"body")
        .authorization_header();
    assert_eq!(send(&mut h, &mb, &fresh), Ok(2));

    // The record was taken: a start after this run (which did not stop cleanly) finds
    // none.
    let store = h.ds.into_store();
    let mut h = Harness::new(store);
    h.now = now;
    assert_eq!(h.ds.restore_replay(now).unwrap(), Restart::NoCleanStop);
}

/// Without a clean stop (a crash), nothing is restored: the caller's guard applies.
fn a_crash_restores_nothing<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let used = h
        .token(&k, DsMethod::SendEnvelopes, &mb, b"body")
        .authorization_header();
    assert_eq!(send(&mut h, &mb, &used), Ok(1));
    let now = h.now;
    let store = h.ds.into_store();
    let mut h = Harness::new(store);
    h.now = now;
    assert_eq!(h.ds.restore_replay(now).unwrap(), Restart::NoCleanStop);
    assert_eq!(h.ds.replay_entries(), 0);
}

/// Entries whose window passed while the service was stopped are not restored.
fn expired_entries_are_dropped<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let used = h
        .token(&k, DsMethod::SendEnvelopes, &mb, b"body")
        .authorization_header();
    assert_eq!(send(&mut h, &mb, &used), Ok(1));
    let now = h.now;
    h.ds.save_replay(now).unwrap();
    let store = h.ds.into_store();
    let mut h = Harness::new(store);
    h.now = now;
    h.advance(config().request_max_age() * 2 + Duration::from_millis(1));
    let later = h.now;
    assert_eq!(
        h.ds.restore_replay(later).unwrap(),
        Restart::Restored { entries: 0 }
    );
}

on_both_stores!(
    a_clean_stop_keeps_replays_refused,
    a_crash_restores_nothing,
    expired_entries_are_dropped,
);
