//! Transports that note the sizes of what a device sends (untimed bookkeeping: one lock
//! and a length per call), so the benches can report wire sizes beside the timings.

use std::sync::{Arc, Mutex};

use atmls_client::Did;
use atmls_client::TransportError;
use atmls_client::transport::{
    BlobRef, Delivery, Ds, GatheredRecords, ListedRecord, Page, Pds, RecordWrite, SubscribeTo,
};
use atmls_ds_proto::{EnvelopeKind, MailboxId, MailboxKind, OutgoingEnvelope, SendReceipt};
use atmls_identity::{DidDocument, DidHistory};
use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;

/// The sizes (bytes) of the last things sent of each kind.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    /// Payload of the last commit envelope (padded, as the DS stores it).
    pub commit: usize,
    /// Payload of the last message envelope.
    pub message: usize,
    /// The last sealed welcome (`sendWelcome` payload).
    pub welcome: usize,
    /// The last blob uploaded (an out-of-band ratchet tree, encrypted and padded).
    pub blob: usize,
    /// The last `chat.mls.keyPackage` record created, as JSON.
    pub key_package_record: usize,
    /// The KeyPackage bytes in that record.
    pub key_package: usize,
}

/// Shared by a device's two spies and the bench.
pub type Log = Arc<Mutex<Sent>>;

/// A transport `T` whose sends are noted in `log`.
#[derive(Clone)]
pub struct Spy<T> {
    pub inner: T,
    pub log: Log,
}

impl<T> Spy<T> {
    fn note(&self, f: impl FnOnce(&mut Sent)) {
        f(&mut self.log.lock().unwrap());
    }
}

/// The length of the `$bytes` value at `value[field]` (standard base64, no padding).
fn bytes_len(value: &serde_json::Value, field: &str) -> usize {
    value[field]["$bytes"]
        .as_str()
        .map_or(0, |b64| b64.trim_end_matches('=').len() * 3 / 4)
}

impl<T: Pds> Pds for Spy<T> {
    fn did(&self) -> Did {
        self.inner.did()
    }

    async fn apply_writes(&self, writes: Vec<RecordWrite>) -> Result<(), TransportError> {
        for w in &writes {
            if let RecordWrite::Create {
                collection, value, ..
            } = w
                && collection == "chat.mls.keyPackage"
            {
                let json = serde_json::to_vec(value).map_or(0, |v| v.len());
                let kp = bytes_len(value, "keyPackage");
                self.note(|s| {
                    s.key_package_record = json;
                    s.key_package = kp;
                });
            }
        }
        self.inner.apply_writes(writes).await
    }

    async fn list_records(
        &self,
        repo: &Did,
        collection: &str,
    ) -> Result<Vec<ListedRecord>, TransportError> {
        self.inner.list_records(repo, collection).await
    }

    async fn record_proof(
        &self,
        repo: &Did,
        collection: &str,
        rkey: &str,
    ) -> Result<Vec<u8>, TransportError> {
        self.inner.record_proof(repo, collection, rkey).await
    }

    async fn resolve(&self, did: &Did) -> Result<DidDocument, TransportError> {
        self.inner.resolve(did).await
    }

    async fn resolve_history(&self, did: &Did) -> Result<DidHistory, TransportError> {
        self.inner.resolve_history(did).await
    }

    async fn upload_blob(
        &self,
        bytes: Vec<u8>,
        mime_type: &str,
    ) -> Result<BlobRef, TransportError> {
        let n = bytes.len();
        self.note(|s| s.blob = n);
        self.inner.upload_blob(bytes, mime_type).await
    }

    async fn blob(&self, did: &Did, cid: &cid::Cid) -> Result<Vec<u8>, TransportError> {
        self.inner.blob(did, cid).await
    }

    async fn service_auth(&self, aud: &Did, lxm: &str) -> Result<String, TransportError> {
        self.inner.service_auth(aud, lxm).await
    }
}

impl<T: Ds> Ds for Spy<T> {
    async fn key_packages(
        &self,
        ds: &Did,
        dids: &[Did],
    ) -> Result<Vec<GatheredRecords>, TransportError> {
        self.inner.key_packages(ds, dids).await
    }

    async fn describe(&self, ds: &Did) -> Result<atmls_ds_proto::Limits, TransportError> {
        self.inner.describe(ds).await
    }

    async fn create_mailbox(
        &self,
        ds: &Did,
        token: &str,
        kind: MailboxKind,
        key: [u8; 32],
        epoch: u64,
    ) -> Result<MailboxId, TransportError> {
        self.inner.create_mailbox(ds, token, kind, key, epoch).await
    }

    async fn send_envelopes(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> Result<SendReceipt, TransportError> {
        for e in &envelopes {
            let n = e.payload.len();
            match e.kind {
                EnvelopeKind::Commit => self.note(|s| s.commit = n),
                _ => self.note(|s| s.message = n),
            }
        }
        self.inner.send_envelopes(ds, mailbox, key, envelopes).await
    }

    async fn envelopes(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> Result<Page, TransportError> {
        self.inner.envelopes(ds, mailbox, key, cursor).await
    }

    async fn mailbox_info(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
    ) -> Result<atmls_ds_proto::MailboxInfo, TransportError> {
        self.inner.mailbox_info(ds, mailbox, key).await
    }

    async fn send_welcome(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        payload: Vec<u8>,
    ) -> Result<u64, TransportError> {
        let n = payload.len();
        self.note(|s| s.welcome = n);
        self.inner.send_welcome(ds, inbox, payload).await
    }

    async fn list_inbox(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> Result<Page, TransportError> {
        self.inner.list_inbox(ds, inbox, key, cursor).await
    }

    async fn delete_inbox_items(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        seqs: Vec<u64>,
    ) -> Result<(), TransportError> {
        self.inner.delete_inbox_items(ds, inbox, key, seqs).await
    }

    async fn subscribe(
        &self,
        ds: &Did,
        mailboxes: Vec<SubscribeTo>,
    ) -> Result<mpsc::UnboundedReceiver<Delivery>, TransportError> {
        self.inner.subscribe(ds, mailboxes).await
    }
}
