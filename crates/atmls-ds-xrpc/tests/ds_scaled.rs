//! Two DS processes over one PostgreSQL database (issue 16): each is a DS service with
//! its own `PgStore` (its own pool and runtime, as another process has), its own
//! notification listener and its own server on loopback. One sends, the other's
//! subscriber receives everything in order; two committers on the two processes race
//! 100 rounds without a fork or a gap; a token used at one is a replay at the other.
//!
//! Needs `ATMLS_TEST_DATABASE_URL` (`scripts/test` starts a throw-away cluster with
//! `scripts/pg-cluster`); without it every test here fails.

mod ds_support;

use atmls_ds::MailboxId;
use atmls_ds::auth::DsMethod;
use atmls_ds_postgres::{PgConfig, PgStore, SchemaName};
use atmls_server::scaled::PgDs;
use ds_support::{
    Harness, WAIT, commit, envelope, frame, mailbox_key, message, server_config, small_limits,
    start_with_store, subscribe, unb64,
};
use ed25519_dalek::SigningKey;
use tokio::task::JoinHandle;

/// The test database's URL; panics (fails the test) when it is not set.
fn url() -> String {
    atmls_testkit::database::database_url()
}

/// A schema no other test uses: one "deployment".
fn fresh_schema() -> SchemaName {
    atmls_testkit::database::fresh_schema_name("s")
        .parse()
        .expect("valid schema name")
}

/// One DS process of a deployment: the harness (server, clock, PLC) and its listener.
struct Process {
    h: Harness,
    _follow: JoinHandle<()>,
}

async fn process(schema: &SchemaName) -> Process {
    let config = PgConfig::new(&url())
        .expect("valid URL")
        .with_schema(schema.clone())
        .with_pool_size(4)
        // Several writer lanes: each lane is to the others what another process is.
        .with_writer_lanes(3);
    let pg = config.clone();
    let store = tokio::task::spawn_blocking(move || PgStore::connect(&pg))
        .await
        .expect("connect task")
        .expect("connect to the test database");
    let h = start_with_store(store, small_limits(), |c| c, server_config()).await;
    let follow = PgDs::follow(&config, h.ds.clone())
        .await
        .expect("listen to the test database");
    Process { h, _follow: follow }
}

/// Signs with `key` as `h` would, for a mailbox created elsewhere.
async fn send(
    h: &Harness,
    mailbox: &MailboxId,
    key: &SigningKey,
    envelopes: serde_json::Value,
) -> ds_support::Resp {
    h.send(mailbox, key, envelopes).await
}

