//! Attacks on the delivery service, each beside honest senders.

use std::sync::Arc;
use std::time::Duration;

use atmls_ds::auth::DsMethod;
use atmls_loadgen::Target;
use atmls_loadgen::client::{Conn, next_event, send_body, subscribe_from};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use bytes::Bytes;
use ed25519_dalek::SigningKey;

use crate::harness::{
    HONEST, Honest, Principal, Serve, assert_unharmed, attacker, deadline, send, typed_refusal,
};

/// How long each attack runs beside the honest principals.
const ATTACK_SECS: u64 = 4;
/// Honest principals beside each attack.
const HONEST_PRINCIPALS: usize = 3;
/// Most the server may grow during an attack (its steady state is tens of MiB).
const MAX_RSS_GROWTH_KIB: u64 = 256 * 1024;

async fn stage() -> (Serve, Arc<Target>) {
    let serve = Serve::start();
    let target = Arc::new(Target::connect(&serve.url, None).await.expect("target"));
    (serve, target)
}

/// A `sendEnvelopes` body with one commit built on `epoch`.
fn commit_body(mailbox: &str, epoch: u64, next: &SigningKey) -> Vec<u8> {
    let next = B64.encode(next.verifying_key().as_bytes());
    let payload = B64.encode(b"not really a commit");
    format!(
        r#"{{"mailbox":"{mailbox}","envelopes":[{{"kind":"commit","epoch":{epoch},"payload":{{"$bytes":"{payload}"}},"nextKey":{{"$bytes":"{next}"}}}}]}}"#
    )
    .into_bytes()
}

async fn post_signed(
    target: &Target,
    conn: &mut Conn,
    p: &atmls_loadgen::target::GroupMailbox,
    body: Vec<u8>,
) -> Result<(u16, Bytes), atmls_loadgen::LoadgenError> {
    let auth = target
        .token(&p.key, DsMethod::SendEnvelopes, &p.id, &body)
        .authorization_header();
    conn.post(
        "/xrpc/chat.mls.ds.sendEnvelopes",
        Bytes::from(body),
        Some(&auth),
    )
    .await
    .map(|(s, b)| (s.as_u16(), b))
}

/// An answer that must be a typed refusal: 4xx with `{"error": …}`.
fn refused(status: u16, body: &[u8], what: &str) -> String {
    assert!(
        (400..500).contains(&status),
        "{what}: expected a typed 4xx, got {status}: {}",
        String::from_utf8_lossy(body)
    );
    let v: serde_json::Value =
        serde_json::from_slice(body).unwrap_or_else(|_| panic!("{what}: not an XRPC error body"));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no error name: {v}"))
        .to_owned()
}

/// Hole 1: a mailbox created at an epoch no backend can hold, or commits that would push
/// an epoch past it, used to fail the writer's shared batch (honest sends on other
/// mailboxes answered 500) and left the writer's view ahead of the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epoch_overflow_fails_nobody_else() {
    let (serve, target) = stage().await;
    let rss_before = serve.rss_kib();
    let honest = Honest::start(&target, HONEST_PRINCIPALS).await;
    let account = target.account().await.expect("account");
    let mut conn = Conn::connect_from(target.addr(), target.host(), Some(attacker(1)))
        .await
        .expect("connect");
    let mut secrets = vec![account.did().to_owned()];
    let until = deadline(ATTACK_SECS);
    let mut tries = 0u64;
    // Bounded by the deadline and a count.
    while std::time::Instant::now() < until && tries < 2_000 {
        for epoch in [u64::MAX, 1 << 63, (1 << 63) - 1, (1 << 53) - 1, (1 << 53)] {
            tries += 1;
            match target.group_mailbox_at(&mut conn, &account, epoch).await {
                Err(e) => {
                    // Refused at creation: typed, never a server fault. (A quota refusal
                    // also counts: the attacker's account ran out of mailboxes.)
                    assert!(typed_refusal(&e).is_some(), "createMailbox at {epoch}: {e}");
                }
                Ok(m) => {
                    secrets.push(m.text.clone());
                    // Accepted: then the epoch is storable, and a commit on it is either
                    // accepted (epoch + 1 storable too) or refused with a typed error.
                    for _ in 0..3 {
                        let next = SigningKey::from_bytes(&rand::random());
                        let body = commit_body(&m.text, epoch, &next);
                        let (status, answer) = post_signed(&target, &mut conn, &m, body)
                            .await
                            .expect("send");
                        if status == 200 {
                            break;
                        }
                        refused(status, &answer, "commit at the largest epoch");
                    }
                    // The mailbox's state is what the store holds: ask for it.
                    let query = format!("mailbox={}", m.text);
                    let auth = target
                        .token(&m.key, DsMethod::GetMailbox, &m.id, query.as_bytes())
                        .authorization_header();
                    let (status, info) = conn
                        .get(
                            &format!("/xrpc/chat.mls.ds.getMailbox?{query}"),
                            Some(&auth),
                        )
                        .await
                        .expect("getMailbox");
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&info));
                    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
                    let now = info["epoch"].as_u64().expect("epoch is an exact integer");
                    assert!(now == epoch || now == epoch + 1, "epoch {epoch} -> {now}");
                }
            }
        }
    }
    let report = honest.finish(&target).await;
    assert_unharmed(&report, "epoch overflow");
    assert!(serve.rss_kib() < rss_before + MAX_RSS_GROWTH_KIB);
    serve.assert_logs_keep(&secrets);
}

