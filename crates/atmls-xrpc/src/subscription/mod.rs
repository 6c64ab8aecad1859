//! WebSocket subscriptions (atproto event streams).
//!
//! A subscription route answers a WebSocket upgrade on GET after its parameters pass the
//! lexicon; the handler then gets an [`EventSink`] and pushes [`Frame`]s: each a binary
//! message holding the DAG-CBOR header `{op: 1, t: "#name"}` and the DAG-CBOR body. An
//! error ends the stream with `{op: -1}` + `{error, message}` and a close.

mod frame;
mod sink;
pub(crate) mod socket;

pub use frame::{ErrorBody, Frame, FrameError, FrameHeader};
pub use sink::{EventSink, SinkError};
