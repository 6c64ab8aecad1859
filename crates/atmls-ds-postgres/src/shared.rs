//! State the processes of one service share, beyond the [`Store`](atmls_ds::Store)
//! contract: what one process accepted, every other one knows at once.
//!
//! - **Mailbox-token replay cache** (spec §9.4.5): [`PgStore::claim_nonce`] records a
//!   `(key, nonce)` for the replay window or says it was seen; the shares per key and per
//!   mailbox hold across processes (each claim takes a transaction-scoped advisory lock
//!   on its key, then on its mailbox, always in that order). A claim is one call of the
//!   schema's `claim_nonces` function (migration 4): alone, or inside a group commit
//!   with the appends of the requests it authorised
//!   ([`Store::append_claimed`](atmls_ds::Store::append_claimed)), so that a request
//!   costs no transaction of its own. The shares are O(1): a counter row per key and per
//!   mailbox (`replay_shares`) holds how many rows the cache keeps for it, expired or
//!   not, and moves in the same statement as the rows; only when it reaches the share
//!   are the unexpired entries counted exactly. The per-source share stays
//!   in each process's memory: storing a client address with a mailbox would link them,
//!   which the DS never stores, so across N processes a source may hold N shares. There
//!   is no global capacity: the table is bounded by the shares times the mailboxes.
//!   [`PgStore::release_nonce`] takes a claim back when the request's write failed.
//! - **Service-auth `jti`s** (threat model T-ID-2): [`PgStore::claim_jti`], the same
//!   pattern per issuer.
//! - **Fixed-window rate limits** ([`PgStore::take_rate`], [`PgStore::give_back_rate`]):
//!   inbox deposits per minute and bytes per minute, and any per-principal limit, as one
//!   conditional upsert per request, so concurrent processes never let more through than
//!   one would.
//! - [`PgStore::sweep`] deletes what expired; any process may run it at any time.
//!
//! With these, a restarted process forgets nothing another accepted, and the startup
//! replay guard of decision 0006 is not needed: the cache does not live in a process.

use std::time::Duration;

use atmls_ds::{MailboxId, StoreError, Timestamp};

use deadpool_postgres::GenericClient;

use crate::codec::{to_i64, to_u64};
use crate::error::{from_db, from_pool};
use crate::store::PgStore;

/// The first half of the two-integer advisory-lock keys taken here ("at" and a class),
/// apart from any other user of advisory locks in the database.
/// The nonce-share classes' values are written into the `claim_nonces` function of
/// migration 4 (1634992129 and 1634992130).
#[cfg(test)]
const LOCK_KEY_SHARE: i32 = 0x6174_0001;
#[cfg(test)]
const LOCK_MAILBOX_SHARE: i32 = 0x6174_0002;
const LOCK_ISSUER_SHARE: i32 = 0x6174_0003;

/// A 32-bit FNV-1a hash: which advisory lock a subject takes (collisions only make two
/// subjects wait for each other).
fn lock_id(bytes: &[u8]) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// One use of a mailbox token, to be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceClaim {
    /// The mailbox key that signed the request.
    pub key: [u8; 32],
    /// The request's nonce.
    pub nonce: [u8; 16],
    /// The mailbox the request was for.
    pub mailbox: MailboxId,
    /// Until when (inclusive) the pair must be remembered.
    pub expires: Timestamp,
}

/// How many unexpired entries one key and one mailbox may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceShares {
    /// Per signing key.
    pub per_key: u64,
    /// Per mailbox.
    pub per_mailbox: u64,
}

/// What [`PgStore::claim_nonce`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NonceVerdict {
    /// First use: recorded.
    Fresh,
    /// Seen before and not expired, by this process or another.
    Replayed,
    /// The key holds its share of unexpired entries: refused for it only.
    KeyShareFull,
    /// The mailbox holds its share of unexpired entries: refused for it only.
    MailboxShareFull,
}

/// What [`PgStore::claim_jti`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JtiVerdict {
    /// First use: recorded until the token expires.
    Fresh,
    /// Seen before and not expired.
    Replayed,
    /// The issuer holds its share of unexpired entries: refused for it only.
    IssuerShareFull,
}

/// What a rate window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateScope {
    /// Deposits (welcomes) into one inbox; the subject is the inbox id.
    InboxDeposits,
    /// Requests of one principal (an account's DID, a mailbox key) to a limited method.
    Principal,
}

impl RateScope {
    fn code(self) -> i16 {
        match self {
            Self::InboxDeposits => 0,
            Self::Principal => 1,
        }
    }
}

