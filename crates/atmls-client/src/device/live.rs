//! The live loop: subscriptions to the inbox and every group mailbox, a sync whenever
//! something arrives, polling when no subscription works.

use std::collections::BTreeMap;
use std::time::Instant;

use atmls_ds_proto::MailboxId;
use atmls_identity::Did;

use super::Device;
use super::backoff::Target;
use super::store;
use crate::error::Error;
use crate::transport::{Delivery, Ds, Pds, SubscribeTo};

impl<P: Pds, D: Ds> Device<P, D> {
    /// Runs until a non-network error: subscribes to the inbox and every group mailbox
    /// and syncs whenever something arrives; resubscribes from the cursors when a stream
    /// ends or the keys change (new epoch, new group). A DS that cannot be subscribed to,
    /// or a network failure, falls back to syncing every
    /// [`DeviceConfig::poll_interval`](crate::DeviceConfig::poll_interval), trying to
    /// subscribe again each time. While messages wait in the outbox, it also syncs when
    /// their group's back-off ends, so that they are sent as soon as the DS is back.
    pub async fn run(&self) -> Result<(), Error> {
        let poll = self.inner.config.poll_interval;
        loop {
            match self.sync().await {
                Ok(_) => {}
                Err(Error::Transport(e)) => {
                    tracing::warn!(error = %e, "sync failed; retrying");
                    tokio::time::sleep(poll).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let targets = self.subscription_targets().await?;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let mut subscribed = true;
            for (ds, subs) in &targets {
                match self.inner.ds.subscribe(ds, subs.clone()).await {
                    Ok(mut stream) => {
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            while let Some(d) = stream.recv().await {
                                if tx.send(d).is_err() {
                                    return;
                                }
                            }
                            let _ = tx.send(Delivery::Closed(None));
                        });
                    }
                    Err(e) => {
                        subscribed = false;
                        tracing::warn!(error = %e, ds = %ds, "cannot subscribe; polling");
                    }
                }
            }
            let fingerprint = fingerprint(&targets);
            let started = std::time::Instant::now();
            loop {
                let wait = self.wait_before_sync(poll).await?;
                let woke = tokio::time::timeout(wait, rx.recv()).await;
                let mut arrived = Vec::new();
                let mut ended = match woke {
                    Ok(Some(Delivery::Envelope { mailbox, .. })) => {
                        arrived.push(mailbox);
                        false
                    }
                    Ok(_) => true,
                    Err(_) => false,
                };
                if ended {
                    // A stream ended: resubscribe (not faster than once a second).
                    if started.elapsed() < std::time::Duration::from_secs(1) {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    break;
                }
                while let Ok(d) = rx.try_recv() {
                    match d {
                        Delivery::Envelope { mailbox, .. } => arrived.push(mailbox),
                        _ => ended = true,
                    }
                }
                // These mailboxes' DS just delivered: it is back, their back-off ends.
                self.reachable(&arrived).await?;
                if let Err(e) = self.sync().await {
                    match e {
                        Error::Transport(_) => break,
                        e => return Err(e),
                    }
                }
                if ended || fingerprint != self::fingerprint(&self.subscription_targets().await?) {
                    break;
                }
                // Polling: try to subscribe again at each poll.
                if !subscribed && woke.is_err() && started.elapsed() >= poll {
                    break;
                }
            }
            drop(tx);
        }
    }

    /// Ends the back-off of the inbox or groups whose mailbox just delivered.
    async fn reachable(&self, mailboxes: &[MailboxId]) -> Result<(), Error> {
        if mailboxes.is_empty() {
            return Ok(());
        }
        let mut st = self.inner.state.lock().await;
        if mailboxes.contains(&MailboxId::from_bytes(st.row.inbox_mailbox)) {
            st.backoffs.succeeded(&Target::Inbox);
        }
        for row in store::groups(&st.conn)? {
            if mailboxes.contains(&MailboxId::from_bytes(row.mailbox)) {
                st.backoffs.succeeded(&Target::Group(row.group_id));
            }
        }
        Ok(())
    }

    /// How long the live loop waits for a delivery before syncing anyway: the poll
    /// interval, or less when messages wait in the outbox and their group's back-off
    /// ends sooner (at least 100 ms).
    async fn wait_before_sync(
        &self,
        poll: std::time::Duration,
    ) -> Result<std::time::Duration, Error> {
        let floor = std::time::Duration::from_millis(100);
        Ok(match self.outbox_due().await? {
            Some(due) => due
                .saturating_duration_since(Instant::now())
                .clamp(floor, poll.max(floor)),
            None => poll,
        })
    }

    async fn subscription_targets(&self) -> Result<BTreeMap<Did, Vec<SubscribeTo>>, Error> {
        let mut st = self.inner.state.lock().await;
        let mut out: BTreeMap<Did, Vec<SubscribeTo>> = BTreeMap::new();
        let inbox_ds =
            Did::new(st.row.inbox_ds.clone()).map_err(|e| Error::Protocol(e.to_string()))?;
        out.entry(inbox_ds).or_default().push(SubscribeTo {
            mailbox: MailboxId::from_bytes(st.row.inbox_mailbox),
            key: st.inbox_key(),
            cursor: st.row.inbox_cursor,
        });
        for row in store::groups(&st.conn)? {
            if !row.active {
                continue;
            }
            let key = st.mailbox_key(&row.group_id, &row.mailbox)?;
            let ds = Did::new(row.ds.clone()).map_err(|e| Error::Protocol(e.to_string()))?;
            out.entry(ds).or_default().push(SubscribeTo {
                mailbox: MailboxId::from_bytes(row.mailbox),
                key,
                cursor: row.cursor,
            });
        }
        Ok(out)
    }
}

fn fingerprint(targets: &BTreeMap<Did, Vec<SubscribeTo>>) -> Vec<(MailboxId, [u8; 32])> {
    targets
        .values()
        .flatten()
        .map(|s| (s.mailbox, s.key.verifying_key().to_bytes()))
        .collect()
}
