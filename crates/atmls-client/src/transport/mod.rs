//! What the client needs from the network, as two traits: [`Pds`] (the account's PDS and
//! other accounts' repos) and [`Ds`] (delivery services). [`memory`] implements both in
//! memory over the real DS core and real signed repos, for deterministic tests (feature
//! `memory-network`); [`http`] implements them over HTTP and WebSocket. Every DS body is
//! encoded and decoded by the codecs of `atmls-ds-proto`.

use std::future::Future;

pub use atmls_ds_proto::{DidStatus, ProvenRecord};
use atmls_ds_proto::{Envelope, MailboxId, MailboxKind, OutgoingEnvelope, SendReceipt};
use atmls_identity::{Did, DidDocument, DidHistory, ResolveError};
use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;

use crate::error::{TransportError, transient_status};

pub mod http;
#[cfg(feature = "memory-network")]
pub mod memory;

/// One write of an `applyWrites` call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RecordWrite {
    /// Create a record (JSON form of the atproto data model, with `$type`).
    Create {
        /// Collection NSID.
        collection: String,
        /// Record key.
        rkey: String,
        /// The record.
        value: serde_json::Value,
    },
    /// Delete a record.
    Delete {
        /// Collection NSID.
        collection: String,
        /// Record key.
        rkey: String,
    },
}

/// One record of a `listRecords` answer (a hint only: verify with a proof).
#[derive(Debug, Clone, PartialEq)]
pub struct ListedRecord {
    /// Record key.
    pub rkey: String,
    /// The record as JSON.
    pub value: serde_json::Value,
}

/// An uploaded blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// CID of the blob (raw codec).
    pub cid: cid::Cid,
    /// MIME type given at upload.
    pub mime_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// The user's PDS, plus read access to other accounts' repos and DID documents.
