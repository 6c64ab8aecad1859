//! `ingest`: concurrent senders of 1 KiB envelopes, each request signed and answered
//! only once durable; envelopes/s and request latency. The same driver runs against the
//! no-op hyper handler for the baseline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls_ds_proto::DsMethod;
use atmls_ds_proto::MailboxId;
use ed25519_dalek::SigningKey;
use serde::Serialize;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::{create_group_mailboxes, join_all, payload, read_payload};
use crate::LoadgenError;
use crate::client::{Conn, Receipt};
use crate::scenario::catchup::read_all;
use crate::stats::{Latencies, Summary, rate};
use crate::target::{GroupMailbox, Target};

/// Settings of `ingest`.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Concurrent senders, each on its own keep-alive connection. Default 16.
    pub senders: usize,
    /// Group mailboxes; sender `i` sends to mailbox `i % mailboxes`. Default 16.
    pub mailboxes: usize,
    /// Envelopes per `sendEnvelopes` request. Default 1.
    pub batch: usize,
    /// Payload size. Default 1024.
    pub payload_bytes: usize,
    /// How long the senders send. Default 5 s.
    pub duration: Duration,
    /// Most requests per sender (the other bound). Default unbounded in practice
    /// (1,000,000).
    pub max_requests_per_sender: u64,
    /// Read every mailbox back afterwards and check each acknowledged envelope is at its
    /// acknowledged seq with its payload. Default off.
    pub verify: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            senders: 16,
            mailboxes: 16,
            batch: 1,
            payload_bytes: 1024,
            duration: Duration::from_secs(5),
            max_requests_per_sender: 1_000_000,
            verify: false,
        }
    }
}

/// What `ingest` measured.
#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    /// Envelopes acknowledged.
    pub envelopes: u64,
    /// Requests answered.
    pub requests: u64,
    /// From the first request to the last answer.
    pub elapsed_s: f64,
    /// Envelopes acknowledged per second.
    pub envelopes_per_s: f64,
    /// Requests answered per second.
    pub requests_per_s: f64,
    /// Request latency (send to answer).
    pub latency: Summary,
}

/// One acknowledged batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ack {
    pub(crate) mailbox: usize,
    pub(crate) sender: u32,
    pub(crate) first_counter: u64,
    pub(crate) receipt: Receipt,
}

/// Signs a `sendEnvelopes` body for a mailbox: the `Authorization` header value.
pub(crate) type Sign = Arc<dyn Fn(&SigningKey, &MailboxId, &[u8]) -> String + Send + Sync>;

/// Where the driver sends.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// Sender `s` connects to `addrs[s % addrs.len()]` (with its `Host`).
    pub(crate) addrs: Vec<(SocketAddr, String)>,
    pub(crate) sign: Sign,
}

impl Endpoint {
    pub(crate) fn of(target: &Arc<Target>) -> Self {
        let t = target.clone();
        Self {
            addrs: (0..target.processes())
                .map(|i| (target.addr_of(i), target.host_of(i)))
                .collect(),
            sign: Arc::new(move |key, mailbox, body| {
                t.token(key, DsMethod::SendEnvelopes, mailbox, body)
                    .authorization_header()
            }),
        }
    }
}

/// Runs `ingest` against `target`.
pub async fn run(target: &Arc<Target>, cfg: &IngestConfig) -> Result<IngestResult, LoadgenError> {
    let mailboxes = Arc::new(create_group_mailboxes(target, cfg.mailboxes.max(1), 16).await?);
    let (result, acks) = drive(Endpoint::of(target), mailboxes.clone(), cfg).await?;
    check_acks(&acks, mailboxes.len(), cfg.batch)?;
    if cfg.verify {
        verify(target, &mailboxes, &acks, cfg.batch).await?;
    }
    Ok(result)
}

/// The senders: each connects, all start together, each sends until the deadline or
/// its request bound.
pub(crate) async fn drive(
    endpoint: Endpoint,
    mailboxes: Arc<Vec<GroupMailbox>>,
    cfg: &IngestConfig,
) -> Result<(IngestResult, Vec<Ack>), LoadgenError> {
    let senders = cfg.senders.max(1);
    let barrier = Arc::new(Barrier::new(senders + 1));
    let mut set = JoinSet::new();
    for s in 0..senders {
        let endpoint = endpoint.clone();
        let mailboxes = mailboxes.clone();
        let barrier = barrier.clone();
        let cfg = cfg.clone();
        set.spawn(async move {
            let (addr, host) = &endpoint.addrs[s % endpoint.addrs.len().max(1)];
            let conn = Conn::connect(*addr, host).await;
            barrier.wait().await;
            sender(conn?, &endpoint, &mailboxes, s, &cfg).await
        });
    }
    barrier.wait().await;
    let start = Instant::now();
    let outs = join_all(set).await?;
    let elapsed = start.elapsed();
    let mut latency = Latencies::default();
    let mut acks = Vec::new();
    for (l, a) in outs {
        latency.extend(l);
        acks.extend(a);
    }
    let envelopes: u64 = acks
        .iter()
        .map(|a| a.receipt.last_seq + 1 - a.receipt.first_seq)
        .sum();
    let requests = latency.len() as u64;
    Ok((
        IngestResult {
            envelopes,
            requests,
            elapsed_s: elapsed.as_secs_f64(),
            envelopes_per_s: rate(envelopes, elapsed),
            requests_per_s: rate(requests, elapsed),
            latency: latency.summary(),
        },
        acks,
    ))
}

