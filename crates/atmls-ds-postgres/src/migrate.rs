//! Versioned migrations: numbered SQL steps applied in order, once, recorded in
//! `atmls_ds_migrations`, under an advisory lock so that processes starting together
//! apply each step exactly once.
//!
//! A step is never edited after it shipped; a change of schema is a new step. A database
//! whose recorded version is newer than this build knows is refused (an older binary
//! must not write to a schema it does not understand).

use atmls_ds::StoreError;
use deadpool_postgres::Client;

use crate::config::SchemaName;
use crate::error::from_db;

/// The advisory-lock key all DS processes take while migrating ("atmls-ds" in ASCII).
const MIGRATION_LOCK: i64 = 0x61_74_6d_6c_73_2d_64_73;

/// The steps, in order; step `n` (1-based) brings the schema to version `n`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the tables of the `Store` contract.
    "CREATE TABLE mailboxes (
        id               BYTEA    NOT NULL PRIMARY KEY CHECK (octet_length(id) = 32),
        kind             SMALLINT NOT NULL CHECK (kind IN (0, 1)),  -- 0 group, 1 inbox
        head             BIGINT   NOT NULL CHECK (head >= 0),
        epoch            BIGINT   CHECK (epoch >= 0),               -- group only
        key              BYTEA    NOT NULL,  -- current epoch key / owner key
        prev_key         BYTEA,              -- group: previous epoch key
        prev_valid_until BIGINT,             -- ms since the Unix epoch
        stored_bytes     BIGINT   NOT NULL DEFAULT 0 CHECK (stored_bytes >= 0)
    );
    CREATE TABLE envelopes (
        mailbox     BYTEA    NOT NULL,
        seq         BIGINT   NOT NULL CHECK (seq >= 1),
        kind        SMALLINT NOT NULL CHECK (kind IN (0, 1, 2)),  -- message, commit, welcome
        epoch       BIGINT,
        payload     BYTEA    NOT NULL,
        received_at BIGINT   NOT NULL,  -- ms since the Unix epoch
        PRIMARY KEY (mailbox, seq)
    );
    CREATE INDEX envelopes_received_at ON envelopes (kind, received_at);
    CREATE TABLE epoch_keys (
        mailbox BYTEA  NOT NULL,
        key     BYTEA  NOT NULL,  -- the key of an ended epoch
        epoch   BIGINT NOT NULL,
        end_seq BIGINT NOT NULL,  -- seq of the commit that ended it
        PRIMARY KEY (mailbox, key)
    );
    CREATE TABLE account_quota (
        account   TEXT   NOT NULL PRIMARY KEY,
        mailboxes BIGINT NOT NULL CHECK (mailboxes >= 0)
    );
    CREATE TABLE replay_saved (  -- only between a clean stop and the next start
        key     BYTEA  NOT NULL CHECK (octet_length(key) = 32),
        nonce   BYTEA  NOT NULL CHECK (octet_length(nonce) = 16),
        mailbox BYTEA  NOT NULL CHECK (octet_length(mailbox) = 32),
        expires BIGINT NOT NULL,
        PRIMARY KEY (key, nonce)
    );
    CREATE TABLE clean_stop (id SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1));",
    // 2: state shared by all processes (crate::shared).
    "CREATE TABLE replay_nonces (  -- mailbox-token (key, nonce) pairs seen in the window
        key     BYTEA  NOT NULL CHECK (octet_length(key) = 32),
        nonce   BYTEA  NOT NULL CHECK (octet_length(nonce) = 16),
        mailbox BYTEA  NOT NULL CHECK (octet_length(mailbox) = 32),
        expires BIGINT NOT NULL,  -- kept through this ms
        PRIMARY KEY (key, nonce)
    );
    CREATE INDEX replay_nonces_mailbox ON replay_nonces (mailbox, expires);
    CREATE INDEX replay_nonces_expires ON replay_nonces (expires);
    CREATE TABLE service_auth_jti (  -- service-auth token ids seen, until their tokens expire
        iss     TEXT   NOT NULL,
        jti     TEXT   NOT NULL,
        expires BIGINT NOT NULL,  -- the token's exp, seconds since the Unix epoch
        PRIMARY KEY (iss, jti)
    );
    CREATE INDEX service_auth_jti_expires ON service_auth_jti (expires);
    CREATE TABLE rate_windows (  -- fixed-window counters
        scope        SMALLINT NOT NULL,  -- crate::shared::RateScope
        subject      BYTEA    NOT NULL,
        window_start BIGINT   NOT NULL,  -- ms
        count        BIGINT   NOT NULL,
        bytes        BIGINT   NOT NULL,
        PRIMARY KEY (scope, subject)
    );
    CREATE INDEX rate_windows_start ON rate_windows (window_start);",
    // 3: a group's message lifetime (spec §11.18), set by the commit that carries it.
    "ALTER TABLE mailboxes ADD COLUMN message_ttl BIGINT
         CHECK (message_ttl BETWEEN 1 AND 4294967295);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema (created if `schema` names one that is missing) to
/// [`SCHEMA_VERSION`] in one transaction; returns the version found before.
pub(crate) async fn migrate(
    client: &mut Client,
    schema: Option<&SchemaName>,
) -> Result<i64, StoreError> {
    let tx = client.transaction().await.map_err(from_db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(from_db)?;
    if let Some(schema) = schema {
        // Checked by `SchemaName` to be a plain lower-case identifier.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", schema.as_str()))
            .await
            .map_err(from_db)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS atmls_ds_migrations (
            version    BIGINT      NOT NULL PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(from_db)?;
    let found: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM atmls_ds_migrations",
            &[],
        )
        .await
        .map_err(from_db)?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "schema version {found} is newer than {SCHEMA_VERSION}"
        )));
    }
    for (version, step) in (1i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(found).unwrap_or(0))
    {
        tx.batch_execute(step).await.map_err(from_db)?;
        tx.execute(
            "INSERT INTO atmls_ds_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(from_db)?;
    }
    tx.commit().await.map_err(from_db)?;
    Ok(found)
}
