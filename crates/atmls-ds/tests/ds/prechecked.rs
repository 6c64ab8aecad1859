//! Signatures checked ahead of the core (`RequestAuth::check_signature` → `PreChecked`):
//! every request failing at several steps at once gets the same first error as through
//! `RequestAuth`, in the order of `docs/spec.md` §9.4.4.

use std::time::Duration;

use atmls_ds::auth::{DsMethod, PreChecked, RequestAuth, RequestToken};
use atmls_ds::{AuthError, MailboxId, OutgoingEnvelope, SendEnvelopesError, Store, Timestamp};
use ed25519_dalek::SigningKey;

use crate::harness::{Harness, key};
use crate::on_both_stores;

/// The outcome (first seq or error name) of a `sendEnvelopes` with `header` over `body`,
/// decided through a `PreChecked` and through `RequestAuth`. Both must agree.
fn send_both_ways(
    h: &mut Harness<impl Store>,
    mailbox: &MailboxId,
    header: Option<&str>,
    body: &[u8],
) -> Result<u64, String> {
    let now = h.now;
    let auth = RequestAuth::from_header(header, body);
    let checked = auth.check_signature(DsMethod::SendEnvelopes, mailbox);
    // The pre-check first: it must not consume the nonce before the direct path runs.
    let via_checked = send(h, mailbox, &checked, now);
    let direct =
        h.ds.send_envelopes(
            mailbox,
            &auth,
            vec![OutgoingEnvelope::message(b"m".to_vec())],
            now,
        )
        .map(|r| r.first_seq)
        .map_err(|e| e.name().to_string());
    match (&via_checked, &direct) {
        // A success through the pre-check records the nonce: the direct path is a replay.
        (Ok(_), Err(name)) => assert_eq!(name, "ReplayedRequest"),
        _ => assert_eq!(via_checked, direct, "pre-checked vs direct"),
    }
    via_checked
}

fn send(
    h: &mut Harness<impl Store>,
    mailbox: &MailboxId,
    checked: &PreChecked,
    now: Timestamp,
) -> Result<u64, String> {
    h.ds.send_envelopes(
        mailbox,
        checked,
        vec![OutgoingEnvelope::message(b"m".to_vec())],
        now,
    )
    .map(|r| r.first_seq)
    .map_err(|e| e.name().to_string())
}

fn header(
    k: &SigningKey,
    method: DsMethod,
    mb: &MailboxId,
    ts: Timestamp,
    n: u8,
    b: &[u8],
) -> String {
    RequestToken::sign(k, method, mb, ts, [n; 16], b).authorization_header()
}

