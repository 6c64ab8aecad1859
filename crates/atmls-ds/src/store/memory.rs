//! An in-memory [`Store`]: the reference backend for tests and ephemeral services.

use std::collections::{BTreeMap, HashMap};

use super::{
    Append, CreateOutcome, EndedEpoch, Envelope, Mailbox, PageLimit, SavedNonce, Store, StoreError,
    check_append, ended_by, messages_before, payload_bytes,
};
use atmls_ds_proto::EnvelopeKind;
use atmls_ds_proto::{MailboxId, MailboxKind};
use atmls_syntax::Timestamp;

#[derive(Debug, Clone)]
struct Entry {
    mailbox: Mailbox,
    envelopes: BTreeMap<u64, Envelope>,
    /// Ended epochs by their key.
    ended: HashMap<[u8; 32], EndedEpoch>,
}

/// A [`Store`] in memory. Nothing survives the process.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    mailboxes: HashMap<MailboxId, Entry>,
    quota: HashMap<String, u64>,
    /// The replay-cache entries of the last clean stop, if one is recorded.
    clean_stop: Option<Vec<SavedNonce>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn mailbox(&self, id: &MailboxId) -> Result<Option<Mailbox>, StoreError> {
        Ok(self.mailboxes.get(id).map(|e| e.mailbox))
    }

    fn create_mailbox(
        &mut self,
        account: &str,
        max_per_account: u64,
        mailbox: &Mailbox,
    ) -> Result<CreateOutcome, StoreError> {
        if self.mailboxes.contains_key(&mailbox.id) {
            return Err(StoreError::DuplicateMailbox(mailbox.id));
        }
        if mailbox.head != 0 {
            return Err(StoreError::InvalidAppend("a new mailbox starts at head 0"));
        }
        let count = self.quota.get(account).copied().unwrap_or(0);
        if count >= max_per_account {
            return Ok(CreateOutcome::QuotaExceeded);
        }
        self.quota.insert(account.to_owned(), count + 1);
        self.mailboxes.insert(
            mailbox.id,
            Entry {
                mailbox: Mailbox {
                    stored_bytes: 0,
                    ..*mailbox
                },
                envelopes: BTreeMap::new(),
                ended: HashMap::new(),
            },
        );
        Ok(CreateOutcome::Created)
    }

    fn append(&mut self, batches: &[Append]) -> Result<(), StoreError> {
        // Validate everything first against the state as it would evolve, then apply:
        // all or nothing.
        let mut heads: HashMap<MailboxId, Mailbox> = HashMap::new();
        for b in batches {
            let id = b.mailbox.id;
            let current = match heads.get(&id) {
                Some(m) => *m,
                None => self
                    .mailboxes
                    .get(&id)
                    .map(|e| e.mailbox)
                    .ok_or(StoreError::UnknownMailbox(id))?,
            };
            check_append(&current, b)?;
            heads.insert(
                id,
                Mailbox {
                    stored_bytes: current.stored_bytes.saturating_add(payload_bytes(b)),
                    ..b.mailbox
                },
            );
        }
        for b in batches {
            let entry = self
                .mailboxes
                .get_mut(&b.mailbox.id)
                .ok_or(StoreError::UnknownMailbox(b.mailbox.id))?;
            if let Some((key, ended)) = ended_by(&entry.mailbox, b) {
                entry.ended.insert(*key.as_bytes(), ended);
            }
            entry.mailbox = Mailbox {
                stored_bytes: entry.mailbox.stored_bytes.saturating_add(payload_bytes(b)),
                ..b.mailbox
            };
            for e in &b.envelopes {
                entry.envelopes.insert(e.seq, e.clone());
            }
        }
        Ok(())
    }

    fn envelopes(
        &self,
        id: &MailboxId,
        after: u64,
        limit: PageLimit,
    ) -> Result<Vec<Envelope>, StoreError> {
        let Some(entry) = self.mailboxes.get(id) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for e in entry
            .envelopes
            .range(after.saturating_add(1)..)
            .map(|(_, e)| e)
            .take(limit.envelopes)
        {
            bytes = bytes.saturating_add(e.payload.len());
            if !out.is_empty() && bytes > limit.bytes {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn delete_envelopes(&mut self, id: &MailboxId, seqs: &[u64]) -> Result<u64, StoreError> {
        let Some(entry) = self.mailboxes.get_mut(id) else {
            return Ok(0);
        };
        let mut n = 0;
        for seq in seqs {
            if let Some(e) = entry.envelopes.remove(seq) {
                n += 1;
                entry.mailbox.stored_bytes = entry
                    .mailbox
                    .stored_bytes
                    .saturating_sub(e.payload.len() as u64);
            }
        }
        Ok(n)
    }

    fn expire(&mut self, kind: MailboxKind, before: Timestamp) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for entry in self.mailboxes.values_mut() {
            if entry.mailbox.kind() != kind {
                continue;
            }
            let mut freed = 0u64;
            entry.envelopes.retain(|_, e| {
                let keep = e.received_at >= before;
                if !keep {
                    n += 1;
                    freed = freed.saturating_add(e.payload.len() as u64);
                }
                keep
            });
            entry.mailbox.stored_bytes = entry.mailbox.stored_bytes.saturating_sub(freed);
        }
        Ok(n)
    }

    fn expire_messages(
        &mut self,
        now: Timestamp,
        margin: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for entry in self.mailboxes.values_mut() {
            let Some(seconds) = entry.mailbox.message_lifetime else {
                continue;
            };
            let before = messages_before(now, margin, seconds);
            let mut freed = 0u64;
            entry.envelopes.retain(|_, e| {
                let keep = e.kind != EnvelopeKind::Message || e.received_at >= before;
                if !keep {
                    n += 1;
                    freed = freed.saturating_add(e.payload.len() as u64);
                }
                keep
            });
            entry.mailbox.stored_bytes = entry.mailbox.stored_bytes.saturating_sub(freed);
        }
        Ok(n)
    }

    fn account_mailboxes(&self, account: &str) -> Result<u64, StoreError> {
        Ok(self.quota.get(account).copied().unwrap_or(0))
    }

    fn ended_epoch(
        &self,
        id: &MailboxId,
        key: &[u8; 32],
    ) -> Result<Option<EndedEpoch>, StoreError> {
        Ok(self
            .mailboxes
            .get(id)
            .and_then(|e| e.ended.get(key).copied()))
    }

    fn save_replay(&mut self, entries: &[SavedNonce]) -> Result<(), StoreError> {
        self.clean_stop = Some(entries.to_vec());
        Ok(())
    }

    fn take_replay(&mut self) -> Result<Option<Vec<SavedNonce>>, StoreError> {
        Ok(self.clean_stop.take())
    }
}
