//! Shared by the client benchmarks: fixtures for the client (devices over the in-memory
//! network, SQLite state) and for raw openmls doing the same work, in each ciphersuite
//! (0x0001 and X-Wing 0x004D), and the run of every operation at each group size.
//!
//! Switches (environment):
//! - `ATMLS_BENCH_SUITES`: `0x0001`, `xwing` or both (comma-separated; default both).
//! - `ATMLS_BENCH_BASELINES`: raw baselines besides `openmls+sqlite-libcrux` (always
//!   run): `rustcrypto` (openmls+sqlite on RustCrypto, 0x0001 only: RustCrypto refuses
//!   X-Wing) and `memory` (openmls with its memory storage, libcrux). Default: `rustcrypto`
//!   at 10 leaves only.
//! - `ATMLS_BENCH_STORAGE=file`, `ATMLS_BENCH_CLOCK=cpu`: see [`on_disk`], [`clock`].
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod client;
pub mod clock;
pub mod raw;
pub mod spy;

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use openmls::prelude::Ciphersuite;
use openmls::prelude::tls_codec::Serialize as _;

pub use clock::{Clock, criterion, rounds};

use client::Client;
use raw::{Libcrux, Raw, RawProvider, SqlProvider};

/// Whether device state goes to files (`ATMLS_BENCH_STORAGE=file`) instead of memory.
pub fn on_disk() -> bool {
    std::env::var("ATMLS_BENCH_STORAGE").is_ok_and(|v| v == "file")
}

/// The suites to run (`ATMLS_BENCH_SUITES`), 0x0001 first.
pub fn suites() -> Vec<Ciphersuite> {
    let all = [atmls_client::suite::CLASSIC, atmls_client::suite::XWING];
    match std::env::var("ATMLS_BENCH_SUITES") {
        Ok(v) => all
            .into_iter()
            .filter(|s| v.split(',').any(|w| w.trim() == suite_label(*s)))
            .collect(),
        Err(_) => all.to_vec(),
    }
}

/// A suite's name in benchmark ids.
pub fn suite_label(suite: Ciphersuite) -> &'static str {
    if suite == atmls_client::suite::XWING {
        "xwing"
    } else {
        "0x0001"
    }
}

/// Whether the extra raw baseline `name` runs at `n` leaves (`ATMLS_BENCH_BASELINES`).
fn baseline(name: &str, n: usize) -> bool {
    match std::env::var("ATMLS_BENCH_BASELINES") {
        Ok(v) => v.split(',').any(|w| w.trim() == name),
        Err(_) => name == "rustcrypto" && n <= 10,
    }
}

/// The measured operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    KeyPackage,
    Commit,
    ProcessCommit,
    SendReceive,
    AddMember,
    Join,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::KeyPackage,
        Op::Commit,
        Op::ProcessCommit,
        Op::SendReceive,
        Op::AddMember,
        Op::Join,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::KeyPackage => "key-package",
            Op::Commit => "commit",
            Op::ProcessCommit => "process-commit",
            Op::SendReceive => "send-receive",
            Op::AddMember => "add-member",
            Op::Join => "join",
        }
    }
}

/// Everything measured in one suite at one size.
struct Fixtures {
    suite: Ciphersuite,
    client: Client,
    /// The baseline: raw openmls + SQLite on the client's provider.
    sql: Raw<SqlProvider<Libcrux>>,
    /// The same on RustCrypto (0x0001 only).
    rust_crypto: Option<Raw<SqlProvider<openmls_rust_crypto::RustCrypto>>>,
    /// Raw openmls with memory storage (libcrux).
    memory: Option<Raw<openmls_libcrux_crypto::Provider>>,
}

impl Fixtures {
    fn new(n: usize, suite: Ciphersuite) -> Self {
        let t = std::time::Instant::now();
        let client = Client::new(n, suite);
        let sql = Raw::new(n, suite);
        let rust_crypto = (suite == atmls_client::suite::CLASSIC && baseline("rustcrypto", n))
            .then(|| Raw::new(n, suite));
        let memory = baseline("memory", n).then(|| Raw::new(n, suite));
        eprintln!(
            "setup: {n} leaves, {}: {:.1} s",
            suite_label(suite),
            t.elapsed().as_secs_f64()
        );
        Self {
            suite,
            client,
            sql,
            rust_crypto,
            memory,
        }
    }
}

/// Every operation, for the client and the raw baselines, in each suite, at each size.
/// The variants of an operation (client and raw, both suites) run back to back, so that
/// a change of load on the machine hits all alike. The KeyPackage build does not depend
/// on the group: it runs at the first size only.
pub fn bench_sizes(c: &mut Criterion<Clock>, sizes: &[usize]) {
    let suites = suites();
    for (i, &n) in sizes.iter().enumerate() {
        let mut g = c.benchmark_group(format!("client/{n}"));
        g.sample_size(10);
        if n >= 1000 {
            // Operations take up to seconds here: ten samples of one or a few iterations
            // each instead of criterion's 1 + 2 + … + 10 iterations.
            g.sampling_mode(criterion::SamplingMode::Flat)
                .warm_up_time(Duration::from_millis(200))
                .measurement_time(Duration::from_secs(2));
        } else {
            g.warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(2));
        }
        let mut fixtures: Vec<Fixtures> = suites.iter().map(|&s| Fixtures::new(n, s)).collect();
        for f in &mut fixtures {
            print_sizes(n, f);
        }
        for op in Op::ALL {
            if op == Op::KeyPackage && i > 0 {
                continue;
            }
            for f in &mut fixtures {
                let label = suite_label(f.suite);
                client_op(&mut g, &f.client, op, label);
                raw_op(&mut g, &mut f.sql, label, op);
                if let Some(r) = &mut f.rust_crypto {
                    raw_op(&mut g, r, label, op);
                }
                if let Some(r) = &mut f.memory {
                    raw_op(&mut g, r, label, op);
                }
            }
        }
        g.finish();
    }
}

