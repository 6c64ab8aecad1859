//! Issue 14, hole 6: shared, fail-closed limits that one principal could exhaust for
//! everyone. Each test has an attacker take what it can of one shared resource through
//! real HTTP on loopback, then checks that the attacker is refused with a typed 4xx and
//! that an honest principal still gets in.

mod ds_support;

use std::time::Duration;

use atmls_ds::auth::DsMethod;
use atmls_ds_xrpc::Clock as _;
use atmls_identity::service_auth::{Claims, issue};
use ds_support::*;
use serde_json::json;

/// Before: one key's signed requests filled the replay cache (about 1,100 requests/s at
/// the defaults) and every other key got 429 until entries expired.
#[tokio::test]
async fn one_key_cannot_fill_the_replay_cache() {
    let core = small_limits()
        .with_replay_cache_capacity(200)
        .with_replay_share_per_key(50)
        .with_replay_share_per_mailbox(50)
        // Every test client is 127.0.0.1: one source.
        .with_replay_share_per_source(200);
    let h = start(core, |c| c, server_config()).await;
    let (attacker_key, honest_key) = (mailbox_key(), mailbox_key());
    let attacker = h.mailbox("inbox", &attacker_key).await;
    let honest = h.mailbox("inbox", &honest_key).await;

    let query = |m: &atmls_ds::MailboxId| format!("mailbox={m}");
    let mut refused = 0;
    for _ in 0..250 {
        let r = h
            .signed_get(
                DsMethod::GetMailbox,
                &attacker,
                &attacker_key,
                &query(&attacker),
            )
            .await;
        match r.status.as_u16() {
            200 => {}
            _ => {
                r.error(429, "RateLimitExceeded");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 200, "the attacker's key holds 50 entries at most");
    // An honest key still gets in, many times.
    for _ in 0..20 {
        h.signed_get(DsMethod::GetMailbox, &honest, &honest_key, &query(&honest))
            .await
            .ok();
    }
}

/// Before: the token's `jti` was recorded before the body and quota checks, so a token
/// refused for its body could not be used again with a good one.
#[tokio::test]
async fn a_token_refused_for_its_body_is_not_spent() {
    let h = start(small_limits(), |c| c, server_config()).await;
    let token = h.service_token("chat.mls.ds.createMailbox", &h.audience());
    let auth = format!("Bearer {token}");
    let path = "/xrpc/chat.mls.ds.createMailbox";
    let key = mailbox_key();
    let bad = json!({ "kind": "nonsense", "key": { "$bytes": b64(&public(&key)) } });
    post(
        h.addr,
        path,
        bad.to_string().into_bytes(),
        &[("authorization", &auth)],
    )
    .await
    .error(400, "UnsupportedKind");
    let good = json!({ "kind": "inbox", "key": { "$bytes": b64(&public(&key)) } });
    post(
        h.addr,
        path,
        good.to_string().into_bytes(),
        &[("authorization", &auth)],
    )
    .await
    .ok();
    // Now it is spent.
    post(
        h.addr,
        path,
        good.to_string().into_bytes(),
        &[("authorization", &auth)],
    )
    .await
    .error(401, "InvalidToken");
}

/// One account holds at most its share of live service-auth tokens; another account's
/// tokens still pass.
#[tokio::test]
async fn one_account_holds_a_bounded_share_of_token_ids() {
    let h = start(
        small_limits().with_max_mailboxes_per_account(100),
        |c| c.with_tokens_per_account(3),
        server_config(),
    )
    .await;
    for _ in 0..3 {
        h.create("inbox", &mailbox_key(), 0).await.ok();
    }
    h.create("inbox", &mailbox_key(), 0)
        .await
        .error(429, "RateLimitExceeded");
    let bob = h.plc().account("https://pds.example.com");
    let now = h.clock.now();
    let token = issue(
        &bob.key,
        &Claims::new(
            &bob.did,
            &h.audience(),
            "chat.mls.ds.createMailbox",
            now,
            Duration::from_secs(60),
        ),
    );
    let body = json!({ "kind": "inbox", "key": { "$bytes": b64(&public(&mailbox_key())) } });
    post(
        h.addr,
        "/xrpc/chat.mls.ds.createMailbox",
        body.to_string().into_bytes(),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .ok();
}

/// Before: anyone could deposit `inboxDepositsPerMinute` welcomes into every inbox there
/// is, from one address, with no bound on the sum.
#[tokio::test]
async fn one_source_sends_a_bounded_number_of_welcomes() {
    let h = start(
        small_limits(),
        // The source's share of each inbox is the whole of it here (that share is the
        // attack suite's `a_welcome_flood_does_not_block_real_invitations`).
        |c| {
            c.with_welcomes_per_source_per_minute(5, 1 << 20)
                .with_inbox_share_divisor(1)
        },
        server_config(),
    )
    .await;
    let mut inboxes = Vec::new();
    for _ in 0..3 {
        inboxes.push(h.mailbox("inbox", &mailbox_key()).await);
    }
    let welcome = |inbox: &atmls_ds::MailboxId| {
        json!({ "inbox": inbox.to_string(), "payload": { "$bytes": b64(b"sealed") } })
            .to_string()
            .into_bytes()
    };
    let path = "/xrpc/chat.mls.ds.sendWelcome";
    // Two per inbox (the inbox's own share), five in all (the source's).
    let mut accepted = 0;
    for inbox in inboxes.iter().cycle().take(6) {
        let r = post(h.addr, path, welcome(inbox), &[]).await;
        if r.status.as_u16() == 200 {
            accepted += 1;
        } else {
            r.error(429, "RateLimitExceeded");
        }
    }
    assert_eq!(accepted, 5);
    // The source's window resets after a minute.
    h.clock.advance(std::time::Duration::from_secs(61));
    post(h.addr, path, welcome(&inboxes[0]), &[]).await.ok();
}

/// Before: a mailbox's stored bytes were unbounded.
#[tokio::test]
async fn a_mailbox_refuses_past_its_stored_bytes() {
    let h = start(
        small_limits().with_max_mailbox_bytes(2048),
        |c| c,
        server_config(),
    )
    .await;
    let key = mailbox_key();
    let mb = h.mailbox("group", &key).await;
    h.send(&mb, &key, json!([message(&[1; 1024]), message(&[2; 1024])]))
        .await
        .ok();
    h.send(&mb, &key, json!([message(b"x")]))
        .await
        .error(429, "MailboxFull");
    let other_key = mailbox_key();
    let other = h.mailbox("group", &other_key).await;
    h.send(&other, &other_key, json!([message(b"x")]))
        .await
        .ok();
}

/// Before: the 10,000 subscription slots were one pool; one source (or one mailbox's key
/// holders) could take them all.
#[tokio::test]
async fn subscriptions_per_source_and_per_mailbox_are_bounded() {
    let h = start(
        small_limits().with_max_mailboxes_per_account(10),
        |c| {
            c.with_subscriptions_per_source(3)
                .with_subscribers_per_mailbox(2)
        },
        server_config(),
    )
    .await;
    let key = mailbox_key();
    let mb = h.mailbox("group", &key).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(subscribe(h.addr, &h.subscription_query(&mb, &key, None)).await);
    }
    // A third subscriber to the same mailbox: refused.
    let mut ws = subscribe(h.addr, &h.subscription_query(&mb, &key, None)).await;
    let (header, body) = frame(&mut ws).await;
    assert_eq!(header.op, -1, "{body:?}");
    assert_eq!(error_name(&body), "RateLimitExceeded");
    drop(ws);
    // Another mailbox: the source's third slot.
    let key2 = mailbox_key();
    let mb2 = h.mailbox("group", &key2).await;
    // From cursor 0: the envelope sent next is in its backlog even if the send is decided
    // before the subscription is registered.
    open.push(subscribe(h.addr, &h.subscription_query(&mb2, &key2, Some(0))).await);
    // Give the server a moment to count it: a heartbeat-free wait on a sent envelope.
    h.send(&mb2, &key2, json!([message(b"hi")])).await.ok();
    let (header, _) = frame(open.last_mut().unwrap()).await;
    assert_eq!(header.t.as_deref(), Some("#envelope"));
    // A fourth from this source: refused, whatever the mailbox.
    let key3 = mailbox_key();
    let mb3 = h.mailbox("group", &key3).await;
    let mut ws = subscribe(h.addr, &h.subscription_query(&mb3, &key3, None)).await;
    let (header, body) = frame(&mut ws).await;
    assert_eq!(header.op, -1, "{body:?}");
    assert_eq!(error_name(&body), "RateLimitExceeded");
    // Closing one gives its slot back.
    drop(open.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut ws = subscribe(h.addr, &h.subscription_query(&mb3, &key3, Some(0))).await;
        h.send(&mb3, &key3, json!([message(b"hi")])).await.ok();
        let (header, _) = frame(&mut ws).await;
        if header.op != -1 {
            again = Some(ws);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "the closed subscription's slot came back");
}
