//! [`PgStore`]: the [`Store`] contract on PostgreSQL.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use atmls_ds::store::{
    Append, CreateOutcome, EndedEpoch, Mailbox, PageLimit, SavedNonce, check_append, ended_by,
    payload_bytes,
};
use atmls_ds::{Envelope, MailboxId, MailboxKind, Store, StoreError, Timestamp};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures_util::future::{try_join, try_join4};
use tokio_postgres::NoTls;

use crate::codec::{
    MAILBOX_COLUMNS, decode_mailbox, encode_keys, envelope_codes_of, envelope_kind_code,
    envelope_kind_from, id_from, to_i64, to_u64,
};
use crate::config::PgConfig;
use crate::error::{commit_outcome_unknown, from_db, from_pool, from_setup};
use crate::migrate::migrate;
use crate::shared::{
    NonceClaim, NonceShares, NonceVerdict, RateLimit, RateScope, RateVerdict, claim_in,
};
use atmls_ds::auth::ReplayShare;
use atmls_ds::store::{Claimed, GroupClaim, RateAllowance, SharedNonce, SharedRate};

/// The advisory-lock key of [`Store::expire`] ("atmls-ex"): one expiry at a time across
/// all processes.
const EXPIRY_LOCK: i64 = 0x61_74_6d_6c_73_2d_65_78;

/// The DS [`Store`] on PostgreSQL, for one process of possibly several sharing the
/// database.
///
/// It implements the synchronous trait the DS core uses: each call runs on the store's
/// own small Tokio runtime (one worker thread, which also keeps the pooled connections
/// alive between calls) and blocks the calling thread until the database answered. Call
/// it from a plain thread, like the DS writer thread; from inside an async task a call
/// still works but occupies a helper thread and the task's thread until it is answered.
/// Clones share the pool and the runtime (for health checks and the service-auth replay
/// store beside the writer's own).
pub struct PgStore {
    pool: Pool,
    rt: Arc<Rt>,
    /// Where appends notify ([`crate::notify`]).
    channel: String,
    /// The transaction [`Store::lock_mailboxes`] began, holding its row locks until the
    /// next append writes under them (or [`Store::unlock_mailboxes`]).
    held: Held,
    /// How many writer lanes a DS process runs over this store ([`Store::more_writers`]).
    writer_lanes: usize,
}

/// A connection inside a transaction of [`Store::lock_mailboxes`]. Dropped while still
/// held (the store dropped between the lock and the write, e.g. its thread panicked), the
/// connection is closed, not given back to the pool: the server then rolls the
/// transaction back and releases its locks, and no other call ever runs inside it.
#[derive(Default)]
struct Held(Option<Object>);

impl Held {
    fn take(&mut self) -> Option<Object> {
        self.0.take()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

/// A clone shares the pool and the runtime, not a transaction in progress.
impl Clone for PgStore {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            rt: self.rt.clone(),
            channel: self.channel.clone(),
            held: Held::default(),
            writer_lanes: self.writer_lanes,
        }
    }
}

/// The store's runtime, shut down without waiting when the last clone of the store goes
/// (which may happen inside an async task, where a blocking shutdown would panic).
struct Rt(Option<tokio::runtime::Runtime>);

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PgStore")
            .field("pool_size", &status.size)
            .field("pool_available", &status.available)
            .finish_non_exhaustive()
    }
}

/// What the pool holds now (for `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Most connections.
    pub max_size: usize,
    /// Connections open.
    pub size: usize,
    /// Open connections not in use.
    pub available: usize,
    /// Calls waiting for a connection.
    pub waiting: usize,
}

