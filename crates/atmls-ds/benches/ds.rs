//! Delivery-service core and store benchmarks, each beside a raw baseline measured in the
//! same run:
//!
//! - request tokens: sign and decode + verify (1 KiB body) against raw Ed25519 sign and
//!   strict verify of the 169-byte signing bytes;
//! - the pre-check the server does in a request's task
//!   (`RequestAuth::check_signature`), and a key's decompression alone (what a key cache
//!   could save);
//! - the `sendEnvelopes` decision of the core (memory store: token checks, replay cache,
//!   envelope rules, sequencing), with the signature checked by the core or pre-checked
//!   (the writer's share), against a raw strict verify;
//! - `SqliteStore::append`, one batch per transaction and 32 batches (32 mailboxes) per
//!   transaction — the server's group commit — against raw rusqlite insert transactions of
//!   1 and 32 rows of 1 KiB on a file with the store's pragmas;
//! - `SqliteStore::envelopes`, a page of 1000 envelopes of 1 KiB, against the same raw
//!   `SELECT` on a second connection.
//!
//! Run with `cargo bench -p atmls-ds`; figures go to `docs/performance.md`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use atmls_ds::auth::{DsMethod, MailboxKey, PreChecked, RequestAuth, RequestToken, signing_bytes};
use atmls_ds::store::{Append, Mailbox, MailboxKeys, PageLimit};
use atmls_ds::{
    DeliveryService, DsConfig, Envelope, EnvelopeKind, MailboxId, MailboxKind, MemoryStore,
    OutgoingEnvelope, SqliteStore, Store, Timestamp,
};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::SeedableRng as _;
use rusqlite::{Connection, params};

const PAYLOAD: usize = 1024;
const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

/// A `sendEnvelopes` body of one 1 KiB message, as a client sends it (about 1.4 KB).
fn body(mailbox: &MailboxId) -> Vec<u8> {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD_NO_PAD.encode([0x5a; PAYLOAD]);
    format!(
        r#"{{"mailbox":"{mailbox}","envelopes":[{{"kind":"message","payload":{{"$bytes":"{payload}"}}}}]}}"#
    )
    .into_bytes()
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g
}

fn tokens(c: &mut Criterion) {
    let mut g = group(c, "token");
    let key = key();
    let public = key.verifying_key();
    let mailbox = MailboxId::from_bytes([1; 32]);
    let body = body(&mailbox);
    let msg = signing_bytes(
        DsMethod::SendEnvelopes,
        &mailbox,
        public.as_bytes(),
        NOW,
        &[2; 16],
        &body,
    );
    let sig = key.sign(&msg);
    g.bench_function("baseline_ed25519_sign_169B", |b| {
        b.iter(|| black_box(key.sign(black_box(&msg))))
    });
    g.bench_function("request_token_sign_1KiB_body", |b| {
        b.iter(|| {
            RequestToken::sign(
                &key,
                DsMethod::SendEnvelopes,
                &mailbox,
                NOW,
                [2; 16],
                black_box(&body),
            )
        })
    });
    g.bench_function("baseline_ed25519_verify_strict_169B", |b| {
        b.iter(|| {
            public
                .verify_strict(black_box(&msg), black_box(&sig))
                .expect("valid")
        })
    });
    let text =
        RequestToken::sign(&key, DsMethod::SendEnvelopes, &mailbox, NOW, [2; 16], &body).encode();
    g.bench_function("request_token_decode_verify_1KiB_body", |b| {
        b.iter(|| {
            RequestToken::decode(black_box(&text))
                .expect("token")
                .verify(DsMethod::SendEnvelopes, &mailbox, black_box(&body))
                .expect("valid")
        })
    });
    // The pre-check the server does in the request's task (decode + strict verify).
    let header = format!("ChatMls-Mailbox {text}");
    g.bench_function("request_auth_check_signature_1KiB_body", |b| {
        b.iter(|| {
            RequestAuth::from_header(Some(black_box(&header)), black_box(&body))
                .check_signature(DsMethod::SendEnvelopes, &mailbox)
        })
    });
    // What a cache of decompressed keys could save per verification.
    g.bench_function("baseline_ed25519_key_decompress", |b| {
        b.iter(|| VerifyingKey::from_bytes(black_box(public.as_bytes())).expect("key"))
    });
    g.finish();
}

