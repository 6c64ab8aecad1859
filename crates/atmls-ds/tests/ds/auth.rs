//! Every rejection of a mailbox-key request, and the order in which they are checked.

use std::time::Duration;

use atmls_ds::auth::{DsMethod, RequestAuth, RequestToken, subscription_content};
use atmls_ds::{
    AuthError, DsConfig, MailboxId, OutgoingEnvelope, ReadError, SendEnvelopesError, Store,
    Timestamp,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::harness::{Harness, config, key};
use crate::on_both_stores;

fn auth_err(e: SendEnvelopesError) -> AuthError {
    match e {
        SendEnvelopesError::Auth(a) => a,
        other => panic!("expected an auth error, got {other:?}"),
    }
}

fn send_with(
    h: &mut Harness<impl Store>,
    mailbox: &MailboxId,
    header: Option<&str>,
    body: &[u8],
) -> Result<atmls_ds::SendReceipt, SendEnvelopesError> {
    let now = h.now;
    h.ds.send_envelopes(
        mailbox,
        &RequestAuth::from_header(header, body),
        vec![OutgoingEnvelope::message(b"m".to_vec())],
        now,
    )
}

fn missing_and_malformed_tokens<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let e = send_with(&mut h, &mb, None, b"x").unwrap_err();
    assert_eq!(e.name(), "AuthRequired");
    let e = send_with(&mut h, &mb, Some("Bearer abc"), b"x").unwrap_err();
    assert_eq!(auth_err(e), AuthError::AuthRequired);
    for bad in [
        "ChatMls-Mailbox ".to_string(),
        "ChatMls-Mailbox !!!".to_string(),
        format!("ChatMls-Mailbox {}", URL_SAFE_NO_PAD.encode([0u8; 119])),
        format!("ChatMls-Mailbox {}", URL_SAFE_NO_PAD.encode([0u8; 121])),
        // Right length, but padded standard base64 characters.
        format!(
            "ChatMls-Mailbox {}+/",
            &URL_SAFE_NO_PAD.encode([0u8; 120])[..158]
        ),
    ] {
        let e = send_with(&mut h, &mb, Some(&bad), b"x").unwrap_err();
        assert_eq!(auth_err(e), AuthError::BadToken, "{bad}");
    }
    assert_eq!(AuthError::BadToken.name(), "BadToken");
}

fn timestamps_outside_the_window<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let max = config().request_max_age();
    let body = b"b";
    let now = h.now;
    for (ts, ok) in [
        (now.saturating_sub(max), true),
        (now.saturating_add(max), true),
        (now.saturating_sub(max + Duration::from_millis(1)), false),
        (now.saturating_add(max + Duration::from_millis(1)), false),
        (Timestamp::EPOCH, false),
        (Timestamp::from_millis(u64::MAX), false),
    ] {
        let nonce = h.next_nonce();
        let t = RequestToken::sign(&k, DsMethod::SendEnvelopes, &mb, ts, nonce, body);
        let r = send_with(&mut h, &mb, Some(&t.authorization_header()), body);
        if ok {
            r.expect("inside the window");
        } else {
            let e = auth_err(r.unwrap_err());
            assert!(matches!(e, AuthError::RequestExpired { .. }), "{e:?}");
            assert_eq!(e.name(), "RequestExpired");
        }
    }
}

fn signatures_cover_method_mailbox_and_content<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let other = h.group("did:plc:a", &k, 0);
    // Content differs.
    let t = h.token(&k, DsMethod::SendEnvelopes, &mb, b"body");
    let e = send_with(&mut h, &mb, Some(&t.authorization_header()), b"bodY").unwrap_err();
    assert_eq!(auth_err(e), AuthError::BadSignature);
    // Method differs.
    let t = h.token(&k, DsMethod::GetEnvelopes, &mb, b"body");
    let e = send_with(&mut h, &mb, Some(&t.authorization_header()), b"body").unwrap_err();
    assert_eq!(auth_err(e), AuthError::BadSignature);
    // Mailbox differs (same key registered on both).
    let t = h.token(&k, DsMethod::SendEnvelopes, &other, b"body");
    let e = send_with(&mut h, &mb, Some(&t.authorization_header()), b"body").unwrap_err();
    assert_eq!(auth_err(e), AuthError::BadSignature);
    // A flipped signature bit; a key that is not a curve point.
    let t = h.token(&k, DsMethod::SendEnvelopes, &mb, b"body");
    for pos in [119usize, 0] {
        let mut raw = t.to_bytes();
        raw[pos] ^= 1;
        let text = format!("ChatMls-Mailbox {}", URL_SAFE_NO_PAD.encode(raw));
        let e = send_with(&mut h, &mb, Some(&text), b"body").unwrap_err();
        assert_eq!(auth_err(e), AuthError::BadSignature);
    }
    // The untampered token still works: failed attempts did not burn its nonce.
    send_with(&mut h, &mb, Some(&t.authorization_header()), b"body").expect("valid");
}

