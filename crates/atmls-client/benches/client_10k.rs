//! The 10,000-leaf run of the client benchmarks (minutes of setup; run on its own:
//! `cargo bench -p atmls-client --bench client_10k`).
#![allow(missing_docs)] // criterion's macros generate undocumented items

mod common;

use criterion::{Criterion, criterion_group, criterion_main};

use common::Clock;

fn benches(c: &mut Criterion<Clock>) {
    common::bench_sizes(c, &[10_000]);
}

criterion_group! {
    name = client_10k;
    config = common::criterion();
    targets = benches
}
criterion_main!(client_10k);
