//! Copying a SQLite DS into PostgreSQL (`atmls ds migrate-store`), all or nothing.
//!
//! Every mailbox (keys, head, stored bytes), its ended epochs, every envelope with its
//! seq, kind, epoch, payload and received-at time, and every account's mailbox count go
//! into the target in **one transaction**. Before it commits, the copy reads back, in
//! the same transaction, every mailbox's head, envelope count, payload bytes and highest
//! seq and compares them with the source: any difference rolls everything back. So the
//! target holds either the whole source or nothing of it.
//!
//! Not copied: the replay cache saved at a clean stop (`replay_saved`, `clean_stop`). On
//! PostgreSQL the replay cache is shared and lives in the database while the service
//! runs, and the source has been stopped for longer than a token lives (a request's
//! token is valid for minutes; a migration with the DS stopped outlasts it), so nothing
//! in it can still be replayed.
//!
//! The source must not be written during the copy: stop the DS first.

use atmls_ds::auth::MailboxKey;
use atmls_ds::store::{EndedEpoch, Mailbox, PageLimit};
use atmls_ds::{Envelope, SqliteStore, Store as _, StoreError};
use deadpool_postgres::Pool;
use tokio::sync::mpsc;

use crate::codec::{encode_keys, envelope_kind_code, to_i64};
use crate::error::{from_db, from_pool, from_setup};
use crate::store::PgStore;

/// How many envelopes (or payload bytes) one read from the source and one insert into
/// the target carry at most.
const CHUNK: PageLimit = PageLimit {
    envelopes: 2_000,
    bytes: 16 * 1024 * 1024,
};

/// What to do with a target that already holds data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NonEmptyTarget {
    /// Refuse, writing nothing (the default).
    #[default]
    Refuse,
    /// Copy beside what is there: a mailbox id that already exists fails the whole copy;
    /// account counts are added to the existing ones.
    Merge,
}

/// What was copied (the figures the copy verified in the target before it committed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyReport {
    /// Group mailboxes.
    pub groups: u64,
    /// Device inboxes.
    pub inboxes: u64,
    /// Envelopes.
    pub envelopes: u64,
    /// Payload bytes of the envelopes.
    pub payload_bytes: u64,
    /// Ended epochs (keys of past epochs).
    pub ended_epochs: u64,
    /// Accounts with a mailbox count.
    pub accounts: u64,
}

/// Why a copy wrote nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// Reading the SQLite source failed.
    #[error("reading the source: {0}")]
    Source(#[source] StoreError),
    /// Writing to or reading from PostgreSQL failed.
    #[error("the target database: {0}")]
    Target(#[source] StoreError),
    /// The target already holds data and [`NonEmptyTarget::Refuse`] was asked.
    #[error(
        "the target is not empty ({mailboxes} mailboxes, {envelopes} envelopes, \
         {accounts} account counts): nothing copied"
    )]
    NotEmpty {
        /// Mailboxes in the target.
        mailboxes: u64,
        /// Envelopes in the target.
        envelopes: u64,
        /// Account counters in the target.
        accounts: u64,
    },
    /// A mailbox of the source already exists in the target (with
    /// [`NonEmptyTarget::Merge`]).
    #[error("mailbox number {index} of the source already exists in the target: nothing copied")]
    Duplicate {
        /// Its position in the source's id order (0-based); never the id itself.
        index: u64,
    },
    /// What the target holds inside the copy's transaction differs from the source.
    #[error("verification failed: {0}; nothing copied")]
    Mismatch(String),
}

/// One message from the reading thread to the writing task.
enum Item {
    /// A mailbox with its ended epochs and the figures its envelopes must add up to.
    Mailbox {
        mailbox: Mailbox,
        ended: Vec<(MailboxKey, EndedEpoch)>,
    },
    /// Envelopes of the last mailbox sent, in seq order.
    Envelopes(Vec<Envelope>),
    /// Every account's mailbox count.
    Accounts(Vec<(String, u64)>),
    /// The end: the expected per-mailbox figures, to verify and commit.
    Done(Vec<Expected>),
}

/// What one mailbox of the source holds.
struct Expected {
    id: [u8; 32],
    head: u64,
    stored_bytes: u64,
    envelopes: u64,
    payload_bytes: u64,
    last_seq: u64,
}

