//! A driver for the core with an explicit clock and deterministic keys and nonces.

use std::time::Duration;

use atmls_ds::auth::{DsMethod, RequestAuth, RequestToken};
use atmls_ds::{
    DeliveryService, DsConfig, EnvelopePage, InboxError, InboxPage, MailboxId, MailboxInfo,
    MailboxKind, MemoryStore, OutgoingEnvelope, ReadError, SendEnvelopesError, SendReceipt,
    SqliteStore, Store, Timestamp,
};
use ed25519_dalek::SigningKey;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

/// 2027-01-15, an arbitrary fixed start.
pub(crate) const T0: u64 = 1_800_000_000_000;

pub(crate) fn memory_store() -> MemoryStore {
    MemoryStore::new()
}

pub(crate) fn sqlite_store() -> SqliteStore {
    SqliteStore::open_in_memory().expect("in-memory sqlite")
}

/// A deterministic Ed25519 key.
pub(crate) fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// Its public key bytes.
pub(crate) fn public(k: &SigningKey) -> [u8; 32] {
    k.verifying_key().to_bytes()
}

/// The test configuration: small limits so every rule is cheap to reach.
pub(crate) fn config() -> DsConfig {
    DsConfig::default()
        .with_max_envelope_bytes(1024)
        .with_max_batch_envelopes(8)
        .with_max_mailboxes_per_account(3)
        .with_inbox_deposits_per_minute(5)
        .with_key_grace(Duration::from_secs(60))
        .with_request_max_age(Duration::from_secs(120))
}

pub(crate) struct Harness<S> {
    pub(crate) ds: DeliveryService<S, StdRng>,
    pub(crate) now: Timestamp,
    nonce: u64,
}

impl<S: Store> Harness<S> {
    pub(crate) fn new(store: S) -> Self {
        Self::with_config(store, config())
    }

    pub(crate) fn with_config(store: S, config: DsConfig) -> Self {
        Self {
            ds: DeliveryService::new(store, StdRng::seed_from_u64(42), config),
            now: Timestamp::from_millis(T0),
            nonce: 0,
        }
    }

    pub(crate) fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
    }

    pub(crate) fn next_nonce(&mut self) -> [u8; 16] {
        self.nonce += 1;
        let mut n = [0u8; 16];
        n[..8].copy_from_slice(&self.nonce.to_be_bytes());
        n
    }

    /// A signed token at the current time with a fresh nonce.
    pub(crate) fn token(
        &mut self,
        key: &SigningKey,
        method: DsMethod,
        mailbox: &MailboxId,
        content: &[u8],
    ) -> RequestToken {
        let nonce = self.next_nonce();
        RequestToken::sign(key, method, mailbox, self.now, nonce, content)
    }

    pub(crate) fn group(&mut self, did: &str, key: &SigningKey, epoch: u64) -> MailboxId {
        self.ds
            .create_mailbox(did, MailboxKind::Group, &public(key), epoch)
            .expect("create group")
            .mailbox
    }

    pub(crate) fn inbox(&mut self, did: &str, key: &SigningKey) -> MailboxId {
        self.ds
            .create_mailbox(did, MailboxKind::Inbox, &public(key), 0)
            .expect("create inbox")
            .mailbox
    }

    pub(crate) fn send(
        &mut self,
        key: &SigningKey,
        mailbox: &MailboxId,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> Result<SendReceipt, SendEnvelopesError> {
        let body = format!("send {}", self.nonce).into_bytes();
        let header = self
            .token(key, DsMethod::SendEnvelopes, mailbox, &body)
            .authorization_header();
        let now = self.now;
        self.ds.send_envelopes(
            mailbox,
            &RequestAuth::from_header(Some(&header), &body),
            envelopes,
            now,
        )
    }

    pub(crate) fn send_message(
        &mut self,
        key: &SigningKey,
        mailbox: &MailboxId,
        payload: &[u8],
    ) -> Result<SendReceipt, SendEnvelopesError> {
        self.send(
            key,
            mailbox,
            vec![OutgoingEnvelope::message(payload.to_vec())],
        )
    }

    pub(crate) fn read(
        &mut self,
        key: &SigningKey,
        mailbox: &MailboxId,
        cursor: u64,
        limit: u32,
    ) -> Result<EnvelopePage, ReadError> {
        let query = format!("mailbox={mailbox}&cursor={cursor}&limit={limit}");
        let header = self
            .token(key, DsMethod::GetEnvelopes, mailbox, query.as_bytes())
            .authorization_header();
        let now = self.now;
        self.ds.envelopes(
            mailbox,
            &RequestAuth::from_header(Some(&header), query.as_bytes()),
            cursor,
            limit,
            now,
        )
    }

    pub(crate) fn info(
        &mut self,
        key: &SigningKey,
        mailbox: &MailboxId,
    ) -> Result<MailboxInfo, ReadError> {
        let query = format!("mailbox={mailbox}");
        let header = self
            .token(key, DsMethod::GetMailbox, mailbox, query.as_bytes())
            .authorization_header();
        let now = self.now;
        self.ds.mailbox(
            mailbox,
            &RequestAuth::from_header(Some(&header), query.as_bytes()),
            now,
        )
    }

    pub(crate) fn list(
        &mut self,
        key: &SigningKey,
        inbox: &MailboxId,
        cursor: u64,
    ) -> Result<InboxPage, InboxError> {
        let query = format!("inbox={inbox}&cursor={cursor}");
        let header = self
            .token(key, DsMethod::ListInbox, inbox, query.as_bytes())
            .authorization_header();
        let now = self.now;
        self.ds.list_inbox(
            inbox,
            &RequestAuth::from_header(Some(&header), query.as_bytes()),
            cursor,
            100,
            now,
        )
    }

    pub(crate) fn delete(
        &mut self,
        key: &SigningKey,
        inbox: &MailboxId,
        seqs: &[u64],
    ) -> Result<u64, InboxError> {
        let body = format!("delete {seqs:?}").into_bytes();
        let header = self
            .token(key, DsMethod::DeleteInboxItems, inbox, &body)
            .authorization_header();
        let now = self.now;
        self.ds.delete_inbox_items(
            inbox,
            &RequestAuth::from_header(Some(&header), &body),
            seqs,
            now,
        )
    }

    pub(crate) fn welcome(
        &mut self,
        inbox: &MailboxId,
        payload: &[u8],
    ) -> Result<u64, atmls_ds::SendWelcomeError> {
        let now = self.now;
        self.ds.send_welcome(inbox, payload.to_vec(), now)
    }

    /// Every envelope of a mailbox, read page by page.
    pub(crate) fn read_all(
        &mut self,
        key: &SigningKey,
        mailbox: &MailboxId,
    ) -> Vec<atmls_ds::Envelope> {
        let mut out = Vec::new();
        let mut cursor = 0;
        loop {
            let page = self.read(key, mailbox, cursor, 1000).expect("read");
            if page.envelopes.is_empty() {
                return out;
            }
            cursor = page.cursor;
            out.extend(page.envelopes);
        }
    }
}
