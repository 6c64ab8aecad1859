//! The composition of atmls's server side: which shells run together, on which store, with
//! which outbound policy. Two modes:
//!
//! - [`embedded`]: the PDS-compatible host, the development PLC directory and the
//!   delivery service on one listener, with SQLite files in a data directory (`atmls
//!   serve`, `atmls demo`).
//! - [`attached`]: the delivery service alone, beside an existing PDS (`atmls serve
//!   --pds-url`), on SQLite or, as one of several processes, on PostgreSQL
//!   ([`scaled`], `--database postgres://…`).
//!
//! The shells themselves are separate crates, re-exported here: [`xrpc`] (router,
//! limits, errors, subscriptions, the outbound client), [`ds`] (the `chat.mls.ds.*`
//! endpoints) and [`host`] (the `com.atproto.*` endpoints).
//!
//! ```no_run
//! use atmls_server::embedded::{Embedded, EmbeddedConfig};
//!
//! # async fn run() -> Result<(), atmls_server::embedded::EmbeddedError> {
//! let services = Embedded::start(EmbeddedConfig::new("/tmp/atmls-data")).await?;
//! println!("host and DS at {}", services.url());
//! services.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attached;
pub mod embedded;
pub mod scaled;

pub use atmls_ds_xrpc as ds;
pub use atmls_host_xrpc as host;
pub use atmls_xrpc as xrpc;
