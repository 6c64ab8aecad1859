//! The delivery service over real HTTP on loopback: every method, every rejection, with
//! real signed requests and real service-auth tokens.

mod ds_support;

use std::time::Duration;

use atmls_ds::MailboxId;
use atmls_ds::auth::DsMethod;
use atmls_ds_xrpc::Clock as _;
use ds_support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn describe_server_and_did_document() {
    let h = start(small_limits(), |c| c, server_config()).await;
    let body = get(h.addr, "/xrpc/chat.mls.ds.describeServer", &[])
        .await
        .ok();
    assert_eq!(body["did"], "did:web:127.0.0.1");
    assert_eq!(body["protocolVersion"], 1);
    assert_eq!(body["limits"]["maxBatchEnvelopes"], 10);
    assert_eq!(body["limits"]["maxEnvelopeBytes"], 1024);
    assert_eq!(body["limits"]["keyGraceSeconds"], 60);

    let doc = get(h.addr, "/.well-known/did.json", &[]).await.ok();
    assert_eq!(doc["id"], "did:web:127.0.0.1");
    assert_eq!(doc["service"][0]["id"], "#chat_mls_ds");
    assert_eq!(doc["service"][0]["type"], "ChatMlsDeliveryService");
    assert_eq!(
        doc["service"][0]["serviceEndpoint"],
        format!("http://{}", h.addr)
    );
    get(h.addr, "/.well-known/other", &[])
        .await
        .error(404, "NotFound");
}

#[tokio::test]
async fn create_mailbox_requires_service_auth() {
    let h = start(small_limits(), |c| c, server_config()).await;
    let key = mailbox_key();
    let path = "/xrpc/chat.mls.ds.createMailbox";
    let body = |kind: &str, key: &[u8]| {
        json!({ "kind": kind, "key": { "$bytes": b64(key) } })
            .to_string()
            .into_bytes()
    };
    let lxm = "chat.mls.ds.createMailbox";

    // Directly, with a token from getServiceAuth (audience with the fragment).
    let created = h.create("group", &key, 7).await.ok();
    assert_eq!(created["kind"], "group");
    assert_eq!(created["epoch"], 7);
    assert_eq!(created["seq"], 0);
    assert_eq!(created["mailbox"].as_str().unwrap().len(), 52);

    // Through a PDS's atproto-proxy: the PDS mints the token, with the bare DID.
    let token = h.service_token(lxm, &h.ds_did);
    let auth = format!("Bearer {token}");
    let proxy = format!("{}#chat_mls_ds", h.ds_did);
    let inbox = post(
        h.addr,
        path,
        body("inbox", &public(&key)),
        &[("authorization", &auth), ("atproto-proxy", &proxy)],
    )
    .await
    .ok();
    assert_eq!(inbox["kind"], "inbox");
    assert!(inbox.get("epoch").is_none());

    // No token; garbage; the same token again.
    post(h.addr, path, body("group", &public(&key)), &[])
        .await
        .error(401, "AuthRequired");
    post(
        h.addr,
        path,
        body("group", &public(&key)),
        &[("authorization", "Bearer not.a.jwt")],
    )
    .await
    .error(401, "InvalidToken");
    let replay = post(
        h.addr,
        path,
        body("group", &public(&key)),
        &[("authorization", &auth)],
    )
    .await
    .error(401, "InvalidToken");
    assert!(replay["message"].as_str().unwrap().starts_with("Replayed"));

    // Wrong method, wrong audience, expired, unknown issuer.
    let wrong_lxm = format!(
        "Bearer {}",
        h.service_token("chat.mls.ds.sendWelcome", &h.audience())
    );
    let e = post(
        h.addr,
        path,
        body("group", &public(&key)),
        &[("authorization", &wrong_lxm)],
    )
    .await
    .error(401, "InvalidToken");
    assert!(
        e["message"].as_str().unwrap().starts_with("WrongLxm"),
        "{e}"
    );
    let wrong_aud = format!("Bearer {}", h.service_token(lxm, "did:web:other.example"));
    let e = post(
        h.addr,
        path,
        body("group", &public(&key)),
        &[("authorization", &wrong_aud)],
    )
    .await
    .error(401, "InvalidToken");
    assert!(
        e["message"].as_str().unwrap().starts_with("WrongAudience"),
        "{e}"
    );
    let now = h.clock.now();
    let expired = atmls_identity::service_auth::issue(
        &h.alice.key,
        &atmls_identity::service_auth::Claims::new(
            &h.alice.did,
            &h.audience(),
            lxm,
            now.saturating_sub(Duration::from_secs(100)),
            Duration::from_secs(60),
        ),
    );
    post(
        h.addr,
        path,
        body("group", &public(&key)),
        &[("authorization", &format!("Bearer {expired}"))],
    )
    .await
    .error(401, "ExpiredToken");
    let stranger = atmls_crypto::SigningKey::generate(atmls_crypto::Algorithm::Es256k);
    let unknown = atmls_identity::service_auth::issue(
        &stranger,
        &atmls_identity::service_auth::Claims::new(
            "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa",
            &h.audience(),
            lxm,
            now,
            Duration::from_secs(60),
        ),
    );
    post(
        h.addr,
        path,
        body("group", &public(&key)),
        &[("authorization", &format!("Bearer {unknown}"))],
    )
    .await
    .error(401, "InvalidToken");

    // A valid token, a bad request.
    let fresh = |h: &Harness| format!("Bearer {}", h.service_token(lxm, &h.audience()));
    post(
        h.addr,
        path,
        body("channel", &public(&key)),
        &[("authorization", &fresh(&h))],
    )
    .await
    .error(400, "UnsupportedKind");
    let mut small_order = [0u8; 32];
    small_order[0] = 1;
    post(
        h.addr,
        path,
        body("group", &small_order),
        &[("authorization", &fresh(&h))],
    )
    .await
    .error(400, "InvalidKey");

    // Quota: 4 per account; 2 created.
    h.create("group", &key, 0).await.ok();
    h.create("inbox", &key, 0).await.ok();
    h.create("group", &key, 0).await.error(429, "QuotaExceeded");
}