/// Copies every mailbox, envelope, ended epoch and account count of `source` into
/// `target`, in one transaction, verified before it commits.
///
/// Call it from a plain thread (not from inside an async task). The source must not be
/// written meanwhile.
pub fn copy_from_sqlite(
    source: &SqliteStore,
    target: &PgStore,
    non_empty: NonEmptyTarget,
) -> Result<CopyReport, CopyError> {
    let (tx, rx) = mpsc::channel::<Item>(4);
    let writer = target
        .spawn(write(target.pool().clone(), rx, non_empty))
        .map_err(CopyError::Target)?;
    // Read and send; a send fails only when the writer gave up, whose error is then the
    // one to report.
    let read = read(source, &tx);
    drop(tx);
    let written = target
        .run(async { writer.await.map_err(from_setup) })
        .map_err(CopyError::Target)?;
    match (read, written) {
        (Err(Some(e)), _) => Err(e),
        (_, Err(e)) => Err(e),
        (Err(None), Ok(_)) => Err(CopyError::Target(from_setup(std::io::Error::other(
            "the copy's writer stopped early",
        )))),
        (Ok(()), Ok(report)) => Ok(report),
    }
}

/// Reads the source and sends it. `Err(None)`: the writer stopped listening.
fn read(source: &SqliteStore, tx: &mpsc::Sender<Item>) -> Result<(), Option<CopyError>> {
    let send = |item| tx.blocking_send(item).map_err(|_| None);
    let src = |e| Some(CopyError::Source(e));
    let mut expected = Vec::new();
    for id in source.mailbox_ids().map_err(src)? {
        let mailbox = source
            .mailbox(&id)
            .map_err(src)?
            .ok_or_else(|| src(StoreError::UnknownMailbox(id)))?;
        let ended = source.ended_epochs(&id).map_err(src)?;
        send(Item::Mailbox { mailbox, ended })?;
        let mut e = Expected {
            id: *id.as_bytes(),
            head: mailbox.head,
            stored_bytes: mailbox.stored_bytes,
            envelopes: 0,
            payload_bytes: 0,
            last_seq: 0,
        };
        loop {
            let page = source.envelopes(&id, e.last_seq, CHUNK).map_err(src)?;
            let Some(last) = page.last() else { break };
            e.last_seq = last.seq;
            e.envelopes += page.len() as u64;
            e.payload_bytes += page.iter().map(|x| x.payload.len() as u64).sum::<u64>();
            send(Item::Envelopes(page))?;
        }
        expected.push(e);
    }
    send(Item::Accounts(source.account_counts().map_err(src)?))?;
    send(Item::Done(expected))
}

