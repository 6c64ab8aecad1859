//! PDS and DS clients over HTTP and WebSocket.
