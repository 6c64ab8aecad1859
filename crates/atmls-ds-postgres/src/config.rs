//! How to reach the database: [`PgConfig`] and the [`SchemaName`] it may put the tables in.

use std::str::FromStr;
use std::time::Duration;

/// Where the DS keeps its tables and how it connects.
///
/// ```
/// use atmls_ds_postgres::{PgConfig, SchemaName};
/// let config = PgConfig::new("postgres://ds@127.0.0.1/atmls")?
///     .with_schema("atmls_ds".parse::<SchemaName>()?)
///     .with_pool_size(8);
/// assert_eq!(config.pool_size(), 8);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PgConfig {
    pub(crate) connect: tokio_postgres::Config,
    pub(crate) schema: Option<SchemaName>,
    pub(crate) pool_size: usize,
    pub(crate) timeout: Duration,
    pub(crate) writer_lanes: usize,
}

/// Writer lanes per process by default ([`PgConfig::with_writer_lanes`]).
/// One: measured on the 2-core machine the DS, the load generator and PostgreSQL share,
/// more lanes made one-envelope ingest slower (smaller groups, more transactions for the
/// same CPU; `docs/performance.md`). Raise it where the database has cores of its own or
/// its round trips are long.
pub const DEFAULT_WRITER_LANES: usize = 1;

/// Pooled connections beyond one per writer lane: a lane holding its mailbox lock may
/// need a second connection for a moment, and the service-auth replay store and the
/// health check borrow one too.
const SPARE_CONNECTIONS: usize = 2;

/// A URL or connection string PostgreSQL's client does not accept.
#[derive(Debug, thiserror::Error)]
#[error("invalid PostgreSQL connection string: {0}")]
pub struct InvalidUrl(#[source] tokio_postgres::Error);

impl PgConfig {
    /// A configuration from a `postgres://` URL or a `key=value` connection string.
    /// The URL is never logged: it may hold a password.
    pub fn new(url: &str) -> Result<Self, InvalidUrl> {
        let mut connect = tokio_postgres::Config::from_str(url).map_err(InvalidUrl)?;
        if connect.get_connect_timeout().is_none() {
            connect.connect_timeout(Duration::from_secs(5));
        }
        connect.application_name("atmls-ds");
        Ok(Self {
            connect,
            schema: None,
            pool_size: 8,
            timeout: Duration::from_secs(5),
            writer_lanes: DEFAULT_WRITER_LANES,
        })
    }

    /// Keeps the tables in this schema (created if missing) instead of the role's
    /// default (`public`): several services or test runs can share one database.
    pub fn with_schema(mut self, schema: SchemaName) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Most connections this process holds open (at least 1; default 8).
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long a call waits for a connection from the pool, or for a new one, before it
    /// fails with a transient error (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.connect.connect_timeout(timeout);
        self
    }

    /// How many groups of appends one process may commit at once (at least 1; default
    /// [`DEFAULT_WRITER_LANES`]): the DS runs one writer lane per group, each a serial
    /// chain over its own connection, and routes every request by its mailbox, so a
    /// mailbox is always served by the same lane. The pool grows to cover the lanes (one
    /// connection each, and two spare).
    pub fn with_writer_lanes(mut self, lanes: usize) -> Self {
        self.writer_lanes = lanes.max(1);
        self
    }

    /// The writer lanes.
    pub fn writer_lanes(&self) -> usize {
        self.writer_lanes
    }

    /// The pool size: as set, or more if the writer lanes need more (one connection per
    /// lane and two spare).
    pub fn pool_size(&self) -> usize {
        self.pool_size.max(self.writer_lanes + SPARE_CONNECTIONS)
    }

    /// The schema, if one was set.
    pub fn schema(&self) -> Option<&SchemaName> {
        self.schema.as_ref()
    }
}

/// A schema name the store accepts: 1 to 47 of `a-z`, `0-9`, `_`, not starting with a
/// digit and not `pg_`-prefixed. It is put into SQL unquoted, so nothing else passes; the
/// length leaves room for the notification channel named after it ([`crate::notify`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaName(String);

/// A schema name outside what [`SchemaName`] accepts.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid schema name (1-47 of a-z, 0-9, _; not starting with a digit or pg_)")]
pub struct InvalidSchemaName;

impl FromStr for SchemaName {
    type Err = InvalidSchemaName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=47).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !s.as_bytes()[0].is_ascii_digit()
            && !s.starts_with("pg_");
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidSchemaName)
        }
    }
}

impl SchemaName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for good in ["a", "atmls_ds", "t_0123abc", &"x".repeat(47)] {
            assert!(good.parse::<SchemaName>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "0abc",
            "pg_catalog",
            "A",
            "a-b",
            "a;drop",
            "a b",
            "\"a\"",
            &"x".repeat(48),
        ] {
            assert!(bad.parse::<SchemaName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_pool_covers_the_lanes() {
        let config = PgConfig::new("postgres://u@127.0.0.1/db").expect("valid URL");
        assert_eq!(config.writer_lanes(), DEFAULT_WRITER_LANES);
        assert_eq!(
            config.clone().with_pool_size(2).pool_size(),
            DEFAULT_WRITER_LANES + 2
        );
        let one = config.clone().with_writer_lanes(0).with_pool_size(2);
        assert_eq!((one.writer_lanes(), one.pool_size()), (1, 3));
        assert_eq!(
            config.with_writer_lanes(3).with_pool_size(20).pool_size(),
            20
        );
    }

    #[test]
    fn urls() {
        assert!(PgConfig::new("postgres://u:p@127.0.0.1:5432/db").is_ok());
        assert!(PgConfig::new("host=127.0.0.1 user=u dbname=db").is_ok());
        assert!(PgConfig::new("postgres://u@host:notaport/db").is_err());
    }
}