fn precedence_through_pre_check<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let stranger = key(9);
    let mb = h.group("did:plc:a", &k, 0);
    let inbox = h.inbox("did:plc:a", &k);
    let unknown = MailboxId::from_bytes([0xab; 32]);
    let now = h.now;
    let old = now.saturating_sub(Duration::from_secs(3600));
    let sm = DsMethod::SendEnvelopes;

    // Step 1 before everything: no token, or a malformed one, on an unknown mailbox.
    assert_eq!(
        send_both_ways(&mut h, &unknown, None, b"a"),
        Err("AuthRequired".into())
    );
    assert_eq!(
        send_both_ways(&mut h, &unknown, Some("ChatMls-Mailbox abc"), b"a"),
        Err("BadToken".into())
    );
    // Expired + bad signature + unknown mailbox + stranger's key: RequestExpired.
    let hd = header(&stranger, sm, &unknown, old, 1, b"signed");
    assert_eq!(
        send_both_ways(&mut h, &unknown, Some(&hd), b"other"),
        Err("RequestExpired".into())
    );
    // Expired + bad signature on an existing mailbox: RequestExpired.
    let hd = header(&k, sm, &mb, old, 2, b"signed");
    assert_eq!(
        send_both_ways(&mut h, &mb, Some(&hd), b"other"),
        Err("RequestExpired".into())
    );
    // Bad signature + unknown mailbox: BadSignature.
    let hd = header(&stranger, sm, &unknown, now, 3, b"signed");
    assert_eq!(
        send_both_ways(&mut h, &unknown, Some(&hd), b"other"),
        Err("BadSignature".into())
    );
    // Bad signature + wrong kind (an inbox) + stranger's key: BadSignature.
    let hd = header(&stranger, sm, &inbox, now, 4, b"signed");
    assert_eq!(
        send_both_ways(&mut h, &inbox, Some(&hd), b"other"),
        Err("BadSignature".into())
    );
    // Unknown mailbox + stranger's key: MailboxNotFound.
    let hd = header(&stranger, sm, &unknown, now, 5, b"x");
    assert_eq!(
        send_both_ways(&mut h, &unknown, Some(&hd), b"x"),
        Err("MailboxNotFound".into())
    );
    // Wrong kind + stranger's key: the kind error (InvalidEnvelope: not a group).
    let hd = header(&stranger, sm, &inbox, now, 6, b"x");
    assert_eq!(
        send_both_ways(&mut h, &inbox, Some(&hd), b"x"),
        Err("InvalidEnvelope".into())
    );
    // A valid request, then the same token with a bad signature: BadSignature, not
    // ReplayedRequest; then the token itself: ReplayedRequest.
    let hd = header(&k, sm, &mb, now, 7, b"x");
    assert_eq!(send_both_ways(&mut h, &mb, Some(&hd), b"x"), Ok(1));
    assert_eq!(
        send_both_ways(&mut h, &mb, Some(&hd), b"y"),
        Err("BadSignature".into())
    );
    assert_eq!(
        send_both_ways(&mut h, &mb, Some(&hd), b"x"),
        Err("ReplayedRequest".into())
    );
    // Stranger's key: KeyExpired.
    let hd = header(&stranger, sm, &mb, now, 8, b"x");
    assert_eq!(
        send_both_ways(&mut h, &mb, Some(&hd), b"x"),
        Err("KeyExpired".into())
    );
    // Failures before step 7 do not burn the nonce.
    let hd = header(&k, sm, &mb, now, 9, b"x");
    assert_eq!(
        send_both_ways(&mut h, &mb, Some(&hd), b"y"),
        Err("BadSignature".into())
    );
    assert_eq!(send_both_ways(&mut h, &mb, Some(&hd), b"x"), Ok(2));
}

fn pre_check_is_bound_to_method_and_mailbox<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let other = h.group("did:plc:a", &k, 0);
    let now = h.now;
    let hd = header(&k, DsMethod::SendEnvelopes, &mb, now, 1, b"x");
    let auth = RequestAuth::from_header(Some(&hd), b"x");
    // Checked for another mailbox or method: the signature does not count.
    let checked = auth.check_signature(DsMethod::SendEnvelopes, &other);
    assert_eq!(checked.mailbox(), &other);
    assert_eq!(send(&mut h, &mb, &checked, now), Err("BadSignature".into()));
    let checked = auth.check_signature(DsMethod::GetEnvelopes, &mb);
    assert_eq!(checked.method(), DsMethod::GetEnvelopes);
    assert_eq!(send(&mut h, &mb, &checked, now), Err("BadSignature".into()));
    // Expiry still comes first with a mismatched pre-check.
    let later = now.saturating_add(Duration::from_secs(3600));
    assert_eq!(
        send(&mut h, &mb, &checked, later),
        Err("RequestExpired".into())
    );
    // For the right ones it passes.
    let checked = auth.check_signature(DsMethod::SendEnvelopes, &mb);
    assert_eq!(send(&mut h, &mb, &checked, now), Ok(1));
}

fn timestamp_judged_at_the_cores_now<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let mb = h.group("did:plc:a", &k, 0);
    let now = h.now;
    let max = crate::harness::config().request_max_age();
    let hd = header(&k, DsMethod::SendEnvelopes, &mb, now, 1, b"x");
    // Pre-checked at `now`; the core decides later. At the edge of the window it
    // passes; one millisecond later it is expired, valid signature or not.
    let checked =
        RequestAuth::from_header(Some(&hd), b"x").check_signature(DsMethod::SendEnvelopes, &mb);
    let bad =
        RequestAuth::from_header(Some(&hd), b"y").check_signature(DsMethod::SendEnvelopes, &mb);
    let past = now.saturating_add(max + Duration::from_millis(1));
    assert_eq!(
        send(&mut h, &mb, &checked, past),
        Err("RequestExpired".into())
    );
    assert_eq!(send(&mut h, &mb, &bad, past), Err("RequestExpired".into()));
    let edge = now.saturating_add(max);
    assert_eq!(send(&mut h, &mb, &bad, edge), Err("BadSignature".into()));
    assert_eq!(send(&mut h, &mb, &checked, edge), Ok(1));
    // A pre-check is not a one-time pass: the nonce is.
    let e =
        h.ds.send_envelopes(
            &mb,
            &checked,
            vec![OutgoingEnvelope::message(b"m".to_vec())],
            edge,
        )
        .unwrap_err();
    assert!(matches!(
        e,
        SendEnvelopesError::Auth(AuthError::ReplayedRequest)
    ));
}

