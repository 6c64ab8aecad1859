//! The client's KeyPackage build, add-member, commit, process-commit, join and
//! send/receive, in 0x0001 and X-Wing, against raw openmls (on the client's libcrux
//! provider) doing the same MLS work in the same run, at 10, 100 and 1,000 leaves.
//! `ATMLS_BENCH_SIZES=10000 cargo bench -p atmls-client --bench client` runs other sizes
//! (the 10,000-leaf run is `benches/client_10k.rs`).

#![allow(missing_docs)] // criterion's macros generate undocumented items

mod common;

use criterion::{Criterion, criterion_group, criterion_main};

use common::Clock;

fn sizes() -> Vec<usize> {
    std::env::var("ATMLS_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000])
}

fn benches(c: &mut Criterion<Clock>) {
    common::bench_sizes(c, &sizes());
}

criterion_group! {
    name = client_benches;
    config = common::criterion();
    targets = benches
}
criterion_main!(client_benches);
