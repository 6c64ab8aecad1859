//! Baselines measured in the same run: a no-op hyper handler driven by the same client
//! with the same requests and concurrency as `ingest`, and raw rusqlite insert
//! transactions of 1 KiB rows with the DS store's pragmas.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls_ds_proto::{DsMethod, RequestToken};
use atmls_ds_xrpc::{Clock as _, SystemClock};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rusqlite::{Connection, params};
use serde::Serialize;
use tokio::net::TcpListener;

use super::ingest::{Endpoint, IngestConfig, IngestResult, drive};
use crate::LoadgenError;
use crate::stats::rate;
use crate::target::GroupMailbox;

/// What the no-op handler answers: the shape of a `sendEnvelopes` receipt, so the client
/// parses the same answer.
const RECEIPT: &[u8] = br#"{"firstSeq":1,"lastSeq":1,"epoch":0}"#;

/// Drives a no-op hyper server (it reads the body and answers 200 with a fixed receipt)
/// with the `ingest` client: the same signed requests, senders and duration.
pub async fn noop_http(cfg: &IngestConfig) -> Result<IngestResult, LoadgenError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        // Ends when the task is aborted after the measurement.
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let _ = req.into_body().collect().await;
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(RECEIPT))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let mailboxes: Vec<GroupMailbox> = (0..cfg.mailboxes.max(1))
        .map(|_| {
            let id = atmls_ds_proto::MailboxId::from_bytes(rand::random());
            GroupMailbox {
                text: id.to_string(),
                id,
                key: SigningKey::from_bytes(&rand::random()),
            }
        })
        .collect();
    let endpoint = Endpoint {
        addrs: vec![(addr, addr.to_string())],
        sign: Arc::new(|key, mailbox, body| {
            RequestToken::sign(
                key,
                DsMethod::SendEnvelopes,
                mailbox,
                SystemClock.now(),
                rand::random(),
                body,
            )
            .authorization_header()
        }),
    };
    // Fake receipts all say seq 1: no acknowledgement check here.
    let result = drive(endpoint, Arc::new(mailboxes), cfg).await;
    server.abort();
    Ok(result?.0)
}

/// What the SQLite baseline measured.
#[derive(Debug, Clone, Serialize)]
pub struct SqliteResult {
    /// Rows per transaction.
    pub rows_per_txn: usize,
    /// Transactions committed.
    pub txns: u64,
    /// Transactions per second.
    pub txns_per_s: f64,
    /// Rows per second.
    pub rows_per_s: f64,
    /// Mean time per transaction, in microseconds.
    pub txn_us: f64,
}

/// Commits transactions of `rows_per_txn` 1 KiB rows (`(mailbox, seq)` key, as the DS's
/// envelopes) for `duration` on a new file in a temporary directory: WAL,
/// `synchronous = FULL`, `secure_delete = ON`, `BEGIN IMMEDIATE`.
pub fn sqlite_inserts(
    duration: Duration,
    rows_per_txn: usize,
    payload_bytes: usize,
) -> Result<SqliteResult, LoadgenError> {
    let dir = tempfile::tempdir()?;
    let mut conn = Connection::open(dir.path().join("raw.sqlite"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         CREATE TABLE t (mailbox BLOB NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
                         PRIMARY KEY (mailbox, seq));",
    )?;
    let mailbox = [7u8; 32];
    let payload = vec![0x5a_u8; payload_bytes];
    let mut seq = 0i64;
    let mut txns = 0u64;
    let start = Instant::now();
    let deadline = start + duration;
    // Bounded by the deadline (and a count no machine reaches in that time).
    while Instant::now() < deadline && txns < 10_000_000 {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO t (mailbox, seq, payload) VALUES (?1, ?2, ?3)")?;
            for _ in 0..rows_per_txn.max(1) {
                seq += 1;
                insert.execute(params![mailbox.as_slice(), seq, payload])?;
            }
        }
        tx.commit()?;
        txns += 1;
    }
    let elapsed = start.elapsed();
    Ok(SqliteResult {
        rows_per_txn: rows_per_txn.max(1),
        txns,
        txns_per_s: rate(txns, elapsed),
        rows_per_s: rate(txns * rows_per_txn.max(1) as u64, elapsed),
        txn_us: elapsed.as_secs_f64() * 1e6 / txns.max(1) as f64,
    })
}
