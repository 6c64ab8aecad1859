//! `rss`: many mailboxes and many open subscriptions (each connection subscribes to its
//! share of the mailboxes); the resident memory of the DS process at each stage. One
//! envelope then goes to every mailbox and must reach its subscriber, which proves every
//! subscription is live.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atmls_ds_proto::DsMethod;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::fanout::wait_for;
use super::{create_group_mailboxes, join_all, payload};
use crate::LoadgenError;
use crate::client::{Event, next_event, send_body, subscribe};
use crate::stats::proc_status_kib;
use crate::target::{GroupMailbox, Target};

/// Settings of `rss`.
#[derive(Debug, Clone)]
pub struct RssConfig {
    /// Group mailboxes. Default 10,000.
    pub mailboxes: usize,
    /// WebSocket connections; each subscribes to `mailboxes / connections` mailboxes
    /// (at most 100, the lexicon's limit). Default 1000.
    pub connections: usize,
    /// Concurrent creators and senders. Default 16.
    pub concurrency: usize,
    /// The DS's process id when it is not this process (`--url`); `None` in process.
    pub server_pid: Option<u32>,
    /// Bound of each wait. Default 120 s.
    pub wait: Duration,
}

impl Default for RssConfig {
    fn default() -> Self {
        Self {
            mailboxes: 10_000,
            connections: 1000,
            concurrency: 16,
            server_pid: None,
            wait: Duration::from_secs(120),
        }
    }
}

/// What `rss` measured (KiB; `None` where the DS's process could not be read).
#[derive(Debug, Clone, Serialize)]
pub struct RssResult {
    /// Mailboxes created.
    pub mailboxes: usize,
    /// Connections open.
    pub connections: usize,
    /// Mailbox subscriptions over all connections.
    pub subscriptions: usize,
    /// Whether the figures include the load generator's own client side (in process).
    pub includes_client: bool,
    /// Before anything was created.
    pub start_kib: Option<u64>,
    /// After the mailboxes were created.
    pub mailboxes_kib: Option<u64>,
    /// With every connection open.
    pub connections_kib: Option<u64>,
    /// After one envelope reached every subscription.
    pub delivered_kib: Option<u64>,
    /// Peak (`VmHWM`).
    pub peak_kib: Option<u64>,
    /// Seconds to create the mailboxes.
    pub create_s: f64,
}

/// Runs `rss` against `target`.
pub async fn run(target: &Arc<Target>, cfg: &RssConfig) -> Result<RssResult, LoadgenError> {
    let pid = if target.in_process() {
        None
    } else {
        cfg.server_pid
    };
    let readable = target.in_process() || pid.is_some();
    let rss = |field: &str| {
        if readable {
            proc_status_kib(pid, field)
        } else {
            None
        }
    };
    let start_kib = rss("VmRSS");
    let t0 = Instant::now();
    let mailboxes = Arc::new(create_group_mailboxes(target, cfg.mailboxes, cfg.concurrency).await?);
    let create_s = t0.elapsed().as_secs_f64();
    let mailboxes_kib = rss("VmRSS");

    let connections = cfg.connections.clamp(1, mailboxes.len().max(1));
    let per = mailboxes.len().div_ceil(connections).min(100);
    let chunks: Vec<Arc<Vec<GroupMailbox>>> = mailboxes
        .chunks(per.max(1))
        .take(connections)
        .map(|c| Arc::new(c.to_vec()))
        .collect();
    let subscriptions: usize = chunks.iter().map(|c| c.len()).sum();
    let opened = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(64));
    let mut set = JoinSet::new();
    for chunk in chunks.iter().map(Arc::clone) {
        let (target, opened, received, slots) = (
            target.clone(),
            opened.clone(),
            received.clone(),
            slots.clone(),
        );
        let mut stop = stop_rx.clone();
        let wait = cfg.wait;
        set.spawn(async move {
            let mut ws = {
                let _slot = slots
                    .acquire()
                    .await
                    .map_err(|e| LoadgenError::Start(e.to_string()))?;
                open(&target, &chunk).await?
            };
            opened.fetch_add(1, Ordering::SeqCst);
            let mut got = 0;
            let deadline = Instant::now() + wait * 3;
            while got < chunk.len() {
                let left = deadline.saturating_duration_since(Instant::now());
                if let Event::Envelope { .. } = next_event(&mut ws, left).await? {
                    got += 1;
                    received.fetch_add(1, Ordering::SeqCst);
                }
            }
            // Hold the connection open until the measurement is done.
            let _ = tokio::time::timeout(wait, stop.wait_for(|s| *s)).await;
            Ok::<_, LoadgenError>(())
        });
    }
    wait_for(&opened, chunks.len(), cfg.wait, "connections open").await?;
    // Let the server finish registering the last subscriptions.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let connections_kib = rss("VmRSS");

    deliver(target, &mailboxes, cfg.concurrency).await?;
    wait_for(
        &received,
        subscriptions,
        cfg.wait,
        "one envelope per subscription",
    )
    .await?;
    let delivered_kib = rss("VmRSS");
    let peak_kib = rss("VmHWM");
    stop_tx.send_replace(true);
    join_all(set).await?;
    Ok(RssResult {
        mailboxes: mailboxes.len(),
        connections: chunks.len(),
        subscriptions,
        includes_client: target.in_process(),
        start_kib,
        mailboxes_kib,
        connections_kib,
        delivered_kib,
        peak_kib,
        create_s,
    })
}

/// One subscription to every mailbox of `chunk`, each from cursor 0 with its own token
/// over the same content.
async fn open(target: &Target, chunk: &[GroupMailbox]) -> Result<crate::client::Ws, LoadgenError> {
    let mut query = chunk
        .iter()
        .map(|m| format!("mailbox={}", m.text))
        .collect::<Vec<_>>()
        .join("&");
    for _ in chunk {
        query.push_str("&cursor=0");
    }
    let mut full = query.clone();
    for m in chunk {
        let token = target.token(
            &m.key,
            DsMethod::SubscribeEnvelopes,
            &m.id,
            query.as_bytes(),
        );
        full.push_str("&auth=");
        full.push_str(&token.encode());
    }
    subscribe(target.addr(), target.host(), &full).await
}

/// One envelope to every mailbox, `concurrency` senders.
async fn deliver(
    target: &Arc<Target>,
    mailboxes: &Arc<Vec<GroupMailbox>>,
    concurrency: usize,
) -> Result<(), LoadgenError> {
    let workers = concurrency.max(1);
    let mut set = JoinSet::new();
    for w in 0..workers {
        let (target, mailboxes) = (target.clone(), mailboxes.clone());
        set.spawn(async move {
            let mut conn = target.conn().await?;
            for m in mailboxes.iter().skip(w).step_by(workers) {
                let body = send_body(&m.id, &[payload(1024, 0, 0)]);
                let auth = target
                    .token(&m.key, DsMethod::SendEnvelopes, &m.id, &body)
                    .authorization_header();
                conn.send_envelopes(body, &auth).await?;
            }
            Ok(())
        });
    }
    join_all(set).await.map(|_| ())
}