async fn sender(
    mut conn: Conn,
    endpoint: &Endpoint,
    mailboxes: &[GroupMailbox],
    s: usize,
    cfg: &IngestConfig,
) -> Result<(Latencies, Vec<Ack>), LoadgenError> {
    let index = s % mailboxes.len();
    let mailbox = &mailboxes[index];
    let id = u32::try_from(s).unwrap_or(u32::MAX);
    let deadline = Instant::now() + cfg.duration;
    let mut latency = Latencies::default();
    let mut acks = Vec::new();
    let mut counter = 0u64;
    for _ in 0..cfg.max_requests_per_sender {
        if Instant::now() >= deadline {
            break;
        }
        let payloads: Vec<Vec<u8>> = (0..cfg.batch.max(1) as u64)
            .map(|j| payload(cfg.payload_bytes, id, counter + j))
            .collect();
        let body = crate::client::send_body(&mailbox.id, &payloads);
        let auth = (endpoint.sign)(&mailbox.key, &mailbox.id, &body);
        let t0 = Instant::now();
        let receipt = conn.send_envelopes(body, &auth).await?;
        latency.push(t0.elapsed());
        acks.push(Ack {
            mailbox: index,
            sender: id,
            first_counter: counter,
            receipt,
        });
        counter += payloads.len() as u64;
    }
    Ok((latency, acks))
}

/// Per mailbox, the acknowledged ranges are disjoint and cover `1..=last` without gap,
/// each as long as a batch.
pub(crate) fn check_acks(acks: &[Ack], mailboxes: usize, batch: usize) -> Result<(), LoadgenError> {
    let mut by_mailbox: Vec<Vec<Receipt>> = vec![Vec::new(); mailboxes];
    for a in acks {
        if a.receipt.last_seq + 1 - a.receipt.first_seq != batch.max(1) as u64 {
            return Err(LoadgenError::Check(format!(
                "a batch of {batch} was acknowledged as {:?}",
                a.receipt
            )));
        }
        by_mailbox[a.mailbox].push(a.receipt);
    }
    for (m, mut receipts) in by_mailbox.into_iter().enumerate() {
        receipts.sort_by_key(|r| r.first_seq);
        let mut next = 1;
        for r in receipts {
            if r.first_seq != next {
                return Err(LoadgenError::Check(format!(
                    "mailbox {m}: acknowledged seq {} where {next} was next",
                    r.first_seq
                )));
            }
            next = r.last_seq + 1;
        }
    }
    Ok(())
}

/// Reads every mailbox back: each acknowledged envelope is at its seq, with the payload
/// its sender sent, and nothing else is there.
async fn verify(
    target: &Arc<Target>,
    mailboxes: &[GroupMailbox],
    acks: &[Ack],
    batch: usize,
) -> Result<(), LoadgenError> {
    let mut expected: HashMap<(usize, u64), (u32, u64)> = HashMap::new();
    for a in acks {
        for k in 0..batch.max(1) as u64 {
            expected.insert(
                (a.mailbox, a.receipt.first_seq + k),
                (a.sender, a.first_counter + k),
            );
        }
    }
    let mut conn = target.conn().await?;
    let mut seen = 0usize;
    for (m, mailbox) in mailboxes.iter().enumerate() {
        let (envelopes, _) = read_all(target, &mut conn, mailbox, 1000).await?;
        for (seq, p) in envelopes {
            let (_, sender, counter) = read_payload(&p)
                .ok_or_else(|| LoadgenError::Check(format!("mailbox {m} seq {seq}: payload")))?;
            if expected.get(&(m, seq)) != Some(&(sender, counter)) {
                return Err(LoadgenError::Check(format!(
                    "mailbox {m} seq {seq}: holds sender {sender} #{counter}, acknowledged {:?}",
                    expected.get(&(m, seq))
                )));
            }
            seen += 1;
        }
    }
    if seen != expected.len() {
        return Err(LoadgenError::Check(format!(
            "{} envelopes acknowledged, {seen} stored",
            expected.len()
        )));
    }
    Ok(())
}
