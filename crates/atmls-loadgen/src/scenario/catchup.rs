//! `catchup`: a mailbox of 100,000 envelopes read with `getEnvelopes` (limit 1000) from
//! cursor 0 until an empty page; envelopes/s, and a check that every seq came once, in
//! order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atmls_ds_proto::DsMethod;
use serde::Serialize;
use tokio::task::JoinSet;

use super::{create_group_mailboxes, join_all, payload};
use crate::LoadgenError;
use crate::client::{Conn, Page, send_body};
use crate::stats::rate;
use crate::target::{GroupMailbox, Target};
use atmls_ds_proto::codec::client as codec;

/// Settings of `catchup`.
#[derive(Debug, Clone)]
pub struct CatchupConfig {
    /// Envelopes in the mailbox. Default 100,000.
    pub envelopes: u64,
    /// `limit` of each `getEnvelopes`. Default 1000 (the lexicon's maximum).
    pub page: u32,
    /// Envelopes per `sendEnvelopes` while filling. Default 100.
    pub fill_batch: u64,
    /// Concurrent fillers. Default 4.
    pub fill_senders: usize,
    /// Payload size. Default 1024.
    pub payload_bytes: usize,
    /// Bound of the whole scenario. Default 300 s.
    pub timeout: Duration,
    /// With several DS processes, filler `s` sends at process `s % processes` (all
    /// racing on the one mailbox) instead of all at the first. Default off.
    pub fill_all_processes: bool,
}

impl Default for CatchupConfig {
    fn default() -> Self {
        Self {
            envelopes: 100_000,
            page: 1000,
            fill_batch: 100,
            fill_senders: 4,
            payload_bytes: 1024,
            timeout: Duration::from_secs(300),
            fill_all_processes: false,
        }
    }
}

/// What `catchup` measured.
#[derive(Debug, Clone, Serialize)]
pub struct CatchupResult {
    /// Envelopes read.
    pub envelopes: u64,
    /// Pages read (the last, empty one included).
    pub pages: u64,
    /// Reading time, end to end (requests and the client's JSON parsing).
    pub elapsed_s: f64,
    /// Envelopes read per second, end to end.
    pub envelopes_per_s: f64,
    /// Time spent waiting for answers (request sent to body received).
    pub wire_s: f64,
    /// Envelopes per second of wire time only (the client's parsing excluded).
    pub wire_envelopes_per_s: f64,
    /// Response bytes.
    pub bytes: u64,
    /// Envelopes per second while filling (batched, one mailbox, concurrent fillers).
    pub fill_envelopes_per_s: f64,
}

/// Time spent in one read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadStats {
    /// Pages read.
    pub pages: u64,
    /// Time on the wire.
    pub wire: Duration,
    /// Payload bytes read.
    pub bytes: u64,
}

/// Runs `catchup` against `target`.
pub async fn run(target: &Arc<Target>, cfg: &CatchupConfig) -> Result<CatchupResult, LoadgenError> {
    tokio::time::timeout(cfg.timeout, run_inner(target, cfg))
        .await
        .map_err(|_| LoadgenError::Timeout(format!("catchup within {:?}", cfg.timeout)))?
}

async fn run_inner(
    target: &Arc<Target>,
    cfg: &CatchupConfig,
) -> Result<CatchupResult, LoadgenError> {
    let mailbox = create_group_mailboxes(target, 1, 1)
        .await?
        .pop()
        .ok_or_else(|| LoadgenError::Start("no mailbox".into()))?;
    let mailbox = Arc::new(mailbox);
    let fill_start = Instant::now();
    fill(target, &mailbox, cfg).await?;
    let fill_rate = rate(cfg.envelopes, fill_start.elapsed());

    // With several processes, read from the last one (the mailbox was created and
    // filled at the first, unless `fill_all_processes`).
    let mut conn = target.conn_to(target.processes() - 1).await?;
    let mut seen = vec![false; usize::try_from(cfg.envelopes).unwrap_or(0) + 1];
    let mut last = 0u64;
    let start = Instant::now();
    let stats = read_pages(target, &mut conn, &mailbox, cfg.page, |seq, _| {
        let slot = usize::try_from(seq).ok().and_then(|i| seen.get_mut(i));
        match slot {
            Some(s) if !*s && seq > last => {
                *s = true;
                last = seq;
                Ok(())
            }
            _ => Err(LoadgenError::Check(format!(
                "seq {seq} out of range, repeated or out of order (after {last})"
            ))),
        }
    })
    .await?;
    let elapsed = start.elapsed();
    let read = seen.iter().skip(1).filter(|s| **s).count() as u64;
    if read != cfg.envelopes {
        return Err(LoadgenError::Check(format!(
            "{read} of {} envelopes read",
            cfg.envelopes
        )));
    }
    Ok(CatchupResult {
        envelopes: read,
        pages: stats.pages,
        elapsed_s: elapsed.as_secs_f64(),
        envelopes_per_s: rate(read, elapsed),
        wire_s: stats.wire.as_secs_f64(),
        wire_envelopes_per_s: rate(read, stats.wire),
        bytes: stats.bytes,
        fill_envelopes_per_s: fill_rate,
    })
}

