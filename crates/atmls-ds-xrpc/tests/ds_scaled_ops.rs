//! Operating the DS on PostgreSQL (issue 16): a SQLite DS copied into PostgreSQL and
//! served from there unchanged, the database restarted under load, and what a dump of
//! the database holds.
//!
//! Needs `ATMLS_TEST_DATABASE_URL` (`scripts/test` starts a throw-away cluster with
//! `scripts/pg-cluster`); without it every test here fails. The restart test also needs
//! `ATMLS_PG_CLUSTER` (the cluster's directory, set by the same script), to restart it.

mod ds_support;

use std::sync::atomic::Ordering;

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

/// Held by each test here for its whole run: the restart test takes the database away,
/// which must not land in the middle of another test of this binary (test binaries run
/// one after another, so other binaries are not affected).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The test database's URL; panics (fails the test) when it is not set.
fn url() -> String {
    atmls_testkit::database::database_url()
}

/// A schema no other test uses: one "deployment".
fn fresh_schema() -> SchemaName {
    atmls_testkit::database::fresh_schema_name("o")
        .parse()
        .expect("valid schema name")
}

fn pg_config(schema: &SchemaName) -> PgConfig {
    PgConfig::new(&url())
        .expect("valid URL")
        .with_schema(schema.clone())
        .with_pool_size(4)
        // Several writer lanes: each lane is to the others what another process is.
        .with_writer_lanes(3)
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
    // The service-auth token ids in the database too, as `atmls serve --database` keeps
    // them.
    let jti = atmls_server::scaled::PgReplayStore::new(store.clone(), 10_000);
    let h = start_with_store(
        store,
        limits,
        move |c| c.with_replay_store(std::sync::Arc::new(jti)),
        server_config(),
    )
    .await;
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
    let _one = ONE_AT_A_TIME.lock().await;
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
    let _one = ONE_AT_A_TIME.lock().await;
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

// ---- SIGKILL of one of two DS processes under load --------------------------------------

/// Set (to the schema) in a child process that serves a DS on the test database.
const KILL_CHILD: &str = "ATMLS_DS_PG_KILL_CHILD";

/// A DS process: does nothing unless [`KILL_CHILD`] is set. Then it serves a DS on the
/// test database's schema (system clock, its own pool and listener), prints
/// `listening on http://<addr>`, and stops when its stdin closes.
#[test]
fn kill_child() {
    let Some(schema) = std::env::var_os(KILL_CHILD) else {
        return;
    };
    let schema: SchemaName = schema
        .to_str()
        .expect("schema")
        .parse()
        .expect("schema name");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = pg_config(&schema);
        let pg = config.clone();
        let store = tokio::task::spawn_blocking(move || PgStore::connect(&pg))
            .await
            .expect("connect task")
            .expect("connect");
        let server = atmls_testkit::server::TestServer::builder()
            .ds_only()
            .without_plc()
            .system_clock()
            .start_on(store)
            .await;
        let _follow = PgDs::follow(&config, server.ds().clone())
            .await
            .expect("listen");
        println!("{}{}", atmls_testkit::child::LISTENING, server.addr());
        std::io::Write::flush(&mut std::io::stdout()).expect("flush");
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)
                .is_ok_and(|n| n > 0)
            {
                line.clear();
            }
        })
        .await
        .expect("stdin reader");
        server.shutdown().await;
    });
}

mod kill {
    use atmls_testkit::child;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use atmls_ds::auth::{DsMethod, RequestToken};
    use atmls_ds::{DeliveryService, DsConfig, MailboxId, MailboxKind};
    use atmls_ds_postgres::{PgStore, SchemaName};
    use atmls_ds_xrpc::{Clock as _, SystemClock};
    use bytes::Bytes;
    use ed25519_dalek::SigningKey;
    use futures_util::StreamExt as _;
    use http_body_util::Full;
    use hyper::{Request, StatusCode};
    use serde_json::{Value, json};

    use super::{KILL_CHILD, fresh_schema, pg_config};
    use crate::ds_support::{b64, mailbox_key, public, unb64};

    const MAILBOXES: usize = 4;
    /// Senders 0..4 send through process A, 4..8 through B; sender `i` to mailbox `i % 4`.
    const SENDERS: usize = 8;
    /// Acknowledged batches before A is killed.
    const KILL_AFTER: usize = 100;
    /// Batches B must acknowledge after the kill (the survivor keeps serving).
    const SURVIVOR_ACKS: usize = 40;