/// Measures (untimed) and prints the sizes of what each side produces at this size:
/// one line per suite, `sizes|…` (grep for it).
fn print_sizes(n: usize, f: &mut Fixtures) {
    let c = &f.client;
    // The client: what its transports carried (padded, sealed, as sent).
    c.key_package();
    let keys = c.keys_sent.lock().unwrap().clone();
    c.commit();
    let update = c.last_sent().commit;
    c.process();
    c.sent.lock().unwrap().blob = 0;
    let did = c.fresh_did();
    c.add(&did);
    let added = c.last_sent();
    c.remove(&did);
    c.process();
    c.send_receive();
    let message = c.last_sent().message;
    // Raw openmls (libcrux): the MLS objects, unpadded; its leaves carry no device
    // binding, so its tree is smaller than the client's.
    let r = &mut f.sql;
    let len = |m: &openmls::prelude::MlsMessageOut| m.tls_serialize_detached().unwrap().len();
    let raw_kp = r.key_package().tls_serialize_detached().unwrap().len();
    let raw_update = r.commit();
    let raw_update_len = len(&raw_update);
    r.process(raw_update);
    let raw_tree = r.tree_len();
    let secrets_json = r.a.0.group_data_len("message_secrets");
    let tree_json = r.a.0.group_data_len("tree");
    let (_, kp) = r.fresh();
    let (raw_add, raw_welcome) = r.add_with_commit(kp);
    let (raw_add_len, raw_welcome_len) = (len(&raw_add), len(&raw_welcome));
    r.backlog.push(raw_add);
    r.remove_last();
    r.catch_up();
    println!(
        "sizes|{n}|{suite}|atmls: key package {kp} B, its record (JSON) {rec} B, \
         update commit (padded) {update} B, add commit (padded) {add} B, sealed welcome \
         {welcome} B, out-of-band tree blob {blob} B, message (padded) {message} B\
         |raw: key package {raw_kp} B, update commit {raw_update_len} B, add commit \
         {raw_add_len} B, welcome (tree inline) {raw_welcome_len} B, ratchet tree {raw_tree} B\
         |raw storage (serde_json, committer): message_secrets {secrets_json} B, tree \
         {tree_json} B",
        suite = suite_label(f.suite),
        kp = keys.key_package,
        rec = keys.key_package_record,
        add = added.commit,
        welcome = added.welcome,
        blob = added.blob,
    );
}

type Group<'a> = criterion::BenchmarkGroup<'a, Clock>;

fn client_op(g: &mut Group<'_>, client: &Client, op: Op, suite: &str) {
    let id = BenchmarkId::new(op.name(), format!("atmls-{suite}"));
    let mut c = client;
    match op {
        Op::KeyPackage => g.bench_function(id, |b| b.iter(|| client.key_package())),
        Op::Commit => g.bench_function(id, |b| b.iter(|| client.commit())),
        Op::ProcessCommit => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                rounds(
                    iters,
                    &mut c,
                    |c| c.commit(),
                    |c, ()| c.process(),
                    |_, ()| {},
                )
            })
        }),
        Op::SendReceive => g.bench_function(id, |b| b.iter(|| client.send_receive())),
        // Added accounts are removed again (untimed) so that the group keeps its size.
        Op::AddMember => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                rounds(
                    iters,
                    &mut c,
                    |c| c.fresh_did(),
                    |c, did| {
                        c.add(&did);
                        did
                    },
                    |c, did| c.remove(&did),
                )
            })
        }),
        Op::Join => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                rounds(
                    iters,
                    &mut c,
                    |c| {
                        let d = c.fresh_device();
                        c.add(d.did());
                        d
                    },
                    |c, d| {
                        c.rt.block_on(d.sync()).unwrap();
                        d
                    },
                    |c, d| c.remove(d.did()),
                )
            })
        }),
    };
    // Bob processes what he missed (Alice's commits), untimed.
    client.process();
}

fn raw_op<P: RawProvider>(g: &mut Group<'_>, raw: &mut Raw<P>, suite: &str, op: Op) {
    let id = BenchmarkId::new(op.name(), format!("{}-{suite}", P::label()));
    match op {
        Op::KeyPackage => g.bench_function(id, |b| b.iter(|| raw.key_package())),
        Op::Commit => g.bench_function(id, |b| {
            b.iter(|| {
                let c = raw.commit();
                raw.backlog.push(c);
            })
        }),
        Op::ProcessCommit => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                rounds(iters, raw, |r| r.commit(), |r, c| r.process(c), |_, ()| {})
            })
        }),
        Op::SendReceive => g.bench_function(id, |b| b.iter(|| raw.send_receive())),
        Op::AddMember => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let total = rounds(
                    iters,
                    raw,
                    |r| r.fresh().1,
                    |r, kp| {
                        r.add(kp);
                    },
                    |r, ()| r.remove_last(),
                );
                raw.catch_up();
                total
            })
        }),
        Op::Join => g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let total = rounds(
                    iters,
                    raw,
                    |r| {
                        let (p, kp) = r.fresh();
                        let w = r.add(kp);
                        (p, w)
                    },
                    |_, (p, w)| {
                        raw::join(&p, w);
                        p
                    },
                    |r, _| r.remove_last(),
                );
                raw.catch_up();
                total
            })
        }),
    };
    // B processes what it missed (commits of A), untimed.
    raw.catch_up();
}
