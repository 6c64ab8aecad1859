//! The outbox (docs/spec.md §11.15): a message is stored on the device before `send`
//! returns and sent from there, per group in order, each attempt encrypted afresh under
//! the group's current epoch and signed as a new request. An attempt whose outcome is
//! unknown is settled by reading the mailbox before the next one; receivers drop a
//! message whose sender and content id they have shown already.

pub(crate) mod rows;

use std::time::Instant;

use atmls_ds_proto::{ErrorName, MailboxId, OutgoingEnvelope};
use atmls_identity::Did;
use openmls::prelude::tls_codec::Serialize as _;
use sha2::{Digest as _, Sha256};

use super::backoff::Target;
use super::store;
use super::{Device, State};
use crate::content::{self, Body, Content};
use crate::error::{Error, FailureKind, SendRefusal, StoreError, TransportError};
use crate::event::{Event, Message};
use crate::group::GroupId;
use crate::transport::{Ds, Pds};
use rows::OutboxRow;

/// A message of the outbox, as [`Device::outbox`] lists it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Outgoing {
    /// The group.
    pub group: GroupId,
    /// The content (its `id` is the message's id).
    pub content: Content,
    /// Attempts made so far.
    pub attempts: u32,
    /// Waiting or given up.
    pub state: OutgoingState,
}