impl PgStore {
    /// Connects, and creates or upgrades the schema ([`crate::SCHEMA_VERSION`]). Several
    /// processes may do this at the same time: migrations run one at a time.
    pub fn connect(config: &PgConfig) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("atmls-pg")
            .enable_all()
            .build()
            .map_err(from_setup)?;
        let mut connect = config.connect.clone();
        if let Some(schema) = &config.schema {
            connect.options(format!("-c search_path={}", schema.as_str()));
        }
        let manager = Manager::from_config(
            connect,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size())
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(config.timeout))
            .create_timeout(Some(config.timeout))
            .recycle_timeout(Some(config.timeout))
            .build()
            .map_err(from_setup)?;
        let store = Self {
            pool,
            rt: Arc::new(Rt(Some(rt))),
            channel: crate::notify::channel(config.schema.as_ref()),
            held: Held::default(),
            writer_lanes: config.writer_lanes,
        };
        store.run(async {
            let mut client = store.pool.get().await.map_err(from_pool)?;
            migrate(&mut client, config.schema.as_ref()).await
        })?;
        Ok(store)
    }

    /// Whether the database answers a trivial query now.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.run(async {
            let client = self.pool.get().await.map_err(from_pool)?;
            client.simple_query("").await.map_err(from_db)?;
            Ok(())
        })
    }

    /// The pool's figures.
    pub fn pool_status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            max_size: s.max_size,
            size: s.size,
            available: s.available,
            waiting: s.waiting,
        }
    }

    /// The pool (for the store's other operations, [`crate::shared`]).
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs `f` on the store's runtime, blocking this thread until it is done.
    ///
    /// Inside an async task (where blocking on another runtime would panic), the call
    /// runs on a short-lived helper thread, and this task's thread waits for it: meant for
    /// rare calls (a service-auth token id, a health check), not for the hot path, which
    /// runs on the DS writer thread.
    pub(crate) fn run<T: Send>(
        &self,
        f: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        let Some(rt) = self.rt.0.as_ref() else {
            return Err(from_setup(std::io::Error::other("runtime gone")));
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return rt.block_on(f);
        }
        std::thread::scope(|scope| {
            scope
                .spawn(|| rt.block_on(f))
                .join()
                .unwrap_or_else(|_| Err(from_setup(std::io::Error::other("store call panicked"))))
        })
    }

    /// Starts `f` on the store's runtime and returns at once (for a call fed from this
    /// thread while it runs, [`crate::copy`]).
    pub(crate) fn spawn<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Result<tokio::task::JoinHandle<T>, StoreError> {
        let Some(rt) = self.rt.0.as_ref() else {
            return Err(from_setup(std::io::Error::other("runtime gone")));
        };
        Ok(rt.spawn(f))
    }

    async fn read_mailbox(&self, id: &MailboxId) -> Result<Option<Mailbox>, StoreError> {
        let client = self.pool.get().await.map_err(from_pool)?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1"
            ))
            .await
            .map_err(from_db)?;
        let row = client
            .query_opt(&stmt, &[&id.as_bytes().as_slice()])
            .await
            .map_err(from_db)?;
        row.as_ref().map(decode_mailbox).transpose()
    }

    /// Whether the append of `batches` committed: the last envelope of each mailbox is
    /// stored, byte for byte (`false`: none is). Asked on a new connection after a
    /// connection broke during `COMMIT`.
    async fn landed(&self, batches: &[Append]) -> Result<bool, StoreError> {
        let mut last: BTreeMap<[u8; 32], &Envelope> = BTreeMap::new();
        for b in batches {
            if let Some(e) = b.envelopes.last() {
                last.insert(*b.mailbox.id.as_bytes(), e);
            }
        }
        let client = self.pool.get().await.map_err(from_pool)?;
        let (mut found, mut missing) = (0usize, 0usize);
        for (id, e) in &last {
            let row = client
                .query_opt(
                    "SELECT kind, epoch, payload, received_at FROM envelopes
                     WHERE mailbox = $1 AND seq = $2",
                    &[&id.as_slice(), &to_i64(e.seq)?],
                )
                .await
                .map_err(from_db)?;
            let same = row.is_some_and(|r| {
                r.get::<_, i16>(0) == envelope_kind_code(e.kind)
                    && r.get::<_, Option<i64>>(1) == e.epoch.and_then(|x| i64::try_from(x).ok())
                    && r.get::<_, &[u8]>(2) == e.payload.as_slice()
                    && r.get::<_, i64>(3) == i64::try_from(e.received_at.as_millis()).unwrap_or(-1)
            });
            if same {
                found += 1;
            } else {
                missing += 1;
            }
        }
        match (found, missing) {
            (_, 0) => Ok(true),
            (0, _) => Ok(false),
            _ => Err(StoreError::Corrupt(
                "half of one transaction is stored".into(),
            )),
        }
    }

    /// Writes `batches` and records `claims` in one transaction ([`Store::append_claimed`]):
    /// the one `held` (begun by [`Store::lock_mailboxes`]) if any, else a new one.
    async fn append_all(
        &self,
        held: Option<Object>,
        batches: &[Append],
        claims: &[GroupClaim],
        shares: NonceShares,
        now: Timestamp,
    ) -> Result<Claimed, StoreError> {
        let Some(client) = held else {
            let mut client = self.pool.get().await.map_err(from_pool)?;
            let tx = client.transaction().await.map_err(from_db)?;
            let written = self.write_group(&tx, batches, claims, shares, now).await?;
            if !matches!(written, Claimed::Written(_)) {
                // Dropping the transaction rolls it back.
                return Ok(written);
            }
            return match tx.commit().await {
                Ok(()) => Ok(written),
                Err(e) => self.commit_failed(e, batches, written).await,
            };
        };
        let written = match self
            .write_group(&client, batches, claims, shares, now)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                end_held(client).await;
                return Err(e);
            }
        };
        if !matches!(written, Claimed::Written(_)) {
            end_held(client).await;
            return Ok(written);
        }
        match client.batch_execute("COMMIT").await {
            Ok(()) => Ok(written),
            Err(e) => {
                let closed = client.is_closed();
                if closed {
                    drop(Object::take(client));
                }
                self.commit_failed(e, batches, written).await
            }
        }
    }

    /// `COMMIT` failed with `e`: if the connection broke while it was in flight, the
    /// transaction may have committed or not. Look, so that the caller never retries an
    /// append that landed (a duplicate) nor acknowledges one that did not (a loss).
    async fn commit_failed(
        &self,
        e: tokio_postgres::Error,
        batches: &[Append],
        written: Claimed,
    ) -> Result<Claimed, StoreError> {
        if !commit_outcome_unknown(&e) {
            return Err(from_db(e));
        }
        match self.landed(batches).await {
            Ok(true) => Ok(written),
            Ok(false) => Err(from_db(e)),
            Err(_) => Err(StoreError::Database {
                transient: false,
                source: Box::new(e),
            }),
        }
    }

    /// The statements of a group commit, inside the caller's transaction: the mailbox
    /// locks, the claims, the compare-and-swap of each head, the ended epochs, the
    /// envelopes, the wake-ups.
    async fn write_group(
        &self,
        client: &impl GenericClient,
        batches: &[Append],
        claims: &[GroupClaim],
        shares: NonceShares,
        now: Timestamp,
    ) -> Result<Claimed, StoreError> {
        // Lock every mailbox the batches touch, in id order: two processes appending to
        // overlapping sets wait for each other instead of deadlocking, and each decides
        // against the state the other committed. Then the token claims (after the
        // mailbox locks: the lock order of every writer), so that a claim and its
        // request's append commit together or not at all. The two statements are sent
        // together (pipelined: one round trip), and run in that order.
        let mut ids: Vec<&[u8]> = batches
            .iter()
            .map(|b| b.mailbox.id.as_bytes().as_slice())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let lock = client
            .prepare_cached(&format!(
                "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ANY($1) ORDER BY id FOR UPDATE"
            ))
            .await
            .map_err(from_db)?;
        let entries: Vec<NonceClaim> = claims.iter().map(|c| nonce_claim(&c.entry)).collect();
        let (locked, found) = try_join(
            async {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                client.query(&lock, &[&ids]).await.map_err(from_db)
            },
            async {
                if entries.is_empty() {
                    return Ok(Vec::new());
                }
                claim_in(client, &entries, shares, now).await
            },
        )
        .await?;
        // Per mailbox: the head under the lock, and the state after the batches so far.
        let mut state: BTreeMap<[u8; 32], (u64, Mailbox)> = BTreeMap::new();
        for row in &locked {
            let m = decode_mailbox(row)?;
            state.insert(*m.id.as_bytes(), (m.head, m));
        }
        let verdicts: Vec<SharedNonce> = found.into_iter().map(shared_nonce).collect();
        if claims
            .iter()
            .zip(&verdicts)
            .any(|(c, v)| c.append.is_some() && !v.is_fresh())
        {
            // The caller rolls the transaction back.
            return Ok(Claimed::Refused(verdicts));
        }
        if batches.is_empty() {
            return Ok(Claimed::Written(verdicts));
        }
        let mut ended: BTreeMap<([u8; 32], [u8; 32]), EndedEpoch> = BTreeMap::new();
        let mut rows = EnvelopeRows::default();
        for b in batches {
            let id = b.mailbox.id;
            let (_, current) = state
                .get_mut(id.as_bytes())
                .ok_or(StoreError::UnknownMailbox(id))?;
            check_append(current, b)?;
            if let Some((key, e)) = ended_by(current, b) {
                // Should a key end two epochs, the later one is kept.
                ended.insert((*id.as_bytes(), *key.as_bytes()), e);
            }
            let mut after = b.mailbox;
            after.stored_bytes = current.stored_bytes.saturating_add(payload_bytes(b));
            *current = after;
            for e in &b.envelopes {
                rows.push(id, e)?;
            }
        }
        // The compare-and-swap, decided by the database: each row moves only from the
        // head read under the lock.
        let mut update = MailboxRows::default();
        let mut wake: Vec<String> = Vec::new();
        for (locked, m) in state.values() {
            if m.head != *locked {
                update.push(*locked, m)?;
                wake.push(crate::notify::payload(&m.id, m.head));
            }
        }
        let (mut ended_mailbox, mut ended_key, mut ended_epoch, mut ended_seq) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((m, k), e) in &ended {
            ended_mailbox.push(m.as_slice());
            ended_key.push(k.as_slice());
            ended_epoch.push(to_i64(e.epoch)?);
            ended_seq.push(to_i64(e.end_seq)?);
        }
        let update_stmt = client
            .prepare_cached(
                "UPDATE mailboxes AS m SET head = u.head, epoch = u.epoch, key = u.key,
                     prev_key = u.prev_key, prev_valid_until = u.prev_valid_until,
                     stored_bytes = u.stored_bytes, message_ttl = u.message_ttl
                 FROM unnest($1::bytea[], $2::int8[], $3::int8[], $4::bytea[], $5::bytea[],
                             $6::int8[], $7::int8[], $8::int8[], $9::int8[])
                     AS u(id, expected, head, key, prev_key, prev_valid_until, stored_bytes, epoch,
                          message_ttl)
                 WHERE m.id = u.id AND m.head = u.expected",
            )
            .await
            .map_err(from_db)?;
        let ended_stmt = client
            .prepare_cached(
                "INSERT INTO epoch_keys (mailbox, key, epoch, end_seq)
                 SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::int8[])
                 ON CONFLICT (mailbox, key) DO UPDATE
                 SET epoch = excluded.epoch, end_seq = excluded.end_seq",
            )
            .await
            .map_err(from_db)?;
        let insert_stmt = client
            .prepare_cached(
                "INSERT INTO envelopes (mailbox, seq, kind, epoch, payload, received_at)
                 SELECT * FROM unnest($1::bytea[], $2::int8[], $3::int2[], $4::int8[],
                                      $5::bytea[], $6::int8[])",
            )
            .await
            .map_err(from_db)?;
        // Wake-ups for other processes, delivered when (and only if) this commits.
        let notify_stmt = client
            .prepare_cached("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .await
            .map_err(from_db)?;
        // The four statements are sent together (one round trip) and run in order; a
        // failure of one fails the transaction, and the caller rolls it back.
        let (changed, (), (), ()) = try_join4(
            async {
                client
                    .execute(
                        &update_stmt,
                        &[
                            &update.id,
                            &update.expected,
                            &update.head,
                            &update.key,
                            &update.prev_key,
                            &update.prev_valid_until,
                            &update.stored_bytes,
                            &update.epoch,
                            &update.message_lifetime,
                        ],
                    )
                    .await
                    .map_err(from_db)
            },
            async {
                if ended_mailbox.is_empty() {
                    return Ok(());
                }
                client
                    .execute(
                        &ended_stmt,
                        &[&ended_mailbox, &ended_key, &ended_epoch, &ended_seq],
                    )
                    .await
                    .map(drop)
                    .map_err(from_db)
            },
            async {
                client
                    .execute(
                        &insert_stmt,
                        &[
                            &rows.mailbox,
                            &rows.seq,
                            &rows.kind,
                            &rows.epoch,
                            &rows.payload,
                            &rows.received_at,
                        ],
                    )
                    .await
                    .map(drop)
                    .map_err(from_db)
            },
            async {
                client
                    .execute(&notify_stmt, &[&self.channel, &wake])
                    .await
                    .map(drop)
                    .map_err(from_db)
            },
        )
        .await?;
        if changed != update.id.len() as u64 {
            // Cannot happen under the row locks; should it, the database still refused
            // to move a head that another transaction moved: report which one.
            return Err(moved(client, &state).await);
        }
        Ok(Claimed::Written(verdicts))
    }

    /// Begins a transaction and locks the rows of `ids` in id order (the lock order of
    /// every writer); returns the connection and the mailboxes found.
    async fn begin_locked(&self, ids: &[MailboxId]) -> Result<(Object, Vec<Mailbox>), StoreError> {
        let client = self.pool.get().await.map_err(from_pool)?;
        match lock_rows(&client, ids, true).await {
            Ok(found) => Ok((client, found)),
            Err(e) => {
                end_held(client).await;
                Err(e)
            }
        }
    }
}

