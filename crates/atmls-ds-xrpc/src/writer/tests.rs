//! The group commit under a failing write: deterministic, no server, a store that fails
//! every transaction touching a poisoned mailbox.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use atmls_ds::auth::{DsMethod, RequestAuth, RequestToken};
use atmls_ds::store::{
    Append, Claimed, CreateOutcome, EndedEpoch, GroupClaim, Mailbox, NonceShares, PageLimit,
    SavedNonce, SharedNonce,
};
use atmls_ds::{
    DsConfig, Envelope, MailboxId, MailboxKind, MemoryStore, OutgoingEnvelope, Store, StoreError,
    Timestamp,
};
use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;

use super::*;
use crate::config::ManualClock;

const T0: u64 = 1_800_000_000_000;

/// A memory store whose transactions fail when they touch a poisoned mailbox (as a
/// backend refuses a value it cannot hold).
#[derive(Debug, Clone, Default)]
struct Poisoned {
    inner: MemoryStore,
    poison: Arc<Mutex<HashSet<MailboxId>>>,
}

impl Store for Poisoned {
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
        let poison = self.poison.lock().unwrap();
        if batches.iter().any(|b| poison.contains(&b.mailbox.id)) {
            return Err(StoreError::OutOfRange(u64::MAX));
        }
        drop(poison);
        self.inner.append(batches)
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
        self.inner.expire_messages(now, margin)
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
        self.inner.take_replay()
    }
}

struct Bench {
    writer: Writer<Poisoned>,
    poison: Arc<Mutex<HashSet<MailboxId>>>,
    nonce: u8,
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

impl Bench {
    fn new() -> Self {
        let store = Poisoned::default();
        let poison = store.poison.clone();
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
        Self {
            writer: Writer {
                shared: false,
                core: DeliveryService::new(GroupStore::new(store), OsRng, DsConfig::default()),
                clock,
                hub: Hub::default(),
                held: Vec::new(),
            },
            poison,
            nonce: 0,
        }
    }

    fn create(&mut self, key: &SigningKey, epoch: u64) -> MailboxId {
        let (reply, rx) = oneshot::channel();
        self.writer.handle(Command::Create {
            account: "did:plc:a".into(),
            kind: MailboxKind::Group,
            key: key.verifying_key().to_bytes().to_vec(),
            epoch,
            reply,
        });
        rx.blocking_recv().unwrap().unwrap().mailbox
    }

