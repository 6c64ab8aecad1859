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
