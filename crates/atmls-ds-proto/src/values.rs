//! The values the DS methods carry, as both sides hold them: ids parsed, kinds typed,
//! times as [`Timestamp`], bytes as bytes.

use atmls_syntax::Timestamp;

use crate::id::{EnvelopeKind, MailboxId, MailboxKind};

/// One accepted, sequenced item of a mailbox (`chat.mls.defs#envelope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Position in the mailbox: gap-free from 1, never reused.
    pub seq: u64,
    /// What it carries.
    pub kind: EnvelopeKind,
    /// For commits: the epoch the commit was built on.
    pub epoch: Option<u64>,
    /// The opaque payload.
    pub payload: Vec<u8>,
    /// When the service accepted it.
    pub received_at: Timestamp,
}

/// An envelope as its sender submits it (`sendEnvelopes#outgoingEnvelope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEnvelope {
    /// `message` or `commit`.
    pub kind: EnvelopeKind,
    /// For a commit: the epoch it was built on (required).
    pub epoch: Option<u64>,
    /// The opaque payload (1 byte up to the service's limit).
    pub payload: Vec<u8>,
    /// For a commit: the mailbox public key of `epoch + 1` (required, 32 bytes).
    pub next_key: Option<Vec<u8>>,
    /// Only on a commit: the group's message lifetime in seconds after it (0: none;
    /// `None`: unchanged). The service keeps the mailbox's message envelopes at most this
    /// long plus its margin (spec §9.7, §11.18).
    pub message_lifetime: Option<u32>,
}

impl OutgoingEnvelope {
    /// A `message` envelope.
    pub fn message(payload: Vec<u8>) -> Self {
        Self {
            kind: EnvelopeKind::Message,
            epoch: None,
            payload,
            next_key: None,
            message_lifetime: None,
        }
    }

    /// A `commit` envelope built on `epoch`, registering `next_key` for `epoch + 1`.
    pub fn commit(epoch: u64, payload: Vec<u8>, next_key: [u8; 32]) -> Self {
        Self {
            kind: EnvelopeKind::Commit,
            epoch: Some(epoch),
            payload,
            next_key: Some(next_key.to_vec()),
            message_lifetime: None,
        }
    }

    /// This commit with the group's message lifetime after it (0: none).
    pub fn with_message_lifetime(mut self, seconds: u32) -> Self {
        self.message_lifetime = Some(seconds);
        self
    }
}

/// The answer to an accepted batch (`sendEnvelopes` output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReceipt {
    /// Sequence number of the batch's first envelope.
    pub first_seq: u64,
    /// Sequence number of its last envelope.
    pub last_seq: u64,
    /// The mailbox's epoch after the batch.
    pub epoch: u64,
}

/// One page of `getEnvelopes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopePage {
    /// Envelopes with `seq > cursor`, in order. Empty means nothing after the cursor.
    pub envelopes: Vec<Envelope>,
    /// The last returned `seq`, or the request's cursor if none.
    pub cursor: u64,
    /// The mailbox's last sequence number; for an ended epoch's key, the seq of the commit
    /// that ended it (`min(head, end_seq)`).
    pub head_seq: u64,
    /// The mailbox's epoch (groups; absent for an ended epoch's key).
    pub epoch: Option<u64>,
}

impl EnvelopePage {
    /// Whether the page ends at the mailbox's head and was read with the current epoch's
    /// key (`cursor >= headSeq` with an `epoch`): nothing more to read. An ended epoch's
    /// `headSeq` is the commit that ended it, with more to read under the next key.
    pub fn at_head(&self) -> bool {
        self.epoch.is_some() && self.cursor >= self.head_seq
    }
}

/// One page of `listInbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxPage {
    /// Items with `seq > cursor`, in order. Empty means nothing after the cursor.
    pub items: Vec<Envelope>,
    /// The last returned `seq`, or the request's cursor if none.
    pub cursor: u64,
}

