//! Operating the DS on PostgreSQL (issue 16): a SQLite DS copied into PostgreSQL and
//! served from there unchanged, the database restarted under load, and what a dump of
//! the database holds.
//!
//! Needs `ATMLS_TEST_DATABASE_URL` (`scripts/test` starts a throw-away cluster with
//! `scripts/pg-cluster`); without it every test here fails. The restart test also needs
//! `ATMLS_PG_CLUSTER` (the cluster's directory, set by the same script), to restart it.

mod ds_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use atmls_ds::auth::DsMethod;
use atmls_ds::{MailboxId, SqliteStore, Store as _};
use atmls_ds_postgres::{
    CopyError, NonEmptyTarget, PgConfig, PgStore, SchemaName, copy_from_sqlite,
};
use atmls_server::scaled::PgDs;
use ds_support::{Harness, b64, commit, message, server_config, small_limits, start_with_store};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The test database's URL; panics (fails the test) when it is not set.
fn url() -> String {
    std::env::var("ATMLS_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "ATMLS_TEST_DATABASE_URL is not set: these tests need a PostgreSQL server. \
             Start a throw-away one with `eval \"$(scripts/pg-cluster start)\"` \
             (scripts/test does this)."
        )
    })
}

/// A schema no other test uses: one "deployment".
fn fresh_schema() -> SchemaName {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "o_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
    .parse()
    .expect("valid schema name")
}

fn pg_config(schema: &SchemaName) -> PgConfig {
    PgConfig::new(&url())
        .expect("valid URL")
        .with_schema(schema.clone())
        .with_pool_size(4)
}

/// One DS process of a deployment: the harness (server, clock, PLC) and its listener.
struct Process {
    h: Harness,
    _follow: JoinHandle<()>,
}

async fn process(schema: &SchemaName, limits: atmls_ds::DsConfig) -> Process {
    let config = pg_config(schema);
    let pg = config.clone();
    let store = tokio::task::spawn_blocking(move || PgStore::connect(&pg))
        .await
        .expect("connect task")
        .expect("connect to the test database");
    let h = start_with_store(store, limits, |c| c, server_config()).await;
    let follow = PgDs::follow(&config, h.ds.clone())
        .await
        .expect("listen to the test database");
    Process { h, _follow: follow }
}

fn limits() -> atmls_ds::DsConfig {
    small_limits()
        .with_max_mailboxes_per_account(8)
        .with_inbox_deposits_per_minute(50)
}

/// Mailbox key of epoch `e` of group `g`.
fn epoch_key(g: u8, e: u64) -> SigningKey {
    let mut seed = [g; 32];
    seed[..8].copy_from_slice(&e.to_le_bytes());
    SigningKey::from_bytes(&seed)
}

async fn welcome(h: &Harness, inbox: &MailboxId, payload: &[u8]) {
    let body = json!({ "inbox": inbox.to_string(), "payload": { "$bytes": b64(payload) } });
    ds_support::post(
        h.addr,
        "/xrpc/chat.mls.ds.sendWelcome",
        body.to_string().into_bytes(),
        &[],
    )
    .await
    .ok();
}

