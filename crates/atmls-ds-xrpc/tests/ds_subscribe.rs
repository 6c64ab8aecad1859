//! `subscribeEnvelopes` over a real WebSocket: backlog then live with no gap and no
//! duplicate at the seam, heartbeats, `KeyExpired` mid-stream, and rejections as error
//! frames. No sleeps: every wait is on a frame, with a timeout.

mod ds_support;

use std::time::Duration;

use atmls_ds::MailboxId;
use atmls_ds::auth::{DsMethod, RequestToken};
use atmls_ds_xrpc::Clock as _;
use ds_support::*;
use ipld_core::ipld::Ipld;
use serde_json::json;

fn quick_heartbeat(c: atmls_ds_xrpc::DsServiceConfig) -> atmls_ds_xrpc::DsServiceConfig {
    c.with_heartbeat(Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_then_live_without_gap_or_duplicate() {
    let h = start(small_limits(), quick_heartbeat, server_config()).await;
    let key = mailbox_key();
    let mb = h.mailbox("group", &key).await;
    let other_key = mailbox_key();
    let other = h.mailbox("group", &other_key).await;
    // A backlog of several pages, so that reading it takes a while.
    for n in 0..200u32 {
        let batch: Vec<_> = (0..10)
            .map(|i| message(format!("pre-{n}-{i}").as_bytes()))
            .collect();
        h.send(&mb, &key, json!(batch)).await.ok();
    }

    // Eight senders keep the writer busy while the subscription starts, so that commits
    // land between its registration and its backlog read (the seam).
    const SENDERS: usize = 8;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (started_tx, mut started) = tokio::sync::mpsc::channel::<()>(SENDERS);
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (addr, key, clock, started_tx) =
            (h.addr, key.clone(), h.clock.clone(), started_tx.clone());
        let stop = stop.clone();
        senders.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let body = json!({ "mailbox": mb.to_string(),
                                   "envelopes": [message(format!("s{s}-{i}").as_bytes())] })
                .to_string()
                .into_bytes();
                let auth = RequestToken::sign(
                    &key,
                    DsMethod::SendEnvelopes,
                    &mb,
                    clock.now(),
                    rand::random(),
                    &body,
                )
                .authorization_header();
                let r = post(
                    addr,
                    "/xrpc/chat.mls.ds.sendEnvelopes",
                    body,
                    &[("authorization", &auth)],
                )
                .await;
                assert_eq!(r.status.as_u16(), 200, "{:?}", r.body);
                let _ = started_tx.try_send(());
            }
        }));
    }
    tokio::time::timeout(WAIT, started.recv())
        .await
        .expect("senders started");

    // Two mailboxes in one subscription, each from its own cursor (the second live only);
    // each token signs the whole query without its auth parameters.
    let query = format!("mailbox={mb}&mailbox={other}&cursor=0");
    let t1 = h.token(&key, DsMethod::SubscribeEnvelopes, &mb, query.as_bytes());
    let t2 = h.token(
        &other_key,
        DsMethod::SubscribeEnvelopes,
        &other,
        query.as_bytes(),
    );
    let query = format!("{query}&auth={}&auth={}", t1.encode(), t2.encode());
    let mut ws = subscribe(h.addr, &query).await;

    // Read until well past the seam, stop the senders, then read up to the final head.
    let mut got = Vec::new();
    let mut total = usize::MAX;
    while got.len() < total {
        if got.len() == 2150 {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            for s in std::mem::take(&mut senders) {
                s.await.expect("sender");
            }
            let head = h.read(&mb, &key, 0).await.ok()["headSeq"].as_u64().unwrap();
            total = usize::try_from(head).unwrap();
        }
        let (header, body) = frame(&mut ws).await;
        match header.t.as_deref() {
            Some("#envelope") => {
                let (mailbox, seq, payload) = envelope(&body);
                assert_eq!(mailbox, mb.to_string());
                got.push((seq, payload));
            }
            Some("#heartbeat") => {}
            other => panic!("unexpected frame {other:?}: {body:?}"),
        }
    }
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=total as u64).collect::<Vec<_>>(),
        "gap or duplicate at the seam"
    );
    // And each is the envelope the store holds at that seq.
    let mut stored: Vec<(u64, Vec<u8>)> = Vec::new();
    loop {
        let cursor = stored.last().map_or(0, |(s, _)| *s);
        let page = h.read(&mb, &key, cursor).await.ok();
        let envs = page["envelopes"].as_array().unwrap();
        if envs.is_empty() {
            break;
        }
        stored.extend(
            envs.iter()
                .map(|e| (e["seq"].as_u64().unwrap(), unb64(&e["payload"]))),
        );
    }
    assert!(got == stored, "frames differ from the stored envelopes");

    // The second mailbox was live only: a message to it arrives next.
    h.send(&other, &other_key, json!([message(b"live")]))
        .await
        .ok();
    loop {
        let (header, body) = frame(&mut ws).await;
        if header.t.as_deref() == Some("#envelope") {
            let (mailbox, seq, payload) = envelope(&body);
            assert_eq!(
                (mailbox, seq, payload),
                (other.to_string(), 1, b"live".to_vec())
            );
            break;
        }
    }
    // Idle: heartbeats.
    let (header, body) = frame(&mut ws).await;
    assert_eq!(header.t.as_deref(), Some("#heartbeat"));
    assert!(matches!(field(&body, "time"), Ipld::String(t) if t.ends_with('Z')));
}

