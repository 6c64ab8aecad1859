//! Group mailboxes: `sendEnvelopes` (ordering and the commit compare-and-swap),
//! `getEnvelopes`, and subscription authorisation.

use rand::RngCore;

use super::{Access, Authorized, DeliveryService, Grant, key_grant};
use crate::auth::{Authorization, DsMethod, MailboxKey};
use crate::config::{MAX_EPOCH, MAX_SEQ, MESSAGE_LIFETIME_SECONDS};
use crate::error::{AuthError, EnvelopeRule, MailboxFull, ReadError, SendEnvelopesError};
use crate::store::{Append, Envelope, MailboxKeys, PreviousKey, Store};
use atmls_ds_proto::{
    EnvelopeKind, EnvelopePage, MailboxId, MailboxKind, OutgoingEnvelope, SendReceipt,
};
use atmls_syntax::Timestamp;

/// An authorised subscription to one mailbox: the server streams from `cursor` and calls
/// [`DeliveryService::check_subscription`] to notice when the key expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// The key that authorised it.
    pub key: [u8; 32],
    /// Stream envelopes with `seq > cursor` (the head at authorisation if none was given).
    pub cursor: u64,
    /// For an ended epoch's key: the last seq it may receive (the commit that ended its
    /// epoch). The server streams the backlog up to it, then ends with `KeyExpired`.
    pub end_seq: Option<u64>,
}

impl<S: Store, R: RngCore> DeliveryService<S, R> {
    /// `chat.mls.ds.sendEnvelopes`: appends the batch whole or not at all.
    ///
    /// Checks, in order: authorisation (the mailbox must be a group), batch size, each
    /// envelope (payload size, kind, commit fields), then the commit's epoch against the
    /// mailbox's (compare-and-swap). A commit must be signed with the current epoch's
    /// key: the previous key, usable during its grace window for messages and reads, may
    /// not move the epoch.
    pub fn send_envelopes(
        &mut self,
        id: &MailboxId,
        auth: &impl Authorization,
        envelopes: Vec<OutgoingEnvelope>,
        now: Timestamp,
    ) -> Result<SendReceipt, SendEnvelopesError> {
        let invalid = |index, rule| SendEnvelopesError::InvalidEnvelope { index, rule };
        let Authorized { mailbox, grant, .. } = self
            .authorize(
                DsMethod::SendEnvelopes,
                id,
                auth,
                Some(MailboxKind::Group),
                now,
            )
            .map_err(|a| match a {
                Access::Auth(e) => SendEnvelopesError::Auth(e),
                Access::NotFound => SendEnvelopesError::MailboxNotFound,
                Access::WrongKind => invalid(0, EnvelopeRule::NotAGroup),
                Access::Store(e) => SendEnvelopesError::Store(e),
            })?;
        let MailboxKeys::Group {
            epoch: current_epoch,
            current,
            ..
        } = mailbox.keys
        else {
            return Err(invalid(0, EnvelopeRule::NotAGroup));
        };

        let max_batch = self.config.max_batch_envelopes();
        if envelopes.is_empty() {
            return Err(SendEnvelopesError::EmptyBatch);
        }
        if envelopes.len() > max_batch {
            return Err(SendEnvelopesError::BatchTooLarge {
                len: envelopes.len(),
                max: max_batch,
            });
        }
        let max_payload = self.config.payload_limit();
        let mut commit: Option<(usize, u64, MailboxKey)> = None;
        let mut lifetime: Option<u32> = None;
        for (i, e) in envelopes.iter().enumerate() {
            if e.payload.is_empty() {
                return Err(invalid(i, EnvelopeRule::EmptyPayload));
            }
            if e.payload.len() > max_payload {
                return Err(SendEnvelopesError::EnvelopeTooLarge {
                    index: i,
                    len: e.payload.len(),
                    max: max_payload,
                });
            }
            match e.kind {
                EnvelopeKind::Message if e.next_key.is_some() => {
                    return Err(invalid(i, EnvelopeRule::NextKeyOnMessage));
                }
                EnvelopeKind::Message if e.message_lifetime.is_some() => {
                    return Err(invalid(i, EnvelopeRule::LifetimeOnMessage));
                }
                EnvelopeKind::Message => {}
                EnvelopeKind::Commit => {
                    if commit.is_some() {
                        return Err(invalid(i, EnvelopeRule::TwoCommits));
                    }
                    let epoch = e
                        .epoch
                        .ok_or(invalid(i, EnvelopeRule::CommitWithoutEpoch))?;
                    let next = e
                        .next_key
                        .as_deref()
                        .ok_or(invalid(i, EnvelopeRule::CommitWithoutNextKey))?;
                    let next = MailboxKey::from_bytes(next)
                        .map_err(|_| invalid(i, EnvelopeRule::InvalidNextKey))?;
                    commit = Some((i, epoch, next));
                    if let Some(l) = e.message_lifetime {
                        if l != 0 && !MESSAGE_LIFETIME_SECONDS.contains(&l) {
                            return Err(invalid(i, EnvelopeRule::LifetimeOutOfBounds));
                        }
                        lifetime = Some(l);
                    }
                }
                other => return Err(invalid(i, EnvelopeRule::Kind(other))),
            }
        }

        let mut keys = mailbox.keys;
        let mut epoch_after = current_epoch;
        if let Some((i, epoch, next)) = commit {
            if epoch != current_epoch {
                return Err(SendEnvelopesError::EpochConflict {
                    current_epoch,
                    current_seq: mailbox.head,
                });
            }
            if grant != Grant::Current {
                return Err(AuthError::KeyExpired.into());
            }
            epoch_after = epoch
                .checked_add(1)
                .filter(|&e| e <= MAX_EPOCH)
                .ok_or(invalid(i, EnvelopeRule::EpochOverflow))?;
            keys = MailboxKeys::Group {
                epoch: epoch_after,
                current: next,
                previous: Some(PreviousKey {
                    key: current,
                    valid_until: now.saturating_add(self.config.key_grace()),
                }),
            };
        }

        // Capacity: sequence numbers up to MAX_SEQ, stored bytes up to the mailbox's cap.
        let full = SendEnvelopesError::MailboxFull;
        let first_seq = mailbox.head.saturating_add(1);
        let last_seq = first_seq.saturating_add(envelopes.len() as u64 - 1);
        if last_seq > MAX_SEQ {
            return Err(full(MailboxFull::Sequence { max: MAX_SEQ }));
        }
        let adding = envelopes
            .iter()
            .map(|e| e.payload.len() as u64)
            .fold(0, u64::saturating_add);
        let max_bytes = self.config.max_mailbox_bytes();
        if mailbox.stored_bytes.saturating_add(adding) > max_bytes {
            return Err(full(MailboxFull::Bytes {
                stored: mailbox.stored_bytes,
                adding,
                max: max_bytes,
            }));
        }
        let stored: Vec<Envelope> = envelopes
            .into_iter()
            .zip(first_seq..)
            .map(|(e, seq)| Envelope {
                seq,
                kind: e.kind,
                epoch: if e.kind == EnvelopeKind::Commit {
                    e.epoch
                } else {
                    None
                },
                payload: e.payload,
                received_at: now,
            })
            .collect();
        let mut after = mailbox;
        after.head = last_seq;
        after.keys = keys;
        after.stored_bytes = mailbox.stored_bytes.saturating_add(adding);
        if let Some(l) = lifetime {
            after.message_lifetime = (l != 0).then_some(l);
        }
        self.store.append(&[Append {
            expected_head: mailbox.head,
            mailbox: after,
            envelopes: stored,
        }])?;
        Ok(SendReceipt {
            first_seq,
            last_seq,
            epoch: epoch_after,
        })
    }