pub trait Pds: Send + Sync + 'static {
    /// The account this session is for.
    fn did(&self) -> Did;

    /// `com.atproto.repo.applyWrites` on the account's repo: all or nothing.
    fn apply_writes(
        &self,
        writes: Vec<RecordWrite>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// `com.atproto.repo.listRecords` of `repo`, all pages.
    fn list_records(
        &self,
        repo: &Did,
        collection: &str,
    ) -> impl Future<Output = Result<Vec<ListedRecord>, TransportError>> + Send;

    /// `com.atproto.sync.getRecord` of `repo` from that account's own PDS: the proof CAR.
    fn record_proof(
        &self,
        repo: &Did,
        collection: &str,
        rkey: &str,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;

    /// Resolves a DID document.
    fn resolve(
        &self,
        did: &Did,
    ) -> impl Future<Output = Result<DidDocument, TransportError>> + Send;

    /// The DID's documents over time, to check a proof against the `#atproto` key in
    /// force when the DS accepted the commit that carries it (docs/spec.md §11.13): for
    /// did:plc from the PLC directory's audit log, for did:web the current document.
    fn resolve_history(
        &self,
        did: &Did,
    ) -> impl Future<Output = Result<DidHistory, TransportError>> + Send;

    /// `com.atproto.repo.uploadBlob`.
    fn upload_blob(
        &self,
        bytes: Vec<u8>,
        mime_type: &str,
    ) -> impl Future<Output = Result<BlobRef, TransportError>> + Send;

    /// `com.atproto.sync.getBlob` from `did`'s PDS.
    fn blob(
        &self,
        did: &Did,
        cid: &cid::Cid,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;

    /// `com.atproto.server.getServiceAuth` for audience `aud` and method `lxm`.
    fn service_auth(
        &self,
        aud: &Did,
        lxm: &str,
    ) -> impl Future<Output = Result<String, TransportError>> + Send;
}

/// A shared session is a session: lets a device and an [`http::HttpDs`] that sends
/// `createMailbox` through the PDS (`with_pds_proxy`) use one session, so that a token
/// refresh by either is seen by both.
impl<T: Pds> Pds for std::sync::Arc<T> {
    fn did(&self) -> Did {
        (**self).did()
    }

    fn apply_writes(
        &self,
        writes: Vec<RecordWrite>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        (**self).apply_writes(writes)
    }

    fn list_records(
        &self,
        repo: &Did,
        collection: &str,
    ) -> impl Future<Output = Result<Vec<ListedRecord>, TransportError>> + Send {
        (**self).list_records(repo, collection)
    }

    fn record_proof(
        &self,
        repo: &Did,
        collection: &str,
        rkey: &str,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send {
        (**self).record_proof(repo, collection, rkey)
    }

    fn resolve(
        &self,
        did: &Did,
    ) -> impl Future<Output = Result<DidDocument, TransportError>> + Send {
        (**self).resolve(did)
    }

    fn resolve_history(
        &self,
        did: &Did,
    ) -> impl Future<Output = Result<DidHistory, TransportError>> + Send {
        (**self).resolve_history(did)
    }

    fn upload_blob(
        &self,
        bytes: Vec<u8>,
        mime_type: &str,
    ) -> impl Future<Output = Result<BlobRef, TransportError>> + Send {
        (**self).upload_blob(bytes, mime_type)
    }

    fn blob(
        &self,
        did: &Did,
        cid: &cid::Cid,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send {
        (**self).blob(did, cid)
    }

    fn service_auth(
        &self,
        aud: &Did,
        lxm: &str,
    ) -> impl Future<Output = Result<String, TransportError>> + Send {
        (**self).service_auth(aud, lxm)
    }
}

/// A page of envelopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Envelopes in sequence order.
    pub envelopes: Vec<Envelope>,
    /// The last sequence number returned (the request's cursor if none).
    pub cursor: u64,
    /// Whether the page ends at the mailbox's head and was read with the current epoch's
    /// key (`getEnvelopes` answered `cursor >= headSeq` with an `epoch`): nothing more to
    /// read, so the reader need not ask again. `false` when unknown (always safe).
    pub at_head: bool,
}

/// One mailbox of a subscription.
#[derive(Debug, Clone)]
pub struct SubscribeTo {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// The key that authorises reading it.
    pub key: SigningKey,
    /// Stream envelopes after this sequence number.
    pub cursor: u64,
}

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// A new envelope of a mailbox.
    Envelope {
        /// The mailbox.
        mailbox: MailboxId,
        /// The envelope.
        envelope: Envelope,
    },
    /// The stream ended (error name, or `None` for a normal close); resubscribe from
    /// the cursors.
    Closed(Option<String>),
}

/// What a DS's `getKeyPackages` gathered for one DID (a hint: every proof is verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatheredRecords {
    /// The account.
    pub did: Did,
    /// What the DS found (docs/spec.md §6).
    pub status: DidStatus,
    /// The `chat.mls.declaration/self` record, if found.
    pub declaration: Option<ProvenRecord>,
    /// The `chat.mls.keyPackage` records.
    pub key_packages: Vec<ProvenRecord>,
}

/// Delivery services (each addressed by its DID).
pub trait Ds: Send + Sync + 'static {
    /// `chat.mls.ds.getKeyPackages` (no authorisation): the declarations and KeyPackage
    /// records of up to 100 DIDs with their proofs, in one request. The default answers
    /// `MethodNotImplemented`; the client then reads each account's PDS itself.
    fn key_packages(
        &self,
        ds: &Did,
        dids: &[Did],
    ) -> impl Future<Output = Result<Vec<GatheredRecords>, TransportError>> + Send {
        let _ = (ds, dids);
        async {
            Err(TransportError::Xrpc {
                status: atmls_ds_proto::ErrorName::MethodNotImplemented.status(),
                error: atmls_ds_proto::ErrorName::MethodNotImplemented
                    .as_str()
                    .into(),
                message: "getKeyPackages is not offered".into(),
            })
        }
    }

    /// `chat.mls.ds.describeServer` of `ds` (no authorisation): its limits. The default
    /// answers `MethodNotImplemented`; the client then keeps to its configuration.
    fn describe(
        &self,
        ds: &Did,
    ) -> impl Future<Output = Result<atmls_ds_proto::Limits, TransportError>> + Send {
        let _ = ds;
        async {
            Err(TransportError::Xrpc {
                status: atmls_ds_proto::ErrorName::MethodNotImplemented.status(),
                error: atmls_ds_proto::ErrorName::MethodNotImplemented
                    .as_str()
                    .into(),
                message: "describeServer is not offered".into(),
            })
        }
    }

    /// `chat.mls.ds.createMailbox` with a service-auth token of the account.
    fn create_mailbox(
        &self,
        ds: &Did,
        token: &str,
        kind: MailboxKind,
        key: [u8; 32],
        epoch: u64,
    ) -> impl Future<Output = Result<MailboxId, TransportError>> + Send;

    /// `chat.mls.ds.sendEnvelopes`, signed with `key`.
    fn send_envelopes(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> impl Future<Output = Result<SendReceipt, TransportError>> + Send;

    /// `chat.mls.ds.getEnvelopes`, signed with `key`.
    fn envelopes(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> impl Future<Output = Result<Page, TransportError>> + Send;

    /// `chat.mls.ds.getMailbox`, signed with `key`. The default answers
    /// `MethodNotImplemented` (the client then skips what it would check with it).
    fn mailbox_info(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
    ) -> impl Future<Output = Result<atmls_ds_proto::MailboxInfo, TransportError>> + Send {
        let _ = (ds, mailbox, key);
        async {
            Err(TransportError::Xrpc {
                status: atmls_ds_proto::ErrorName::MethodNotImplemented.status(),
                error: atmls_ds_proto::ErrorName::MethodNotImplemented
                    .as_str()
                    .into(),
                message: "getMailbox is not offered".into(),
            })
        }
    }

    /// `chat.mls.ds.sendWelcome` (no authorisation).
    fn send_welcome(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<u64, TransportError>> + Send;

    /// `chat.mls.ds.listInbox`, signed with the owner key.
    fn list_inbox(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> impl Future<Output = Result<Page, TransportError>> + Send;

    /// `chat.mls.ds.deleteInboxItems`, signed with the owner key.
    fn delete_inbox_items(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        seqs: Vec<u64>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// `chat.mls.ds.subscribeEnvelopes`: backlog after each cursor, then live.
    fn subscribe(
        &self,
        ds: &Did,
        mailboxes: Vec<SubscribeTo>,
    ) -> impl Future<Output = Result<mpsc::UnboundedReceiver<Delivery>, TransportError>> + Send;
}

/// A fresh 16-byte request nonce.
pub(crate) fn nonce() -> [u8; 16] {
    rand::random()
}

/// The current time as the DS counts it.
pub(crate) fn now() -> atmls_ds_proto::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    atmls_ds_proto::Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// A resolver failure as a [`TransportError`] of the right kind (docs/spec.md §11.14): a
/// definite answer (not found, deactivated or tombstoned, an invalid or foreign document,
/// an unsupported method, a refused status) is [`TransportError::Unresolvable`], a
/// failure that may pass (timeout, connection, 5xx, 429) is [`TransportError::Network`].
/// Texts never name the DID.
pub fn resolve_failure(e: ResolveError) -> TransportError {
    match e {
        ResolveError::NotFound
        | ResolveError::Gone
        | ResolveError::UnsupportedDid(_)
        | ResolveError::InvalidDocument(_)
        | ResolveError::InvalidHandleResponse
        | ResolveError::InvalidAuditLog(_)
        | ResolveError::TooLarge { .. } => TransportError::Unresolvable(e.to_string()),
        ResolveError::InvalidUrl(_) => {
            TransportError::Unresolvable("the DID names no valid URL".into())
        }
        // The document names a loopback, private or metadata address: the address
        // policy answers the same every time.
        ResolveError::Refused => {
            TransportError::Unresolvable("the DID document's host is not a public address".into())
        }
        ResolveError::IdMismatch { .. } => {
            TransportError::Unresolvable("the document is for another DID".into())
        }
        ResolveError::Status(status) if !transient_status(status) => {
            TransportError::Unresolvable(e.to_string())
        }
        ResolveError::Status(status) => {
            TransportError::Network(format!("DID resolution: HTTP status {status}"))
        }
        ResolveError::Timeout => TransportError::Network("DID resolution timed out".into()),
        ResolveError::Transport(_) => {
            TransportError::Network("DID resolution: connection failed".into())
        }
        // A failure this version does not know: retried with back-off rather than
        // refusing on a guess.
        _ => TransportError::Network("DID resolution failed".into()),
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;
    use crate::FailureKind::{Permanent, Transient};

    #[test]
    fn resolver_failures_have_a_kind() {
        let doc = atmls_identity::DocumentError::MissingService("atproto_pds".into());
        for (e, want) in [
            (ResolveError::NotFound, Permanent),
            (ResolveError::Gone, Permanent),
            (ResolveError::InvalidDocument(doc), Permanent),
            (ResolveError::TooLarge { limit: 10 }, Permanent),
            (ResolveError::Status(400), Permanent),
            (ResolveError::Status(403), Permanent),
            (ResolveError::Timeout, Transient),
            (ResolveError::Transport("reset".into()), Transient),
            (ResolveError::Status(500), Transient),
            (ResolveError::Status(503), Transient),
            (ResolveError::Status(429), Transient),
        ] {
            let text = e.to_string();
            assert_eq!(resolve_failure(e).kind(), want, "{text}");
        }
        let mismatch = ResolveError::IdMismatch {
            expected: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
            found: "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse().unwrap(),
        };
        let e = resolve_failure(mismatch);
        assert_eq!(e.kind(), Permanent);
        assert!(!e.to_string().contains("did:plc"), "{e}");
    }
}
