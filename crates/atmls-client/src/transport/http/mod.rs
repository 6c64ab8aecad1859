//! PDS and DS clients over HTTP(S) (hyper) and WebSocket (tokio-tungstenite).

mod client;
mod describe;
mod ds;
mod pds;
mod tls;

pub use describe::describe_server;
pub use ds::HttpDs;
pub use pds::HttpPds;