#[tokio::test]
async fn an_attached_ds_serves_only_its_pds_accounts() {
    let key = mailbox_key();
    // Alice's DID document names https://pds.example.com as her PDS.
    let own = start(
        small_limits(),
        |c| c.with_account_pds(vec!["https://pds.example.com/".into()]),
        server_config(),
    )
    .await;
    let created = own.create("inbox", &key, 0).await.ok();
    assert_eq!(created["kind"], "inbox");
    // The same PDS spelt otherwise (case, default port, trailing slash) is the same.
    let spelt = start(
        small_limits(),
        |c| c.with_account_pds(vec!["HTTPS://PDS.Example.com:443//".into()]),
        server_config(),
    )
    .await;
    spelt.create("inbox", &key, 0).await.ok();

    let other = start(
        small_limits(),
        |c| c.with_account_pds(vec!["https://other-pds.example.com".into()]),
        server_config(),
    )
    .await;
    let e = other
        .create("inbox", &key, 0)
        .await
        .error(403, "AccountNotServed");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("https://other-pds.example.com"), "{e}");
    assert!(message.contains("https://pds.example.com"), "{e}");
    // Refused before anything was stored: the token is spent, the quota is not.
    let quota = other.create("group", &key, 0).await;
    quota.error(403, "AccountNotServed");
}