    /// `chat.mls.ds.getEnvelopes`: envelopes with `seq > cursor`, at most `limit`
    /// (clamped to 1..=1000) and at most the configured page bytes.
    pub fn envelopes(
        &mut self,
        id: &MailboxId,
        auth: &impl Authorization,
        cursor: u64,
        limit: u32,
        now: Timestamp,
    ) -> Result<EnvelopePage, ReadError> {
        let Authorized { mailbox, grant, .. } =
            self.authorize(DsMethod::GetEnvelopes, id, auth, None, now)?;
        if let Grant::Ended { end_seq } = grant {
            // Nothing after the commit that ended the key's epoch, not even the head.
            if cursor >= end_seq {
                return Err(AuthError::KeyExpired.into());
            }
            let mut limit = self.page_limit(limit);
            limit.envelopes = limit
                .envelopes
                .min(usize::try_from(end_seq - cursor).unwrap_or(usize::MAX));
            let mut envelopes = self.store.envelopes(id, cursor, limit)?;
            envelopes.retain(|e| e.seq <= end_seq);
            return Ok(EnvelopePage {
                cursor: envelopes.last().map_or(cursor, |e| e.seq),
                envelopes,
                head_seq: mailbox.head.min(end_seq),
                epoch: None,
            });
        }
        if cursor > mailbox.head {
            return Err(ReadError::FutureCursor {
                cursor,
                head: mailbox.head,
            });
        }
        let envelopes = self.store.envelopes(id, cursor, self.page_limit(limit))?;
        Ok(EnvelopePage {
            cursor: envelopes.last().map_or(cursor, |e| e.seq),
            envelopes,
            head_seq: mailbox.head,
            epoch: mailbox.epoch(),
        })
    }

    /// Authorises one mailbox of `chat.mls.ds.subscribeEnvelopes`. `auth` carries that
    /// mailbox's `auth` parameter and, as content, the query string without its `auth`
    /// parameters ([`crate::auth::subscription_content`]). `cursor: None` means live only.
    pub fn authorize_subscription(
        &mut self,
        id: &MailboxId,
        auth: &impl Authorization,
        cursor: Option<u64>,
        now: Timestamp,
    ) -> Result<Subscription, ReadError> {
        let Authorized {
            mailbox,
            key,
            grant,
        } = self.authorize(DsMethod::SubscribeEnvelopes, id, auth, None, now)?;
        if let Grant::Ended { end_seq } = grant {
            // Only a backlog up to `end_seq`; no cursor means live only: nothing.
            return match cursor {
                Some(c) if c < end_seq => Ok(Subscription {
                    mailbox: *id,
                    key,
                    cursor: c,
                    end_seq: Some(end_seq),
                }),
                _ => Err(AuthError::KeyExpired.into()),
            };
        }
        if let Some(c) = cursor.filter(|&c| c > mailbox.head) {
            return Err(ReadError::FutureCursor {
                cursor: c,
                head: mailbox.head,
            });
        }
        Ok(Subscription {
            mailbox: *id,
            key,
            cursor: cursor.unwrap_or(mailbox.head),
            end_seq: None,
        })
    }

    /// Whether a subscription's key is still usable at `now` (`KeyExpired` once the
    /// previous epoch's grace window has passed, and always for an ended epoch's key,
    /// whose stream ends at its `end_seq`), for the server to end the stream.
    pub fn check_subscription(
        &self,
        subscription: &Subscription,
        now: Timestamp,
    ) -> Result<(), ReadError> {
        let mailbox = self
            .store
            .mailbox(&subscription.mailbox)?
            .ok_or(ReadError::MailboxNotFound)?;
        key_grant(&mailbox, &subscription.key, now)?;
        Ok(())
    }
}