/// Hole 6: one principal flooding signed requests from its own mailbox used to fill the
/// shared replay cache, after which every principal got 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_request_flood_costs_only_the_flooder() {
    let (serve, target) = stage().await;
    let rss_before = serve.rss_kib();
    let honest = Honest::start(&target, HONEST_PRINCIPALS).await;
    let mut flooders = Vec::new();
    for n in 0..4u8 {
        let target = target.clone();
        flooders.push(tokio::spawn(async move {
            let mut p = Principal::new(&target, attacker(10 + n)).await;
            let until = deadline(ATTACK_SECS);
            let (mut ok, mut refused_n, mut faults) = (0u64, 0u64, Vec::new());
            let query = format!("mailbox={}", p.mailbox.text);
            let path = format!("/xrpc/chat.mls.ds.getMailbox?{query}");
            // Bounded by the deadline and a count.
            for _ in 0..200_000 {
                if std::time::Instant::now() >= until {
                    break;
                }
                let auth = target
                    .token(
                        &p.mailbox.key,
                        DsMethod::GetMailbox,
                        &p.mailbox.id,
                        query.as_bytes(),
                    )
                    .authorization_header();
                match p.conn.get(&path, Some(&auth)).await {
                    Ok((s, _)) if s == 200 => ok += 1,
                    Ok((s, b)) if (400..500).contains(&s.as_u16()) => {
                        refused(s.as_u16(), &b, "flood");
                        refused_n += 1;
                    }
                    Ok((s, b)) => faults.push(format!("{s}: {}", String::from_utf8_lossy(&b))),
                    Err(e) => faults.push(e.to_string()),
                }
            }
            (ok, refused_n, faults, p.secrets())
        }));
    }
    let mut secrets = Vec::new();
    let mut total = 0;
    for f in flooders {
        let (ok, refused_n, faults, s) = f.await.unwrap();
        assert!(
            faults.is_empty(),
            "the flooder saw server faults: {faults:?}"
        );
        total += ok + refused_n;
        secrets.extend(s);
    }
    let report = honest.finish(&target).await;
    assert_unharmed(&report, "signed request flood");
    assert!(total > 100, "the flood hardly ran ({total} requests)");
    assert!(serve.rss_kib() < rss_before + MAX_RSS_GROWTH_KIB);
    serve.assert_logs_keep(&secrets);
}

