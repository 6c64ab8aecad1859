//! Repo-layer benchmarks, each beside a baseline measured in the same run:
//!
//! - commits on the SQLite store (one record, and 100 records per commit) against a raw
//!   rusqlite insert transaction on a file with the same pragmas;
//! - record reads against a raw rusqlite primary-key select;
//! - proof generation and verification against a raw SHA-256 + sign / verify.
//!
//! Run with `cargo bench -p atmls-repo`; figures go to `docs/performance.md`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use atmls_crypto::{Algorithm, SigningKey};
use atmls_repo::store::Synchronous;
use atmls_repo::{Did, Ipld, Repo, RepoPath, SqliteBlockStore, SqliteConfig, Write, proof};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::{Connection, params};

const PRELOAD: usize = 1_000;

fn record(i: usize) -> Ipld {
    let mut m = BTreeMap::new();
    m.insert(
        "$type".to_owned(),
        Ipld::String("chat.mls.keyPackage".into()),
    );
    m.insert(
        "keyPackage".to_owned(),
        Ipld::Bytes(vec![(i % 251) as u8; 290]),
    );
    m.insert("cipherSuite".to_owned(), Ipld::Integer(1));
    m.insert(
        "createdAt".to_owned(),
        Ipld::String("2026-01-01T00:00:00.000Z".into()),
    );
    Ipld::Map(m)
}

fn path(i: usize) -> RepoPath {
    RepoPath::parse(&format!("chat.mls.keyPackage/3k{i:011}")).expect("valid path")
}

fn key() -> SigningKey {
    SigningKey::from_bytes(Algorithm::Es256k, &[9u8; 32]).expect("valid key")
}

fn sync_name(s: Synchronous) -> &'static str {
    match s {
        Synchronous::Full => "full",
        _ => "normal",
    }
}

fn raw_connection(dir: &std::path::Path, sync: Synchronous) -> Connection {
    let conn = Connection::open(dir.join("raw.sqlite")).expect("open");
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("wal");
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {};
         CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;",
        sync_name(sync).to_uppercase()
    ))
    .expect("schema");
    conn
}

fn preloaded<'s>(store: &'s SqliteBlockStore, name: &str) -> Repo<'s, SqliteBlockStore> {
    let mut repo = Repo::create(store, Did::new(name).expect("did"), key()).expect("create");
    for chunk in (0..PRELOAD).collect::<Vec<_>>().chunks(200) {
        let writes = chunk
            .iter()
            .map(|&i| Write::create(path(i), record(i)))
            .collect();
        repo.apply_writes(writes, None).expect("preload");
    }
    repo
}

fn commits(c: &mut Criterion) {
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let mut g = c.benchmark_group(format!("commit_sqlite_{}", sync_name(sync)));
        g.sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));

        let dir = tempfile::tempdir().expect("tempdir");
        let conn = raw_connection(dir.path(), sync);
        let blob = vec![7u8; 400];
        let mut n: u64 = 0;
        g.throughput(Throughput::Elements(1));
        g.bench_function("baseline_raw_txn_1_row", |b| {
            b.iter(|| {
                n += 1;
                let tx = conn.unchecked_transaction().expect("tx");
                tx.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![n.to_be_bytes(), blob]))
                    .expect("insert");
                tx.commit().expect("commit");
            })
        });

        // Same, with a random 36-byte key as a CID gives (content-addressed rows land on
        // random B-tree pages, unlike the sequential keys above).
        g.bench_function("baseline_raw_txn_1_random_row", |b| {
            b.iter(|| {
                n += 1;
                let mut key = atmls_crypto::sha256(&n.to_be_bytes()).to_vec();
                key.extend_from_slice(&[1, 0x71, 0x12, 0x20]);
                let tx = conn.unchecked_transaction().expect("tx");
                tx.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![key, blob]))
                    .expect("insert");
                tx.commit().expect("commit");
            })
        });

        let config = SqliteConfig::new().synchronous(sync);
        let store = SqliteBlockStore::open(dir.path().join("repo.sqlite"), &config).expect("open");
        let mut repo = preloaded(&store, "did:plc:bench");
        let mut i = PRELOAD;
        g.bench_function("repo_commit_1_record", |b| {
            b.iter(|| {
                i += 1;
                repo.apply_writes(vec![Write::create(path(i), record(i))], None)
                    .expect("commit")
            })
        });

        g.throughput(Throughput::Elements(100));
        g.bench_function("baseline_raw_txn_100_rows", |b| {
            b.iter(|| {
                let tx = conn.unchecked_transaction().expect("tx");
                for _ in 0..100 {
                    n += 1;
                    tx.prepare_cached("INSERT INTO t (k, v) VALUES (?1, ?2)")
                        .and_then(|mut s| s.execute(params![n.to_be_bytes(), blob]))
                        .expect("insert");
                }
                tx.commit().expect("commit");
            })
        });
        g.bench_function("repo_commit_100_records", |b| {
            b.iter(|| {
                let writes = (0..100)
                    .map(|_| {
                        i += 1;
                        Write::create(path(i), record(i))
                    })
                    .collect();
                repo.apply_writes(writes, None).expect("commit")
            })
        });
        g.finish();
    }
}

