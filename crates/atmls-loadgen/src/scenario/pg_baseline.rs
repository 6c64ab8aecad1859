//! The raw PostgreSQL baselines, measured in the same run on the same database through
//! the same driver as the DS's store (tokio-postgres, no TLS): insert transactions of
//! 1 KiB rows keyed `(mailbox, seq)` as the DS's envelopes, each committed (the server's
//! `synchronous_commit` decides durability, as for the DS). One row per transaction is a
//! plain `INSERT`; a batch is one `INSERT … SELECT FROM unnest(…)`, the form the DS's
//! store writes a group commit with. With several connections every connection commits
//! on its own mailbox, as the DS's concurrent senders do.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use super::join_all;
use crate::LoadgenError;
use crate::postgres::{Database, drop_schema, fresh_schema};
use crate::stats::rate;

/// What a raw PostgreSQL baseline measured.
#[derive(Debug, Clone, Serialize)]
pub struct PgResult {
    /// Concurrent connections, each committing one transaction after the other.
    pub connections: usize,
    /// Rows per transaction.
    pub rows_per_txn: usize,
    /// Transactions committed.
    pub txns: u64,
    /// Transactions per second.
    pub txns_per_s: f64,
    /// Rows per second.
    pub rows_per_s: f64,
}

/// Commits transactions of `rows_per_txn` rows of `payload_bytes` for `duration` on
/// `connections` connections, in a new schema (dropped afterwards).
pub async fn pg_inserts(
    db: &Database,
    duration: Duration,
    connections: usize,
    rows_per_txn: usize,
    payload_bytes: usize,
) -> Result<PgResult, LoadgenError> {
    let schema = fresh_schema("raw")?;
    let (setup, conn) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls).await?;
    let task = tokio::spawn(conn);
    setup
        .batch_execute(&format!(
            "CREATE SCHEMA {s};
             CREATE TABLE {s}.t (mailbox BYTEA NOT NULL, seq BIGINT NOT NULL,
                                 payload BYTEA NOT NULL, PRIMARY KEY (mailbox, seq));",
            s = schema.as_str()
        ))
        .await?;
    let rows = rows_per_txn.max(1);
    let mut set = JoinSet::new();
    for c in 0..connections.max(1) {
        let (url, table) = (db.url().to_owned(), format!("{}.t", schema.as_str()));
        set.spawn(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            let task = tokio::spawn(conn);
            let n = committer(client, &table, c, duration, rows, payload_bytes).await;
            let _ = task.await;
            n
        });
    }
    let start = Instant::now();
    let counts = join_all(set).await;
    let elapsed = start.elapsed();
    drop(setup);
    let _ = task.await;
    drop_schema(db.url(), &schema).await;
    let txns: u64 = counts?.iter().sum();
    Ok(PgResult {
        connections: connections.max(1),
        rows_per_txn: rows,
        txns,
        txns_per_s: rate(txns, elapsed),
        rows_per_s: rate(txns * rows as u64, elapsed),
    })
}

/// One connection's transactions until `duration` passed: how many committed.
async fn committer(
    mut client: tokio_postgres::Client,
    table: &str,
    c: usize,
    duration: Duration,
    rows: usize,
    payload_bytes: usize,
) -> Result<u64, LoadgenError> {
    let mut mailbox = [7u8; 32];
    mailbox[..8].copy_from_slice(&(c as u64).to_be_bytes());
    let mailbox = mailbox.to_vec();
    let payload = vec![0x5a_u8; payload_bytes];
    let one = client
        .prepare(&format!(
            "INSERT INTO {table} (mailbox, seq, payload) VALUES ($1, $2, $3)"
        ))
        .await?;
    let many = client
        .prepare(&format!(
            "INSERT INTO {table} (mailbox, seq, payload)
             SELECT * FROM unnest($1::bytea[], $2::int8[], $3::bytea[])"
        ))
        .await?;
    let (mailboxes, payloads) = (vec![mailbox.clone(); rows], vec![payload.clone(); rows]);
    let mut seq = 0i64;
    let mut txns = 0u64;
    let deadline = Instant::now() + duration;
    // Bounded by the deadline (and a count no machine reaches in that time).
    while Instant::now() < deadline && txns < 10_000_000 {
        let tx = client.transaction().await?;
        if rows == 1 {
            seq += 1;
            tx.execute(&one, &[&mailbox, &seq, &payload]).await?;
        } else {
            let seqs: Vec<i64> = (1..=rows as i64).map(|k| seq + k).collect();
            seq += rows as i64;
            tx.execute(&many, &[&mailboxes, &seqs, &payloads]).await?;
        }
        tx.commit().await?;
        txns += 1;
    }
    Ok(txns)
}