/// A fixed-window limit: at most `count` events and `bytes` bytes per `window`. A window
/// starts at the first event after the previous one ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// The window's length.
    pub window: Duration,
    /// Most events per window.
    pub count: u64,
    /// Most bytes per window.
    pub bytes: u64,
}

/// What [`PgStore::take_rate`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateVerdict {
    /// Counted; `window_start` names the window (for [`PgStore::give_back_rate`]).
    Allowed {
        /// The start of the window it was counted in.
        window_start: Timestamp,
    },
    /// Over the limit; the window ends in `retry_after`.
    Limited {
        /// Time until the current window ends.
        retry_after: Duration,
    },
}

/// How many expired rows [`PgStore::sweep`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Mailbox-token replay entries.
    pub nonces: u64,
    /// Service-auth `jti`s.
    pub jtis: u64,
    /// Ended rate windows.
    pub rate_windows: u64,
}

impl PgStore {
    /// Records `claim` unless its `(key, nonce)` is remembered and unexpired at `now`, or
    /// its key or mailbox holds its share. Atomic across processes: of two processes
    /// claiming one pair, exactly one gets [`NonceVerdict::Fresh`]. One statement, committed
    /// on its own.
    pub fn claim_nonce(
        &self,
        claim: &NonceClaim,
        shares: NonceShares,
        now: Timestamp,
    ) -> Result<NonceVerdict, StoreError> {
        self.run(async {
            let client = self.pool().get().await.map_err(from_pool)?;
            let verdicts = claim_in(&client, std::slice::from_ref(claim), shares, now).await?;
            verdicts
                .first()
                .copied()
                .ok_or_else(|| StoreError::Corrupt("a claim got no verdict".into()))
        })
    }

