//! Outbound HTTP(S) for atmls, with an address policy against server-side request
//! forgery.
//!
//! Every fetch an atmls component makes to a URL a peer can influence (a service endpoint
//! in a DID document, a `did:web` host, a PDS endpoint) goes through
//! [`OutboundConfig::client`]. The [`AddressPolicy`] is applied to the addresses a host
//! name resolves to, before connecting, and to the connected socket's peer: loopback,
//! private, link-local, shared, multicast, broadcast, documentation, reserved and cloud
//! metadata addresses (and their IPv4-mapped IPv6 forms) are refused, except loopback
//! under the explicit development allowance ([`AddressPolicy::development`]). A refusal
//! is the error [`ConnectError::Refused`], whose text names neither address nor port.
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use atmls_net::{AddressPolicy, OutboundConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let client = OutboundConfig::new().client::<Full<Bytes>>();
//! let err = client
//!     .get("http://169.254.169.254/latest/meta-data/".parse().unwrap())
//!     .await
//!     .unwrap_err();
//! assert!(atmls_net::is_refused(&err));
//!
//! // The development allowance admits loopback, nothing more.
//! let dev = OutboundConfig::new().with_policy(AddressPolicy::development());
//! let err = dev
//!     .client::<Full<Bytes>>()
//!     .get("http://10.0.0.1/".parse().unwrap())
//!     .await
//!     .unwrap_err();
//! assert!(atmls_net::is_refused(&err));
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod connect;
mod policy;

pub use client::{Connector, HttpClient, OutboundConfig};
pub use connect::{ConnectError, PolicyConnector, PolicyResolver, connect_tcp, is_refused};
pub use policy::{AddressClass, AddressPolicy};
