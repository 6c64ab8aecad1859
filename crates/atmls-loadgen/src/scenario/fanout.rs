//! `fanout`: many WebSocket subscribers of one mailbox, each authorised with its own
//! signed token; one sender posts envelopes at a fixed pace; the latency from just before
//! the send to each subscriber's receipt, across all subscribers. Every subscriber must
//! receive every acknowledged envelope, in order. With several DS processes (PostgreSQL),
//! subscriber `k` subscribes at process `k % processes` and the sender sends at process
//! 0: the latency of the subscribers at the other processes is also reported alone
//! (cross-process fan-out).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atmls_ds_proto::DsMethod;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{age, create_group_mailboxes, join_all, payload, read_payload};
use crate::LoadgenError;
use crate::client::{Event, Ws, next_event, send_body, subscribe};
use crate::stats::{Latencies, Summary};
use crate::target::{GroupMailbox, Target};

/// Settings of `fanout`.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// WebSocket subscribers of the mailbox. Default 1000.
    pub subscribers: usize,
    /// Envelopes measured (after one warm-up envelope). Default 200.
    pub envelopes: u64,
    /// Time between sends. Default 20 ms.
    pub interval: Duration,
    /// Payload size. Default 1024.
    pub payload_bytes: usize,
    /// Subscriptions opened at once. Default 64.
    pub connect_concurrency: usize,
    /// Bound of each wait (all subscribed, warm-up received, all delivered). Default 60 s.
    pub wait: Duration,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            subscribers: 1000,
            envelopes: 200,
            interval: Duration::from_millis(20),
            payload_bytes: 1024,
            connect_concurrency: 64,
            wait: Duration::from_secs(60),
        }
    }
}

/// What `fanout` measured.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    /// Subscribers.
    pub subscribers: usize,
    /// Envelopes sent and acknowledged (warm-up excluded).
    pub envelopes: u64,
    /// Deliveries received (subscribers × envelopes when nothing was lost).
    pub deliveries: u64,
    /// Send (just before the request) to receipt by a subscriber, over every delivery.
    pub latency: Summary,
    /// DS processes the subscribers were spread over (the sender is at the first).
    pub processes: usize,
    /// [`Self::latency`] of the subscribers at another process than the sender's only
    /// (`None` with one process).
    pub cross_latency: Option<Summary>,
    /// The sender's request latency (send to durable acknowledgement).
    pub ack_latency: Summary,
    /// Time to open every subscription.
    pub subscribe_s: f64,
}