/// The rows of `ids`, locked (after `BEGIN` if `begin`; else added to the locks the
/// transaction holds).
async fn lock_rows(
    client: &Object,
    ids: &[MailboxId],
    begin: bool,
) -> Result<Vec<Mailbox>, StoreError> {
    let ids: Vec<&[u8]> = ids.iter().map(|id| id.as_bytes().as_slice()).collect();
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ANY($1) ORDER BY id FOR UPDATE"
        ))
        .await
        .map_err(from_db)?;
    // `BEGIN` and the locking read sent together: one round trip.
    let ((), rows) = try_join(
        async {
            if begin {
                client.batch_execute("BEGIN").await.map_err(from_db)?;
            }
            Ok(())
        },
        async { client.query(&stmt, &[&ids]).await.map_err(from_db) },
    )
    .await?;
    rows.iter().map(decode_mailbox).collect()
}

/// Rolls back a held transaction and gives the connection back to the pool, or, if it
/// cannot be rolled back (broken), closes it: a pooled connection is never left inside
/// a transaction.
async fn end_held(client: Object) {
    if client.batch_execute("ROLLBACK").await.is_err() {
        drop(Object::take(client));
    }
}

/// The claim of a saved entry.
fn nonce_claim(entry: &SavedNonce) -> NonceClaim {
    NonceClaim {
        key: entry.key,
        nonce: entry.nonce,
        mailbox: entry.mailbox,
        expires: entry.expires,
    }
}