/// Hole 6: subscription slots. One source opening subscription after subscription used
/// to take the server's slots from everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_flood_leaves_slots_for_others() {
    let (serve, target) = stage().await;
    let rss_before = serve.rss_kib();
    let honest = Honest::start(&target, HONEST_PRINCIPALS).await;
    let p = Principal::new(&target, attacker(20)).await;
    let mut held = Vec::new();
    let mut refused_n = 0u32;
    let until = deadline(ATTACK_SECS * 2);
    // Bounded: 160 sockets (more than a source's share), then each is asked whether it
    // is still open. A refusal arrives as a failed upgrade or as an error frame right
    // after it.
    let mut opened = Vec::new();
    for _ in 0..160 {
        if std::time::Instant::now() >= until {
            break;
        }
        let query = format!("mailbox={}&cursor=0", p.mailbox.text);
        let token = target.token(
            &p.mailbox.key,
            DsMethod::SubscribeEnvelopes,
            &p.mailbox.id,
            query.as_bytes(),
        );
        let q = format!("{query}&auth={}", token.encode());
        match subscribe_from(target.addr(), target.host(), &q, Some(attacker(20))).await {
            Ok(ws) => opened.push(ws),
            Err(_) => refused_n += 1,
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for mut ws in opened {
        match next_event(&mut ws, Duration::from_millis(5)).await {
            // Nothing (or a heartbeat) within the wait: the subscription is open.
            Err(atmls_loadgen::LoadgenError::Timeout(_)) | Ok(_) => held.push(ws),
            Err(_) => refused_n += 1,
        }
    }
    assert!(
        refused_n > 0,
        "one source opened {} subscriptions and was never refused",
        held.len()
    );
    assert!(
        held.len() <= 1_000,
        "one source holds {} subscriptions",
        held.len()
    );
    // An honest subscriber still gets its subscription and its envelopes.
    let mut me = Principal::new(&target, HONEST).await;
    let query = format!("mailbox={}&cursor=0", me.mailbox.text);
    let token = target.token(
        &me.mailbox.key,
        DsMethod::SubscribeEnvelopes,
        &me.mailbox.id,
        query.as_bytes(),
    );
    let q = format!("{query}&auth={}", token.encode());
    let mut ws = subscribe_from(target.addr(), target.host(), &q, Some(HONEST))
        .await
        .expect("an honest subscription while the flood holds its share");
    let seq = send(
        &target,
        &mut me.conn,
        &me.mailbox,
        &[b"still here".to_vec()],
    )
    .await
    .expect("send");
    let mut got = None;
    for _ in 0..10 {
        if let atmls_loadgen::client::Event::Envelope { seq: s, .. } =
            next_event(&mut ws, Duration::from_secs(10))
                .await
                .expect("frame")
        {
            got = Some(s);
            break;
        }
    }
    assert_eq!(got, Some(seq));
    drop(held);
    let metrics = serve.metrics(&target).await;
    assert!(
        metrics.contains("atmls_limit_refusals_total{limit=\"subscriptions_per_source\"}"),
        "{metrics}"
    );
    let report = honest.finish(&target).await;
    assert_unharmed(&report, "subscription flood");
    assert!(serve.rss_kib() < rss_before + MAX_RSS_GROWTH_KIB);
    let mut secrets = p.secrets();
    secrets.extend(me.secrets());
    serve.assert_logs_keep(&secrets);
}

/// Hole 6: welcomes need no identity; one source flooding a victim's public inbox used
/// to take the inbox's whole deposit allowance (60 MiB/min), so real invitations were
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_welcome_flood_does_not_block_real_invitations() {
    let (serve, target) = stage().await;
    let honest = Honest::start(&target, HONEST_PRINCIPALS).await;
    // The victim's inbox.
    let victim = target.account().await.expect("account");
    let owner = SigningKey::from_bytes(&rand::random());
    let jwt = target.service_auth(&victim, "chat.mls.ds.createMailbox");
    let body = format!(
        r#"{{"kind":"inbox","key":{{"$bytes":"{}"}}}}"#,
        B64.encode(owner.verifying_key().as_bytes())
    );
    let mut conn = target.conn().await.unwrap();
    let (status, created) = conn
        .post(
            "/xrpc/chat.mls.ds.createMailbox",
            Bytes::from(body),
            Some(&format!("Bearer {jwt}")),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&created));
    let created: serde_json::Value = serde_json::from_slice(&created).unwrap();
    let inbox = created["mailbox"].as_str().unwrap().to_owned();
    let welcome = |payload: &[u8]| {
        Bytes::from(format!(
            r#"{{"inbox":"{inbox}","payload":{{"$bytes":"{}"}}}}"#,
            B64.encode(payload)
        ))
    };

    let mut flood = Conn::connect_from(target.addr(), target.host(), Some(attacker(30)))
        .await
        .unwrap();
    let big = vec![0x5a; 256 * 1024];
    let until = deadline(ATTACK_SECS);
    let (mut accepted, mut refused_n) = (0u32, 0u32);
    for _ in 0..5_000 {
        if std::time::Instant::now() >= until {
            break;
        }
        let (s, b) = flood
            .post("/xrpc/chat.mls.ds.sendWelcome", welcome(&big), None)
            .await
            .expect("flood");
        if s == 200 {
            accepted += 1;
        } else {
            refused(s.as_u16(), &b, "welcome flood");
            refused_n += 1;
        }
    }
    assert!(
        refused_n > 0,
        "{accepted} flood welcomes accepted, none refused"
    );
    // A real invitation from another source still gets in.
    let mut inviter = Conn::connect_from(target.addr(), target.host(), Some(HONEST))
        .await
        .unwrap();
    let (s, b) = inviter
        .post(
            "/xrpc/chat.mls.ds.sendWelcome",
            welcome(b"a real invitation"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        s,
        200,
        "a real invitation was refused during the flood: {}",
        String::from_utf8_lossy(&b)
    );
    // The operator sees which limit pushed back.
    let metrics = serve.metrics(&target).await;
    assert!(
        metrics.contains("atmls_limit_refusals_total{limit=\"welcomes_per_source_per_inbox\"}"),
        "{metrics}"
    );
    let report = honest.finish(&target).await;
    assert_unharmed(&report, "welcome flood");
    serve.assert_logs_keep(&[inbox, victim.did().to_owned()]);
}

/// Malformed bytes, oversized bodies, bad, expired and replayed tokens, wrong epochs:
/// each a typed 4xx for the sender, nothing for anyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_typed_errors_and_costs_nobody_else() {
    let (serve, target) = stage().await;
    let honest = Honest::start(&target, HONEST_PRINCIPALS).await;
    let mut p = Principal::new(&target, attacker(40)).await;
    let mut names = Vec::new();

    // Malformed JSON, a body of the wrong shape, an oversized body.
    for body in [
        Bytes::from_static(b"{\"mailbox\":"),
        Bytes::from_static(b"[1,2,3]"),
        Bytes::from(vec![b' '; 9 * 1024 * 1024]),
    ] {
        let oversized = body.len() > 1024;
        match p
            .conn
            .post("/xrpc/chat.mls.ds.sendEnvelopes", body, Some("Bearer x"))
            .await
        {
            Ok((s, b)) => names.push(refused(s.as_u16(), &b, "malformed body")),
            // The server answers 413 and closes the connection without reading the rest:
            // a client still writing may see the close first.
            Err(atmls_loadgen::LoadgenError::Http(_)) if oversized => {}
            Err(e) => panic!("malformed body: {e}"),
        }
    }
    // A token that is not one, a token signed by another key, a replayed token.
    let body = send_body(&p.mailbox.id, &[b"x".to_vec()]);
    let stranger = SigningKey::from_bytes(&rand::random());
    let forged = target
        .token(&stranger, DsMethod::SendEnvelopes, &p.mailbox.id, &body)
        .authorization_header();
    let good = target
        .token(
            &p.mailbox.key,
            DsMethod::SendEnvelopes,
            &p.mailbox.id,
            &body,
        )
        .authorization_header();
    for (auth, what) in [
        ("Bearer not-a-token".to_owned(), "bad token"),
        (forged, "forged token"),
        (good.clone(), "first use"),
        (good, "replayed token"),
    ] {
        let (s, b) = p
            .conn
            .post(
                "/xrpc/chat.mls.ds.sendEnvelopes",
                Bytes::from(body.clone()),
                Some(&auth),
            )
            .await
            .expect("answer");
        if what == "first use" {
            assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
        } else {
            names.push(refused(s.as_u16(), &b, what));
        }
    }
    // Commits at wrong epochs, absurd numbers.
    for epoch in [1u64, 7, u64::MAX, (1 << 63) - 1] {
        let next = SigningKey::from_bytes(&rand::random());
        let body = commit_body(&p.mailbox.text, epoch, &next);
        let (s, b) = post_signed(&target, &mut p.conn, &p.mailbox, body)
            .await
            .expect("answer");
        names.push(refused(s, &b, "wrong epoch"));
    }
    // Absurd cursors and limits.
    for query in [
        format!(
            "mailbox={}&cursor=18446744073709551615&limit=1",
            p.mailbox.text
        ),
        format!("mailbox={}&cursor=-1", p.mailbox.text),
        format!("mailbox={}&limit=99999999999", p.mailbox.text),
    ] {
        let auth = target
            .token(
                &p.mailbox.key,
                DsMethod::GetEnvelopes,
                &p.mailbox.id,
                query.as_bytes(),
            )
            .authorization_header();
        let (s, b) = p
            .conn
            .get(
                &format!("/xrpc/chat.mls.ds.getEnvelopes?{query}"),
                Some(&auth),
            )
            .await
            .expect("answer");
        if s != 200 {
            names.push(refused(s.as_u16(), &b, "absurd cursor"));
        }
    }
    assert!(names.iter().any(|n| n == "ReplayedRequest"), "{names:?}");
    assert!(names.iter().any(|n| n == "EpochConflict"), "{names:?}");
    assert!(names.iter().any(|n| n == "KeyExpired"), "{names:?}");
    let metrics = serve.metrics(&target).await;
    assert!(
        metrics.contains("atmls_xrpc_errors_total{nsid=\"chat.mls.ds.sendEnvelopes\",error=\"ReplayedRequest\"} 1"),
        "{metrics}"
    );
    let report = honest.finish(&target).await;
    assert_unharmed(&report, "garbage");
    serve.assert_logs_keep(&p.secrets());
}