#[tokio::test]
async fn key_expired_ends_the_stream() {
    let h = start(small_limits(), quick_heartbeat, server_config()).await;
    let key0 = mailbox_key();
    let mb = h.mailbox("group", &key0).await;
    let mut ws = subscribe(h.addr, &h.subscription_query(&mb, &key0, None)).await;

    // A commit moves the group to epoch 1; the subscriber's key is now the previous one.
    let key1 = mailbox_key();
    h.send(&mb, &key0, json!([commit(0, b"c", &key1)]))
        .await
        .ok();
    loop {
        let (header, _) = frame(&mut ws).await;
        if header.t.as_deref() == Some("#envelope") {
            break;
        }
    }
    // Still inside the grace window: heartbeats, no error.
    let (header, _) = frame(&mut ws).await;
    assert_eq!(header.t.as_deref(), Some("#heartbeat"));
    h.clock.advance(Duration::from_secs(61));
    loop {
        let (header, body) = frame(&mut ws).await;
        if header.op == -1 {
            assert_eq!(error_name(&body), "KeyExpired");
            break;
        }
        assert_eq!(header.t.as_deref(), Some("#heartbeat"));
    }
}

#[tokio::test]
async fn ended_epoch_key_gets_its_backlog_then_key_expired() {
    let h = start(small_limits(), quick_heartbeat, server_config()).await;
    let key0 = mailbox_key();
    let mb = h.mailbox("group", &key0).await;
    let (key1, key2) = (mailbox_key(), mailbox_key());
    h.send(&mb, &key0, json!([message(b"a")])).await.ok(); // 1
    h.send(&mb, &key0, json!([commit(0, b"c1", &key1)]))
        .await
        .ok(); // 2
    h.send(&mb, &key1, json!([message(b"b")])).await.ok(); // 3
    h.send(&mb, &key1, json!([commit(1, b"c2", &key2)]))
        .await
        .ok(); // 4
    h.send(&mb, &key2, json!([message(b"c")])).await.ok(); // 5

    // Two commits behind: `key0` gets seqs 1 and 2 (its epoch's end), then `KeyExpired`.
    let mut ws = subscribe(h.addr, &h.subscription_query(&mb, &key0, Some(0))).await;
    let mut seqs = Vec::new();
    loop {
        let (header, body) = frame(&mut ws).await;
        if header.op == -1 {
            assert_eq!(error_name(&body), "KeyExpired");
            break;
        }
        assert_eq!(header.t.as_deref(), Some("#envelope"));
        seqs.push(envelope(&body).1);
    }
    assert_eq!(seqs, [1, 2]);
    // From its end on, or live only: nothing to read.
    for cursor in [Some(2), None] {
        let mut ws = subscribe(h.addr, &h.subscription_query(&mb, &key0, cursor)).await;
        let (header, body) = frame(&mut ws).await;
        assert_eq!(header.op, -1, "{body:?}");
        assert_eq!(error_name(&body), "KeyExpired");
    }
    // After the grace window `key1` reads 3 and 4 only.
    h.clock.advance(Duration::from_secs(61));
    let mut ws = subscribe(h.addr, &h.subscription_query(&mb, &key1, Some(2))).await;
    let mut seqs = Vec::new();
    loop {
        let (header, body) = frame(&mut ws).await;
        if header.op == -1 {
            assert_eq!(error_name(&body), "KeyExpired");
            break;
        }
        seqs.push(envelope(&body).1);
    }
    assert_eq!(seqs, [3, 4]);
}

#[tokio::test]
async fn rejections_are_error_frames() {
    let h = start(small_limits(), quick_heartbeat, server_config()).await;
    let key = mailbox_key();
    let mb = h.mailbox("group", &key).await;
    h.send(&mb, &key, json!([message(b"x")])).await.ok();

    let first_error = |query: String| {
        let addr = h.addr;
        async move {
            let mut ws = subscribe(addr, &query).await;
            let (header, body) = frame(&mut ws).await;
            assert_eq!(header.op, -1, "{body:?}");
            error_name(&body)
        }
    };

    // Signed over another query.
    let token = h.token(&key, DsMethod::SubscribeEnvelopes, &mb, b"mailbox=zz");
    let bad = format!("mailbox={mb}&auth={}", token.encode());
    assert_eq!(first_error(bad).await, "BadSignature");
    // Malformed token, no token.
    assert_eq!(
        first_error(format!("mailbox={mb}&auth=abc")).await,
        "BadToken"
    );
    // A cursor past the head.
    assert_eq!(
        first_error(h.subscription_query(&mb, &key, Some(5))).await,
        "FutureCursor"
    );
    // Unknown mailbox; a key that was never registered.
    let nowhere = MailboxId::from_bytes([3; 32]);
    assert_eq!(
        first_error(h.subscription_query(&nowhere, &key, None)).await,
        "MailboxNotFound"
    );
    assert_eq!(
        first_error(h.subscription_query(&mb, &mailbox_key(), None)).await,
        "KeyExpired"
    );
    // The same authorisation twice.
    let query = h.subscription_query(&mb, &key, Some(0));
    let mut ws = subscribe(h.addr, &query).await;
    let (header, _) = frame(&mut ws).await;
    assert_eq!(header.t.as_deref(), Some("#envelope"));
    assert_eq!(first_error(query).await, "ReplayedRequest");
    // A second mailbox without its auth.
    let other = h.mailbox("group", &key).await;
    let q = format!("mailbox={mb}&mailbox={other}");
    let t = h.token(&key, DsMethod::SubscribeEnvelopes, &mb, q.as_bytes());
    assert_eq!(
        first_error(format!("{q}&auth={}", t.encode())).await,
        "AuthRequired"
    );
}