/// A claim's verdict in the terms of the [`Store`] contract.
fn shared_nonce(v: NonceVerdict) -> SharedNonce {
    match v {
        NonceVerdict::Fresh => SharedNonce::Fresh,
        NonceVerdict::Replayed => SharedNonce::Replayed,
        NonceVerdict::KeyShareFull => SharedNonce::OverShare(ReplayShare::Key),
        NonceVerdict::MailboxShareFull => SharedNonce::OverShare(ReplayShare::Mailbox),
    }
}

/// The [`StoreError::HeadMoved`] of the first mailbox in `state` whose head in the
/// database is no longer the one read under the lock.
async fn moved(tx: &impl GenericClient, state: &BTreeMap<[u8; 32], (u64, Mailbox)>) -> StoreError {
    for (id, (locked, _)) in state {
        let row = tx
            .query_opt(
                "SELECT head FROM mailboxes WHERE id = $1",
                &[&id.as_slice()],
            )
            .await;
        let actual = match row {
            Ok(Some(r)) => r.get::<_, i64>(0),
            Ok(None) => continue,
            Err(e) => return from_db(e),
        };
        if u64::try_from(actual).ok() != Some(*locked) {
            return StoreError::HeadMoved {
                mailbox: MailboxId::from_bytes(*id),
                expected: *locked,
                actual: u64::try_from(actual).unwrap_or(0),
            };
        }
    }
    StoreError::Corrupt("a mailbox update matched no row".into())
}