/// Fills the mailbox with `cfg.envelopes` envelopes in batches.
async fn fill(
    target: &Arc<Target>,
    mailbox: &Arc<GroupMailbox>,
    cfg: &CatchupConfig,
) -> Result<(), LoadgenError> {
    let claimed = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for s in 0..cfg.fill_senders.max(1) {
        let (target, mailbox, claimed, cfg) = (
            target.clone(),
            mailbox.clone(),
            claimed.clone(),
            cfg.clone(),
        );
        set.spawn(async move {
            let at = if cfg.fill_all_processes { s } else { 0 };
            let mut conn = target.conn_to(at).await?;
            let batch = cfg.fill_batch.max(1);
            // Bounded: every iteration claims at least one envelope of a finite total.
            loop {
                let from = claimed.fetch_add(batch, Ordering::Relaxed);
                if from >= cfg.envelopes {
                    return Ok(());
                }
                let n = batch.min(cfg.envelopes - from);
                let id = u32::try_from(s).unwrap_or(u32::MAX);
                let payloads: Vec<Vec<u8>> = (from..from + n)
                    .map(|c| payload(cfg.payload_bytes, id, c))
                    .collect();
                let body = send_body(&mailbox.id, &payloads);
                let auth = target
                    .token(&mailbox.key, DsMethod::SendEnvelopes, &mailbox.id, &body)
                    .authorization_header();
                conn.send_envelopes(body, &auth).await?;
            }
        });
    }
    join_all(set).await.map(|_| ())
}

/// Reads `mailbox` from cursor 0 with `getEnvelopes?limit=page` until an empty page,
/// calling `each(seq, payload)` for every envelope.
pub async fn read_pages(
    target: &Target,
    conn: &mut Conn,
    mailbox: &GroupMailbox,
    page: u32,
    mut each: impl FnMut(u64, Vec<u8>) -> Result<(), LoadgenError>,
) -> Result<ReadStats, LoadgenError> {
    let mut stats = ReadStats::default();
    let mut cursor = 0u64;
    // Bounded: every non-final page moves the cursor forward, and the DS's head is finite;
    // the caller bounds the time.
    loop {
        let query = format!("mailbox={}&cursor={cursor}&limit={page}", mailbox.text);
        let auth = target
            .token(
                &mailbox.key,
                DsMethod::GetEnvelopes,
                &mailbox.id,
                query.as_bytes(),
            )
            .authorization_header();
        let t0 = Instant::now();
        let (status, body) = conn
            .get(
                &format!("/xrpc/chat.mls.ds.getEnvelopes?{query}"),
                Some(&auth),
            )
            .await?;
        stats.wire += t0.elapsed();
        stats.pages += 1;
        stats.bytes += body.len() as u64;
        if status != 200 {
            return Err(LoadgenError::status("getEnvelopes", status.as_u16(), &body));
        }
        let p: Page = codec::get_envelopes_output(&body)
            .map_err(|e| crate::client::bad_answer("getEnvelopes", e))?;
        if p.envelopes.is_empty() {
            return Ok(stats);
        }
        if p.cursor <= cursor || p.envelopes.last().map(|e| e.seq) != Some(p.cursor) {
            return Err(LoadgenError::Check(format!(
                "page after {cursor} ends at cursor {} (head {})",
                p.cursor, p.head_seq
            )));
        }
        for e in p.envelopes {
            each(e.seq, e.payload)?;
        }
        cursor = p.cursor;
    }
}

/// Every envelope of `mailbox`: `(seq, payload)` in order, and the read's statistics.
pub(crate) async fn read_all(
    target: &Target,
    conn: &mut Conn,
    mailbox: &GroupMailbox,
    page: u32,
) -> Result<(Vec<(u64, Vec<u8>)>, ReadStats), LoadgenError> {
    let mut out = Vec::new();
    let stats = read_pages(target, conn, mailbox, page, |seq, p| {
        out.push((seq, p));
        Ok(())
    })
    .await?;
    Ok((out, stats))
}
