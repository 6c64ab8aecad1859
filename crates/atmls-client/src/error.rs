//! Typed errors. Every refusal an application may show a person is its own variant.

use atmls_identity::Did;

/// The device database failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// openmls' storage migrations failed.
    #[error("storage migration: {0}")]
    Migration(String),
    /// A stored value is not what this version wrote.
    #[error("corrupt device state: {0}")]
    Corrupt(&'static str),
    /// The database belongs to another account or was never initialised.
    #[error("device database: {0}")]
    Device(String),
    /// The database file could not be made owner-only (or its directory is writable by
    /// other users).
    #[error(transparent)]
    Private(#[from] atmls_fs::PrivateError),
    /// The key does not open the database: a wrong passphrase or key (or a file that is
    /// not a device database). Nothing was read or changed.
    #[error("wrong key for the device database (or not a device database)")]
    WrongKey,
    /// The database key could not be had from its source.
    #[error(transparent)]
    Key(#[from] crate::at_rest::KeyError),
    /// The SQLite library linked has no encryption (SQLCipher): the database would be
    /// written in plaintext, so it is not opened.
    #[error("the SQLite library has no encryption at rest (SQLCipher)")]
    NoEncryption,
    /// The operating system gave no entropy to seed the crypto provider's DRBG.
    #[error("no entropy for the crypto provider")]
    Entropy,
}

/// A PDS or delivery-service request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The service answered an XRPC error (`{"error", "message"}`).
    #[error("{status} {error}: {message}")]
    Xrpc {
        /// HTTP status.
        status: u16,
        /// The error name, to dispatch on.
        error: String,
        /// Human-readable text.
        message: String,
    },
    /// The DS refused a commit: the mailbox is at another epoch.
    #[error("epoch conflict: mailbox is at epoch {current_epoch} (seq {current_seq})")]
    EpochConflict {
        /// The mailbox's epoch.
        current_epoch: u64,
        /// The mailbox's head.
        current_seq: u64,
    },
    /// The connection failed or timed out, or a DID resolver could not give an answer
    /// this time (timeout, connection failure, a 5xx or 429 from the directory).
    #[error("network: {0}")]
    Network(String),
    /// The answer did not have the expected shape.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// A DID does not resolve to a usable document, by a definite answer: not found,
    /// deactivated or tombstoned, an invalid document or one for another DID, an
    /// unsupported method. The text never names the DID.
    #[error("DID does not resolve: {0}")]
    Unresolvable(String),
}

/// Whether a failed request can succeed later (docs/spec.md §11.14): what a client does
/// with the item that needed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The answer is final (a 4xx refusal, a DID that does not resolve, malformed bytes):
    /// the item that needed it is refused and the client moves on.
    Permanent,
    /// The answer may change (timeout, connection failure, 5xx, 408, 425, 429): the
    /// mailbox or group backs off and is retried; nothing else waits for it.
    Transient,
}

impl TransportError {
    /// The XRPC error name, if the service answered one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Xrpc { error, .. } => Some(error),
            Self::EpochConflict { .. } => Some(atmls_ds_proto::ErrorName::EpochConflict.as_str()),
            _ => None,
        }
    }

    /// The delivery-service error name, typed, if the service answered one this version
    /// knows (docs/spec.md §7).
    pub fn ds_error(&self) -> Option<atmls_ds_proto::ErrorName> {
        match self {
            Self::EpochConflict { .. } => Some(atmls_ds_proto::ErrorName::EpochConflict),
            Self::Xrpc { error, .. } => atmls_ds_proto::ErrorName::from_name(error),
            _ => None,
        }
    }

    /// Permanent or transient (docs/spec.md §11.14), decided from the HTTP status or
    /// the kind of failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Xrpc { status, .. } if transient_status(*status) => FailureKind::Transient,
            Self::Xrpc { .. } | Self::Malformed(_) | Self::Unresolvable(_) => {
                FailureKind::Permanent
            }
            Self::EpochConflict { .. } | Self::Network(_) => FailureKind::Transient,
        }
    }

    /// Whether [`Self::kind`] is [`FailureKind::Transient`].
    pub fn is_transient(&self) -> bool {
        self.kind() == FailureKind::Transient
    }
}

/// Whether an HTTP status may change on retry: 408, 425, 429 and 5xx except 501 (the
/// method is not implemented) and 505.
pub(crate) fn transient_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429)
        || ((500..600).contains(&status) && !matches!(status, 501 | 505))
}

/// Why a message of the outbox was given up (docs/spec.md §11.15).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendRefusal {
    /// The DS refused it for good (a permanent failure: too large, not allowed, …).
    #[error("refused: {0}")]
    Refused(TransportError),
    /// This device is no longer a member of the group.
    #[error("no longer a member of the group")]
    NotMember,
}