/// The columns of envelopes to insert, one array each.
#[derive(Default)]
struct EnvelopeRows<'a> {
    mailbox: Vec<Vec<u8>>,
    seq: Vec<i64>,
    kind: Vec<i16>,
    epoch: Vec<Option<i64>>,
    payload: Vec<&'a [u8]>,
    received_at: Vec<i64>,
}

impl<'a> EnvelopeRows<'a> {
    fn push(&mut self, mailbox: MailboxId, e: &'a Envelope) -> Result<(), StoreError> {
        self.mailbox.push(mailbox.as_bytes().to_vec());
        self.seq.push(to_i64(e.seq)?);
        self.kind.push(envelope_kind_code(e.kind));
        self.epoch.push(e.epoch.map(to_i64).transpose()?);
        self.payload.push(&e.payload);
        self.received_at.push(to_i64(e.received_at.as_millis())?);
        Ok(())
    }
}

/// The columns of mailbox updates, one array each.
#[derive(Default)]
struct MailboxRows {
    id: Vec<Vec<u8>>,
    expected: Vec<i64>,
    head: Vec<i64>,
    epoch: Vec<Option<i64>>,
    key: Vec<Vec<u8>>,
    prev_key: Vec<Option<Vec<u8>>>,
    prev_valid_until: Vec<Option<i64>>,
    stored_bytes: Vec<i64>,
    message_lifetime: Vec<Option<i64>>,
}

impl MailboxRows {
    fn push(&mut self, expected: u64, m: &Mailbox) -> Result<(), StoreError> {
        let k = encode_keys(&m.keys)?;
        self.id.push(m.id.as_bytes().to_vec());
        self.expected.push(to_i64(expected)?);
        self.head.push(to_i64(m.head)?);
        self.epoch.push(k.epoch);
        self.key.push(k.key.to_vec());
        self.prev_key.push(k.prev_key.map(<[u8]>::to_vec));
        self.prev_valid_until.push(k.prev_valid_until);
        self.stored_bytes.push(to_i64(m.stored_bytes)?);
        self.message_lifetime
            .push(m.message_lifetime.map(i64::from));
        Ok(())
    }
}

impl Store for PgStore {
    fn mailbox(&self, id: &MailboxId) -> Result<Option<Mailbox>, StoreError> {
        self.run(self.read_mailbox(id))
    }

    fn create_mailbox(
        &mut self,
        account: &str,
        max_per_account: u64,
        mailbox: &Mailbox,
    ) -> Result<CreateOutcome, StoreError> {
        if mailbox.head != 0 {
            return Err(StoreError::InvalidAppend("a new mailbox starts at head 0"));
        }
        let max = i64::try_from(max_per_account).unwrap_or(i64::MAX);
        let k = encode_keys(&mailbox.keys)?;
        let id = mailbox.id;
        self.run(async {
            let mut client = self.pool.get().await.map_err(from_pool)?;
            let tx = client.transaction().await.map_err(from_db)?;
            let insert = tx
                .prepare_cached(
                    "INSERT INTO mailboxes (id, kind, head, epoch, key, prev_key, prev_valid_until,
                     message_ttl)
                     VALUES ($1, $2, 0, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                )
                .await
                .map_err(from_db)?;
            let inserted = tx
                .execute(
                    &insert,
                    &[
                        &id.as_bytes().as_slice(),
                        &k.kind,
                        &k.epoch,
                        &k.key,
                        &k.prev_key,
                        &k.prev_valid_until,
                        &mailbox.message_lifetime.map(i64::from),
                    ],
                )
                .await
                .map_err(from_db)?;
            if inserted == 0 {
                return Err(StoreError::DuplicateMailbox(id));
            }
            if max < 1 {
                return Ok(CreateOutcome::QuotaExceeded);
            }
            // The count moves only while below the maximum; the row lock orders
            // processes creating for one account at the same time.
            let count = tx
                .prepare_cached(
                    "INSERT INTO account_quota AS q (account, mailboxes) VALUES ($1, 1)
                     ON CONFLICT (account) DO UPDATE SET mailboxes = q.mailboxes + 1
                     WHERE q.mailboxes < $2
                     RETURNING mailboxes",
                )
                .await
                .map_err(from_db)?;
            if tx
                .query_opt(&count, &[&account, &max])
                .await
                .map_err(from_db)?
                .is_none()
            {
                // Dropping the transaction rolls back the mailbox row.
                return Ok(CreateOutcome::QuotaExceeded);
            }
            tx.commit().await.map_err(from_db)?;
            Ok(CreateOutcome::Created)
        })
    }

    fn append(&mut self, batches: &[Append]) -> Result<(), StoreError> {
        if batches.is_empty() {
            return Ok(());
        }
        let none = NonceShares {
            per_key: 0,
            per_mailbox: 0,
        };
        let held = self.held.take();
        self.run(self.append_all(held, batches, &[], none, Timestamp::from_millis(0)))
            .map(drop)
    }

