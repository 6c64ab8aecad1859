//! Several writer lanes in one process, over a store shared by several processes
//! ([`Store::more_writers`](atmls_ds::Store::more_writers)): each lane is a writer thread
//! of its own (its own core, its own store handle, its own serial chain of group
//! commits), so a process has as many commits in flight as it has lanes.
//!
//! Every request naming a mailbox goes to the lane of that mailbox ([`Lanes::of`]): a
//! mailbox is always served by the same lane, so its requests are decided and committed
//! in the order they arrive, as with one writer. Lanes are to each other what processes
//! are: their appends meet only in the database, which decides the sequence and the
//! compare-and-swap, and a subscriber is fed each mailbox by the lane that serves it.
//! The requests that name several mailboxes are split by lane and their answers put
//! back together here (`subscribeEnvelopes`, its key checks, wake-ups); those that name
//! none go to the first lane (`createMailbox` and its quota check) or to every lane
//! (retention, stop, forgetting a subscription).

use atmls_ds::{Expired, MailboxId, StoreError, Subscription};
use tokio::sync::{mpsc, oneshot};

use super::{Command, ItemError, Reply, SubscribeItem};

/// The senders of a process's writer lanes (one or more).
#[derive(Debug, Clone)]
pub(crate) struct Lanes {
    txs: Vec<mpsc::Sender<Command>>,
}

/// [`Lanes`] that do not keep the writers alive.
#[derive(Debug, Clone)]
pub(crate) struct WeakLanes {
    txs: Vec<mpsc::WeakSender<Command>>,
}

impl WeakLanes {
    /// The lanes, if every writer still runs.
    pub(crate) fn upgrade(&self) -> Option<Lanes> {
        let txs: Option<Vec<_>> = self.txs.iter().map(mpsc::WeakSender::upgrade).collect();
        txs.map(|txs| Lanes { txs })
    }
}

/// The lane serving `mailbox` among `lanes` (mailbox ids are random: the lanes share the
/// mailboxes evenly).
pub(crate) fn lane_of(mailbox: &MailboxId, lanes: usize) -> usize {
    let b = mailbox.as_bytes();
    let n = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    // `lanes` is small: the remainder fits.
    (n % lanes.max(1) as u64) as usize
}

/// The writer went away (it stopped, or its thread died).
#[derive(Debug)]
pub(crate) struct Gone;

impl Lanes {
    /// The lanes whose writers take requests from `txs` (at least one).
    pub(crate) fn new(txs: Vec<mpsc::Sender<Command>>) -> Self {
        debug_assert!(!txs.is_empty());
        Self { txs }
    }

    /// How many lanes.
    pub(crate) fn len(&self) -> usize {
        self.txs.len()
    }

    /// Weak senders (for the retention task).
    pub(crate) fn downgrade(&self) -> WeakLanes {
        WeakLanes {
            txs: self.txs.iter().map(mpsc::Sender::downgrade).collect(),
        }
    }

    /// The sender of the lane serving `mailbox`.
    fn of(&self, mailbox: &MailboxId) -> &mpsc::Sender<Command> {
        &self.txs[lane_of(mailbox, self.txs.len())]
    }

    /// Hands `cmd` to the lane (or lanes) that serve it; for a request split over
    /// several lanes, also waits for their answers and sends the merged answer on the
    /// request's reply. If this future is dropped, what was queued is still carried out.
    pub(crate) async fn send(&self, cmd: Command) -> Result<(), Gone> {
        if self.txs.len() == 1 {
            return self.txs[0].send(cmd).await.map_err(|_| Gone);
        }
        let tx = match &cmd {
            Command::Create { .. } | Command::QuotaReached { .. } => &self.txs[0],
            Command::Mailbox { id, .. }
            | Command::Send { id, .. }
            | Command::Envelopes { id, .. }
            | Command::Page { id, .. } => self.of(id),
            Command::Welcome { inbox, .. }
            | Command::ListInbox { inbox, .. }
            | Command::DeleteInbox { inbox, .. } => self.of(inbox),
            Command::Subscribe { .. }
            | Command::Check { .. }
            | Command::Unsubscribe { .. }
            | Command::Wake { .. }
            | Command::Expire { .. }
            | Command::Stop { .. } => return self.split(cmd).await,
        };
        tx.send(cmd).await.map_err(|_| Gone)
    }