/// Why another account's KeyPackage record was refused (docs/spec.md §3.3, in check order).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyPackageRefusal {
    /// The DID document could not be resolved or has no usable `#atproto` key.
    #[error("DID document: {0}")]
    DidDocument(String),
    /// The proof (CAR, commit, signature, MST path or record block) does not verify.
    #[error("proof does not verify: {0}")]
    Proof(String),
    /// The proof verifies but shows the record absent (deleted or consumed).
    #[error("record is absent from the repo")]
    Absent,
    /// The proof is from an older repo revision than one already seen for this DID.
    #[error("proof is from revision {proof}, older than {seen} already seen")]
    StaleRevision {
        /// The proof's commit rev.
        proof: String,
        /// The highest rev seen for the DID.
        seen: String,
    },
    /// The record does not satisfy the `chat.mls.keyPackage` lexicon.
    #[error("record fails the lexicon: {0}")]
    Lexicon(String),
    /// The KeyPackage bytes do not parse as an MLSMessage holding a KeyPackage.
    #[error("KeyPackage bytes do not parse: {0}")]
    Malformed(String),
    /// MLS validation of the KeyPackage failed (signature, lifetime, capabilities, …).
    #[error("KeyPackage is invalid: {0}")]
    Invalid(String),
    /// The record's `keyPackageRef` is not the KeyPackage's reference.
    #[error("keyPackageRef does not match the KeyPackage")]
    RefMismatch,
    /// The credential is not a BasicCredential whose identity is the record's DID.
    #[error("credential identity {found:?} is not the account's DID")]
    WrongIdentity {
        /// What the credential says (lossy UTF-8).
        found: String,
    },
    /// The record's `ciphersuite` differs from the KeyPackage's, or is not supported here.
    #[error("ciphersuite {0:#06x} not usable")]
    Ciphersuite(u16),
    /// `expiresAt` has passed.
    #[error("expired at {0}")]
    Expired(String),
    /// The KeyPackage does not support the group data extension or the leaf-proofs
    /// proposal.
    #[error("KeyPackage does not support the chat.mls group data extension and leaf proofs")]
    MissingCapability,
    /// The proven record holds another KeyPackage than the one the commit adds.
    #[error("the proven record is not the KeyPackage that was added")]
    NotAdded,
    /// The KeyPackage's leaf is not bound to the account by a device key (§11.16): every
    /// member would refuse the commit adding it.
    #[error("KeyPackage leaf: {0}")]
    DeviceBinding(Box<crate::group::binding::BindingRefusal>),
    /// A one-time KeyPackage this device already put in a commit (§11.9): the first join
    /// through it deletes its private keys, so it is not used twice.
    #[error("one-time KeyPackage already used by this device")]
    Used,
}

/// Why a commit, proposal or message from the group was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyViolation {
    /// A member who is not an admin added, removed, renamed or changed admins.
    #[error("{0} is not an admin")]
    NotAdmin(String),
    /// A proposal or commit changes a leaf's identity (DID).
    #[error("a leaf's identity would change from {from} to {to}")]
    IdentityChange {
        /// The old DID.
        from: String,
        /// The new credential identity.
        to: String,
    },
    /// A leaf credential is not a BasicCredential holding a DID.
    #[error("credential is not a DID: {0}")]
    BadCredential(String),
    /// The group data extension is missing or does not parse.
    #[error("group data extension: {0}")]
    GroupData(String),
    /// The commit moves the group to another mailbox, which this version does not follow.
    #[error("the commit changes the group's mailbox")]
    MailboxChange,
    /// The commit adds a leaf without a proof of its KeyPackage record (§11.13).
    #[error("the leaf added for {did} comes without a proof of its KeyPackage")]
    LeafProofMissing {
        /// The added leaf's DID.
        did: String,
    },
    /// The proof of an added leaf's KeyPackage does not verify (§11.13).
    #[error("the leaf added for {did} is refused: {reason}")]
    LeafProofRefused {
        /// The added leaf's DID.
        did: String,
        /// Why its proof was refused.
        reason: KeyPackageRefusal,
    },
    /// The leaf-proofs proposal is malformed, repeated, or proves leaves the commit does
    /// not add (§11.13).
    #[error("leaf proofs: {0}")]
    LeafProofs(String),
    /// The commit is not sent by a member (an external commit: a leaf without a
    /// KeyPackage, so without a proof, §11.2).
    #[error("the commit is not sent by a member")]
    NotFromMember,
    /// The commit carries a proposal type the group policy does not allow (§11.2).
    #[error("the commit carries a {0} proposal, which the group policy does not allow")]
    UnsupportedProposal(String),
    /// A leaf's device binding does not tie its signature key to its account (§11.16).
    #[error("the leaf of {did} is not bound to the account: {reason}")]
    DeviceBinding {
        /// The leaf's DID.
        did: String,
        /// Why its binding was refused.
        reason: crate::group::binding::BindingRefusal,
    },
}