    /// One transaction: the mailbox locks, the claims (one call of `claim_nonces`), the
    /// appends, `COMMIT`.
    fn append_claimed(
        &mut self,
        batches: &[Append],
        claims: &[GroupClaim],
        shares: atmls_ds::store::NonceShares,
        now: Timestamp,
    ) -> Result<Claimed, StoreError> {
        let held = self.held.take();
        if batches.is_empty() && claims.is_empty() && held.is_none() {
            return Ok(Claimed::Written(Vec::new()));
        }
        let shares = NonceShares {
            per_key: shares.per_key,
            per_mailbox: shares.per_mailbox,
        };
        self.run(self.append_all(held, batches, claims, shares, now))
    }

    /// `BEGIN` and `SELECT … FOR UPDATE` of the rows, in id order, on a connection kept
    /// until the next append commits on it (or [`Store::unlock_mailboxes`]): another
    /// process appending to one of them waits for that commit, and decides after it.
    /// Called again before that, adds rows to the same transaction.
    fn lock_mailboxes(&mut self, ids: &[MailboxId]) -> Result<Vec<Mailbox>, StoreError> {
        let held = self.held.take();
        let (held, found) = self.run(async {
            match held {
                Some(client) => match lock_rows(&client, ids, false).await {
                    Ok(found) => Ok((client, found)),
                    Err(e) => {
                        end_held(client).await;
                        Err(e)
                    }
                },
                None => self.begin_locked(ids).await,
            }
        })?;
        self.held = Held(Some(held));
        Ok(found)
    }

    fn unlock_mailboxes(&mut self) {
        if let Some(client) = self.held.take() {
            let _ = self.run(async {
                end_held(client).await;
                Ok(())
            });
        }
    }

    fn envelopes(
        &self,
        id: &MailboxId,
        after: u64,
        limit: PageLimit,
    ) -> Result<Vec<Envelope>, StoreError> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let max = i64::try_from(limit.envelopes).unwrap_or(i64::MAX);
        self.run(async {
            let client = self.pool.get().await.map_err(from_pool)?;
            let stmt = client
                .prepare_cached(
                    "SELECT seq, kind, epoch, payload, received_at FROM envelopes
                     WHERE mailbox = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .await
                .map_err(from_db)?;
            let rows = client
                .query(&stmt, &[&id.as_bytes().as_slice(), &after, &max])
                .await
                .map_err(from_db)?;
            let mut out = Vec::with_capacity(rows.len());
            let mut bytes = 0usize;
            let corrupt =
                |e: tokio_postgres::Error| StoreError::Corrupt(format!("envelope row: {e}"));
            for r in rows {
                let payload: Vec<u8> = r.try_get(3).map_err(corrupt)?;
                bytes = bytes.saturating_add(payload.len());
                if !out.is_empty() && bytes > limit.bytes {
                    break;
                }
                out.push(Envelope {
                    seq: to_u64(r.try_get(0).map_err(corrupt)?)?,
                    kind: envelope_kind_from(r.try_get(1).map_err(corrupt)?)?,
                    epoch: r
                        .try_get::<_, Option<i64>>(2)
                        .map_err(corrupt)?
                        .map(to_u64)
                        .transpose()?,
                    payload,
                    received_at: Timestamp::from_millis(to_u64(r.try_get(4).map_err(corrupt)?)?),
                });
            }
            Ok(out)
        })
    }