/// What a reader sees of a group (`getEnvelopes` from 0) or an inbox (`listInbox`).
async fn view(h: &Harness, mailbox: &MailboxId, key: &SigningKey, inbox: bool) -> Value {
    if inbox {
        let q = format!("inbox={mailbox}");
        h.signed_get(DsMethod::ListInbox, mailbox, key, &q)
            .await
            .ok()
    } else {
        h.read(mailbox, key, 0).await.ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_ds_migrated_to_postgres_serves_every_envelope_unchanged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("ds.sqlite");
    let src = start_with_store(
        SqliteStore::open(&db).expect("open SQLite"),
        limits(),
        |c| c,
        server_config(),
    )
    .await;
    // Two groups (one with two commits), two inboxes (one with deleted items).
    let g1 = src.mailbox("group", &epoch_key(1, 0)).await;
    let g2 = src.mailbox("group", &epoch_key(2, 0)).await;
    let (o1, o2) = (epoch_key(3, 0), epoch_key(4, 0));
    let i1 = src.mailbox("inbox", &o1).await;
    let i2 = src.mailbox("inbox", &o2).await;
    for epoch in 0..2u64 {
        let key = epoch_key(1, epoch);
        for m in 0..4u8 {
            let p = [b'g', epoch as u8, m];
            src.send(&g1, &key, json!([message(&p)])).await.ok();
        }
        let c = format!("commit {epoch}");
        src.send(
            &g1,
            &key,
            json!([commit(epoch, c.as_bytes(), &epoch_key(1, epoch + 1))]),
        )
        .await
        .ok();
    }
    src.send(
        &g1,
        &epoch_key(1, 2),
        json!([message(b"after"), message(b"two")]),
    )
    .await
    .ok();
    src.send(
        &g2,
        &epoch_key(2, 0),
        json!([message(b"x"), message(b"y"), message(b"z")]),
    )
    .await
    .ok();
    for n in 0..4u8 {
        welcome(&src, &i1, &[b'w', 1, n]).await;
    }
    welcome(&src, &i2, b"w2-a").await;
    welcome(&src, &i2, b"w2-b").await;
    let del = json!({ "inbox": i1.to_string(), "seqs": [2, 3] });
    let deleted = src
        .signed_post(DsMethod::DeleteInboxItems, &i1, &o1, &del)
        .await
        .ok();
    assert_eq!(deleted["deleted"], 2);

    let readers: [(MailboxId, SigningKey, bool); 5] = [
        (g1, epoch_key(1, 2), false),
        (g1, epoch_key(1, 0), false), // an ended epoch's key: up to its commit
        (g2, epoch_key(2, 0), false),
        (i1, o1.clone(), true),
        (i2, o2.clone(), true),
    ];
    let mut before = Vec::new();
    for (m, k, inbox) in &readers {
        before.push(view(&src, m, k, *inbox).await);
    }
    assert_eq!(before[0]["envelopes"].as_array().map(Vec::len), Some(12));
    assert_eq!(before[1]["envelopes"].as_array().map(Vec::len), Some(5));
    assert_eq!(before[3]["items"].as_array().map(Vec::len), Some(2));
    let account = src.alice.did.to_string();
    src.server.shutdown().await;

    // The copy, all or nothing, then a second run into the now non-empty target.
    let schema = fresh_schema();
    let config = pg_config(&schema);
    let (first, second, quota) = tokio::task::spawn_blocking(move || {
        let source = SqliteStore::open(&db).expect("open SQLite");
        let target = PgStore::connect(&config).expect("connect");
        let first = copy_from_sqlite(&source, &target, NonEmptyTarget::Refuse);
        let second = copy_from_sqlite(&source, &target, NonEmptyTarget::Refuse);
        (
            first,
            second,
            target.account_mailboxes(&account).expect("quota"),
        )
    })
    .await
    .expect("copy task");
    let report = first.expect("the copy");
    assert_eq!(
        (
            report.groups,
            report.inboxes,
            report.envelopes,
            report.ended_epochs,
            report.accounts
        ),
        (2, 2, 12 + 3 + 2 + 2, 2, 1)
    );
    assert!(
        matches!(
            second,
            Err(CopyError::NotEmpty {
                mailboxes: 4,
                envelopes: 19,
                accounts: 1
            })
        ),
        "{second:?}"
    );
    assert_eq!(quota, 4, "the account's count came along");

    // Served by a PG DS: the same pages, byte for byte, at the same seqs.
    let pg = process(&schema, limits()).await;
    for ((m, k, inbox), expected) in readers.iter().zip(&before) {
        assert_eq!(&view(&pg.h, m, k, *inbox).await, expected);
    }
    // The heads came along: the next envelope continues the sequence.
    let next =
        pg.h.send(&g1, &epoch_key(1, 2), json!([message(b"on postgres")]))
            .await
            .ok();
    assert_eq!(next["firstSeq"], 13, "{next}");
}

/// The cluster's directory (`scripts/pg-cluster start` exports it); panics without it.
fn cluster_dir() -> String {
    std::env::var("ATMLS_PG_CLUSTER").unwrap_or_else(|_| {
        panic!(
            "ATMLS_PG_CLUSTER is not set: this test restarts the throw-away cluster of \
             `eval \"$(scripts/pg-cluster start)\"` (scripts/test does this)."
        )
    })
}

/// `scripts/pg-cluster restart`: the database goes away (sessions cut) and comes back.
fn restart_database() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-cluster");
    let status = std::process::Command::new(script)
        .args(["restart", &cluster_dir()])
        .status()
        .expect("run scripts/pg-cluster");
    assert!(status.success(), "pg-cluster restart failed");
}