/// Everything of `mailbox` after 0, read through `h`: (seq, kind, epoch, payload).
async fn read_all(
    h: &Harness,
    mailbox: &MailboxId,
    key: &SigningKey,
) -> Vec<(u64, String, Option<u64>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        let page = h.read(mailbox, key, cursor).await.ok();
        let items = page["envelopes"].as_array().expect("envelopes").clone();
        if items.is_empty() {
            return out;
        }
        for e in items {
            let seq = e["seq"].as_u64().expect("seq");
            out.push((
                seq,
                e["kind"].as_str().expect("kind").to_owned(),
                e["epoch"].as_u64(),
                unb64(&e["payload"]),
            ));
            cursor = seq;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_process_gets_everything_sent_to_the_other_in_order() {
    let schema = fresh_schema();
    let (a, b) = (process(&schema).await, process(&schema).await);
    let key = mailbox_key();
    let mailbox = a.h.mailbox("group", &key).await;

    let query = b.h.subscription_query(&mailbox, &key, Some(0));
    let mut ws = subscribe(b.h.addr, &query).await;
    // 60 sends: most to A (the other process), some to B itself, batches of 1 and 3.
    let mut sent = Vec::new();
    for i in 0..60u32 {
        let n = if i % 4 == 0 { 3 } else { 1 };
        let payloads: Vec<Vec<u8>> = (0..n).map(|j| format!("m{i}-{j}").into_bytes()).collect();
        let envelopes: Vec<_> = payloads.iter().map(|p| message(p)).collect();
        let via = if i % 5 == 0 { &b.h } else { &a.h };
        send(via, &mailbox, &key, serde_json::Value::Array(envelopes))
            .await
            .ok();
        sent.extend(payloads);
    }
    for (i, expected) in sent.iter().enumerate() {
        let (_, body) = frame(&mut ws).await;
        let (id, seq, payload) = envelope(&body);
        assert_eq!(id, mailbox.to_string());
        assert_eq!(seq, i as u64 + 1, "in order, no gap, no duplicate");
        assert_eq!(&payload, expected);
    }
    // Nothing more (no duplicate at the end): the next frame is a heartbeat or nothing.
    let more = tokio::time::timeout(std::time::Duration::from_millis(300), frame(&mut ws)).await;
    if let Ok((header, _)) = more {
        assert_ne!(
            header.t.as_deref(),
            Some("#envelope"),
            "a duplicate envelope"
        );
    }
}

/// Mailbox key of epoch `e` (both committers derive the same schedule, as MLS members do).
fn epoch_key(e: u64) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&e.to_le_bytes());
    seed[31] = 0x5a;
    SigningKey::from_bytes(&seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_committers_on_two_processes_race_without_fork_or_gap() {
    const ROUNDS: u64 = 100;
    let schema = fresh_schema();
    let (a, b) = (process(&schema).await, process(&schema).await);
    let created = a.h.create("group", &epoch_key(0), 0).await.ok();
    let mailbox: MailboxId = created["mailbox"]
        .as_str()
        .expect("id")
        .parse()
        .expect("id");

    let mut epoch = 0u64;
    for round in 0..ROUNDS {
        let (ka, kb) = (format!("a{round}"), format!("b{round}"));
        let (now, next) = (epoch_key(epoch), epoch_key(epoch + 1));
        let (ra, rb) = tokio::join!(
            a.h.send(
                &mailbox,
                &now,
                serde_json::json!([commit(epoch, ka.as_bytes(), &next)])
            ),
            b.h.send(
                &mailbox,
                &now,
                serde_json::json!([commit(epoch, kb.as_bytes(), &next)])
            ),
        );
        let statuses = (ra.status.as_u16(), rb.status.as_u16());
        // Exactly one wins; the other is told EpochConflict (never a 5xx) and commits
        // again on top of the winner.
        let (loser, payload) = match statuses {
            (200, 409) => (&b.h, kb),
            (409, 200) => (&a.h, ka),
            other => panic!(
                "round {round}: statuses {other:?}: {} / {}",
                String::from_utf8_lossy(&ra.body),
                String::from_utf8_lossy(&rb.body)
            ),
        };
        let again = loser
            .send(
                &mailbox,
                &epoch_key(epoch + 1),
                serde_json::json!([commit(epoch + 1, payload.as_bytes(), &epoch_key(epoch + 2))]),
            )
            .await;
        assert_eq!(
            again.status.as_u16(),
            200,
            "round {round}: {}",
            String::from_utf8_lossy(&again.body)
        );
        epoch += 2;
    }

    let all = read_all(&a.h, &mailbox, &epoch_key(epoch)).await;
    assert_eq!(all.len() as u64, 2 * ROUNDS);
    for (i, (seq, kind, e, _)) in all.iter().enumerate() {
        assert_eq!(*seq, i as u64 + 1, "no gap");
        assert_eq!(kind, "commit");
        assert_eq!(*e, Some(i as u64), "commit n is on epoch n-1: no fork");
    }
    for round in 0..ROUNDS {
        for who in ["a", "b"] {
            let intent = format!("{who}{round}").into_bytes();
            assert_eq!(
                all.iter().filter(|(_, _, _, p)| *p == intent).count(),
                1,
                "intent {who}{round} applied exactly once"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_accepted_by_one_process_is_a_replay_at_the_other() {
    let schema = fresh_schema();
    let (a, b) = (process(&schema).await, process(&schema).await);
    let key = mailbox_key();
    let mailbox = a.h.mailbox("group", &key).await;
    let body =
        serde_json::json!({ "mailbox": mailbox.to_string(), "envelopes": [message(b"once")] })
            .to_string()
            .into_bytes();
    let auth =
        a.h.token(&key, DsMethod::SendEnvelopes, &mailbox, &body)
            .authorization_header();
    let path = "/xrpc/chat.mls.ds.sendEnvelopes";
    ds_support::post(a.h.addr, path, body.clone(), &[("authorization", &auth)])
        .await
        .ok();
    ds_support::post(b.h.addr, path, body, &[("authorization", &auth)])
        .await
        .assert_error(401, "ReplayedRequest");
    let _ = WAIT;
}

/// One token sent to both processes at the same instant, 30 times over: each time
/// exactly one accepts it and the other refuses it as a replay (the claim is decided in
/// the database, inside the group commit of whichever process writes first), and the
/// mailbox holds exactly one envelope per token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_sent_to_both_processes_at_once_is_accepted_once() {
    const ROUNDS: usize = 30;
    let schema = fresh_schema();
    let (a, b) = (process(&schema).await, process(&schema).await);
    let key = mailbox_key();
    let mailbox = a.h.mailbox("group", &key).await;
    let path = "/xrpc/chat.mls.ds.sendEnvelopes";
    for round in 0..ROUNDS {
        let payload = format!("round {round}");
        let body = serde_json::json!({
            "mailbox": mailbox.to_string(),
            "envelopes": [message(payload.as_bytes())]
        })
        .to_string()
        .into_bytes();
        let auth =
            a.h.token(&key, DsMethod::SendEnvelopes, &mailbox, &body)
                .authorization_header();
        let headers = [("authorization", auth.as_str())];
        let (ra, rb) = tokio::join!(
            ds_support::post(a.h.addr, path, body.clone(), &headers),
            ds_support::post(b.h.addr, path, body, &headers),
        );
        let (ok, refused) = match (ra.status.as_u16(), rb.status.as_u16()) {
            (200, _) => (ra, rb),
            (_, 200) => (rb, ra),
            (x, y) => panic!("round {round}: neither accepted ({x}, {y})"),
        };
        ok.ok();
        refused.assert_error(401, "ReplayedRequest");
    }
    let stored = read_all(&a.h, &mailbox, &key).await;
    assert_eq!(stored.len(), ROUNDS, "one envelope per token");
    for (i, e) in stored.iter().enumerate() {
        assert_eq!(e.0, i as u64 + 1);
        assert_eq!(e.3, format!("round {i}").into_bytes());
    }
}

/// Two processes fill one mailbox at once, four senders at each, 25 requests per sender:
/// every request is acknowledged (each process decides its group against the mailbox
/// locked in the database, so neither keeps losing the head compare-and-swap to the
/// other, and none is answered `ServiceUnavailable` after too many re-decisions), and
/// the mailbox holds every acknowledged envelope once, without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_filling_one_mailbox_all_complete() {
    const SENDERS: usize = 8;
    const REQUESTS: usize = 25;
    let schema = fresh_schema();
    let (a, b) = (process(&schema).await, process(&schema).await);
    let key = mailbox_key();
    let mailbox = a.h.mailbox("group", &key).await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let tasks: Vec<_> = (0..SENDERS)
        .map(|s| {
            let p = if s % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for r in 0..REQUESTS {
                    let payload = format!("{s}/{r}");
                    let resp = tokio::time::timeout(
                        WAIT,
                        send(
                            &p.h,
                            &mailbox,
                            &key,
                            serde_json::json!([message(payload.as_bytes())]),
                        ),
                    )
                    .await
                    .expect("every request is answered in time");
                    statuses.push(resp.status.as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        for status in t.await.expect("sender") {
            assert_eq!(status, 200, "every request acknowledged");
            ok += 1;
        }
    }
    let stored = read_all(&a.h, &mailbox, &key).await;
    assert_eq!(stored.len(), ok);
    for (i, e) in stored.iter().enumerate() {
        assert_eq!(e.0, i as u64 + 1, "no gap");
    }
    let mut payloads: Vec<&[u8]> = stored.iter().map(|e| e.3.as_slice()).collect();
    payloads.sort_unstable();
    payloads.dedup();
    assert_eq!(payloads.len(), SENDERS * REQUESTS, "each envelope once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_report_the_database() {
    use atmls_ds_xrpc::DsServiceConfig;
    use atmls_identity::Did;
    use atmls_identity::resolve::{HttpResolver, ResolverConfig};
    use atmls_xrpc::Server;

    let config = PgConfig::new(&url())
        .expect("valid URL")
        .with_schema(fresh_schema())
        .with_writer_lanes(3)
        .with_pool_size(7);
    let ds_config = DsServiceConfig::new(
        Did::new("did:web:localhost").expect("did"),
        "http://localhost",
    );
    let pg = PgDs::start(
        &config,
        ds_config,
        std::sync::Arc::new(HttpResolver::new(ResolverConfig::default())),
    )
    .await
    .expect("start on the test database");
    let server = Server::bind(server_config(), pg.router().expect("router"))
        .await
        .expect("bind");
    let addr = server.local_addr();
    let running = tokio::spawn(server.serve(std::future::pending()));

    let health = ds_support::get(addr, "/_health", &[]).await.ok();
    assert_eq!(health["database"], "ok", "{health}");
    assert_eq!(pg.ds().writer_lanes(), 3);
    let metrics = ds_support::get(addr, "/metrics", &[]).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("atmls_ds_db_pool_connections{state=\"max\"} 7"),
        "{text}"
    );
    assert!(text.contains("atmls_ds_notifications_total"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    running.abort();
    pg.shutdown().await;
}