    fn delete_envelopes(&mut self, id: &MailboxId, seqs: &[u64]) -> Result<u64, StoreError> {
        let seqs: Vec<i64> = seqs.iter().filter_map(|&s| i64::try_from(s).ok()).collect();
        self.run(async {
            let mut client = self.pool.get().await.map_err(from_pool)?;
            let tx = client.transaction().await.map_err(from_db)?;
            let id = id.as_bytes().as_slice();
            // The mailbox first, then its envelopes: the lock order of every writer.
            let lock = tx
                .prepare_cached("SELECT 1 FROM mailboxes WHERE id = $1 FOR UPDATE")
                .await
                .map_err(from_db)?;
            if tx
                .query_opt(&lock, &[&id])
                .await
                .map_err(from_db)?
                .is_none()
            {
                return Ok(0);
            }
            let stmt = tx
                .prepare_cached(
                    "WITH gone AS (
                         DELETE FROM envelopes WHERE mailbox = $1 AND seq = ANY($2)
                         RETURNING octet_length(payload) AS len),
                     freed AS (SELECT count(*) AS n, coalesce(sum(len), 0)::int8 AS len FROM gone),
                     _ AS (UPDATE mailboxes SET stored_bytes =
                               greatest(stored_bytes - (SELECT len FROM freed), 0)
                           WHERE id = $1 AND (SELECT n FROM freed) > 0)
                     SELECT n FROM freed",
                )
                .await
                .map_err(from_db)?;
            let n: i64 = tx
                .query_one(&stmt, &[&id, &seqs])
                .await
                .map_err(from_db)?
                .get(0);
            tx.commit().await.map_err(from_db)?;
            to_u64(n)
        })
    }

    fn expire(&mut self, kind: MailboxKind, before: Timestamp) -> Result<u64, StoreError> {
        let before = i64::try_from(before.as_millis()).unwrap_or(i64::MAX);
        let kinds = envelope_codes_of(kind);
        self.run(async {
            let mut client = self.pool.get().await.map_err(from_pool)?;
            let tx = client.transaction().await.map_err(from_db)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&EXPIRY_LOCK])
                .await
                .map_err(from_db)?;
            // The mailboxes first, in id order (the lock order of appends), then only
            // their envelopes.
            let lock = tx
                .prepare_cached(
                    "SELECT id FROM mailboxes WHERE id IN (
                         SELECT DISTINCT mailbox FROM envelopes
                         WHERE kind = ANY($1) AND received_at < $2)
                     ORDER BY id FOR UPDATE",
                )
                .await
                .map_err(from_db)?;
            let locked: Vec<Vec<u8>> = tx
                .query(&lock, &[&kinds, &before])
                .await
                .map_err(from_db)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if locked.is_empty() {
                return Ok(0);
            }
            let stmt = tx
                .prepare_cached(
                    "WITH gone AS (
                         DELETE FROM envelopes
                         WHERE mailbox = ANY($3) AND kind = ANY($1) AND received_at < $2
                         RETURNING mailbox, octet_length(payload) AS len),
                     per AS (SELECT mailbox, count(*) AS n, sum(len)::int8 AS len
                             FROM gone GROUP BY mailbox),
                     _ AS (UPDATE mailboxes AS m
                           SET stored_bytes = greatest(m.stored_bytes - per.len, 0)
                           FROM per WHERE m.id = per.mailbox)
                     SELECT coalesce(sum(n), 0)::int8 FROM per",
                )
                .await
                .map_err(from_db)?;
            let n: i64 = tx
                .query_one(&stmt, &[&kinds, &before, &locked])
                .await
                .map_err(from_db)?
                .get(0);
            tx.commit().await.map_err(from_db)?;
            to_u64(n)
        })
    }

    fn expire_messages(
        &mut self,
        now: Timestamp,
        margin: std::time::Duration,
    ) -> Result<u64, StoreError> {
        // Per mailbox: messages received before now - margin - lifetime (ms).
        let base = i64::try_from(now.saturating_sub(margin).as_millis()).unwrap_or(i64::MAX);
        self.run(async {
            let mut client = self.pool.get().await.map_err(from_pool)?;
            let tx = client.transaction().await.map_err(from_db)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&EXPIRY_LOCK])
                .await
                .map_err(from_db)?;
            // The mailboxes first, in id order (the lock order of appends), then only
            // their messages.
            let lock = tx
                .prepare_cached(
                    "SELECT m.id FROM mailboxes AS m
                     WHERE m.message_ttl IS NOT NULL AND EXISTS (
                         SELECT 1 FROM envelopes AS e WHERE e.mailbox = m.id AND e.kind = 0
                         AND e.received_at < $1 - 1000 * m.message_ttl)
                     ORDER BY m.id FOR UPDATE",
                )
                .await
                .map_err(from_db)?;
            let locked: Vec<Vec<u8>> = tx
                .query(&lock, &[&base])
                .await
                .map_err(from_db)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if locked.is_empty() {
                return Ok(0);
            }
            let stmt = tx
                .prepare_cached(
                    "WITH gone AS (
                         DELETE FROM envelopes AS e USING mailboxes AS m
                         WHERE m.id = ANY($2) AND e.mailbox = m.id AND e.kind = 0
                         AND e.received_at < $1 - 1000 * m.message_ttl
                         RETURNING e.mailbox, octet_length(e.payload) AS len),
                     per AS (SELECT mailbox, count(*) AS n, sum(len)::int8 AS len
                             FROM gone GROUP BY mailbox),
                     _ AS (UPDATE mailboxes AS m
                           SET stored_bytes = greatest(m.stored_bytes - per.len, 0)
                           FROM per WHERE m.id = per.mailbox)
                     SELECT coalesce(sum(n), 0)::int8 FROM per",
                )
                .await
                .map_err(from_db)?;
            let n: i64 = tx
                .query_one(&stmt, &[&base, &locked])
                .await
                .map_err(from_db)?
                .get(0);
            tx.commit().await.map_err(from_db)?;
            to_u64(n)
        })
    }

    fn account_mailboxes(&self, account: &str) -> Result<u64, StoreError> {
        self.run(async {
            let client = self.pool.get().await.map_err(from_pool)?;
            let stmt = client
                .prepare_cached("SELECT mailboxes FROM account_quota WHERE account = $1")
                .await
                .map_err(from_db)?;
            let count: Option<i64> = client
                .query_opt(&stmt, &[&account])
                .await
                .map_err(from_db)?
                .map(|r| r.get(0));
            to_u64(count.unwrap_or(0))
        })
    }

    fn ended_epoch(
        &self,
        id: &MailboxId,
        key: &[u8; 32],
    ) -> Result<Option<EndedEpoch>, StoreError> {
        self.run(async {
            let client = self.pool.get().await.map_err(from_pool)?;
            let stmt = client
                .prepare_cached(
                    "SELECT epoch, end_seq FROM epoch_keys WHERE mailbox = $1 AND key = $2",
                )
                .await
                .map_err(from_db)?;
            let row = client
                .query_opt(&stmt, &[&id.as_bytes().as_slice(), &key.as_slice()])
                .await
                .map_err(from_db)?;
            row.map(|r| {
                Ok(EndedEpoch {
                    epoch: to_u64(r.get(0))?,
                    end_seq: to_u64(r.get(1))?,
                })
            })
            .transpose()
        })
    }

    fn save_replay(&mut self, entries: &[SavedNonce]) -> Result<(), StoreError> {
        let (mut key, mut nonce, mut mailbox, mut expires) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for e in entries {
            key.push(e.key.as_slice());
            nonce.push(e.nonce.as_slice());
            mailbox.push(e.mailbox.as_bytes().as_slice());
            expires.push(to_i64(e.expires.as_millis())?);
        }
        self.run(async {
            let mut client = self.pool.get().await.map_err(from_pool)?;
            let tx = client.transaction().await.map_err(from_db)?;
            tx.batch_execute("DELETE FROM replay_saved")
                .await
                .map_err(from_db)?;
            tx.execute(
                "INSERT INTO replay_saved (key, nonce, mailbox, expires)
                 SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::int8[])
                 ON CONFLICT (key, nonce) DO UPDATE
                 SET mailbox = excluded.mailbox, expires = excluded.expires",
                &[&key, &nonce, &mailbox, &expires],
            )
            .await
            .map_err(from_db)?;
            tx.batch_execute("INSERT INTO clean_stop (id) VALUES (1) ON CONFLICT DO NOTHING")
                .await
                .map_err(from_db)?;
            tx.commit().await.map_err(from_db)
        })
    }

    fn take_replay(&mut self) -> Result<Option<Vec<SavedNonce>>, StoreError> {
        self.run(async {
            let mut client = self.pool.get().await.map_err(from_pool)?;
            let tx = client.transaction().await.map_err(from_db)?;
            let clean = tx
                .execute("DELETE FROM clean_stop", &[])
                .await
                .map_err(from_db)?
                > 0;
            let rows = tx
                .query(
                    "DELETE FROM replay_saved RETURNING key, nonce, mailbox, expires",
                    &[],
                )
                .await
                .map_err(from_db)?;
            let corrupt = || StoreError::Corrupt("invalid saved replay entry".into());
            let mut entries = Vec::with_capacity(rows.len());
            for r in rows {
                entries.push(SavedNonce {
                    key: r.get::<_, &[u8]>(0).try_into().map_err(|_| corrupt())?,
                    nonce: r.get::<_, &[u8]>(1).try_into().map_err(|_| corrupt())?,
                    mailbox: id_from(r.get(2))?,
                    expires: Timestamp::from_millis(to_u64(r.get(3))?),
                });
            }
            tx.commit().await.map_err(from_db)?;
            Ok(clean.then_some(entries))
        })
    }

    /// The replay cache and the deposit windows live in the database ([`crate::shared`]):
    /// every process of the service sees what the others accepted.
    fn shares_state(&self) -> bool {
        true
    }

    /// Clones sharing the pool, each holding its own mailbox lock: one per further writer
    /// lane ([`PgConfig::with_writer_lanes`]).
    fn more_writers(&self) -> Vec<Self> {
        (1..self.writer_lanes).map(|_| self.clone()).collect()
    }

    fn claim_nonce(
        &self,
        entry: &SavedNonce,
        shares: atmls_ds::store::NonceShares,
        now: Timestamp,
    ) -> Result<SharedNonce, StoreError> {
        let shares = NonceShares {
            per_key: shares.per_key,
            per_mailbox: shares.per_mailbox,
        };
        PgStore::claim_nonce(self, &nonce_claim(entry), shares, now).map(shared_nonce)
    }

    fn release_nonce(&self, key: &[u8; 32], nonce: &[u8; 16]) -> Result<(), StoreError> {
        PgStore::release_nonce(self, key, nonce).map(drop)
    }

    fn take_deposit(
        &self,
        inbox: &MailboxId,
        len: u64,
        now: Timestamp,
        allowance: RateAllowance,
    ) -> Result<SharedRate, StoreError> {
        let limit = RateLimit {
            window: allowance.window,
            count: allowance.count,
            bytes: allowance.bytes,
        };
        Ok(
            match self.take_rate(RateScope::InboxDeposits, inbox.as_bytes(), len, now, limit)? {
                RateVerdict::Allowed { window_start } => SharedRate::Allowed { window_start },
                RateVerdict::Limited { retry_after } => SharedRate::Limited { retry_after },
            },
        )
    }

    fn give_back_deposit(
        &self,
        inbox: &MailboxId,
        len: u64,
        window_start: Timestamp,
    ) -> Result<(), StoreError> {
        self.give_back_rate(
            RateScope::InboxDeposits,
            inbox.as_bytes(),
            len,
            window_start,
        )
    }

    fn sweep_shared(
        &self,
        now: Timestamp,
        longest_window: std::time::Duration,
    ) -> Result<(), StoreError> {
        self.sweep(now, longest_window).map(drop)
    }
}
