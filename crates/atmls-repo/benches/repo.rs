//! Placeholder until the repo benchmarks land.
fn main() {}