    /// A DS process over `schema`, killed (SIGKILL) when dropped; its address.
    fn spawn_server(schema: &SchemaName) -> (child::Child, SocketAddr) {
        child::spawn(
            "kill_child",
            KILL_CHILD,
            schema.as_str(),
            Duration::from_secs(20),
        )
    }

    /// One request on a fresh connection; `Err` when the server is gone.
    async fn request(
        addr: SocketAddr,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Value), String> {
        let (status, body) =
            atmls_testkit::http::try_send(addr, req, Duration::from_secs(10)).await?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    fn token(
        key: &SigningKey,
        method: DsMethod,
        mailbox: &MailboxId,
        content: &[u8],
    ) -> RequestToken {
        RequestToken::sign(
            key,
            method,
            mailbox,
            SystemClock.now(),
            rand::random(),
            content,
        )
    }

    async fn send_batch(
        addr: SocketAddr,
        mailbox: &MailboxId,
        key: &SigningKey,
        payloads: &[Vec<u8>],
    ) -> Result<(StatusCode, Value), String> {
        let envelopes: Vec<Value> = payloads
            .iter()
            .map(|p| json!({ "kind": "message", "payload": { "$bytes": b64(p) } }))
            .collect();
        let body = json!({ "mailbox": mailbox.to_string(), "envelopes": envelopes })
            .to_string()
            .into_bytes();
        let auth = token(key, DsMethod::SendEnvelopes, mailbox, &body).authorization_header();
        let req = Request::post("/xrpc/chat.mls.ds.sendEnvelopes")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("authorization", auth)
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        request(addr, req).await
    }

    async fn read_all(
        addr: SocketAddr,
        mailbox: &MailboxId,
        key: &SigningKey,
    ) -> Vec<(u64, Vec<u8>)> {
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        loop {
            let cursor = out.last().map_or(0, |(s, _)| *s);
            let query = format!("mailbox={mailbox}&cursor={cursor}&limit=1000");
            let auth = token(key, DsMethod::GetEnvelopes, mailbox, query.as_bytes())
                .authorization_header();
            let req = Request::get(format!("/xrpc/chat.mls.ds.getEnvelopes?{query}"))
                .header("host", "localhost")
                .header("authorization", auth)
                .body(Full::new(Bytes::new()))
                .expect("request");
            let (status, page) = request(addr, req).await.expect("read");
            assert_eq!(status, StatusCode::OK, "{page}");
            let page = page["envelopes"].as_array().expect("envelopes").clone();
            if page.is_empty() {
                return out;
            }
            out.extend(
                page.iter()
                    .map(|e| (e["seq"].as_u64().expect("seq"), unb64(&e["payload"]))),
            );
        }
    }

    /// Subscribes to `mailbox` at `addr` from `cursor` and collects envelopes until the
    /// stream ends or `until` is reached.
    async fn subscriber(
        addr: SocketAddr,
        mailbox: MailboxId,
        key: SigningKey,
        cursor: u64,
        until: Option<u64>,
    ) -> Vec<(u64, Vec<u8>)> {
        let query = format!("mailbox={mailbox}&cursor={cursor}");
        let t = token(
            &key,
            DsMethod::SubscribeEnvelopes,
            &mailbox,
            query.as_bytes(),
        );
        let mut ws =
            crate::ds_support::subscribe(addr, &format!("{query}&auth={}", t.encode())).await;
        let mut got = Vec::new();
        loop {
            if until.is_some_and(|u| got.last().is_some_and(|(s, _)| *s >= u)) {
                return got;
            }
            let next = tokio::time::timeout(Duration::from_secs(20), ws.next()).await;
            let Ok(Some(Ok(msg))) = next else {
                assert!(
                    until.is_none(),
                    "the caught-up subscription stalled at {got:?}"
                );
                return got;
            };
            let tokio_tungstenite::tungstenite::Message::Binary(b) = msg else {
                continue;
            };
            let (header, body) =
                atmls_xrpc::Frame::decode::<ipld_core::ipld::Ipld>(&b).expect("frame");
            if header.t.as_deref() == Some("#envelope") {
                let (_, seq, payload) = crate::ds_support::envelope(&body);
                got.push((seq, payload));
            }
        }
    }

    #[derive(Debug, Clone)]
    struct Sent {
        mailbox: usize,
        payloads: Vec<Vec<u8>>,
        acked: Option<u64>,
    }

    #[allow(clippy::too_many_arguments)]
    async fn sender(
        id: usize,
        addr: SocketAddr,
        mailbox: (MailboxId, SigningKey),
        log: Arc<Mutex<Vec<Sent>>>,
        acks: Arc<AtomicUsize>,
        stop: Arc<AtomicBool>,
        deadline: Instant,
    ) {
        let (mb, key) = mailbox;
        for n in 0usize.. {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            assert!(Instant::now() < deadline, "sender {id}: deadline");
            let payloads: Vec<Vec<u8>> = (0..n % 3 + 1)
                .map(|j| format!("sender {id} batch {n} envelope {j}").into_bytes())
                .collect();
            let slot = {
                let mut log = log.lock().expect("log");
                log.push(Sent {
                    mailbox: id % MAILBOXES,
                    payloads: payloads.clone(),
                    acked: None,
                });
                log.len() - 1
            };
            match send_batch(addr, &mb, &key, &payloads).await {
                Ok((StatusCode::OK, body)) => {
                    log.lock().expect("log")[slot].acked = body["firstSeq"].as_u64();
                    acks.fetch_add(1, Ordering::SeqCst);
                }
                Ok((StatusCode::SERVICE_UNAVAILABLE, body)) => {
                    assert_eq!(body["error"], "ServiceUnavailable", "{body}");
                    // Nothing written: forget it and go on.
                    log.lock().expect("log")[slot].payloads.clear();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok((status, body)) => panic!("sender {id}: {status} {body}"),
                // The process was killed: this batch may or may not have been committed.
                Err(_) => return,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_of_one_of_two_processes_under_load_loses_nothing() {
        let _one = super::ONE_AT_A_TIME.lock().await;
        let started = Instant::now();
        let schema = fresh_schema();
        let config = pg_config(&schema);
        let mailboxes: Vec<(MailboxId, SigningKey)> = tokio::task::spawn_blocking(move || {
            let store = PgStore::connect(&config).expect("connect");
            let mut core = DeliveryService::new(store, rand::rngs::OsRng, DsConfig::default());
            (0..MAILBOXES)
                .map(|_| {
                    let key = mailbox_key();
                    let info = core
                        .create_mailbox("did:plc:killtest", MailboxKind::Group, &public(&key), 0)
                        .expect("create");
                    (info.mailbox, key)
                })
                .collect()
        })
        .await
        .expect("setup task");

        let (a, a_addr) = spawn_server(&schema);
        let (_b, b_addr) = spawn_server(&schema);
        // A subscriber of mailbox 0 on A, the process that will be killed.
        let sub = tokio::spawn(subscriber(
            a_addr,
            mailboxes[0].0,
            mailboxes[0].1.clone(),
            0,
            None,
        ));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (acks, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..SENDERS)
            .map(|id| {
                let addr = if id < SENDERS / 2 { a_addr } else { b_addr };
                tokio::spawn(sender(
                    id,
                    addr,
                    mailboxes[id % MAILBOXES].clone(),
                    log.clone(),
                    acks.clone(),
                    stop.clone(),
                    deadline,
                ))
            })
            .collect();
        while acks.load(Ordering::SeqCst) < KILL_AFTER {
            assert!(Instant::now() < deadline, "too few acknowledgements");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // SIGKILL of A, in the middle of the load; B's senders go on.
        drop(a);
        let at_kill = acks.load(Ordering::SeqCst);
        while acks.load(Ordering::SeqCst) < at_kill + SURVIVOR_ACKS {
            assert!(Instant::now() < deadline, "the survivor stopped serving");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A restarts (a new process on the same database) while B is still loaded.
        let (_a, a_addr) = spawn_server(&schema);
        let survivor_before = acks.load(Ordering::SeqCst);
        while acks.load(Ordering::SeqCst) < survivor_before + 10 {
            assert!(Instant::now() < deadline, "no load after the restart");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await.expect("sender");
        }
        let sent = log.lock().expect("log").clone();

        // Everything, read through the restarted A.
        let mut stored = Vec::new();
        for (mb, key) in &mailboxes {
            stored.push(read_all(a_addr, mb, key).await);
        }
        let mut owner: std::collections::HashMap<&[u8], usize> = Default::default();
        for (i, s) in sent.iter().enumerate() {
            for p in &s.payloads {
                owner.insert(p, i);
            }
        }
        for (m, envelopes) in stored.iter().enumerate() {
            let seqs: Vec<u64> = envelopes.iter().map(|(s, _)| *s).collect();
            assert_eq!(
                seqs,
                (1..=seqs.len() as u64).collect::<Vec<_>>(),
                "mailbox {m}: gap"
            );
            for (seq, payload) in envelopes {
                let i = owner
                    .get(payload.as_slice())
                    .unwrap_or_else(|| panic!("mailbox {m} seq {seq}: a payload nobody sent"));
                assert_eq!(sent[*i].mailbox, m, "seq {seq} in the wrong mailbox");
            }
        }
        let (mut acked, mut kept, mut lost) = (0, 0, 0);
        for s in sent.iter().filter(|s| !s.payloads.is_empty()) {
            let envelopes = &stored[s.mailbox];
            let at = envelopes.iter().position(|(_, p)| *p == s.payloads[0]);
            if let Some(first) = s.acked {
                acked += 1;
                let at = at.unwrap_or_else(|| panic!("acknowledged batch at {first} lost"));
                assert_eq!(envelopes[at].0, first, "acknowledged at another seq");
            }
            match at {
                Some(at) => {
                    let got: Vec<&Vec<u8>> = envelopes[at..]
                        .iter()
                        .take(s.payloads.len())
                        .map(|(_, p)| p)
                        .collect();
                    assert_eq!(
                        got,
                        s.payloads.iter().collect::<Vec<_>>(),
                        "batch half-written"
                    );
                    if s.acked.is_none() {
                        kept += 1;
                    }
                }
                None => {
                    assert!(
                        s.payloads
                            .iter()
                            .all(|p| envelopes.iter().all(|(_, q)| q != p)),
                        "batch half-written"
                    );
                    lost += 1;
                }
            }
        }
        // The subscriber of the killed process resubscribes at the restarted one from
        // its cursor and catches up: together, everything of mailbox 0, in order, once.
        let mut seen = tokio::time::timeout(Duration::from_secs(20), sub)
            .await
            .expect("the killed process's subscription ended")
            .expect("subscriber");
        let cursor = seen.last().map_or(0, |(s, _)| *s);
        let head = stored[0].last().map_or(0, |(s, _)| *s);
        assert!(cursor < head, "the subscription ended before the end");
        seen.extend(
            subscriber(
                a_addr,
                mailboxes[0].0,
                mailboxes[0].1.clone(),
                cursor,
                Some(head),
            )
            .await,
        );
        assert_eq!(
            seen, stored[0],
            "the subscriber caught up: in order, no gap, no duplicate"
        );
        assert!(acked >= KILL_AFTER + SURVIVOR_ACKS);
        eprintln!(
            "sigkill test: {acked} acknowledged batches all present; {kept} unacknowledged \
             batches committed whole, {lost} absent; {} envelopes; subscriber resumed at {cursor} \
             of {head}; {:?}",
            stored.iter().map(Vec::len).sum::<usize>(),
            started.elapsed()
        );
    }
}

// ---- what a dump of the database holds ---------------------------------------------------

/// The tables that may hold a DID: the per-account mailbox counter, and the service-auth
/// token ids (issuer, token id, expiry) kept for replay protection. Neither has a mailbox
/// column.
const DID_TABLES: [&str; 2] = ["account_quota", "service_auth_jti"];

/// `pg_dump` of one schema of the test database, as text.
fn pg_dump(schema: &SchemaName) -> String {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|dirs| {
            dirs.filter_map(Result::ok)
                .map(|d| d.path().join("bin/pg_dump"))
                .filter(|p| p.is_file())
                .max()
        })
        .unwrap_or_else(|| "pg_dump".into());
    let out = std::process::Command::new(bin)
        .args([
            "--no-owner",
            "--schema",
            schema.as_str(),
            "--dbname",
            &url(),
        ])
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("a UTF-8 dump")
}

/// Every data line of the dump with the table it belongs to (`COPY … FROM stdin;` blocks).
fn data_lines(dump: &str) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    let mut table: Option<String> = None;
    for line in dump.lines() {
        match &table {
            None => {
                if let Some(rest) = line.strip_prefix("COPY ") {
                    let name = rest.split_whitespace().next().unwrap_or_default();
                    let name = name.rsplit('.').next().unwrap_or_default();
                    table = Some(name.trim_matches('"').to_owned());
                }
            }
            Some(_) if line == "\\." => table = None,
            Some(t) => out.push((t.clone(), line)),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_of_the_database_links_no_did_to_a_mailbox() {
    use atmls_ds_xrpc::Clock as _;
    use atmls_identity::service_auth::{Claims, issue};
    use std::time::Duration;

    let _one = ONE_AT_A_TIME.lock().await;
    let schema = fresh_schema();
    let p = process(&schema, limits()).await;
    let h = &p.h;
    let others: Vec<_> = (0..3)
        .map(|_| h.plc().account("https://pds.example.com"))
        .collect();
    let accounts: Vec<&ds_support::Account> = std::iter::once(&h.alice).chain(&others).collect();
    let mut ids = Vec::new();
    for (n, account) in accounts.iter().enumerate() {
        for kind in ["group", "inbox"] {
            let key = epoch_key(40 + n as u8, u64::from(kind == "inbox"));
            let token = issue(
                &account.key,
                &Claims::new(
                    &account.did,
                    &h.audience(),
                    "chat.mls.ds.createMailbox",
                    h.clock.now(),
                    Duration::from_secs(60),
                ),
            );
            let body = json!({ "kind": kind, "key": { "$bytes": b64(&key.verifying_key().to_bytes()) }, "epoch": 0 });
            let auth = format!("Bearer {token}");
            let created = ds_support::post(
                h.addr,
                "/xrpc/chat.mls.ds.createMailbox",
                body.to_string().into_bytes(),
                &[("authorization", &auth)],
            )
            .await
            .ok();
            let id: MailboxId = created["mailbox"]
                .as_str()
                .expect("id")
                .parse()
                .expect("id");
            if kind == "group" {
                h.send(&id, &key, json!([message(b"hello")])).await.ok();
            } else {
                welcome(h, &id, b"welcome").await;
            }
            ids.push(id);
        }
    }

    let dump = pg_dump(&schema);
    let lines = data_lines(&dump);
    let needles: Vec<String> = ids
        .iter()
        .flat_map(|id| [hex(id.as_bytes()), id.to_string()])
        .collect();
    assert!(
        needles.iter().any(|n| dump.contains(n.as_str())),
        "the scan sees the mailbox ids"
    );
    let mut in_jti = 0;
    for account in &accounts {
        let did = account.did.as_str();
        let mut seen_in_quota = false;
        for (table, line) in lines.iter().filter(|(_, l)| l.contains(did)) {
            assert!(
                DID_TABLES.contains(&table.as_str()),
                "a DID in table {table}"
            );
            for n in &needles {
                assert!(
                    !line.contains(n.as_str()),
                    "a DID beside a mailbox id in {table}"
                );
            }
            seen_in_quota |= table == "account_quota";
            in_jti += usize::from(table == "service_auth_jti");
        }
        assert!(seen_in_quota, "the scan sees the quota rows");
        // Outside the data: nowhere (no comment, no default, no name).
        let outside = dump.lines().filter(|l| l.contains(did)).count();
        let inside = lines.iter().filter(|(_, l)| l.contains(did)).count();
        assert_eq!(outside, inside, "a DID outside the table data");
    }
    assert_eq!(
        in_jti,
        ids.len(),
        "the scan sees the service-auth token ids"
    );
    // The DID tables have no mailbox column; no handle or PDS name is stored anywhere.
    for table in DID_TABLES {
        let create = dump
            .split(&format!("CREATE TABLE {}.{table} (", schema.as_str()))
            .nth(1)
            .and_then(|rest| rest.split(");").next())
            .unwrap_or_else(|| panic!("no CREATE TABLE {table} in the dump"));
        let columns: Vec<&str> = create
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "CONSTRAINT")
            .collect();
        assert!(
            !columns
                .iter()
                .any(|c| ["mailbox", "id", "key", "subject"].contains(c)),
            "{table}: {columns:?}"
        );
    }
    for word in ["at://", "pds.example.com", ".test"] {
        assert!(!dump.contains(word), "{word} in the dump");
    }
}