/// The public state of a mailbox, as `createMailbox` and `getMailbox` answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxInfo {
    /// The mailbox id.
    pub mailbox: MailboxId,
    /// Group or inbox.
    pub kind: MailboxKind,
    /// The current epoch (groups only).
    pub epoch: Option<u64>,
    /// The last sequence number (0: empty).
    pub seq: u64,
    /// Groups: the message lifetime in seconds the last commit carrying one set
    /// (`getMailbox` only; `None`: none set).
    pub message_lifetime: Option<u32>,
}

/// The `createMailbox` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateMailbox {
    /// Group or inbox.
    pub kind: MailboxKind,
    /// The group key of `epoch`, or the inbox owner key (32 bytes of Ed25519 public key;
    /// the core checks it).
    pub key: Vec<u8>,
    /// The group's epoch (absent for inboxes; 0 when absent).
    pub epoch: Option<u64>,
}

/// The limits a delivery service announces (`chat.mls.defs#limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `maxEnvelopeBytes`.
    pub max_envelope_bytes: u64,
    /// `maxBatchEnvelopes`.
    pub max_batch_envelopes: u64,
    /// `maxMailboxesPerAccount`.
    pub max_mailboxes_per_account: u64,
    /// `inboxDepositsPerMinute`.
    pub inbox_deposits_per_minute: u64,
    /// `keyGraceSeconds`.
    pub key_grace_seconds: u64,
    /// `requestMaxAgeSeconds`.
    pub request_max_age_seconds: u64,
    /// `maxSubscriptionMailboxes`.
    pub max_subscription_mailboxes: u64,
    /// `maxMailboxBytes`.
    pub max_mailbox_bytes: Option<u64>,
    /// `inboxDepositBytesPerMinute`.
    pub inbox_deposit_bytes_per_minute: Option<u64>,
    /// `groupRetentionSeconds` (absent: forever).
    pub group_retention_seconds: Option<u64>,
    /// `inboxRetentionSeconds` (absent: forever).
    pub inbox_retention_seconds: Option<u64>,
}

/// The `describeServer` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDescription {
    /// The service's DID.
    pub did: String,
    /// The protocol version (1).
    pub protocol_version: u64,
    /// Its limits.
    pub limits: Limits,
}

/// What a DS's `getKeyPackages` found for one DID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DidStatus {
    /// Declaration and records gathered.
    Ok,
    /// The DID does not resolve (or is not a DID).
    NotFound,
    /// The DID has no `chat.mls.declaration/self`.
    NoDeclaration,
    /// Its PDS (or its DID directory) did not answer usably.
    Unreachable,
}

impl DidStatus {
    /// The lexicon value: `ok`, `notFound`, `noDeclaration` or `unreachable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotFound => "notFound",
            Self::NoDeclaration => "noDeclaration",
            Self::Unreachable => "unreachable",
        }
    }

    /// The status of its lexicon value; `None` for a value this version does not know.
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => Self::Ok,
            "notFound" => Self::NotFound,
            "noDeclaration" => Self::NoDeclaration,
            "unreachable" => Self::Unreachable,
            _ => return None,
        })
    }
}

/// A record and the `com.atproto.sync.getRecord` CAR a DS gathered for it
/// (`getKeyPackages#provenRecord`; unverified until the reader checks the proof).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenRecord {
    /// `at://<did>/<collection>/<rkey>`.
    pub uri: String,
    /// The record's CID, as `listRecords` named it.
    pub cid: String,
    /// The proof (signed commit, MST path, record block).
    pub proof: Vec<u8>,
}

/// The answer for one DID (`getKeyPackages#didResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidResult {
    /// The DID asked for.
    pub did: String,
    /// What was found.
    pub status: DidStatus,
    /// Why, when the status is not `ok`.
    pub message: Option<String>,
    /// The declaration (status `ok`).
    pub declaration: Option<ProvenRecord>,
    /// The KeyPackage records (status `ok`; may be empty).
    pub key_packages: Vec<ProvenRecord>,
}