fn send_decision(c: &mut Criterion) {
    let mut g = group(c, "send_envelopes_core");
    let key = key();
    let public = key.verifying_key();
    let config = DsConfig::default().with_replay_cache_capacity(10_000_000);
    let rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut ds = DeliveryService::new(MemoryStore::new(), rng, config);
    let info = ds
        .create_mailbox("did:plc:bench", MailboxKind::Group, public.as_bytes(), 0)
        .expect("mailbox");
    let mailbox = info.mailbox;
    let body = body(&mailbox);
    let msg = signing_bytes(
        DsMethod::SendEnvelopes,
        &mailbox,
        public.as_bytes(),
        NOW,
        &[2; 16],
        &body,
    );
    let sig: Signature = key.sign(&msg);
    g.bench_function("baseline_ed25519_verify_strict_169B", |b| {
        b.iter(|| {
            public
                .verify_strict(black_box(&msg), black_box(&sig))
                .expect("valid")
        })
    });
    let mut nonce = 0u128;
    g.bench_function("send_envelopes_1x1KiB_memory_store", |b| {
        b.iter_batched(
            || {
                nonce += 1;
                let token = RequestToken::sign(
                    &key,
                    DsMethod::SendEnvelopes,
                    &mailbox,
                    NOW,
                    nonce.to_be_bytes(),
                    &body,
                );
                (
                    token.authorization_header(),
                    vec![OutgoingEnvelope::message(vec![0x5a; PAYLOAD])],
                )
            },
            |(header, envelopes): (String, Vec<OutgoingEnvelope>)| {
                let auth = RequestAuth::from_header(Some(&header), &body);
                ds.send_envelopes(&mailbox, &auth, envelopes, NOW)
                    .expect("accepted")
            },
            BatchSize::SmallInput,
        )
    });
    // The writer's share once the signature was checked in the request's task.
    g.bench_function("send_envelopes_1x1KiB_memory_store_prechecked", |b| {
        b.iter_batched(
            || {
                nonce += 1;
                let token = RequestToken::sign(
                    &key,
                    DsMethod::SendEnvelopes,
                    &mailbox,
                    NOW,
                    nonce.to_be_bytes(),
                    &body,
                );
                let header = token.authorization_header();
                let checked = RequestAuth::from_header(Some(&header), &body)
                    .check_signature(DsMethod::SendEnvelopes, &mailbox);
                (
                    checked,
                    vec![OutgoingEnvelope::message(vec![0x5a; PAYLOAD])],
                )
            },
            |(checked, envelopes): (PreChecked, Vec<OutgoingEnvelope>)| {
                ds.send_envelopes(&mailbox, &checked, envelopes, NOW)
                    .expect("accepted")
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn raw_connection(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         CREATE TABLE IF NOT EXISTS t (mailbox BLOB NOT NULL, seq INTEGER NOT NULL,
                                       payload BLOB NOT NULL, PRIMARY KEY (mailbox, seq));",
    )
    .expect("schema");
    conn
}

fn group_mailbox(store: &mut SqliteStore, seed: u8) -> Mailbox {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let mailbox = Mailbox {
        id: MailboxId::from_bytes([seed; 32]),
        head: 0,
        stored_bytes: 0,
        message_lifetime: None,
        keys: MailboxKeys::Group {
            epoch: 0,
            current: MailboxKey::from_bytes(key.verifying_key().as_bytes()).expect("key"),
            previous: None,
        },
    };
    store
        .create_mailbox("did:plc:bench", u64::MAX, &mailbox)
        .expect("create");
    mailbox
}

/// The next one-envelope batch of `m`, advancing it.
fn next_append(m: &mut Mailbox) -> Append {
    let expected_head = m.head;
    m.head += 1;
    Append {
        expected_head,
        mailbox: *m,
        envelopes: vec![Envelope {
            seq: m.head,
            kind: EnvelopeKind::Message,
            epoch: None,
            payload: vec![0x5a; PAYLOAD],
            received_at: NOW,
        }],
    }
}

fn appends(c: &mut Criterion) {
    let mut g = group(c, "sqlite_append_full");
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = raw_connection(&dir.path().join("raw.sqlite"));
    let blob = vec![0x5a_u8; PAYLOAD];
    let mut seq = 0i64;
    let mut raw_txn = |rows: usize| {
        let tx = raw.unchecked_transaction().expect("tx");
        for _ in 0..rows {
            seq += 1;
            tx.prepare_cached("INSERT INTO t (mailbox, seq, payload) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.execute(params![[7u8; 32].as_slice(), seq, blob]))
                .expect("insert");
        }
        tx.commit().expect("commit");
    };
    let mut store = SqliteStore::open(dir.path().join("ds.sqlite")).expect("open");
    let mut mailboxes: Vec<Mailbox> = (1..=32).map(|s| group_mailbox(&mut store, s)).collect();

    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline_raw_txn_1_row", |b| b.iter(|| raw_txn(1)));
    g.bench_function("append_1_batch_per_txn", |b| {
        b.iter_batched(
            || next_append(&mut mailboxes[0]),
            |a| store.append(std::slice::from_ref(&a)).expect("append"),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(32));
    g.bench_function("baseline_raw_txn_32_rows", |b| b.iter(|| raw_txn(32)));
    g.bench_function("append_32_batches_per_txn", |b| {
        b.iter_batched(
            || mailboxes.iter_mut().map(next_append).collect::<Vec<_>>(),
            |batches: Vec<Append>| store.append(&batches).expect("append"),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    const STORED: u64 = 10_000;
    const PAGE: u64 = 1000;
    let mut g = group(c, "sqlite_envelopes_page");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ds.sqlite");
    let mut store = SqliteStore::open(&path).expect("open");
    let mut m = group_mailbox(&mut store, 9);
    for _ in 0..STORED / 100 {
        let batches: Vec<Append> = (0..100).map(|_| next_append(&mut m)).collect();
        // Consecutive batches of one mailbox in one transaction, as a group commit does.
        store.append(&batches).expect("fill");
    }
    let raw = Connection::open(&path).expect("open raw");
    let limit = PageLimit {
        envelopes: PAGE as usize,
        bytes: 8 * 1024 * 1024,
    };
    let mut i = 0u64;
    let mut next_cursor = || {
        i += 1;
        (i * PAGE) % (STORED - PAGE)
    };
    g.throughput(Throughput::Elements(PAGE));
    g.bench_function("baseline_raw_select_1000_rows", |b| {
        b.iter(|| {
            let mut stmt = raw
                .prepare_cached(
                    "SELECT seq, kind, epoch, payload, received_at FROM envelopes
                     WHERE mailbox = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )
                .expect("prepare");
            let cursor = i64::try_from(next_cursor()).expect("fits");
            let rows: Vec<(i64, Vec<u8>)> = stmt
                .query_map(
                    params![m.id.as_bytes().as_slice(), cursor, PAGE as i64],
                    |r| Ok((r.get(0)?, r.get(3)?)),
                )
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert_eq!(rows.len() as u64, PAGE);
            rows
        })
    });
    g.bench_function("store_envelopes_1000", |b| {
        b.iter(|| {
            let page = store.envelopes(&m.id, next_cursor(), limit).expect("page");
            assert_eq!(page.len() as u64, PAGE);
            page
        })
    });
    g.finish();
}

criterion_group!(benches, tokens, send_decision, appends, reads);
criterion_main!(benches);
