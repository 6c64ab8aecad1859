//! The hyper shell of atmls: XRPC routing by NSID, lexicon validation of parameters and
//! bodies, typed errors, limits, WebSocket event streams, health and metrics. It knows
//! nothing of MLS, repos or DIDs: the delivery service and the embedded host mount their
//! methods on a [`Router`].
//!
//! - `GET /xrpc/<nsid>` serves queries, `POST /xrpc/<nsid>` procedures, and a WebSocket
//!   upgrade on `GET /xrpc/<nsid>` subscriptions. Parameters and JSON bodies are checked
//!   against the route's lexicon before the handler runs.
//! - Every failure is `{"error": Name, "message": …}` with its status ([`XrpcError`]).
//! - `GET /_health` answers `{"version": …}`; `GET /metrics` the OpenMetrics text format.
//! - Any origin may call (`Access-Control-Allow-Origin: *`; preflights answered 204):
//!   authority is a bearer token or a signed request, never a cookie.
//! - A static folder (the browser page) can be served from memory under a prefix
//!   ([`StaticDir`]).
//! - Other paths go to the [`Router::fallback`] handler, if any.
//! - Outbound fetches go through one [`Outbound`] client per process, with the address
//!   policy of `atmls-net`.
//!
//! ```no_run
//! use atmls_lexicon::validate::Catalog;
//! use atmls_xrpc::{Router, Server, ServerConfig, XrpcError, XrpcResponse};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut catalog = Catalog::load_dir("lexicons")?;
//! catalog.add_all(Catalog::load_dir("vendor/lexicons")?.docs().cloned())?;
//! let router = Router::new(catalog)
//!     .query("chat.mls.ds.describeServer", |_req| async {
//!         Ok(XrpcResponse::json(json!({ "did": "did:web:ds.example.com" })))
//!     })
//!     .procedure("chat.mls.ds.sendEnvelopes", |req| async move {
//!         let _input = req.input().ok_or_else(|| XrpcError::invalid_request("no body"))?;
//!         Err(XrpcError::conflict("EpochConflict", "stale epoch")
//!             .with_field("currentEpoch", 4)
//!             .with_field("currentSeq", 17))
//!     });
//! let server = Server::bind(ServerConfig::default(), router).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod config;
mod cors;
mod error;
mod lifecycle;
pub mod logging;
mod metrics;
mod outbound;
mod probe;
mod request;
mod router;
mod serve;
mod service;
mod sources;
mod static_files;
pub mod subscription;

pub use atmls_lexicon::syntax::Nsid;
pub use atmls_lexicon::validate::Catalog;
pub use config::{ServerConfig, SubscriptionConfig};
pub use error::{RouterError, ServeError, XrpcError};
pub use metrics::Metrics;
pub use outbound::{AddressPolicy, Outbound, OutboundConfig};
pub use probe::{Probe, ProbeState};
pub use request::{HttpRequest, ResponseBody, XrpcRequest, XrpcResponse};
pub use router::{FallbackHandler, Handler, HandlerResult, RouteKind, Router, SubscriptionHandler};
pub use serve::{Server, ServerHandle, serve};
pub use static_files::{MAX_STATIC_BYTES, StaticDir, StaticError};
pub use subscription::{EventSink, Frame, SinkError};

/// Re-exported so that handlers can name statuses and headers without depending on
/// `hyper` themselves.
pub use hyper::{HeaderMap, Method, StatusCode, header};
