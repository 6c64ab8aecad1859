//! The suites catch a broken backend: stores that each break one rule fail them.

use atmls_ds::store::{
    Append, CreateOutcome, EndedEpoch, Envelope, Mailbox, PageLimit, SavedNonce, Store, StoreError,
};
use atmls_ds::{MailboxId, MailboxKind, MemoryStore, Timestamp};

/// What the broken store gets wrong.
#[derive(Clone, Copy)]
enum Flaw {
    /// Appends against whatever head the mailbox has now (no compare-and-swap).
    NoHeadCheck,
    /// Keeps the saved replay cache after it was taken.
    ReplayTakenTwice,
    /// Never deletes by a group's message lifetime.
    LifetimeIgnored,
    /// Deletes commits past the message lifetime too, not only messages.
    LifetimeExpiresCommits,
}

struct Broken {
    inner: MemoryStore,
    flaw: Flaw,
}

fn broken(flaw: Flaw) -> Broken {
    Broken {
        inner: MemoryStore::new(),
        flaw,
    }
}

impl Store for Broken {
    fn mailbox(&self, id: &MailboxId) -> Result<Option<Mailbox>, StoreError> {
        self.inner.mailbox(id)
    }
    fn create_mailbox(
        &mut self,
        account: &str,
        max: u64,
        mailbox: &Mailbox,
    ) -> Result<CreateOutcome, StoreError> {
        self.inner.create_mailbox(account, max, mailbox)
    }
    fn append(&mut self, batches: &[Append]) -> Result<(), StoreError> {
        let Flaw::NoHeadCheck = self.flaw else {
            return self.inner.append(batches);
        };
        let mut rebased = Vec::new();
        for b in batches {
            let Some(current) = self.inner.mailbox(&b.mailbox.id)? else {
                return self.inner.append(batches);
            };
            let shift = current.head.wrapping_sub(b.expected_head);
            let mut b = b.clone();
            b.expected_head = current.head;
            b.mailbox.head = b.mailbox.head.wrapping_add(shift);
            for e in &mut b.envelopes {
                e.seq = e.seq.wrapping_add(shift);
            }
            rebased.push(b);
        }
        self.inner.append(&rebased)
    }
    fn envelopes(
        &self,
        id: &MailboxId,
        after: u64,
        limit: PageLimit,
    ) -> Result<Vec<Envelope>, StoreError> {
        self.inner.envelopes(id, after, limit)
    }
    fn delete_envelopes(&mut self, id: &MailboxId, seqs: &[u64]) -> Result<u64, StoreError> {
        self.inner.delete_envelopes(id, seqs)
    }
    fn expire(&mut self, kind: MailboxKind, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.expire(kind, before)
    }
    fn expire_messages(
        &mut self,
        now: Timestamp,
        margin: std::time::Duration,
    ) -> Result<u64, StoreError> {
        match self.flaw {
            Flaw::LifetimeIgnored => Ok(0),
            Flaw::LifetimeExpiresCommits => self.inner.expire(
                MailboxKind::Group,
                atmls_ds::store::messages_before(now, margin, 60),
            ),
            _ => self.inner.expire_messages(now, margin),
        }
    }
    fn account_mailboxes(&self, account: &str) -> Result<u64, StoreError> {
        self.inner.account_mailboxes(account)
    }
    fn ended_epoch(
        &self,
        id: &MailboxId,
        key: &[u8; 32],
    ) -> Result<Option<EndedEpoch>, StoreError> {
        self.inner.ended_epoch(id, key)
    }
    fn save_replay(&mut self, entries: &[SavedNonce]) -> Result<(), StoreError> {
        self.inner.save_replay(entries)
    }
    fn take_replay(&mut self) -> Result<Option<Vec<SavedNonce>>, StoreError> {
        let taken = self.inner.take_replay()?;
        if let (Flaw::ReplayTakenTwice, Some(entries)) = (self.flaw, &taken) {
            self.inner.save_replay(entries)?;
        }
        Ok(taken)
    }
}

#[test]
#[should_panic]
fn a_store_without_compare_and_swap_fails() {
    atmls_testkit::ds_store::append_refuses_stale_heads_and_gaps(broken(Flaw::NoHeadCheck));
}

#[test]
#[should_panic]
fn a_store_that_keeps_a_taken_replay_cache_fails() {
    atmls_testkit::ds_store::replay_saved_only_with_a_clean_stop(broken(Flaw::ReplayTakenTwice));
}

#[test]
#[should_panic]
fn a_store_that_ignores_the_message_lifetime_fails() {
    atmls_testkit::ds_store::message_lifetime_expires_messages_only(broken(Flaw::LifetimeIgnored));
}

#[test]
#[should_panic]
fn a_store_that_expires_commits_by_the_message_lifetime_fails() {
    atmls_testkit::ds_store::message_lifetime_expires_messages_only(broken(
        Flaw::LifetimeExpiresCommits,
    ));
}

/// The broken stores differ from memory only in their flaw: they pass the other
/// properties, so the failures above come from the flaw.
mod otherwise_fine {
    use super::{Flaw, broken};

    #[test]
    fn without_head_check_still_appends() {
        atmls_testkit::ds_store::append_updates_state_atomically(broken(Flaw::NoHeadCheck));
    }

    #[test]
    fn keeping_the_replay_cache_still_creates() {
        atmls_testkit::ds_store::create_read_and_quota(broken(Flaw::ReplayTakenTwice));
    }
}