    /// Forgets subscription `id` in every lane without waiting (a full queue leaves the
    /// entry for the next retention sweep).
    pub(crate) fn try_unsubscribe(&self, id: u64) {
        for tx in &self.txs {
            let _ = tx.try_send(Command::Unsubscribe { id });
        }
    }

    /// Positions of `mailboxes` per lane.
    fn positions(&self, mailboxes: impl Iterator<Item = MailboxId>) -> Vec<Vec<usize>> {
        let mut by_lane = vec![Vec::new(); self.txs.len()];
        for (i, m) in mailboxes.enumerate() {
            by_lane[lane_of(&m, self.txs.len())].push(i);
        }
        by_lane
    }

    async fn split(&self, cmd: Command) -> Result<(), Gone> {
        match cmd {
            Command::Subscribe { items, live, reply } => {
                let id = live.id;
                let positions = self.positions(items.iter().map(|i| i.mailbox));
                let mut parts: Vec<Vec<SubscribeItem>> = positions
                    .iter()
                    .map(|p| Vec::with_capacity(p.len()))
                    .collect();
                let lanes = self.txs.len();
                for item in items {
                    parts[lane_of(&item.mailbox, lanes)].push(item);
                }
                let mut waits = Vec::new();
                for (lane, items) in parts.into_iter().enumerate() {
                    if items.is_empty() {
                        continue;
                    }
                    let (tx, rx) = oneshot::channel();
                    self.txs[lane]
                        .send(Command::Subscribe {
                            items,
                            live: live.clone(),
                            reply: tx,
                        })
                        .await
                        .map_err(|_| Gone)?;
                    waits.push((lane, rx));
                }
                let mut answers = Vec::with_capacity(waits.len());
                for (lane, rx) in waits {
                    answers.push((lane, rx.await.map_err(|_| Gone)?));
                }
                let merged = merge_subscribe(&positions, answers);
                if merged.is_err() {
                    // The lanes that registered it let it go again.
                    self.try_unsubscribe(id);
                }
                let _ = reply.send(merged);
                Ok(())
            }
            Command::Check { subs, reply } => {
                let positions = self.positions(subs.iter().map(|s| s.mailbox));
                let mut waits = Vec::new();
                for (lane, at) in positions.iter().enumerate() {
                    if at.is_empty() {
                        continue;
                    }
                    let part: Vec<Subscription> = at.iter().map(|&i| subs[i]).collect();
                    let (tx, rx) = oneshot::channel();
                    self.txs[lane]
                        .send(Command::Check {
                            subs: part,
                            reply: tx,
                        })
                        .await
                        .map_err(|_| Gone)?;
                    waits.push((lane, rx));
                }
                let mut first: Option<ItemError> = None;
                for (lane, rx) in waits {
                    if let Err((i, e)) = rx.await.map_err(|_| Gone)? {
                        let at = positions[lane].get(i).copied().unwrap_or(0);
                        if first.as_ref().is_none_or(|(f, _)| at < *f) {
                            first = Some((at, e));
                        }
                    }
                }
                let _ = reply.send(first.map_or(Ok(()), Err));
                Ok(())
            }
            Command::Unsubscribe { id } => {
                for tx in &self.txs {
                    tx.send(Command::Unsubscribe { id })
                        .await
                        .map_err(|_| Gone)?;
                }
                Ok(())
            }
            Command::Wake { heads: Some(heads) } => {
                let mut parts = vec![Vec::new(); self.txs.len()];
                for (m, head) in heads {
                    parts[lane_of(&m, self.txs.len())].push((m, head));
                }
                for (tx, heads) in self.txs.iter().zip(parts) {
                    if !heads.is_empty() {
                        tx.send(Command::Wake { heads: Some(heads) })
                            .await
                            .map_err(|_| Gone)?;
                    }
                }
                Ok(())
            }
            Command::Wake { heads: None } => {
                for tx in &self.txs {
                    tx.send(Command::Wake { heads: None })
                        .await
                        .map_err(|_| Gone)?;
                }
                Ok(())
            }
            Command::Expire { reply } => self.expire(reply).await,
            Command::Stop { reply } => {
                let mut waits = Vec::new();
                for tx in &self.txs {
                    let (done, rx) = oneshot::channel();
                    if tx.send(Command::Stop { reply: done }).await.is_ok() {
                        waits.push(rx);
                    }
                }
                for rx in waits {
                    let _ = rx.await;
                }
                let _ = reply.send(());
                Ok(())
            }
            other => {
                // Not split: every other request names one mailbox or none.
                self.txs[0].send(other).await.map_err(|_| Gone)
            }
        }
    }

