//! The PostgreSQL server the tests share: `scripts/test` starts a throw-away cluster
//! (`scripts/pg-cluster`) and exports its URL as `ATMLS_TEST_DATABASE_URL`. A test that
//! needs it fails, never skips, when it is missing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The variable `scripts/test` sets to the throw-away cluster's URL.
pub const DATABASE_URL_VAR: &str = "ATMLS_TEST_DATABASE_URL";

/// The test database's URL; panics (fails the test) when it is not set.
pub fn database_url() -> String {
    std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{DATABASE_URL_VAR} is not set: these tests need a PostgreSQL server. \
             Start a throw-away one with `eval \"$(scripts/pg-cluster start)\"` \
             (scripts/test does this)."
        )
    })
}

/// A schema name no other test, in this process or another, uses: `prefix`, the process
/// id, the time in nanoseconds and a counter.
pub fn fresh_schema_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_differ() {
        let a = fresh_schema_name("t");
        let b = fresh_schema_name("t");
        assert_ne!(a, b);
        assert!(a.starts_with("t_"));
    }
}