fn check_order<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let stranger = key(9);
    let mb = h.group("did:plc:a", &k, 0);
    let unknown = MailboxId::from_bytes([0xab; 32]);
    // Expired and badly signed: the timestamp is checked first.
    let old = h.now.saturating_sub(Duration::from_secs(3600));
    let t = RequestToken::sign(&k, DsMethod::SendEnvelopes, &mb, old, [0; 16], b"a");
    let e = send_with(&mut h, &mb, Some(&t.authorization_header()), b"b").unwrap_err();
    assert!(matches!(auth_err(e), AuthError::RequestExpired { .. }));
    // Unknown mailbox with a stranger's key: MailboxNotFound before any key check.
    let t = h.token(&stranger, DsMethod::SendEnvelopes, &unknown, b"a");
    let e = send_with(&mut h, &unknown, Some(&t.authorization_header()), b"a").unwrap_err();
    assert_eq!(e.name(), "MailboxNotFound");
    // Unknown mailbox but a bad signature: the signature is checked first.
    let t = h.token(&stranger, DsMethod::SendEnvelopes, &unknown, b"a");
    let e = send_with(&mut h, &unknown, Some(&t.authorization_header()), b"z").unwrap_err();
    assert_eq!(e.name(), "BadSignature");
    // A key never registered here.
    let e = h.send_message(&stranger, &mb, b"x").unwrap_err();
    assert_eq!(auth_err(e), AuthError::KeyExpired);
    let e = h.read(&stranger, &mb, 0, 10).unwrap_err();
    assert!(matches!(e, ReadError::Auth(AuthError::KeyExpired)));
    assert_eq!(e.name(), "KeyExpired");
}

fn replays_are_refused<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let t = h.token(&k, DsMethod::SendEnvelopes, &mb, b"body");
    let header = t.authorization_header();
    assert_eq!(
        send_with(&mut h, &mb, Some(&header), b"body")
            .unwrap()
            .first_seq,
        1
    );
    let e = send_with(&mut h, &mb, Some(&header), b"body").unwrap_err();
    assert_eq!(auth_err(e), AuthError::ReplayedRequest);
    assert_eq!(AuthError::ReplayedRequest.name(), "ReplayedRequest");
    // Still refused at the edge of the timestamp window.
    h.advance(config().request_max_age());
    let e = send_with(&mut h, &mb, Some(&header), b"body").unwrap_err();
    assert_eq!(auth_err(e), AuthError::ReplayedRequest);
    // Beyond it, the timestamp check refuses it.
    h.advance(Duration::from_millis(1));
    let e = send_with(&mut h, &mb, Some(&header), b"body").unwrap_err();
    assert!(matches!(auth_err(e), AuthError::RequestExpired { .. }));
    // Only one envelope was stored.
    assert_eq!(h.info(&k, &mb).unwrap().seq, 1);
    // A token dated max age ahead is replayable until 2 x max age after its first use:
    // the cache still holds it then.
    let max = config().request_max_age();
    let ahead = h.now.saturating_add(max);
    let t = RequestToken::sign(&k, DsMethod::SendEnvelopes, &mb, ahead, [9; 16], b"f");
    let header = t.authorization_header();
    send_with(&mut h, &mb, Some(&header), b"f").unwrap();
    h.advance(max * 2);
    let e = send_with(&mut h, &mb, Some(&header), b"f").unwrap_err();
    assert_eq!(auth_err(e), AuthError::ReplayedRequest);
    h.advance(Duration::from_millis(1));
    let e = send_with(&mut h, &mb, Some(&header), b"f").unwrap_err();
    assert!(matches!(auth_err(e), AuthError::RequestExpired { .. }));
    // The same nonce with another key is a different request.
    let k2 = key(2);
    let mb2 = h.group("did:plc:a", &k2, 0);
    let nonce = [5; 16];
    let now = h.now;
    let a = RequestToken::sign(&k, DsMethod::SendEnvelopes, &mb, now, nonce, b"q");
    let b = RequestToken::sign(&k2, DsMethod::SendEnvelopes, &mb2, now, nonce, b"q");
    send_with(&mut h, &mb, Some(&a.authorization_header()), b"q").unwrap();
    send_with(&mut h, &mb2, Some(&b.authorization_header()), b"q").unwrap();
}