fn reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let dir = tempfile::tempdir().expect("tempdir");
    let conn = raw_connection(dir.path(), Synchronous::Full);
    {
        let tx = conn.unchecked_transaction().expect("tx");
        for k in 0..PRELOAD as u64 {
            tx.execute(
                "INSERT INTO t (k, v) VALUES (?1, ?2)",
                params![k.to_be_bytes(), vec![1u8; 400]],
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
    }
    let mut k: u64 = 0;
    g.bench_function("baseline_raw_select", |b| {
        b.iter(|| {
            k = (k + 7919) % PRELOAD as u64;
            let v: Vec<u8> = conn
                .prepare_cached("SELECT v FROM t WHERE k = ?1")
                .expect("prepare")
                .query_row(params![k.to_be_bytes()], |r| r.get(0))
                .expect("row");
            black_box(v)
        })
    });
    let store =
        SqliteBlockStore::open(dir.path().join("repo.sqlite"), &SqliteConfig::new()).expect("open");
    let repo = preloaded(&store, "did:plc:reader");
    // A fresh handle: nothing cached in memory, every node read from SQLite.
    let cold = Repo::open(&store, repo.did().clone(), key()).expect("open");
    let mut j = 0usize;
    g.bench_function("repo_get_record_from_store", |b| {
        b.iter(|| {
            j = (j + 7919) % PRELOAD;
            black_box(cold.record(&path(j)).expect("read").expect("present"))
        })
    });
    g.bench_function("repo_get_record_warm_tree", |b| {
        b.iter(|| {
            j = (j + 7919) % PRELOAD;
            black_box(repo.record(&path(j)).expect("read").expect("present"))
        })
    });
    g.finish();
}

fn proofs(c: &mut Criterion) {
    let mut g = c.benchmark_group("proof");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let dir = tempfile::tempdir().expect("tempdir");
    let store =
        SqliteBlockStore::open(dir.path().join("repo.sqlite"), &SqliteConfig::new()).expect("open");
    let repo = preloaded(&store, "did:plc:prover");
    let signer = key();
    let public = signer.public_key();
    let msg = vec![5u8; 180];
    g.bench_function("baseline_sha256_sign", |b| {
        b.iter(|| black_box(signer.sign(black_box(&msg))))
    });
    let sig = signer.sign(&msg);
    g.bench_function("baseline_sha256_verify", |b| {
        b.iter(|| public.verify(black_box(&msg), &sig).expect("verify"))
    });
    let mut j = 0usize;
    g.bench_function("generate_inclusion", |b| {
        b.iter(|| {
            j = (j + 7919) % PRELOAD;
            black_box(repo.record_proof(&path(j)).expect("proof"))
        })
    });
    let cars: Vec<(RepoPath, Vec<u8>)> = (0..50)
        .map(|i| {
            let p = path(i * 17 % PRELOAD);
            let car = repo.record_proof(&p).expect("proof");
            (p, car)
        })
        .collect();
    let absent = RepoPath::parse("chat.mls.keyPackage/3kzzzzzzzzzz").expect("path");
    let absent_car = repo.record_proof(&absent).expect("proof");
    let mut k = 0usize;
    g.bench_function(BenchmarkId::new("verify", "inclusion"), |b| {
        b.iter(|| {
            k = (k + 1) % cars.len();
            let (p, car) = &cars[k];
            black_box(proof::verify_record_proof(car, repo.did(), &public, p).expect("verify"))
        })
    });
    g.bench_function(BenchmarkId::new("verify", "absence"), |b| {
        b.iter(|| {
            black_box(
                proof::verify_record_proof(&absent_car, repo.did(), &public, &absent)
                    .expect("verify"),
            )
        })
    });
    println!(
        "proof sizes: inclusion {} bytes, absence {} bytes ({} records in the repo)",
        cars[0].1.len(),
        absent_car.len(),
        PRELOAD
    );
    g.finish();
}

criterion_group!(benches, commits, reads, proofs);
criterion_main!(benches);
