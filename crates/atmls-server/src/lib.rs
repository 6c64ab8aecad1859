//! The hyper shell: XRPC routing by NSID, typed errors, limits, WebSocket subscriptions. It mounts the delivery service and, in embedded mode, the host. It knows nothing of MLS.
//!
//! Status: skeleton. Built by issues 5 and 6.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
