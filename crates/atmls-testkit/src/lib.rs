//! Test support for the atmls workspace (dev-only, never published).
//!
//! The storage contracts as suites any backend crate runs from its own tests:
//!
//! - [`ds_store`]: the delivery service's [`atmls_ds::store::Store`], with
//!   [`ds_store_suite!`] making one `#[test]` per property;
//! - [`block_store`]: the AT repository's [`atmls_repo::BlockStore`], with
//!   [`block_store_suite!`].
//!
//! ```
//! mod memory {
//!     atmls_testkit::ds_store_suite!(atmls_ds::MemoryStore::new());
//! }
//! mod blocks_in_memory {
//!     atmls_testkit::block_store_suite!((atmls_repo::MemoryBlockStore::new(), ()));
//! }
//! ```
//!
//! Helpers any test may use:
//!
//! - [`database`]: the throw-away PostgreSQL server's URL (`ATMLS_TEST_DATABASE_URL`,
//!   missing is a failure) and schema names no other test uses;
//! - [`child`]: a server in a child process (the test binary running one of its own
//!   tests), for tests that kill it.
//!
//! With features:
//!
//! - `server` — [`server`]: the one way to start servers for tests
//!   ([`server::TestServer::builder`]: embedded, DS-only or host-only, in memory or in a
//!   data directory, on a manual clock);
//! - `http` (implied by `server`) — [`http`]: the HTTP client their tests send requests
//!   with.
//!
//! Keep the dependencies light: each area lives in its own module, and anything heavy
//! belongs behind a feature.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod block_store;
pub mod child;
pub mod database;
pub mod ds_store;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "server")]
pub mod server;
