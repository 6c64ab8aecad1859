//! Device inboxes: `sendWelcome` (no identity, size and rate limited), `listInbox` and
//! `deleteInboxItems` (owner key).

use rand::RngCore;

use super::{Access, DeliveryService};
use crate::auth::{Authorization, DsMethod};
use crate::config::LEXICON_MAX_DELETE;
use crate::config::MAX_SEQ;
use crate::error::{InboxError, MailboxFull, SendWelcomeError};
use crate::store::{Append, Envelope, Mailbox, SharedRate, Store};
use atmls_ds_proto::{EnvelopeKind, InboxPage, MailboxId, MailboxKind};
use atmls_syntax::Timestamp;

impl From<Access> for InboxError {
    fn from(a: Access) -> Self {
        match a {
            Access::Auth(e) => Self::Auth(e),
            Access::NotFound => Self::MailboxNotFound,
            Access::WrongKind => Self::NotAnInbox,
            Access::Store(e) => Self::Store(e),
        }
    }
}

impl<S: Store, R: RngCore> DeliveryService<S, R> {
    /// `chat.mls.ds.sendWelcome`: deposits a sealed welcome. Records no identity.
    ///
    /// Checks, in order: the inbox exists, it is an inbox, payload size, the deposit
    /// rate of this inbox in its current 60-second window (deposits and bytes), then its
    /// capacity (sequence numbers, stored bytes). Only accepted deposits count.
    pub fn send_welcome(
        &mut self,
        inbox: &MailboxId,
        payload: Vec<u8>,
        now: Timestamp,
    ) -> Result<u64, SendWelcomeError> {
        let mailbox = self
            .store
            .mailbox(inbox)?
            .ok_or(SendWelcomeError::MailboxNotFound)?;
        if mailbox.kind() != MailboxKind::Inbox {
            return Err(SendWelcomeError::NotAnInbox);
        }
        if payload.is_empty() {
            return Err(SendWelcomeError::EmptyPayload);
        }
        let max = self.config.payload_limit();
        if payload.len() > max {
            return Err(SendWelcomeError::EnvelopeTooLarge {
                len: payload.len(),
                max,
            });
        }
        let len = payload.len();
        self.deposits
            .check(inbox, len, now)
            .map_err(|retry_after_ms| SendWelcomeError::RateLimitExceeded { retry_after_ms })?;
        // Across processes too, when the store is shared (a no-op otherwise).
        let shared_start =
            match self
                .store
                .take_deposit(inbox, len as u64, now, self.deposits.allowance())?
            {
                SharedRate::Allowed { window_start } => window_start,
                SharedRate::Limited { retry_after } => {
                    return Err(SendWelcomeError::RateLimitExceeded {
                        retry_after_ms: u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX),
                    });
                }
            };
        let result = self.deposit(mailbox, payload, now);
        match &result {
            Ok(_) => self.deposits.record(
                inbox,
                len,
                now,
                Some(shared_start).filter(|_| self.store.shares_state()),
            ),
            Err(_) => {
                let _ = self
                    .store
                    .give_back_deposit(inbox, len as u64, shared_start);
            }
        }
        result
    }

    /// The capacity checks and the append of an allowed deposit.
    fn deposit(
        &mut self,
        mailbox: Mailbox,
        payload: Vec<u8>,
        now: Timestamp,
    ) -> Result<u64, SendWelcomeError> {
        let len = payload.len();
        let seq = mailbox.head.saturating_add(1);
        if seq > MAX_SEQ {
            return Err(SendWelcomeError::MailboxFull(MailboxFull::Sequence {
                max: MAX_SEQ,
            }));
        }
        let max_bytes = self.config.max_mailbox_bytes();
        if mailbox.stored_bytes.saturating_add(len as u64) > max_bytes {
            return Err(SendWelcomeError::MailboxFull(MailboxFull::Bytes {
                stored: mailbox.stored_bytes,
                adding: len as u64,
                max: max_bytes,
            }));
        }
        let mut after = mailbox;
        after.head = seq;
        after.stored_bytes = mailbox.stored_bytes.saturating_add(len as u64);
        self.store.append(&[Append {
            expected_head: mailbox.head,
            mailbox: after,
            envelopes: vec![Envelope {
                seq,
                kind: EnvelopeKind::Welcome,
                epoch: None,
                payload,
                received_at: now,
            }],
        }])?;
        Ok(seq)
    }

    /// `chat.mls.ds.listInbox`: items with `seq > cursor`, at most `limit` (clamped to
    /// 1..=1000) and the configured page bytes. Signed with the owner key.
    pub fn list_inbox(
        &mut self,
        inbox: &MailboxId,
        auth: &impl Authorization,
        cursor: u64,
        limit: u32,
        now: Timestamp,
    ) -> Result<InboxPage, InboxError> {
        let ok = self.authorize(
            DsMethod::ListInbox,
            inbox,
            auth,
            Some(MailboxKind::Inbox),
            now,
        )?;
        if cursor > ok.mailbox.head {
            return Err(InboxError::FutureCursor {
                cursor,
                head: ok.mailbox.head,
            });
        }
        let items = self
            .store
            .envelopes(inbox, cursor, self.page_limit(limit))?;
        Ok(InboxPage {
            cursor: items.last().map_or(cursor, |e| e.seq),
            items,
        })
    }

    /// `chat.mls.ds.deleteInboxItems`: deletes the named items for good (1 to 100 of
    /// them); returns how many existed. Signed with the owner key.
    pub fn delete_inbox_items(
        &mut self,
        inbox: &MailboxId,
        auth: &impl Authorization,
        seqs: &[u64],
        now: Timestamp,
    ) -> Result<u64, InboxError> {
        self.authorize(
            DsMethod::DeleteInboxItems,
            inbox,
            auth,
            Some(MailboxKind::Inbox),
            now,
        )?;
        if seqs.is_empty() || seqs.len() > LEXICON_MAX_DELETE {
            return Err(InboxError::SeqCount(seqs.len()));
        }
        Ok(self.store.delete_envelopes(inbox, seqs)?)
    }
}