    /// Forgets a claim whose request was then not stored (its write failed), so that the
    /// shared state stays what the store says happened. Returns whether it was there.
    pub fn release_nonce(&self, key: &[u8; 32], nonce: &[u8; 16]) -> Result<bool, StoreError> {
        self.run(async {
            let client = self.pool().get().await.map_err(from_pool)?;
            let stmt = client
                .prepare_cached(
                    "WITH gone AS (
                         DELETE FROM replay_nonces WHERE key = $1 AND nonce = $2
                         RETURNING key, mailbox),
                     _ AS (UPDATE replay_shares AS s SET entries = greatest(s.entries - 1, 0)
                           FROM gone AS g
                           WHERE (s.class = 0 AND s.subject = g.key)
                              OR (s.class = 1 AND s.subject = g.mailbox))
                     SELECT count(*) FROM gone",
                )
                .await
                .map_err(from_db)?;
            let n: i64 = client
                .query_one(&stmt, &[&key.as_slice(), &nonce.as_slice()])
                .await
                .map_err(from_db)?
                .get(0);
            Ok(n > 0)
        })
    }

    /// Records the service-auth token id `(iss, jti)` until `exp` (seconds since the Unix
    /// epoch) unless it is remembered and unexpired at `now`, or the issuer holds
    /// `per_issuer` unexpired entries. Atomic across processes.
    pub fn claim_jti(
        &self,
        iss: &str,
        jti: &str,
        exp: u64,
        now: u64,
        per_issuer: u64,
    ) -> Result<JtiVerdict, StoreError> {
        let (exp, now) = (to_i64(exp)?, to_i64(now)?);
        let per_issuer = i64::try_from(per_issuer).unwrap_or(i64::MAX);
        self.run(async {
            let mut client = self.pool().get().await.map_err(from_pool)?;
            let tx = client.transaction().await.map_err(from_db)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&LOCK_ISSUER_SHARE, &lock_id(iss.as_bytes())],
            )
            .await
            .map_err(from_db)?;
            let counts = tx
                .prepare_cached(
                    "SELECT
                       (SELECT count(*) FROM service_auth_jti
                        WHERE iss = $1 AND jti = $2 AND expires >= $3),
                       (SELECT count(*) FROM service_auth_jti WHERE iss = $1 AND expires >= $3)",
                )
                .await
                .map_err(from_db)?;
            let row = tx
                .query_one(&counts, &[&iss, &jti, &now])
                .await
                .map_err(from_db)?;
            let (seen, by_issuer): (i64, i64) = (row.get(0), row.get(1));
            let verdict = if seen > 0 {
                JtiVerdict::Replayed
            } else if by_issuer >= per_issuer {
                JtiVerdict::IssuerShareFull
            } else {
                tx.execute(
                    "INSERT INTO service_auth_jti (iss, jti, expires) VALUES ($1, $2, $3)
                     ON CONFLICT (iss, jti) DO UPDATE SET expires = excluded.expires",
                    &[&iss, &jti, &exp],
                )
                .await
                .map_err(from_db)?;
                JtiVerdict::Fresh
            };
            tx.commit().await.map_err(from_db)?;
            Ok(verdict)
        })
    }

    /// Counts one event of `len` bytes for `subject` in `scope` at `now`, unless the
    /// current window already holds `limit.count` events or would pass `limit.bytes`.
    /// One statement: concurrent processes queue on the subject's row, so together they
    /// let through exactly what one process would.
    pub fn take_rate(
        &self,
        scope: RateScope,
        subject: &[u8],
        len: u64,
        now: Timestamp,
        limit: RateLimit,
    ) -> Result<RateVerdict, StoreError> {
        let window_ms = u64::try_from(limit.window.as_millis()).unwrap_or(u64::MAX);
        if limit.count == 0 || len > limit.bytes {
            return Ok(RateVerdict::Limited {
                retry_after: limit.window,
            });
        }
        let (now_ms, len_i, window) = (
            to_i64(now.as_millis())?,
            to_i64(len)?,
            // At most about 35 years: `window_start + window` stays far from overflow.
            i64::try_from(window_ms.min(1 << 40)).unwrap_or(1 << 40),
        );
        let max_count = i64::try_from(limit.count).unwrap_or(i64::MAX);
        let max_bytes = i64::try_from(limit.bytes).unwrap_or(i64::MAX);
        self.run(async {
            let client = self.pool().get().await.map_err(from_pool)?;
            // A window is over when now is past its end, or before its start (a clock
            // that went back): then this event opens a new one.
            let stmt = client
                .prepare_cached(
                    "INSERT INTO rate_windows AS w (scope, subject, window_start, count, bytes)
                     VALUES ($1, $2, $3, 1, $4)
                     ON CONFLICT (scope, subject) DO UPDATE SET
                         window_start = CASE WHEN $3 >= w.window_start + $5 OR $3 < w.window_start
                                        THEN $3 ELSE w.window_start END,
                         count = CASE WHEN $3 >= w.window_start + $5 OR $3 < w.window_start
                                 THEN 1 ELSE w.count + 1 END,
                         bytes = CASE WHEN $3 >= w.window_start + $5 OR $3 < w.window_start
                                 THEN $4 ELSE w.bytes + $4 END
                     WHERE $3 >= w.window_start + $5 OR $3 < w.window_start
                        OR (w.count < $6 AND w.bytes + $4 <= $7)
                     RETURNING window_start",
                )
                .await
                .map_err(from_db)?;
            let row = client
                .query_opt(
                    &stmt,
                    &[
                        &scope.code(),
                        &subject,
                        &now_ms,
                        &len_i,
                        &window,
                        &max_count,
                        &max_bytes,
                    ],
                )
                .await
                .map_err(from_db)?;
            if let Some(row) = row {
                return Ok(RateVerdict::Allowed {
                    window_start: Timestamp::from_millis(to_u64(row.get(0))?),
                });
            }
            let start: Option<i64> = client
                .query_opt(
                    "SELECT window_start FROM rate_windows WHERE scope = $1 AND subject = $2",
                    &[&scope.code(), &subject],
                )
                .await
                .map_err(from_db)?
                .map(|r| r.get(0));
            let end = start.map_or(now_ms, |s| s.saturating_add(window));
            Ok(RateVerdict::Limited {
                retry_after: Duration::from_millis(to_u64(end.saturating_sub(now_ms).max(0))?),
            })
        })
    }

    /// Takes back one event of `len` bytes counted in the window `window_start` (its
    /// write failed). Nothing happens if that window has ended meanwhile.
    pub fn give_back_rate(
        &self,
        scope: RateScope,
        subject: &[u8],
        len: u64,
        window_start: Timestamp,
    ) -> Result<(), StoreError> {
        let (len, start) = (to_i64(len)?, to_i64(window_start.as_millis())?);
        self.run(async {
            let client = self.pool().get().await.map_err(from_pool)?;
            client
                .execute(
                    "UPDATE rate_windows SET count = greatest(count - 1, 0),
                         bytes = greatest(bytes - $3, 0)
                     WHERE scope = $1 AND subject = $2 AND window_start = $4",
                    &[&scope.code(), &subject, &len, &start],
                )
                .await
                .map_err(from_db)?;
            Ok(())
        })
    }

    /// Deletes replay entries and `jti`s expired at `now`, and rate windows that started
    /// more than `longest_window` before it. Safe to run from any number of processes.
    pub fn sweep(&self, now: Timestamp, longest_window: Duration) -> Result<Swept, StoreError> {
        let now_ms = to_i64(now.as_millis())?;
        let now_s = to_i64(now.as_millis() / 1000)?;
        let window = i64::try_from(longest_window.as_millis()).unwrap_or(i64::MAX);
        let before = now_ms.saturating_sub(window);
        self.run(async {
            let client = self.pool().get().await.map_err(from_pool)?;
            // The share counters move with the rows, in the same statement.
            let nonces: i64 = client
                .query_one(
                    "WITH gone AS (
                         DELETE FROM replay_nonces WHERE expires < $1 RETURNING key, mailbox),
                     per AS (SELECT 0::int2 AS class, key AS subject, count(*) AS n
                             FROM gone GROUP BY key
                             UNION ALL
                             SELECT 1::int2, mailbox, count(*) FROM gone GROUP BY mailbox),
                     _ AS (UPDATE replay_shares AS s SET entries = greatest(s.entries - per.n, 0)
                           FROM per WHERE s.class = per.class AND s.subject = per.subject)
                     SELECT count(*) FROM gone",
                    &[&now_ms],
                )
                .await
                .map_err(from_db)?
                .get(0);
            // Counters of subjects with no row left (a claim that comes meanwhile waits for
            // the row, and then finds it gone or above zero).
            client
                .execute("DELETE FROM replay_shares WHERE entries = 0", &[])
                .await
                .map_err(from_db)?;
            let nonces = to_u64(nonces)?;
            let jtis = client
                .execute("DELETE FROM service_auth_jti WHERE expires < $1", &[&now_s])
                .await
                .map_err(from_db)?;
            let rate_windows = client
                .execute(
                    "DELETE FROM rate_windows WHERE window_start < $1",
                    &[&before],
                )
                .await
                .map_err(from_db)?;
            Ok(Swept {
                nonces,
                jtis,
                rate_windows,
            })
        })
    }
}

