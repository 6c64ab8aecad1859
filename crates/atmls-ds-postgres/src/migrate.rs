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
    // 4: O(1) replay shares (crate::shared): per key (class 0) and per mailbox (class 1),
    // how many rows `replay_nonces` holds, expired or not (a bound on the unexpired ones,
    // counted exactly only when it reaches the share); and the claim itself as one call.
    "CREATE TABLE replay_shares (
        class   SMALLINT NOT NULL CHECK (class IN (0, 1)),  -- 0 key, 1 mailbox
        subject BYTEA    NOT NULL,
        entries BIGINT   NOT NULL CHECK (entries >= 0),
        PRIMARY KEY (class, subject)
    );
    INSERT INTO replay_shares (class, subject, entries)
        SELECT 0, key, count(*) FROM replay_nonces GROUP BY key
        UNION ALL SELECT 1, mailbox, count(*) FROM replay_nonces GROUP BY mailbox;
    CREATE INDEX replay_nonces_key ON replay_nonces (key, expires);
    -- Claims p_keys[i], p_nonces[i] for p_mailboxes[i] until p_expires[i], in order; per
    -- claim a verdict: 0 fresh (recorded), 1 replayed, 2 key share full, 3 mailbox share
    -- full. Each claim takes the advisory locks of its key then its mailbox (ids computed
    -- by the caller) for the rest of the transaction, so claims of one key or mailbox are
    -- decided one after the other, by whichever process makes them.
    CREATE FUNCTION claim_nonces(p_keys BYTEA[], p_nonces BYTEA[], p_mailboxes BYTEA[],
                                 p_expires INT8[], p_key_locks INT4[],
                                 p_mailbox_locks INT4[], p_now INT8, p_per_key INT8,
                                 p_per_mailbox INT8)
    RETURNS INT2[] LANGUAGE plpgsql AS $claim$
    DECLARE
        verdicts INT2[] := '{}';
        seen BOOLEAN;
        old_mailbox BYTEA;
        old_expires INT8;
        n INT8;
    BEGIN
        FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
            PERFORM pg_advisory_xact_lock(1634992129, p_key_locks[i]);
            PERFORM pg_advisory_xact_lock(1634992130, p_mailbox_locks[i]);
            SELECT r.mailbox, r.expires INTO old_mailbox, old_expires FROM replay_nonces r
                WHERE r.key = p_keys[i] AND r.nonce = p_nonces[i];
            seen := FOUND;
            IF seen AND old_expires >= p_now THEN
                verdicts := verdicts || 1::INT2;
                CONTINUE;
            END IF;
            SELECT s.entries INTO n FROM replay_shares s
                WHERE s.class = 0 AND s.subject = p_keys[i];
            IF coalesce(n, 0) >= p_per_key THEN
                SELECT count(*) INTO n FROM replay_nonces r
                    WHERE r.key = p_keys[i] AND r.expires >= p_now;
                IF n >= p_per_key THEN
                    verdicts := verdicts || 2::INT2;
                    CONTINUE;
                END IF;
            END IF;
            SELECT s.entries INTO n FROM replay_shares s
                WHERE s.class = 1 AND s.subject = p_mailboxes[i];
            IF coalesce(n, 0) >= p_per_mailbox THEN
                SELECT count(*) INTO n FROM replay_nonces r
                    WHERE r.mailbox = p_mailboxes[i] AND r.expires >= p_now;
                IF n >= p_per_mailbox THEN
                    verdicts := verdicts || 3::INT2;
                    CONTINUE;
                END IF;
            END IF;
            IF seen THEN
                -- An expired entry of the same pair: reused for the new claim.
                UPDATE replay_nonces SET mailbox = p_mailboxes[i], expires = p_expires[i]
                    WHERE key = p_keys[i] AND nonce = p_nonces[i];
                IF old_mailbox <> p_mailboxes[i] THEN
                    UPDATE replay_shares SET entries = greatest(entries - 1, 0)
                        WHERE class = 1 AND subject = old_mailbox;
                    INSERT INTO replay_shares AS s (class, subject, entries)
                        VALUES (1, p_mailboxes[i], 1)
                        ON CONFLICT (class, subject) DO UPDATE SET entries = s.entries + 1;
                END IF;
            ELSE
                INSERT INTO replay_nonces (key, nonce, mailbox, expires)
                    VALUES (p_keys[i], p_nonces[i], p_mailboxes[i], p_expires[i]);
                INSERT INTO replay_shares AS s (class, subject, entries)
                    VALUES (0, p_keys[i], 1), (1, p_mailboxes[i], 1)
                    ON CONFLICT (class, subject) DO UPDATE SET entries = s.entries + 1;
            END IF;
            verdicts := verdicts || 0::INT2;
        END LOOP;
        RETURN verdicts;
    END
    $claim$;",
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