/// Content could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// Not DAG-CBOR, or not an object with `$type` `chat.mls.content`.
    #[error("not a chat.mls.content object: {0}")]
    Decode(String),
    /// The object fails the `chat.mls.content` lexicon.
    #[error("content fails the lexicon: {0}")]
    Lexicon(String),
    /// Encoding failed.
    #[error("encode: {0}")]
    Encode(String),
}

/// The client's errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request to the PDS or the DS failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A KeyPackage of `did` was refused.
    #[error("KeyPackage of {did} refused: {reason}")]
    KeyPackageRefused {
        /// The account.
        did: Did,
        /// Why.
        reason: KeyPackageRefusal,
    },
    /// The account's declaration was found but its proof does not verify (docs/spec.md
    /// §3.3 steps 1–7 and the lexicon, applied to `chat.mls.declaration/self`).
    #[error("declaration of {did} refused: {reason}")]
    DeclarationRefused {
        /// The account.
        did: Did,
        /// Why (the same reasons as for KeyPackage records).
        reason: KeyPackageRefusal,
    },
    /// The account has no `chat.mls.declaration`: it does not take part.
    #[error("{0} has no chat.mls declaration")]
    NoDeclaration(Did),
    /// The account's declaration does not let us invite it.
    #[error("{did} does not accept invitations ({policy})")]
    InviteRefused {
        /// The account.
        did: Did,
        /// Its `invitePolicy`.
        policy: String,
    },
    /// The account has no usable KeyPackage (none published, or all refused).
    #[error("{did} has no usable KeyPackage{}", .last.as_ref().map(|r| format!(" (last refusal: {r})")).unwrap_or_default())]
    NoKeyPackage {
        /// The account.
        did: Did,
        /// Why the last candidate was refused, if any was.
        last: Option<KeyPackageRefusal>,
    },
    /// A device of the account has no KeyPackage in the group's ciphersuite: it cannot
    /// be added, and the group is never moved to another suite for it (§11.19).
    #[error(
        "device {device_id} of {did} has no KeyPackage in the group's ciphersuite 0x{suite:04X}"
    )]
    SuiteMissing {
        /// The account.
        did: Did,
        /// The device (its `deviceId`).
        device_id: String,
        /// The group's ciphersuite.
        suite: u16,
    },
    /// No ciphersuite suits a new group: some first device offers none the X-Wing policy
    /// allows (§11.19).
    #[error(transparent)]
    NoSuite(#[from] crate::suite::SuiteRefusal),
    /// This device is not an admin of the group.
    #[error("only admins may do this")]
    NotAdmin,
    /// No such group on this device.
    #[error("unknown group")]
    UnknownGroup,
    /// This device is no longer a member of the group.
    #[error("no longer a member of the group")]
    NotMember,
    /// The DID is not a member of the group.
    #[error("{0} is not a member")]
    NotAMember(Did),
    /// The commit lost the race too often.
    #[error("gave up after {0} epoch conflicts")]
    RetriesExhausted(u32),
    /// An MLS operation failed.
    #[error("MLS {op}: {message}")]
    Mls {
        /// Which operation.
        op: &'static str,
        /// openmls' error text.
        message: String,
    },
    /// Content could not be encoded or decoded.
    #[error(transparent)]
    Content(#[from] ContentError),
    /// An attachment could not be stored, fetched or decrypted.
    #[error("attachment: {0}")]
    Attachment(String),
    /// An out-of-band ratchet tree (spec §11.4) was refused: wrong size or digest, or it
    /// does not decrypt.
    #[error("ratchet tree: {0}")]
    RatchetTree(crate::attachment::BlobError),
    /// A peer or service sent something that breaks the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The message is in the outbox but could not be sent now (a transient failure, or
    /// earlier messages of the group still wait): it is sent, in order, when the service
    /// is back (docs/spec.md §11.15). Not a reason to send it again.
    #[error("not sent yet ({error}); queued, will send")]
    Queued {
        /// The message's content id.
        id: String,
        /// What the last attempt met.
        error: TransportError,
    },
    /// This device's state in the group is broken (docs/spec.md §11.17): it neither
    /// sends nor commits there until a member re-adds it.
    #[error("this device's state in the group is broken ({0}); waiting to be re-added")]
    Broken(crate::group::reentry::BrokenReason),
    /// A message lifetime outside 60 s..=365 days (§11.18).
    #[error(transparent)]
    MessageLifetime(#[from] crate::group::LifetimeOutOfBounds),
}

impl Error {
    pub(crate) fn mls(op: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Mls {
            op,
            message: e.to_string(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sqlite(e))
    }
}