/// Makes `claims` in order inside the transaction (or autocommit statement) of `client`:
/// one call of the schema's `claim_nonces` function (migration 4), one verdict per claim.
/// Used alone by [`PgStore::claim_nonce`] and inside a group commit
/// ([`atmls_ds::Store::append_claimed`]), where a claim stands or falls with the appends.
pub(crate) async fn claim_in(
    client: &impl GenericClient,
    claims: &[NonceClaim],
    shares: NonceShares,
    now: Timestamp,
) -> Result<Vec<NonceVerdict>, StoreError> {
    let now = to_i64(now.as_millis())?;
    let per_key = i64::try_from(shares.per_key).unwrap_or(i64::MAX);
    let per_mailbox = i64::try_from(shares.per_mailbox).unwrap_or(i64::MAX);
    let (mut keys, mut nonces, mut mailboxes, mut expires, mut key_locks, mut mailbox_locks) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for c in claims {
        keys.push(c.key.as_slice());
        nonces.push(c.nonce.as_slice());
        mailboxes.push(c.mailbox.as_bytes().as_slice());
        expires.push(to_i64(c.expires.as_millis())?);
        key_locks.push(lock_id(&c.key));
        mailbox_locks.push(lock_id(c.mailbox.as_bytes()));
    }
    let stmt = client
        .prepare_cached("SELECT claim_nonces($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .await
        .map_err(from_db)?;
    let row = client
        .query_one(
            &stmt,
            &[
                &keys,
                &nonces,
                &mailboxes,
                &expires,
                &key_locks,
                &mailbox_locks,
                &now,
                &per_key,
                &per_mailbox,
            ],
        )
        .await
        .map_err(from_db)?;
    let codes: Vec<i16> = row.get(0);
    if codes.len() != claims.len() {
        return Err(StoreError::Corrupt(
            "claims and verdicts differ in number".into(),
        ));
    }
    codes
        .into_iter()
        .map(|c| match c {
            0 => Ok(NonceVerdict::Fresh),
            1 => Ok(NonceVerdict::Replayed),
            2 => Ok(NonceVerdict::KeyShareFull),
            3 => Ok(NonceVerdict::MailboxShareFull),
            _ => Err(StoreError::Corrupt(format!("unknown claim verdict {c}"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::lock_id;

    #[test]
    fn lock_ids_differ_for_different_subjects() {
        assert_ne!(lock_id(&[1; 32]), lock_id(&[2; 32]));
        assert_eq!(lock_id(b"did:plc:a"), lock_id(b"did:plc:a"));
    }

    #[test]
    fn the_claim_function_takes_the_share_locks() {
        let step = crate::migrate::MIGRATIONS[3];
        assert!(step.contains(&format!(
            "pg_advisory_xact_lock({}, ",
            super::LOCK_KEY_SHARE
        )));
        assert!(step.contains(&format!(
            "pg_advisory_xact_lock({}, ",
            super::LOCK_MAILBOX_SHARE
        )));
    }
}