    /// A signed `sendEnvelopes` (token over a fixed body), queued without a flush.
    fn send(
        &mut self,
        id: MailboxId,
        key: &SigningKey,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> (
        PreChecked,
        oneshot::Receiver<Result<SendReceipt, SendEnvelopesError>>,
    ) {
        self.nonce += 1;
        let token = RequestToken::sign(
            key,
            DsMethod::SendEnvelopes,
            &id,
            Timestamp::from_millis(T0),
            [self.nonce; 16],
            b"body",
        );
        let header = token.authorization_header();
        let auth = RequestAuth::from_header(Some(&header), b"body")
            .check_signature(DsMethod::SendEnvelopes, &id);
        let (reply, rx) = oneshot::channel();
        self.writer.handle(Command::Send {
            id,
            auth: auth.clone(),
            envelopes,
            reply,
        });
        (auth, rx)
    }

    fn resend(
        &mut self,
        id: MailboxId,
        auth: PreChecked,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> oneshot::Receiver<Result<SendReceipt, SendEnvelopesError>> {
        let (reply, rx) = oneshot::channel();
        self.writer.handle(Command::Send {
            id,
            auth,
            envelopes,
            reply,
        });
        rx
    }

    fn info(&self, id: &MailboxId) -> Mailbox {
        self.writer.core.store().mailbox(id).unwrap().unwrap()
    }
}

fn message() -> Vec<OutgoingEnvelope> {
    vec![OutgoingEnvelope::message(b"hello".to_vec())]
}

/// Issue 14, hole 1: one request whose write fails in a group commit fails others'
/// requests (before: every request of the group got 500), and the core answers later
/// requests from state that was rolled back (before: `EpochConflict` naming the epoch
/// the failed commit would have set).
#[test]
fn a_failed_write_fails_only_its_own_request() {
    let mut b = Bench::new();
    let (ka, kb) = (key(1), key(2));
    let attacker = b.create(&ka, 7);
    let honest = b.create(&kb, 0);
    b.poison.lock().unwrap().insert(attacker);

    let (first_auth, first) = b.send(
        attacker,
        &ka,
        vec![OutgoingEnvelope::commit(
            7,
            b"c".to_vec(),
            key(3).verifying_key().to_bytes(),
        )],
    );
    // Decided against the pending commit: epoch 8 in the overlay.
    let (_, second) = b.send(
        attacker,
        &ka,
        vec![OutgoingEnvelope::commit(
            7,
            b"c2".to_vec(),
            key(4).verifying_key().to_bytes(),
        )],
    );
    let (_, ok) = b.send(honest, &kb, message());
    let (_, ok2) = b.send(honest, &kb, message());
    b.writer.flush();

    // The honest requests in the same group are written and answered.
    assert_eq!(ok.blocking_recv().unwrap().unwrap().first_seq, 1);
    assert_eq!(ok2.blocking_recv().unwrap().unwrap().first_seq, 2);
    assert_eq!(b.info(&honest).head, 2);
    // The failing request fails alone.
    let e = first.blocking_recv().unwrap().unwrap_err();
    assert_eq!(e.name(), "InternalServerError");
    // The one decided after it learns nothing of the rolled-back epoch.
    let e = second.blocking_recv().unwrap().unwrap_err();
    assert!(
        matches!(e, SendEnvelopesError::Interrupted),
        "decided against a rolled-back write: {e:?}"
    );
    assert_eq!(e.name(), "ServiceUnavailable");
    let m = b.info(&attacker);
    assert_eq!((m.head, m.epoch()), (0, Some(7)));

    // The core's memory followed the store: the failed request's nonce was taken back,
    // so the same signed request goes through once the store takes it.
    b.poison.lock().unwrap().clear();
    let again = b.resend(
        attacker,
        first_auth,
        vec![OutgoingEnvelope::commit(
            7,
            b"c".to_vec(),
            key(3).verifying_key().to_bytes(),
        )],
    );
    b.writer.flush();
    let r = again.blocking_recv().unwrap().unwrap();
    assert_eq!((r.first_seq, r.epoch), (1, 8));
}

/// A welcome into a poisoned inbox fails alone and gives its deposit count back.
#[test]
fn a_failed_welcome_fails_alone_and_is_not_counted() {
    let mut b = Bench::new();
    let (reply, rx) = oneshot::channel();
    b.writer.handle(Command::Create {
        account: "did:plc:a".into(),
        kind: MailboxKind::Inbox,
        key: key(1).verifying_key().to_bytes().to_vec(),
        epoch: 0,
        reply,
    });
    let inbox = rx.blocking_recv().unwrap().unwrap().mailbox;
    let honest = b.create(&key(2), 0);
    b.poison.lock().unwrap().insert(inbox);
    let limit = b.writer.core.config().inbox_deposits_per_minute();
    let mut answers = Vec::new();
    for _ in 0..limit {
        let (reply, rx) = oneshot::channel();
        b.writer.handle(Command::Welcome {
            inbox,
            payload: b"w".to_vec(),
            reply,
        });
        answers.push(rx);
    }
    let (_, ok) = b.send(honest, &key(2), message());
    b.writer.flush();
    assert!(ok.blocking_recv().unwrap().is_ok());
    for (i, rx) in answers.into_iter().enumerate() {
        let e = rx.blocking_recv().unwrap().unwrap_err();
        let expected = if i == 0 {
            "InternalServerError"
        } else {
            "ServiceUnavailable"
        };
        assert_eq!(e.name(), expected, "welcome {i}");
    }
    // None of them counts against the inbox's rate: a new one is accepted.
    b.poison.lock().unwrap().clear();
    let (reply, rx) = oneshot::channel();
    b.writer.handle(Command::Welcome {
        inbox,
        payload: b"w".to_vec(),
        reply,
    });
    b.writer.flush();
    assert_eq!(rx.blocking_recv().unwrap().unwrap(), 1);
}

/// A store shared with "another process": it keeps the token claims it is given (and
/// those another process made, `used`), and logs how they reach it.
#[derive(Debug, Clone, Default)]
struct SharedFake {
    inner: MemoryStore,
    used: Arc<Mutex<HashSet<[u8; 16]>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl SharedFake {
    fn claim(&self, nonce: &[u8; 16]) -> SharedNonce {
        if self.used.lock().unwrap().insert(*nonce) {
            SharedNonce::Fresh
        } else {
            SharedNonce::Replayed
        }
    }
}

impl Store for SharedFake {
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
        self.log
            .lock()
            .unwrap()
            .push(format!("append {}", batches.len()));
        self.inner.append(batches)
    }
    fn append_claimed(
        &mut self,
        batches: &[Append],
        claims: &[GroupClaim],
        _shares: NonceShares,
        _now: Timestamp,
    ) -> Result<Claimed, StoreError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("group {} {}", batches.len(), claims.len()));
        let before = self.used.lock().unwrap().clone();
        let verdicts: Vec<SharedNonce> =
            claims.iter().map(|c| self.claim(&c.entry.nonce)).collect();
        if claims
            .iter()
            .zip(&verdicts)
            .any(|(c, v)| c.append.is_some() && !v.is_fresh())
        {
            // Nothing of the group is written, its claims neither.
            *self.used.lock().unwrap() = before;
            return Ok(Claimed::Refused(verdicts));
        }
        self.inner.append(batches)?;
        Ok(Claimed::Written(verdicts))
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
        self.inner.expire_messages(now, margin)
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
        self.inner.take_replay()
    }
    fn shares_state(&self) -> bool {
        true
    }
    fn claim_nonce(
        &self,
        entry: &SavedNonce,
        _shares: NonceShares,
        _now: Timestamp,
    ) -> Result<SharedNonce, StoreError> {
        self.log.lock().unwrap().push("claim".into());
        Ok(self.claim(&entry.nonce))
    }
}

/// On a shared store, the token claims of a group of sends reach the store with the
/// group's appends (no transaction per request while deciding). A token another process
/// used first refuses its request alone (`ReplayedRequest`, nothing written), and the
/// request decided after it on the same mailbox is decided again and written.
#[test]
fn claims_go_with_the_group_commit_and_a_used_token_fails_alone() {
    let store = SharedFake::default();
    let (used, log) = (store.used.clone(), store.log.clone());
    let mut writer = Writer {
        shared: true,
        core: DeliveryService::new(GroupStore::new(store), OsRng, DsConfig::default()),
        clock: Arc::new(ManualClock::new(Timestamp::from_millis(T0))),
        hub: Hub::default(),
        held: Vec::new(),
    };
    let k = key(1);
    let (reply, rx) = oneshot::channel();
    writer.handle(Command::Create {
        account: "did:plc:a".into(),
        kind: MailboxKind::Group,
        key: k.verifying_key().to_bytes().to_vec(),
        epoch: 0,
        reply,
    });
    let id = rx.blocking_recv().unwrap().unwrap().mailbox;
    // Another process accepted the token with nonce 2.
    used.lock().unwrap().insert([2; 16]);
    log.lock().unwrap().clear();
    let mut answers = Vec::new();
    for n in 1..=3u8 {
        let token = RequestToken::sign(
            &k,
            DsMethod::SendEnvelopes,
            &id,
            Timestamp::from_millis(T0),
            [n; 16],
            b"body",
        );
        let auth = RequestAuth::from_header(Some(&token.authorization_header()), b"body")
            .check_signature(DsMethod::SendEnvelopes, &id);
        let (reply, rx) = oneshot::channel();
        writer.core.store().lock(&[id]);
        writer.handle(Command::Send {
            id,
            auth,
            envelopes: message(),
            reply,
        });
        answers.push(rx);
    }
    assert!(log.lock().unwrap().is_empty(), "no claim while deciding");
    writer.flush();

    let first = answers.remove(0).blocking_recv().unwrap().unwrap();
    assert_eq!(first.first_seq, 1);
    let e = answers.remove(0).blocking_recv().unwrap().unwrap_err();
    assert_eq!(e.name(), "ReplayedRequest");
    let third = answers.remove(0).blocking_recv().unwrap().unwrap();
    assert_eq!(third.first_seq, 2, "decided again after the refused one");
    assert_eq!(writer.core.store().mailbox(&id).unwrap().unwrap().head, 2);
    // The group (3 appends, 3 claims) was refused as a whole, then each append went
    // with its own claim; the third, decided again, with the next flush. No claim alone.
    assert_eq!(
        *log.lock().unwrap(),
        ["group 3 3", "group 1 1", "group 1 1", "group 1 1"]
    );
}

/// On a shared store, a wake-up queued between two sends (each commit's own notification
/// comes back as one) does not cut the group in two: both appends go in one commit.
#[test]
fn a_wake_up_between_sends_does_not_split_the_group_commit() {
    let store = SharedFake::default();
    let log = store.log.clone();
    let mut writer = Writer {
        shared: true,
        core: DeliveryService::new(GroupStore::new(store), OsRng, DsConfig::default()),
        clock: Arc::new(ManualClock::new(Timestamp::from_millis(T0))),
        hub: Hub::default(),
        held: Vec::new(),
    };
    let k = key(1);
    let (reply, rx) = oneshot::channel();
    writer.handle(Command::Create {
        account: "did:plc:a".into(),
        kind: MailboxKind::Group,
        key: k.verifying_key().to_bytes().to_vec(),
        epoch: 0,
        reply,
    });
    let id = rx.blocking_recv().unwrap().unwrap().mailbox;
    log.lock().unwrap().clear();

    let (tx, queue) = mpsc::channel(16);
    let mut answers = Vec::new();
    for n in 1..=2u8 {
        let token = RequestToken::sign(
            &k,
            DsMethod::SendEnvelopes,
            &id,
            Timestamp::from_millis(T0),
            [n; 16],
            b"body",
        );
        let auth = RequestAuth::from_header(Some(&token.authorization_header()), b"body")
            .check_signature(DsMethod::SendEnvelopes, &id);
        let (reply, rx) = oneshot::channel();
        tx.try_send(Command::Send {
            id,
            auth,
            envelopes: message(),
            reply,
        })
        .unwrap();
        answers.push(rx);
        if n == 1 {
            tx.try_send(Command::Wake {
                heads: Some(vec![(id, 1)]),
            })
            .unwrap();
        }
    }
    let (reply, stopped) = oneshot::channel();
    tx.try_send(Command::Stop { reply }).unwrap();
    writer.run(queue, 64);
    stopped.blocking_recv().unwrap();

    for (i, rx) in answers.into_iter().enumerate() {
        assert_eq!(rx.blocking_recv().unwrap().unwrap().first_seq, i as u64 + 1);
    }
    assert_eq!(*log.lock().unwrap(), ["group 2 2"], "one group commit");
}