    /// Retention in every lane (each forgets its own expired tokens; the store's deletes
    /// are shared, so their counts add up to what was deleted once).
    async fn expire(&self, reply: Option<Reply<Result<Expired, StoreError>>>) -> Result<(), Gone> {
        let Some(reply) = reply else {
            for tx in &self.txs {
                tx.send(Command::Expire { reply: None })
                    .await
                    .map_err(|_| Gone)?;
            }
            return Ok(());
        };
        let mut waits = Vec::new();
        for tx in &self.txs {
            let (done, rx) = oneshot::channel();
            tx.send(Command::Expire { reply: Some(done) })
                .await
                .map_err(|_| Gone)?;
            waits.push(rx);
        }
        let mut total = Ok(Expired::default());
        for rx in waits {
            let lane = rx.await.map_err(|_| Gone)?;
            total = match (total, lane) {
                (Ok(mut sum), Ok(e)) => {
                    sum.group_envelopes += e.group_envelopes;
                    sum.inbox_items += e.inbox_items;
                    sum.lifetime_messages += e.lifetime_messages;
                    Ok(sum)
                }
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            };
        }
        let _ = reply.send(total);
        Ok(())
    }
}

/// The answers of the lanes to a split subscription, in the request's order; on failure,
/// the failure of the earliest mailbox (as one writer, deciding them in order, reports).
fn merge_subscribe(
    positions: &[Vec<usize>],
    answers: Vec<(usize, Result<Vec<Subscription>, ItemError>)>,
) -> Result<Vec<Subscription>, ItemError> {
    let total = positions.iter().map(Vec::len).sum();
    let mut out: Vec<Option<Subscription>> = vec![None; total];
    let mut first: Option<ItemError> = None;
    for (lane, answer) in answers {
        match answer {
            Ok(subs) => {
                for (s, &at) in subs.into_iter().zip(&positions[lane]) {
                    out[at] = Some(s);
                }
            }
            Err((i, e)) => {
                let at = positions[lane].get(i).copied().unwrap_or(0);
                if first.as_ref().is_none_or(|(f, _)| at < *f) {
                    first = Some((at, e));
                }
            }
        }
    }
    if let Some(e) = first {
        return Err(e);
    }
    // Every lane answered for each of its mailboxes.
    out.into_iter()
        .enumerate()
        .map(|(i, s)| s.ok_or((i, atmls_ds::ReadError::MailboxNotFound)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_always_has_the_same_lane_and_the_lanes_share_the_mailboxes() {
        let mut rng = rand::rngs::OsRng;
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            let m = MailboxId::random(&mut rng);
            let lane = lane_of(&m, 4);
            assert_eq!(lane, lane_of(&m, 4));
            counts[lane] += 1;
        }
        // Binomial(4000, 1/4): mean 1000, sd ~27; 800 is more than 7 sd away.
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert_eq!(lane_of(&MailboxId::random(&mut rng), 1), 0);
    }
}
