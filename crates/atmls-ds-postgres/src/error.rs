//! The driver's and the pool's failures as [`StoreError::Database`], transient or not.

use atmls_ds::StoreError;
use tokio_postgres::error::SqlState;

/// A driver error, classified.
pub(crate) fn from_db(e: tokio_postgres::Error) -> StoreError {
    let transient = is_transient(&e);
    StoreError::Database {
        transient,
        source: Box::new(e),
    }
}

/// Whether a failed `COMMIT` may still have taken effect: the connection broke, the
/// network failed or the server was shutting down while it was in flight (any transient
/// failure; a serialization or deadlock failure is certain not to have committed, but
/// looking costs one query and is never wrong).
pub(crate) fn commit_outcome_unknown(e: &tokio_postgres::Error) -> bool {
    is_transient(e)
}

/// A pool error, classified.
pub(crate) fn from_pool(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => from_db(e),
        deadpool_postgres::PoolError::Timeout(_) => StoreError::Database {
            transient: true,
            source: Box::new(e),
        },
        other => StoreError::Database {
            transient: false,
            source: Box::new(other),
        },
    }
}

/// A failure of the store's own machinery (its runtime, its pool's construction).
pub(crate) fn from_setup(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Database {
        transient: false,
        source: Box::new(e),
    }
}

/// Transient: the connection broke or could not be made, the server is shutting down or
/// starting, it has no connection slot free, or the transaction lost a serialization
/// or deadlock check. A statement the server refused for any other reason is not.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    let Some(code) = e.code() else {
        // No SQLSTATE: transient when the network failed (connecting, reading, writing);
        // a value that does not convert or a protocol error is not.
        return std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    };
    let class = &code.code()[..2];
    class == "08" // connection exception
        || class == "57" // operator intervention: admin/crash shutdown, cannot connect now
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || *code == SqlState::LOCK_NOT_AVAILABLE
}
