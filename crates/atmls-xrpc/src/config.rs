//! Server settings: address, limits, timeouts, subscription buffers.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Settings of a [`Server`](crate::Server). Build with [`ServerConfig::default`] and the
/// `with_*` setters; every limit has a default suited to a small deployment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where to listen. Default `127.0.0.1:2583`.
    pub addr: SocketAddr,
    /// The `version` reported by `GET /_health`. Default: this crate's version.
    pub version: String,
    /// Largest request body, enforced while it streams in (413 `PayloadTooLarge`); a
    /// route may set its own with [`Router::body_limit`](crate::Router::body_limit).
    /// Default 5 MiB.
    pub max_body_bytes: u64,
    /// Largest request head (request line and headers), i.e. hyper's read buffer; at
    /// least 8192. Default 32 KiB.
    pub max_header_bytes: usize,
    /// How long a client may take to send a complete request head, counted from the
    /// connection's start or the end of the previous response; the connection is closed
    /// after (so idle keep-alive connections close after it too). Default 10 s.
    pub header_read_timeout: Duration,
    /// How long a query or procedure may take from the end of its head to its response,
    /// reading the body included (504 `RequestTimeout`). Default 30 s.
    pub request_timeout: Duration,
    /// Most HTTP connections open at once; more wait in the accept queue. A connection
    /// upgraded to a WebSocket counts against
    /// [`SubscriptionConfig::max_subscriptions`] instead. Default 4096.
    pub max_connections: usize,
    /// Most HTTP connections open at once from one source (an IPv4 address or an IPv6
    /// /64); more are closed as soon as they are accepted. Default 1024, a quarter of
    /// [`ServerConfig::max_connections`]'s default.
    pub max_connections_per_source: usize,
    /// How long graceful shutdown waits for in-flight requests before it drops them.
    /// Default 10 s.
    pub shutdown_grace: Duration,
    /// Whether JSON responses are validated against the lexicon's output (a failure
    /// becomes 500 and is logged). Default: on in debug builds, off in release builds.
    pub validate_output: bool,
    /// WebSocket subscription settings.
    pub subscription: SubscriptionConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 2583)),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            max_body_bytes: 5 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_source: 1024,
            shutdown_grace: Duration::from_secs(10),
            validate_output: cfg!(debug_assertions),
            subscription: SubscriptionConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Sets [`ServerConfig::addr`].
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Sets [`ServerConfig::version`].
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Sets [`ServerConfig::max_body_bytes`].
    pub fn with_max_body_bytes(mut self, bytes: u64) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets [`ServerConfig::max_header_bytes`] (raised to 8192 if lower).
    pub fn with_max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(8192);
        self
    }

    /// Sets [`ServerConfig::header_read_timeout`].
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets [`ServerConfig::request_timeout`].
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`ServerConfig::max_connections`] (at least 1).
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets [`ServerConfig::max_connections_per_source`] (at least 1).
    pub fn with_max_connections_per_source(mut self, n: usize) -> Self {
        self.max_connections_per_source = n.max(1);
        self
    }

    /// Sets [`ServerConfig::shutdown_grace`].
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Sets [`ServerConfig::validate_output`].
    pub fn with_validate_output(mut self, on: bool) -> Self {
        self.validate_output = on;
        self
    }

    /// Sets [`ServerConfig::subscription`].
    pub fn with_subscription(mut self, subscription: SubscriptionConfig) -> Self {
        self.subscription = subscription;
        self
    }
}

/// Settings of WebSocket subscriptions.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscriptionConfig {
    /// Frames buffered per subscriber between the handler and the socket. When it is
    /// full, [`EventSink::try_send`](crate::EventSink::try_send) cuts the subscriber off
    /// at once and [`EventSink::send`](crate::EventSink::send) after
    /// [`SubscriptionConfig::send_timeout`]. Default 1024.
    pub buffer_frames: usize,
    /// How long [`EventSink::send`](crate::EventSink::send) waits for room. Default 10 s.
    pub send_timeout: Duration,
    /// The error name of the frame sent to a cut-off subscriber. Default
    /// `ConsumerTooSlow`.
    pub too_slow_error: String,
    /// The error name of the frame sent to subscribers when the server shuts down.
    /// Default `ServerShuttingDown`.
    pub shutdown_error: String,
    /// Most subscriptions open at once; more are refused with 503. Default 10 000.
    pub max_subscriptions: usize,
    /// Interval of WebSocket pings; a peer that answers none within two intervals is
    /// dropped. Default 30 s.
    pub ping_interval: Duration,
    /// Largest message a client may send (clients only answer pings). Default 64 KiB.
    pub max_client_message_bytes: usize,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            buffer_frames: 1024,
            send_timeout: Duration::from_secs(10),
            too_slow_error: "ConsumerTooSlow".to_owned(),
            shutdown_error: "ServerShuttingDown".to_owned(),
            max_subscriptions: 10_000,
            ping_interval: Duration::from_secs(30),
            max_client_message_bytes: 64 * 1024,
        }
    }
}

impl SubscriptionConfig {
    /// Sets [`SubscriptionConfig::buffer_frames`] (at least 1).
    pub fn with_buffer_frames(mut self, n: usize) -> Self {
        self.buffer_frames = n.max(1);
        self
    }

    /// Sets [`SubscriptionConfig::send_timeout`].
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Sets [`SubscriptionConfig::too_slow_error`].
    pub fn with_too_slow_error(mut self, name: impl Into<String>) -> Self {
        self.too_slow_error = name.into();
        self
    }

    /// Sets [`SubscriptionConfig::shutdown_error`].
    pub fn with_shutdown_error(mut self, name: impl Into<String>) -> Self {
        self.shutdown_error = name.into();
        self
    }

    /// Sets [`SubscriptionConfig::max_subscriptions`].
    pub fn with_max_subscriptions(mut self, n: usize) -> Self {
        self.max_subscriptions = n;
        self
    }

    /// Sets [`SubscriptionConfig::ping_interval`].
    pub fn with_ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }
}