/// Where a message of the outbox stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutgoingState {
    /// Waiting to be sent (after the messages queued before it in its group).
    Pending {
        /// What the last attempt met, if one failed.
        last_error: Option<String>,
    },
    /// Given up ([`Event::SendFailed`]); kept until [`Device::discard`].
    Failed {
        /// Why.
        reason: String,
    },
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Sends a message with `body` (a fresh id, sent now) and returns its content.
    ///
    /// The message is first stored in the outbox ([`Event::Queued`]), then the group's
    /// queue is sent in order. `Ok` once the DS accepted it; [`Error::Queued`] when it
    /// could not be sent now and waits in the outbox (sent by a later `send`, `sync` or
    /// [`Device::run`]: do not send it again); a permanent refusal is returned as the
    /// DS's error and the message is marked failed.
    pub async fn send(&self, group: &GroupId, body: Body) -> Result<Content, Error> {
        let content = content::content(body, None);
        self.send_content(group, content.clone()).await?;
        Ok(content)
    }

    /// Sends a content object as an application message (as [`Device::send`]); returns
    /// its mailbox sequence number.
    pub async fn send_content(&self, group: &GroupId, content: Content) -> Result<u64, Error> {
        let mut st = self.inner.state.lock().await;
        let item = self.queue_locked(&mut st, group, &content)?;
        let mut events = Vec::new();
        let stopped = self.flush_group(&mut st, group, false, &mut events).await?;
        let own = |e: &Event| match e {
            Event::Message(m) if m.content.id == content.id && m.sender == st.did => Some(m.seq),
            _ => None,
        };
        match rows::item(&st.conn, item)? {
            None => events
                .iter()
                .rev()
                .find_map(own)
                .ok_or_else(|| Error::Protocol("message settled without its envelope".into())),
            Some(row) if row.failed.is_some() => Err(events
                .iter()
                .find_map(|e| match e {
                    Event::SendFailed {
                        id,
                        reason: SendRefusal::Refused(e),
                        ..
                    } if *id == content.id => Some(Error::Transport(e.clone())),
                    _ => None,
                })
                .unwrap_or(Error::NotMember)),
            Some(_) => Err(Error::Queued {
                id: content.id.clone(),
                error: stopped
                    .unwrap_or_else(|| TransportError::Network("not attempted yet".into())),
            }),
        }
    }

    /// Stores a message with `body` in the outbox without sending it ([`Event::Queued`]);
    /// it is sent by the next [`Device::send`], [`Device::sync`] or [`Device::run`].
    pub async fn queue(&self, group: &GroupId, body: Body) -> Result<Content, Error> {
        let content = content::content(body, None);
        let mut st = self.inner.state.lock().await;
        self.queue_locked(&mut st, group, &content)?;
        Ok(content)
    }

    /// Sends every group's waiting messages now, whatever their back-off (a person asked
    /// for it); returns the events (also sent to [`Device::events`]). [`Device::sync`]
    /// does the same for the groups it reads, after their back-off.
    pub async fn flush_outbox(&self) -> Result<Vec<Event>, Error> {
        let mut st = self.inner.state.lock().await;
        let mut events = Vec::new();
        for gid in rows::pending_groups(&st.conn)? {
            self.flush_group(&mut st, &GroupId(gid), false, &mut events)
                .await?;
        }
        Ok(events)
    }

    /// The messages of the outbox, pending and failed, in the order they were queued.
    pub async fn outbox(&self) -> Result<Vec<Outgoing>, Error> {
        let st = self.inner.state.lock().await;
        rows::all(&st.conn)?
            .into_iter()
            .map(|r| {
                Ok(Outgoing {
                    group: GroupId(r.group_id.clone()),
                    content: stored_content(&r)?,
                    attempts: r.attempts,
                    state: match r.failed {
                        Some(reason) => OutgoingState::Failed { reason },
                        None => OutgoingState::Pending {
                            last_error: r.last_error,
                        },
                    },
                })
            })
            .collect()
    }

    /// Removes the message with content id `id` from the outbox (a failed one, or one
    /// the person no longer wants sent); returns whether there was one. A message
    /// already attempted may still arrive: its attempt may have reached the DS.
    pub async fn discard(&self, id: &str) -> Result<bool, Error> {
        let st = self.inner.state.lock().await;
        Ok(rows::discard(&st.conn, id)? > 0)
    }

    /// When the outbox next wants to be sent: `None` when nothing waits, else the
    /// earliest end of the back-off of a group with waiting messages (now if none
    /// backs off).
    pub(crate) async fn outbox_due(&self) -> Result<Option<Instant>, Error> {
        let st = self.inner.state.lock().await;
        let now = Instant::now();
        Ok(rows::pending_groups(&st.conn)?
            .into_iter()
            .map(|g| st.backoffs.until(&Target::Group(g)).unwrap_or(now))
            .min())
    }

    fn queue_locked(
        &self,
        st: &mut State,
        group: &GroupId,
        content: &Content,
    ) -> Result<i64, Error> {
        let plaintext = content::encode(content)?;
        let row = store::group(&st.conn, &group.0)?.ok_or(Error::UnknownGroup)?;
        if !row.active {
            return Err(Error::NotMember);
        }
        let item = rows::insert(&st.conn, &group.0, &content.id, &plaintext)?;
        self.emit(&[Event::Queued {
            group: group.clone(),
            id: content.id.clone(),
        }]);
        Ok(item)
    }

    /// Sends the group's waiting messages in order until one fails transiently (returned;
    /// the group backs off) or none is left. `read`: the mailbox was read to its head just
    /// before (so earlier attempts that reached the DS are settled). Permanent refusals
    /// mark that message failed and the next one goes on. Events are emitted and added to
    /// `events`; `Err` is left for local failures.
    pub(crate) async fn flush_group(
        &self,
        st: &mut State,
        group: &GroupId,
        mut read: bool,
        events: &mut Vec<Event>,
    ) -> Result<Option<TransportError>, Error> {
        // Re-reading after `KeyExpired` (the epoch moved unseen) is done once per flush.
        let mut reread = false;
        loop {
            let Some(head) = rows::head(&st.conn, &group.0)? else {
                return Ok(None);
            };
            let active = store::group(&st.conn, &group.0)?.is_some_and(|r| r.active);
            if !active {
                self.give_up(st, group, &head, SendRefusal::NotMember, events)?;
                continue;
            }
            // A broken group holds its messages until this device is re-added (§11.17).
            if super::recovery::is_broken(st, &group.0)? {
                return Ok(None);
            }
            if head.attempts > 0 && !read {
                // An earlier attempt may have reached the DS: read the mailbox first, and
                // the envelope of that attempt, if there, settles the message.
                match self.sync_group_locked(st, group).await {
                    Ok(evs) => {
                        self.emit(&evs);
                        events.extend(evs);
                        read = true;
                        continue;
                    }
                    Err(Error::Transport(e)) => return self.unsent(st, group, &head, e, events),
                    Err(e) => return Err(e),
                }
            }
            let limit = match store::group(&st.conn, &group.0)?.map(|r| Did::new(r.ds)) {
                Some(Ok(ds)) => self.envelope_limit(&ds).await,
                _ => self.inner.config.max_envelope_bytes,
            };
            let (payload, key, ds, mailbox) = self.encrypt_attempt(st, group, &head, limit)?;
            let sent = self
                .inner
                .ds
                .send_envelopes(
                    &ds,
                    &mailbox,
                    &key,
                    vec![OutgoingEnvelope::message(payload)],
                )
                .await;
            match sent {
                Ok(receipt) => {
                    rows::delivered(&st.conn, head.item)?;
                    st.backoffs.succeeded(&Target::Group(group.0.clone()));
                    let event = own_message(st, group, &head, receipt.first_seq)?;
                    self.emit(std::slice::from_ref(&event));
                    events.push(event);
                }
                Err(e) if e.ds_error() == Some(ErrorName::KeyExpired) && !reread => {
                    reread = true;
                    read = false;
                }
                Err(e) if e.is_transient() || e.ds_error() == Some(ErrorName::KeyExpired) => {
                    return self.unsent(st, group, &head, e, events);
                }
                Err(e) => self.give_up(st, group, &head, SendRefusal::Refused(e), events)?,
            }
        }
    }

    /// Encrypts the message under the group's current epoch and records the attempt
    /// (its digest, one more attempt) in one transaction, before anything is sent.
    fn encrypt_attempt(
        &self,
        st: &mut State,
        group: &GroupId,
        head: &OutboxRow,
        max: usize,
    ) -> Result<(Vec<u8>, ed25519_dalek::SigningKey, Did, MailboxId), Error> {
        let (payload, key, ds, mailbox) = st.transaction(|st| {
            let row = store::group(&st.conn, &group.0)?.ok_or(Error::UnknownGroup)?;
            let signer = st.signer(&row.signature_public)?;
            let key = st.mailbox_key(&group.0, &row.mailbox)?;
            let bytes = st.with_group(&group.0, |provider, g| {
                crate::group::reentry::tag_next(g);
                let message = g
                    .create_message(provider, &signer, &head.plaintext)
                    .map_err(|e| Error::mls("encrypt", e))?;
                message
                    .tls_serialize_detached()
                    .map_err(|e| Error::mls("encode", e))
            })?;
            let payload = content::pad(bytes, max);
            let digest = Sha256::digest(&payload);
            store::record_sent(&st.conn, &group.0, &digest)?;
            rows::attempt(&st.conn, head.item, &group.0, &digest)?;
            Ok((payload, key, row.ds, row.mailbox))
        })?;
        let ds = Did::new(ds).map_err(|e| Error::Protocol(e.to_string()))?;
        Ok((payload, key, ds, MailboxId::from_bytes(mailbox)))
    }

    /// A transient failure: the message stays first in its group's queue and the group
    /// backs off.
    fn unsent(
        &self,
        st: &mut State,
        group: &GroupId,
        head: &OutboxRow,
        error: TransportError,
        events: &mut Vec<Event>,
    ) -> Result<Option<TransportError>, Error> {
        rows::set_last_error(&st.conn, head.item, &error.to_string())?;
        let config = &self.inner.config;
        st.backoffs.failed(
            Target::Group(group.0.clone()),
            FailureKind::Transient,
            Instant::now(),
            config.retry_backoff,
            config.max_retry_backoff,
        );
        let attempts = rows::item(&st.conn, head.item)?.map_or(head.attempts, |r| r.attempts);
        let event = Event::Unsent {
            group: group.clone(),
            id: head.id.clone(),
            attempts,
            error: error.clone(),
        };
        self.emit(std::slice::from_ref(&event));
        events.push(event);
        Ok(Some(error))
    }

    /// A permanent refusal: the message is marked failed.
    fn give_up(
        &self,
        st: &mut State,
        group: &GroupId,
        head: &OutboxRow,
        reason: SendRefusal,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        rows::fail(&st.conn, head.item, &reason.to_string())?;
        let event = Event::SendFailed {
            group: group.clone(),
            id: head.id.clone(),
            reason,
        };
        self.emit(std::slice::from_ref(&event));
        events.push(event);
        Ok(())
    }
}

/// The event of this device's own message, accepted at `seq`.
pub(crate) fn own_message(
    st: &State,
    group: &GroupId,
    row: &OutboxRow,
    seq: u64,
) -> Result<Event, Error> {
    Ok(Event::Message(Message {
        group: group.clone(),
        sender: st.did.clone(),
        sender_device: Some(st.row.device_id.clone()),
        seq,
        content: stored_content(row)?,
    }))
}

fn stored_content(row: &OutboxRow) -> Result<Content, Error> {
    content::decode(&row.plaintext).map_err(|_| StoreError::Corrupt("outbox content").into())
}