/// Runs `fanout` against `target`.
pub async fn run(target: &Arc<Target>, cfg: &FanoutConfig) -> Result<FanoutResult, LoadgenError> {
    let mailbox = Arc::new(
        create_group_mailboxes(target, 1, 1)
            .await?
            .pop()
            .ok_or_else(|| LoadgenError::Start("no mailbox".into()))?,
    );
    let total = cfg.envelopes + 1;
    let warmed = Arc::new(AtomicUsize::new(0));
    let slots = Arc::new(Semaphore::new(cfg.connect_concurrency.max(1)));
    let opened = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for k in 0..cfg.subscribers {
        let (target, mailbox, warmed, slots, opened) = (
            target.clone(),
            mailbox.clone(),
            warmed.clone(),
            slots.clone(),
            opened.clone(),
        );
        let wait = cfg.wait;
        set.spawn(async move {
            let ws = {
                let _slot = slots
                    .acquire()
                    .await
                    .map_err(|e| LoadgenError::Start(e.to_string()))?;
                open(&target, k, &mailbox).await?
            };
            opened.fetch_add(1, Ordering::SeqCst);
            let (seqs, latency) = receive(ws, total, &warmed, wait).await?;
            Ok((k, seqs, latency))
        });
    }
    wait_for(
        &opened,
        cfg.subscribers,
        cfg.wait,
        "every subscription open",
    )
    .await?;
    let subscribe_s = start.elapsed().as_secs_f64();

    let mut conn = target.conn().await?;
    let mut acked = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut ack_latency = Latencies::default();
    // The warm-up envelope: sent once every subscriber is registered, so that the
    // measured envelopes go only to live feeds.
    acked.push(
        send(
            target,
            &mut conn,
            &mailbox,
            cfg,
            0,
            &mut Latencies::default(),
        )
        .await?,
    );
    wait_for(&warmed, cfg.subscribers, cfg.wait, "the warm-up envelope").await?;
    let mut tick = tokio::time::interval(cfg.interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 1..total {
        tick.tick().await;
        acked.push(send(target, &mut conn, &mailbox, cfg, i, &mut ack_latency).await?);
    }

    let outs = tokio::time::timeout(cfg.wait, join_all(set))
        .await
        .map_err(|_| LoadgenError::Timeout("subscribers did not receive everything".into()))??;
    let processes = target.processes();
    let mut latency = Latencies::default();
    let mut cross = Latencies::default();
    let mut deliveries = 0u64;
    for (k, seqs, l) in outs {
        if seqs != acked {
            return Err(LoadgenError::Check(format!(
                "subscriber {k} received {} envelopes, not the {} acknowledged in order",
                seqs.len(),
                acked.len()
            )));
        }
        deliveries += seqs.len() as u64 - 1;
        if k % processes != 0 {
            cross.extend(l.clone());
        }
        latency.extend(l);
    }
    Ok(FanoutResult {
        subscribers: cfg.subscribers,
        envelopes: cfg.envelopes,
        deliveries,
        latency: latency.summary(),
        processes,
        cross_latency: (processes > 1).then(|| cross.summary()),
        ack_latency: ack_latency.summary(),
        subscribe_s,
    })
}

/// Opens subscription `k` of `mailbox` from cursor 0 with a fresh token, at process
/// `k % processes`.
async fn open(target: &Target, k: usize, mailbox: &GroupMailbox) -> Result<Ws, LoadgenError> {
    let query = format!("mailbox={}&cursor=0", mailbox.text);
    let token = target.token(
        &mailbox.key,
        DsMethod::SubscribeEnvelopes,
        &mailbox.id,
        query.as_bytes(),
    );
    subscribe(
        target.addr_of(k),
        &target.host_of(k),
        &format!("{query}&auth={}", token.encode()),
    )
    .await
}

/// Reads `total` envelopes: the seqs in arrival order and the latency of each but the
/// first (the warm-up).
async fn receive(
    mut ws: Ws,
    total: u64,
    warmed: &AtomicUsize,
    wait: Duration,
) -> Result<(Vec<u64>, Latencies), LoadgenError> {
    let mut seqs = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut latency = Latencies::default();
    let deadline = Instant::now() + wait * 3;
    while (seqs.len() as u64) < total {
        let left = deadline.saturating_duration_since(Instant::now());
        let Event::Envelope { seq, payload } = next_event(&mut ws, left).await? else {
            continue;
        };
        let received = Instant::now();
        if seqs.is_empty() {
            warmed.fetch_add(1, Ordering::SeqCst);
        } else {
            let (sent, _, _) = read_payload(&payload)
                .ok_or_else(|| LoadgenError::Check(format!("seq {seq}: payload")))?;
            latency.push(age(sent).saturating_sub(received.elapsed()));
        }
        seqs.push(seq);
    }
    Ok((seqs, latency))
}

/// Sends one envelope (counter `i`), recording the request's latency; returns its seq.
async fn send(
    target: &Target,
    conn: &mut crate::client::Conn,
    mailbox: &GroupMailbox,
    cfg: &FanoutConfig,
    i: u64,
    latency: &mut Latencies,
) -> Result<u64, LoadgenError> {
    let body = send_body(&mailbox.id, &[payload(cfg.payload_bytes, 0, i)]);
    let auth = target
        .token(&mailbox.key, DsMethod::SendEnvelopes, &mailbox.id, &body)
        .authorization_header();
    let t0 = Instant::now();
    let receipt = conn.send_envelopes(body, &auth).await?;
    latency.push(t0.elapsed());
    Ok(receipt.first_seq)
}

/// Polls `counter` until it reaches `n`, at most `wait`.
pub(crate) async fn wait_for(
    counter: &AtomicUsize,
    n: usize,
    wait: Duration,
    what: &str,
) -> Result<(), LoadgenError> {
    let deadline = Instant::now() + wait;
    while counter.load(Ordering::SeqCst) < n {
        if Instant::now() >= deadline {
            return Err(LoadgenError::Timeout(format!(
                "{what}: {} of {n}",
                counter.load(Ordering::SeqCst)
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}