fn full_replay_cache_refuses<S: Store>(store: S) {
    let mut h = Harness::with_config(store, config().with_replay_cache_capacity(3));
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    for _ in 0..3 {
        h.send_message(&k, &mb, b"x").unwrap();
    }
    let e = h.send_message(&k, &mb, b"x").unwrap_err();
    assert_eq!(auth_err(e), AuthError::ReplayCacheFull);
    assert_eq!(AuthError::ReplayCacheFull.name(), "RateLimitExceeded");
    // Entries live 2 x max age; then there is room again.
    h.advance(config().request_max_age() * 2);
    assert!(h.send_message(&k, &mb, b"x").is_err());
    h.advance(Duration::from_millis(1));
    h.send_message(&k, &mb, b"x").unwrap();
}

fn subscriptions<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    h.send_message(&k, &mb, b"x").unwrap();
    let query = format!("mailbox={mb}&cursor=0&auth=TOKEN");
    let content = subscription_content(&query);
    let t = h.token(&k, DsMethod::SubscribeEnvelopes, &mb, content.as_bytes());
    let text = t.encode();
    let now = h.now;
    let sub =
        h.ds.authorize_subscription(
            &mb,
            &RequestAuth::from_token(Some(&text), content.as_bytes()),
            Some(0),
            now,
        )
        .unwrap();
    assert_eq!(sub.cursor, 0);
    h.ds.check_subscription(&sub, now).unwrap();
    // A cursor beyond the head.
    let t = h.token(&k, DsMethod::SubscribeEnvelopes, &mb, content.as_bytes());
    let text = t.encode();
    let e =
        h.ds.authorize_subscription(
            &mb,
            &RequestAuth::from_token(Some(&text), content.as_bytes()),
            Some(2),
            now,
        )
        .unwrap_err();
    assert_eq!(e.name(), "FutureCursor");
    // No cursor: live from the head.
    let t = h.token(&k, DsMethod::SubscribeEnvelopes, &mb, content.as_bytes());
    let text = t.encode();
    let sub =
        h.ds.authorize_subscription(
            &mb,
            &RequestAuth::from_token(Some(&text), content.as_bytes()),
            None,
            now,
        )
        .unwrap();
    assert_eq!(sub.cursor, 1);
    // After a commit and the grace window, the old key's subscription is refused.
    h.send(
        &k,
        &mb,
        vec![OutgoingEnvelope::commit(
            0,
            b"c".to_vec(),
            crate::harness::public(&key(2)),
        )],
    )
    .unwrap();
    h.ds.check_subscription(&sub, h.now).unwrap();
    h.advance(config().key_grace());
    let e = h.ds.check_subscription(&sub, h.now).unwrap_err();
    assert_eq!(e.name(), "KeyExpired");
    // The ended epoch's key may still subscribe to its backlog, up to its end (seq 2).
    let now = h.now;
    let subscribe = |h: &mut Harness<S>, cursor| {
        let t = h.token(&k, DsMethod::SubscribeEnvelopes, &mb, content.as_bytes());
        let text = t.encode();
        h.ds.authorize_subscription(
            &mb,
            &RequestAuth::from_token(Some(&text), content.as_bytes()),
            cursor,
            now,
        )
    };
    let sub = subscribe(&mut h, Some(0)).unwrap();
    assert_eq!((sub.cursor, sub.end_seq), (0, Some(2)));
    let e = h.ds.check_subscription(&sub, now).unwrap_err();
    assert_eq!(e.name(), "KeyExpired");
    for cursor in [None, Some(2), Some(3)] {
        let e = subscribe(&mut h, cursor).unwrap_err();
        assert_eq!(e.name(), "KeyExpired", "{cursor:?}");
    }
}

fn default_config_matches_spec<S: Store>(_store: S) {
    let c = DsConfig::default();
    assert_eq!(c.max_envelope_bytes(), 1_048_576);
    assert_eq!(c.max_batch_envelopes(), 100);
    assert_eq!(c.inbox_deposits_per_minute(), 60);
    assert_eq!(c.key_grace(), Duration::from_secs(60));
    assert_eq!(c.request_max_age(), Duration::from_secs(120));
}

on_both_stores!(
    missing_and_malformed_tokens,
    timestamps_outside_the_window,
    signatures_cover_method_mailbox_and_content,
    check_order,
    replays_are_refused,
    full_replay_cache_refuses,
    subscriptions,
    default_config_matches_spec,
);

#[test]
fn mailbox_ids_round_trip_and_reject() {
    use rand::SeedableRng as _;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let id = MailboxId::random(&mut rng);
        let text = id.to_string();
        assert_eq!(text.len(), 52);
        assert!(text.bytes().all(|c| matches!(c, b'a'..=b'z' | b'2'..=b'7')));
        assert_eq!(text.parse::<MailboxId>().unwrap(), id);
    }
    for bad in [
        "",
        "abc",
        &"A".repeat(52),
        &"1".repeat(52),
        &format!("{}=", "a".repeat(51)),
    ] {
        assert!(bad.parse::<MailboxId>().is_err(), "{bad}");
    }
}
