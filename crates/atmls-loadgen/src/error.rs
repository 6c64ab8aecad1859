//! What can go wrong while generating load.

/// A failure of the load generator: of its own setup, of a request, or of a correctness
/// check on what the delivery service answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadgenError {
    /// A socket or file operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP client failed (connect, handshake, send, body).
    #[error("http: {0}")]
    Http(String),
    /// The server answered with an unexpected status.
    #[error("{what}: status {status}: {body}")]
    Status {
        /// The request.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A WebSocket subscription failed.
    #[error("websocket: {0}")]
    WebSocket(String),
    /// A bounded wait ran out.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The in-process delivery service or PLC directory could not start.
    #[error("cannot start the delivery service: {0}")]
    Start(String),
    /// The SQLite baseline failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The raw PostgreSQL baseline failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// `--database` is not a usable PostgreSQL connection string.
    #[error("--database: {0}")]
    Database(String),
    /// An answer that does not parse or does not have the expected shape.
    #[error("bad answer: {0}")]
    BadAnswer(String),
    /// A correctness check failed (lost, duplicated or reordered envelopes).
    #[error("check failed: {0}")]
    Check(String),
    /// The open-file limit is too low and could not be raised.
    #[error(
        "open-file limit: {0}; raise it before running (e.g. `ulimit -n 4096`) or use fewer connections"
    )]
    FdLimit(String),
    /// `--url` is not a loopback `http://host:port` URL.
    #[error("--url: {0}")]
    Url(String),
}

impl LoadgenError {
    pub(crate) fn http(e: impl std::fmt::Display) -> Self {
        Self::Http(e.to_string())
    }

    pub(crate) fn status(what: &str, status: u16, body: &[u8]) -> Self {
        let body = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        Self::Status {
            what: what.to_owned(),
            status,
            body,
        }
    }
}