fn reads_and_inbox_through_pre_check<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let stranger = key(9);
    let mb = h.group("did:plc:a", &k, 0);
    let inbox = h.inbox("did:plc:a", &k);
    let unknown = MailboxId::from_bytes([0xab; 32]);
    let now = h.now;
    let old = now.saturating_sub(Duration::from_secs(3600));
    let pc = |method, mb: &MailboxId, signer: &SigningKey, ts, n, signed: &[u8], sent: &[u8]| {
        let hd = header(signer, method, mb, ts, n, signed);
        RequestAuth::from_header(Some(&hd), sent).check_signature(method, mb)
    };
    // getMailbox: bad signature + unknown → BadSignature; expired + bad → RequestExpired.
    let c = pc(DsMethod::GetMailbox, &unknown, &k, now, 1, b"a", b"b");
    assert_eq!(
        h.ds.mailbox(&unknown, &c, now).unwrap_err().name(),
        "BadSignature"
    );
    let c = pc(DsMethod::GetMailbox, &mb, &k, old, 2, b"a", b"b");
    assert_eq!(
        h.ds.mailbox(&mb, &c, now).unwrap_err().name(),
        "RequestExpired"
    );
    let c = pc(DsMethod::GetMailbox, &mb, &k, now, 3, b"a", b"a");
    assert_eq!(h.ds.mailbox(&mb, &c, now).unwrap().seq, 0);
    // getEnvelopes.
    let c = pc(DsMethod::GetEnvelopes, &unknown, &k, now, 4, b"a", b"a");
    let e = h.ds.envelopes(&unknown, &c, 0, 10, now).unwrap_err();
    assert_eq!(e.name(), "MailboxNotFound");
    // subscribeEnvelopes.
    let c = pc(
        DsMethod::SubscribeEnvelopes,
        &mb,
        &stranger,
        now,
        5,
        b"a",
        b"b",
    );
    let e = h.ds.authorize_subscription(&mb, &c, None, now).unwrap_err();
    assert_eq!(e.name(), "BadSignature");
    let c = pc(
        DsMethod::SubscribeEnvelopes,
        &mb,
        &stranger,
        now,
        6,
        b"a",
        b"a",
    );
    let e = h.ds.authorize_subscription(&mb, &c, None, now).unwrap_err();
    assert_eq!(e.name(), "KeyExpired");
    // listInbox on a group with a bad signature: BadSignature before the kind.
    let c = pc(DsMethod::ListInbox, &mb, &k, now, 7, b"a", b"b");
    assert_eq!(
        h.ds.list_inbox(&mb, &c, 0, 10, now).unwrap_err().name(),
        "BadSignature"
    );
    // deleteInboxItems by a stranger, expired and badly signed: RequestExpired.
    let c = pc(
        DsMethod::DeleteInboxItems,
        &inbox,
        &stranger,
        old,
        8,
        b"a",
        b"b",
    );
    let e = h.ds.delete_inbox_items(&inbox, &c, &[1], now).unwrap_err();
    assert_eq!(e.name(), "RequestExpired");
    let c = pc(
        DsMethod::DeleteInboxItems,
        &inbox,
        &stranger,
        now,
        9,
        b"a",
        b"a",
    );
    let e = h.ds.delete_inbox_items(&inbox, &c, &[1], now).unwrap_err();
    assert_eq!(e.name(), "NotOwner");
}

on_both_stores!(
    precedence_through_pre_check,
    pre_check_is_bound_to_method_and_mailbox,
    timestamp_judged_at_the_cores_now,
    reads_and_inbox_through_pre_check,
);