/// Receives what [`read`] sends and writes it in one transaction.
async fn write(
    pool: Pool,
    mut rx: mpsc::Receiver<Item>,
    non_empty: NonEmptyTarget,
) -> Result<CopyReport, CopyError> {
    let db = |e| CopyError::Target(from_db(e));
    let mut client = pool
        .get()
        .await
        .map_err(|e| CopyError::Target(from_pool(e)))?;
    let tx = client.transaction().await.map_err(db)?;
    let row = tx
        .query_one(
            "SELECT (SELECT count(*) FROM mailboxes), (SELECT count(*) FROM envelopes),
                    (SELECT count(*) FROM account_quota)",
            &[],
        )
        .await
        .map_err(db)?;
    let held = |i| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    if non_empty == NonEmptyTarget::Refuse && (held(0), held(1), held(2)) != (0, 0, 0) {
        return Err(CopyError::NotEmpty {
            mailboxes: held(0),
            envelopes: held(1),
            accounts: held(2),
        });
    }
    let insert_mailbox = tx
        .prepare(
            "INSERT INTO mailboxes
                 (id, kind, head, epoch, key, prev_key, prev_valid_until, stored_bytes,
                  message_ttl)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
        )
        .await
        .map_err(db)?;
    let insert_ended = tx
        .prepare(
            "INSERT INTO epoch_keys (mailbox, key, epoch, end_seq)
             SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::int8[])",
        )
        .await
        .map_err(db)?;
    let insert_envelopes = tx
        .prepare(
            "INSERT INTO envelopes (mailbox, seq, kind, epoch, payload, received_at)
             SELECT $1, * FROM unnest($2::int8[], $3::int2[], $4::int8[], $5::bytea[],
                                      $6::int8[])",
        )
        .await
        .map_err(db)?;
    let mut report = CopyReport::default();
    let mut current: Option<[u8; 32]> = None;
    let target = |e| CopyError::Target(e);
    while let Some(item) = rx.recv().await {
        match item {
            Item::Mailbox { mailbox, ended } => {
                let k = encode_keys(&mailbox.keys).map_err(target)?;
                let id = mailbox.id.as_bytes().as_slice();
                let inserted = tx
                    .execute(
                        &insert_mailbox,
                        &[
                            &id,
                            &k.kind,
                            &to_i64(mailbox.head).map_err(target)?,
                            &k.epoch,
                            &k.key,
                            &k.prev_key,
                            &k.prev_valid_until,
                            &to_i64(mailbox.stored_bytes).map_err(target)?,
                            &mailbox.message_lifetime.map(i64::from),
                        ],
                    )
                    .await
                    .map_err(db)?;
                if inserted != 1 {
                    return Err(CopyError::Duplicate {
                        index: report.groups + report.inboxes,
                    });
                }
                if k.kind == 0 {
                    report.groups += 1;
                } else {
                    report.inboxes += 1;
                }
                if !ended.is_empty() {
                    let ids = vec![id; ended.len()];
                    let keys: Vec<&[u8]> =
                        ended.iter().map(|(k, _)| k.as_bytes().as_slice()).collect();
                    let epochs = ended
                        .iter()
                        .map(|(_, e)| to_i64(e.epoch))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(target)?;
                    let ends = ended
                        .iter()
                        .map(|(_, e)| to_i64(e.end_seq))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(target)?;
                    tx.execute(&insert_ended, &[&ids, &keys, &epochs, &ends])
                        .await
                        .map_err(db)?;
                    report.ended_epochs += ended.len() as u64;
                }
                current = Some(*mailbox.id.as_bytes());
            }
            Item::Envelopes(page) => {
                let Some(id) = current else {
                    return Err(CopyError::Mismatch("envelopes before a mailbox".into()));
                };
                let mut seq = Vec::with_capacity(page.len());
                let mut kind = Vec::with_capacity(page.len());
                let mut epoch = Vec::with_capacity(page.len());
                let mut payload = Vec::with_capacity(page.len());
                let mut received_at = Vec::with_capacity(page.len());
                for e in &page {
                    seq.push(to_i64(e.seq).map_err(target)?);
                    kind.push(envelope_kind_code(e.kind));
                    epoch.push(e.epoch.map(to_i64).transpose().map_err(target)?);
                    payload.push(e.payload.as_slice());
                    received_at.push(to_i64(e.received_at.as_millis()).map_err(target)?);
                }
                tx.execute(
                    &insert_envelopes,
                    &[&id.as_slice(), &seq, &kind, &epoch, &payload, &received_at],
                )
                .await
                .map_err(db)?;
            }
            Item::Accounts(accounts) => {
                let names: Vec<&str> = accounts.iter().map(|(a, _)| a.as_str()).collect();
                let counts = accounts
                    .iter()
                    .map(|(_, n)| to_i64(*n))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(target)?;
                tx.execute(
                    "INSERT INTO account_quota (account, mailboxes)
                     SELECT * FROM unnest($1::text[], $2::int8[])
                     ON CONFLICT (account) DO UPDATE
                     SET mailboxes = account_quota.mailboxes + excluded.mailboxes",
                    &[&names, &counts],
                )
                .await
                .map_err(db)?;
                report.accounts = accounts.len() as u64;
            }
            Item::Done(expected) => {
                verify(&tx, &expected, &mut report).await?;
                tx.commit().await.map_err(db)?;
                return Ok(report);
            }
        }
    }
    // The reader stopped (it failed): dropping the transaction rolls it back.
    Err(CopyError::Target(from_setup(std::io::Error::other(
        "the source stopped early",
    ))))
}

/// Compares what the transaction holds for every copied mailbox with the source.
async fn verify(
    tx: &deadpool_postgres::Transaction<'_>,
    expected: &[Expected],
    report: &mut CopyReport,
) -> Result<(), CopyError> {
    let db = |e| CopyError::Target(from_db(e));
    let stmt = tx
        .prepare(
            "SELECT m.head, m.stored_bytes, count(e.seq),
                    coalesce(sum(octet_length(e.payload)), 0)::int8, coalesce(max(e.seq), 0)
             FROM mailboxes m LEFT JOIN envelopes e ON e.mailbox = m.id
             WHERE m.id = $1 GROUP BY m.id, m.head, m.stored_bytes",
        )
        .await
        .map_err(db)?;
    for (index, e) in expected.iter().enumerate() {
        let row = tx
            .query_opt(&stmt, &[&e.id.as_slice()])
            .await
            .map_err(db)?
            .ok_or_else(|| CopyError::Mismatch(format!("mailbox number {index} is missing")))?;
        let got = |i| u64::try_from(row.get::<_, i64>(i)).unwrap_or(u64::MAX);
        let (head, stored, count, bytes, last) = (got(0), got(1), got(2), got(3), got(4));
        if head != e.head
            || stored != e.stored_bytes
            || count != e.envelopes
            || bytes != e.payload_bytes
            || last != e.last_seq
        {
            return Err(CopyError::Mismatch(format!(
                "mailbox number {index}: target head {head}, {count} envelopes, {bytes} \
                 bytes, last seq {last}; source head {}, {} envelopes, {} bytes, last seq {}",
                e.head, e.envelopes, e.payload_bytes, e.last_seq
            )));
        }
        report.envelopes += count;
        report.payload_bytes += bytes;
    }
    Ok(())
}
