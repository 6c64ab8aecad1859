//! The PostgreSQL store against a real server: `ATMLS_TEST_DATABASE_URL` (set by
//! `scripts/test` from a throw-away cluster, `scripts/pg-cluster`). Without it every test
//! here fails: a missing database is a failure, never a skip. Each test works in a
//! schema of its own.

mod common;

mod atomic;
mod commit_lost;
mod migrations;
mod notify;
mod race;
mod shared;

mod suite {
    atmls_testkit::ds_store_suite!(crate::common::store());
}