#[tokio::test]
async fn group_mailbox_methods_and_rejections() {
    let h = start(small_limits(), |c| c, server_config()).await;
    let key0 = mailbox_key();
    let mb = h.mailbox("group", &key0).await;

    let r = h
        .send(&mb, &key0, json!([message(b"one"), message(b"two")]))
        .await
        .ok();
    assert_eq!(r, json!({"firstSeq": 1, "lastSeq": 2, "epoch": 0}));
    let q = format!("mailbox={mb}");
    let info = h
        .signed_get(DsMethod::GetMailbox, &mb, &key0, &q)
        .await
        .ok();
    assert_eq!(
        info,
        json!({"mailbox": mb.to_string(), "kind": "group", "epoch": 0, "seq": 2})
    );
    let page = h.read(&mb, &key0, 0).await.ok();
    assert_eq!(page["cursor"], 2);
    assert_eq!(page["headSeq"], 2);
    assert_eq!(page["epoch"], 0);
    let envs = page["envelopes"].as_array().unwrap();
    assert_eq!(unb64(&envs[1]["payload"]), b"two");
    assert_eq!(envs[1]["seq"], 2);
    assert_eq!(envs[1]["kind"], "message");
    h.read(&mb, &key0, 5).await.error(400, "FutureCursor");

    // Authorisation failures.
    let path = "/xrpc/chat.mls.ds.sendEnvelopes";
    let body = json!({ "mailbox": mb.to_string(), "envelopes": [message(b"x")] }).to_string();
    post(h.addr, path, body.clone().into_bytes(), &[])
        .await
        .error(401, "AuthRequired");
    post(
        h.addr,
        path,
        body.clone().into_bytes(),
        &[("authorization", "ChatMls-Mailbox short")],
    )
    .await
    .error(401, "BadToken");
    let signed_other = h
        .token(&key0, DsMethod::SendEnvelopes, &mb, b"another body")
        .authorization_header();
    post(
        h.addr,
        path,
        body.clone().into_bytes(),
        &[("authorization", &signed_other)],
    )
    .await
    .error(401, "BadSignature");
    let token = h
        .token(&key0, DsMethod::SendEnvelopes, &mb, body.as_bytes())
        .authorization_header();
    post(
        h.addr,
        path,
        body.clone().into_bytes(),
        &[("authorization", &token)],
    )
    .await
    .ok();
    post(
        h.addr,
        path,
        body.clone().into_bytes(),
        &[("authorization", &token)],
    )
    .await
    .error(401, "ReplayedRequest");
    let old = atmls_ds::auth::RequestToken::sign(
        &key0,
        DsMethod::SendEnvelopes,
        &mb,
        h.clock.now().saturating_sub(Duration::from_secs(121)),
        rand::random(),
        body.as_bytes(),
    );
    post(
        h.addr,
        path,
        body.clone().into_bytes(),
        &[("authorization", &old.authorization_header())],
    )
    .await
    .error(401, "RequestExpired");
    let nowhere = MailboxId::from_bytes(rand::random());
    h.send(&nowhere, &key0, json!([message(b"x")]))
        .await
        .error(404, "MailboxNotFound");
    h.send(&mb, &mailbox_key(), json!([message(b"x")]))
        .await
        .error(401, "KeyExpired");

    // Size and shape.
    h.send(&mb, &key0, json!([message(&[7; 1025])]))
        .await
        .error(413, "EnvelopeTooLarge");
    let eleven: Vec<Value> = (0..11).map(|_| message(b"m")).collect();
    h.send(&mb, &key0, json!(eleven))
        .await
        .error(413, "BatchTooLarge");
    let huge: Vec<Value> = (0..10).map(|_| message(&[1; 8 * 1024])).collect();
    h.send(&mb, &key0, json!(huge))
        .await
        .error(413, "PayloadTooLarge");
    let mut no_key = commit(0, b"c", &key0);
    no_key.as_object_mut().unwrap().remove("nextKey");
    h.send(&mb, &key0, json!([no_key]))
        .await
        .error(400, "InvalidEnvelope");
    let e = h
        .send(
            &mb,
            &key0,
            json!([{ "kind": "poll", "payload": { "$bytes": "eA" } }]),
        )
        .await
        .error(400, "InvalidEnvelope");
    assert!(e["message"].as_str().unwrap().contains("poll"), "{e}");

    // Epochs: a conflict names the current epoch and head; the commit moves the epoch.
    let key1 = mailbox_key();
    let e = h
        .send(&mb, &key0, json!([commit(3, b"c", &key1)]))
        .await
        .error(409, "EpochConflict");
    assert_eq!(
        (e["currentEpoch"].as_u64(), e["currentSeq"].as_u64()),
        (Some(0), Some(3))
    );
    let r = h
        .send(&mb, &key0, json!([message(b"m"), commit(0, b"c", &key1)]))
        .await
        .ok();
    assert_eq!(r, json!({"firstSeq": 4, "lastSeq": 5, "epoch": 1}));

    // Within the grace window the old key sends and reads but cannot commit.
    h.send(&mb, &key0, json!([message(b"late")])).await.ok();
    h.read(&mb, &key0, 0).await.ok();
    h.send(&mb, &key0, json!([commit(1, b"c", &mailbox_key())]))
        .await
        .error(401, "KeyExpired");
    // After it, the old key may only read, up to the commit that ended its epoch (seq 5):
    // not the message it sent in the grace window, not the head, not the epoch.
    h.clock.advance(Duration::from_secs(61));
    h.send(&mb, &key0, json!([message(b"x")]))
        .await
        .error(401, "KeyExpired");
    let page = h.read(&mb, &key0, 3).await.ok();
    let seqs: Vec<u64> = page["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![4, 5]);
    assert_eq!(page["envelopes"][1]["kind"], "commit");
    assert_eq!(
        (page["cursor"].as_u64(), page["headSeq"].as_u64()),
        (Some(5), Some(5))
    );
    assert!(page.get("epoch").is_none(), "{page}");
    h.read(&mb, &key0, 5).await.error(401, "KeyExpired");
    h.read(&mb, &key0, 6).await.error(401, "KeyExpired");
    h.signed_get(DsMethod::GetMailbox, &mb, &key0, &q)
        .await
        .error(401, "KeyExpired");
    let page = h.read(&mb, &key1, 3).await.ok();
    let seqs: Vec<u64> = page["envelopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![4, 5, 6]);
    assert_eq!(page["envelopes"][1]["kind"], "commit");
    assert_eq!(page["envelopes"][1]["epoch"], 0);
}

#[tokio::test]
async fn inbox_methods_and_rejections() {
    // One source takes the inbox's whole allowance here: this test is about the inbox's
    // own limit (the per-source share of it is `ds_shares.rs`'s).
    let h = start(
        small_limits(),
        |c| c.with_inbox_share_divisor(1),
        server_config(),
    )
    .await;
    let owner = mailbox_key();
    let inbox = h.mailbox("inbox", &owner).await;
    let group_key = mailbox_key();
    let group = h.mailbox("group", &group_key).await;
    let welcome = |to: &MailboxId, payload: &[u8]| {
        json!({ "inbox": to.to_string(), "payload": { "$bytes": b64(payload) } })
            .to_string()
            .into_bytes()
    };
    let path = "/xrpc/chat.mls.ds.sendWelcome";

    assert_eq!(
        post(h.addr, path, welcome(&inbox, b"w1"), &[]).await.ok(),
        json!({"seq": 1})
    );
    assert_eq!(
        post(h.addr, path, welcome(&inbox, b"w2"), &[]).await.ok(),
        json!({"seq": 2})
    );
    post(h.addr, path, welcome(&inbox, b"w3"), &[])
        .await
        .error(429, "RateLimitExceeded");
    post(h.addr, path, welcome(&group, b"w"), &[])
        .await
        .error(400, "NotAnInbox");
    post(
        h.addr,
        path,
        welcome(&MailboxId::from_bytes([9; 32]), b"w"),
        &[],
    )
    .await
    .error(404, "MailboxNotFound");
    post(h.addr, path, welcome(&inbox, &[0; 1025]), &[])
        .await
        .error(413, "EnvelopeTooLarge");

    let q = format!("inbox={inbox}");
    let list = h
        .signed_get(DsMethod::ListInbox, &inbox, &owner, &q)
        .await
        .ok();
    assert_eq!(list["cursor"], 2);
    assert_eq!(list["items"][0]["kind"], "welcome");
    assert_eq!(unb64(&list["items"][1]["payload"]), b"w2");
    h.signed_get(DsMethod::ListInbox, &inbox, &mailbox_key(), &q)
        .await
        .error(403, "NotOwner");
    let gq = format!("inbox={group}");
    h.signed_get(DsMethod::ListInbox, &group, &group_key, &gq)
        .await
        .error(400, "NotAnInbox");
    let cq = format!("inbox={inbox}&cursor=9");
    h.signed_get(DsMethod::ListInbox, &inbox, &owner, &cq)
        .await
        .error(400, "FutureCursor");
    h.send(&inbox, &owner, json!([message(b"x")]))
        .await
        .error(400, "InvalidEnvelope");

    let del = json!({ "inbox": inbox.to_string(), "seqs": [1, 5] });
    let r = h
        .signed_post(DsMethod::DeleteInboxItems, &inbox, &owner, &del)
        .await
        .ok();
    assert_eq!(r, json!({"deleted": 1}));
    h.signed_post(DsMethod::DeleteInboxItems, &inbox, &mailbox_key(), &del)
        .await
        .error(403, "NotOwner");
    let gdel = json!({ "inbox": group.to_string(), "seqs": [1] });
    h.signed_post(DsMethod::DeleteInboxItems, &group, &group_key, &gdel)
        .await
        .error(400, "NotAnInbox");
    let list = h
        .signed_get(DsMethod::ListInbox, &inbox, &owner, &q)
        .await
        .ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // The owner reads its inbox with getEnvelopes too; the head never moves back.
    let page = h.read(&inbox, &owner, 0).await.ok();
    assert_eq!(page["headSeq"], 2);
    assert!(page.get("epoch").is_none());
}

#[tokio::test]
async fn two_committers_race_exactly_one_wins() {
    let h = start(small_limits(), |c| c, server_config()).await;
    let mut key = mailbox_key();
    let mb = h.mailbox("group", &key).await;
    for epoch in 0..20u64 {
        let (a, b) = (mailbox_key(), mailbox_key());
        let (ra, rb) = tokio::join!(
            h.send(&mb, &key, json!([commit(epoch, b"a", &a)])),
            h.send(&mb, &key, json!([commit(epoch, b"b", &b)])),
        );
        let (winner, loser, next) = match (ra.status.as_u16(), rb.status.as_u16()) {
            (200, 409) => (ra, rb, a),
            (409, 200) => (rb, ra, b),
            other => panic!("epoch {epoch}: expected one winner, got {other:?}"),
        };
        assert_eq!(winner.json()["epoch"], epoch + 1);
        let e = loser.error(409, "EpochConflict");
        assert_eq!(e["currentEpoch"], epoch + 1);
        assert_eq!(e["currentSeq"], epoch + 1);
        key = next;
    }
    let info = h
        .signed_get(DsMethod::GetMailbox, &mb, &key, &format!("mailbox={mb}"))
        .await
        .ok();
    assert_eq!(
        (info["epoch"].as_u64(), info["seq"].as_u64()),
        (Some(20), Some(20))
    );
}

#[tokio::test]
async fn cancelled_requests_are_all_or_nothing() {
    // Clients that give up right after sending: every batch the DS accepted is whole and
    // in order; nothing else is there.
    let h = start(small_limits(), |c| c, server_config()).await;
    let key = mailbox_key();
    let mb = h.mailbox("group", &key).await;
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let body = json!({ "mailbox": mb.to_string(),
                           "envelopes": [message(&[i, 0]), message(&[i, 1]), message(&[i, 2])] })
        .to_string()
        .into_bytes();
        let auth = h
            .token(&key, DsMethod::SendEnvelopes, &mb, &body)
            .authorization_header();
        let addr = h.addr;
        let send = tokio::spawn(async move {
            post(
                addr,
                "/xrpc/chat.mls.ds.sendEnvelopes",
                body,
                &[("authorization", &auth)],
            )
            .await
        });
        tasks.push(send);
    }
    // Abort half of them at once (their futures and connections are dropped).
    for t in tasks.iter().step_by(2) {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let page = h.read(&mb, &key, 0).await.ok();
    let envs = page["envelopes"].as_array().unwrap();
    assert_eq!(envs.len() % 3, 0);
    for (n, chunk) in envs.chunks(3).enumerate() {
        let first = unb64(&chunk[0]["payload"]);
        for (j, e) in chunk.iter().enumerate() {
            assert_eq!(e["seq"].as_u64(), Some((n * 3 + j + 1) as u64));
            assert_eq!(unb64(&e["payload"]), vec![first[0], j as u8]);
        }
    }
}