/// What one sender saw: its acknowledged (first seq, payload) and the answers it got.
#[derive(Debug, Default)]
struct Seen {
    acked: Vec<(u64, Vec<u8>)>,
    unavailable: usize,
    after_restart: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_is_retryable_and_loses_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    const SENDERS: usize = 4;
    const BEFORE: usize = 10; // acknowledged per sender before the restart
    const AFTER: usize = 10; // acknowledged per sender after it
    let schema = fresh_schema();
    let (a, b) = (
        Arc::new(process(&schema, limits()).await),
        Arc::new(process(&schema, limits()).await),
    );
    let mut mailboxes = Vec::new();
    for s in 0..SENDERS {
        let key = epoch_key(10 + s as u8, 0);
        mailboxes.push((a.h.mailbox("group", &key).await, key));
    }
    let (health_ds, health_addr, health_server) = probed_process(&schema).await;
    let health = ds_support::get(health_addr, "/_health", &[]).await.ok();
    assert_eq!(health["database"], "ok", "{health}");
    let restarted = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tasks = Vec::new();
    for (s, (mailbox, key)) in mailboxes.iter().cloned().enumerate() {
        // Senders on both processes.
        let p = if s % 2 == 0 { a.clone() } else { b.clone() };
        let restarted = restarted.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            for n in 0u32.. {
                assert!(
                    Instant::now() < deadline,
                    "sender {s}: no progress: {seen:?}"
                );
                if seen.after_restart >= AFTER {
                    return seen;
                }
                let payload = format!("sender {s} batch {n}").into_bytes();
                let r = p.h.send(&mailbox, &key, json!([message(&payload)])).await;
                match r.status.as_u16() {
                    200 => {
                        let body: Value = serde_json::from_slice(&r.body).expect("JSON");
                        let seq = body["firstSeq"].as_u64().expect("firstSeq");
                        seen.acked.push((seq, payload));
                        if restarted.load(Ordering::SeqCst) {
                            seen.after_restart += 1;
                        }
                    }
                    503 => {
                        let body: Value = serde_json::from_slice(&r.body).expect("JSON");
                        assert_eq!(body["error"], "ServiceUnavailable", "{body}");
                        seen.unavailable += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!(
                        "sender {s}: {other} {}: never a 500 or anything but 200/503",
                        String::from_utf8_lossy(&r.body)
                    ),
                }
                if seen.acked.len() == BEFORE && !restarted.load(Ordering::SeqCst) {
                    // Keep the load on while another sender restarts the database.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            unreachable!()
        }));
    }
    // Restart once every sender has some acknowledgements, with all of them still sending.
    loop {
        let total = count_all(&a, &mailboxes).await;
        if total >= (SENDERS * BEFORE) as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "no load before the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::spawn_blocking(restart_database)
        .await
        .expect("restart task");
    restarted.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.expect("sender"));
    }
    // The service came back by itself: a process started as `atmls serve --database`
    // starts it (with its database probe) reports the database ok again.
    loop {
        let health = ds_support::get(health_addr, "/_health", &[]).await;
        let body: Value = serde_json::from_slice(&health.body).expect("JSON");
        if health.status.as_u16() == 200 {
            assert_eq!(body["database"], "ok", "{body}");
            break;
        }
        assert_eq!(health.status.as_u16(), 503, "{body}");
        assert!(Instant::now() < deadline, "health never came back: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    health_server.abort();
    health_ds.shutdown().await;
    // Every acknowledged envelope is there at its seq, gap-free, each payload once (a 503
    // wrote nothing: retried payloads are new ones), read through the other process.
    let mut unavailable = 0;
    for (s, ((mailbox, key), seen)) in mailboxes.iter().zip(&seen).enumerate() {
        unavailable += seen.unavailable;
        let reader = if s % 2 == 0 { &b.h } else { &a.h };
        let page = reader.read(mailbox, key, 0).await.ok();
        let stored: Vec<(u64, Vec<u8>)> = page["envelopes"]
            .as_array()
            .expect("envelopes")
            .iter()
            .map(|e| {
                (
                    e["seq"].as_u64().expect("seq"),
                    ds_support::unb64(&e["payload"]),
                )
            })
            .collect();
        let seqs: Vec<u64> = stored.iter().map(|(q, _)| *q).collect();
        assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>(), "gap");
        assert_eq!(
            stored, seen.acked,
            "sender {s}: acknowledged = stored, in order"
        );
    }
    assert!(
        unavailable > 0,
        "the restart was never seen by a client: the test did not test it"
    );
    eprintln!("database restart: {unavailable} answers 503 ServiceUnavailable, none lost");
}

/// Envelopes stored in all `mailboxes`, read through `p`.
async fn count_all(p: &Process, mailboxes: &[(MailboxId, SigningKey)]) -> u64 {
    let mut n = 0;
    for (m, k) in mailboxes {
        let page = p.h.read(m, k, 0).await.ok();
        n += page["envelopes"].as_array().map_or(0, Vec::len) as u64;
    }
    n
}

/// A DS process started the way `atmls serve --database` starts it ([`PgDs::start`],
/// with the database probe on `/_health`): its handle, address and server task.
async fn probed_process(schema: &SchemaName) -> (PgDs, std::net::SocketAddr, JoinHandle<()>) {
    use atmls_ds_xrpc::DsServiceConfig;
    use atmls_identity::Did;
    use atmls_identity::resolve::{HttpResolver, ResolverConfig};
    use atmls_xrpc::Server;

    let ds_config = DsServiceConfig::new(
        Did::new("did:web:localhost").expect("did"),
        "http://localhost",
    );
    let pg = PgDs::start(
        &pg_config(schema),
        ds_config,
        std::sync::Arc::new(HttpResolver::new(ResolverConfig::default())),
    )
    .await
    .expect("start on the test database");
    let server = Server::bind(server_config(), pg.router().expect("router"))
        .await
        .expect("bind");
    let addr = server.local_addr();
    let running = tokio::spawn(async move {
        let _ = server.serve(std::future::pending()).await;
    });
    (pg, addr, running)
}
