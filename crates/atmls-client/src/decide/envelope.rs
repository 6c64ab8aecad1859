//! What one envelope of a group mailbox comes to: unpad, decrypt, check the group policy
//! and the proofs of added leaves, apply. Policy failures leave the group unchanged.

use atmls_ds_proto::{EnvelopeKind, Timestamp};
use atmls_identity::Did;
use openmls::prelude::*;

use super::policy::check_commit;
use crate::content::{self, Content};
use crate::device::store::Provider;
use crate::error::{Error, FailureKind, PolicyViolation, StoreError};
use crate::group::binding;
use crate::group::proofs::{self, Documents, LeafCheck};
use crate::group::reentry::{self, BrokenReason};
use crate::group::{credential_did, leaf_device_id};

/// What happens to this device's pending commit (if any) when an envelope arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PendingFate {
    /// There is none, or the envelope is not a commit: it stays as it is.
    Untouched,
    /// The envelope is the pending commit: the DS accepted it (its answer was lost).
    Accepted,
    /// Another commit took this epoch: the pending one lost and is dropped.
    Lost,
}

/// The fate of the pending commit whose payload digest is `pending`, given an envelope
/// of `kind` whose payload digest is `digest`.
pub(crate) fn pending_fate(
    kind: EnvelopeKind,
    digest: &[u8],
    pending: Option<&[u8]>,
) -> PendingFate {
    match pending {
        Some(p) if kind == EnvelopeKind::Commit && p == digest => PendingFate::Accepted,
        Some(_) if kind == EnvelopeKind::Commit => PendingFate::Lost,
        _ => PendingFate::Untouched,
    }
}

/// What an envelope from another member came to.
#[derive(Debug)]
pub(crate) enum EnvelopeOutcome {
    /// An application message, to show.
    Message {
        /// The sender's account.
        sender: Did,
        /// The sender's device id, if its leaf carries one.
        sender_device: Option<String>,
        /// The decoded content.
        content: Box<Content>,
    },
    /// A commit was checked and merged: the group is at `epoch` (or, with
    /// `removed_self`, this device is no longer a member and forgets the group).
    Merged {
        /// Who committed.
        committer: Did,
        /// The group's epoch after the merge.
        epoch: u64,
        /// The commit removes this device.
        removed_self: bool,
    },
    /// A member proposes to leave (the proposal is stored for the next commit).
    LeaveProposed {
        /// The leaving account.
        did: Did,
    },
    /// Not for this epoch any more (a commit that lost, or a message too old): dropped
    /// without a warning.
    Ignored(String),
    /// Refused: the cursor moves past it and the group is unchanged.
    Refused(Refusal),
    /// This device cannot go on in the group (§11.17): it enters the broken state.
    Broken(BrokenReason),
    /// The documents of these DIDs are needed to check the leaves a commit adds: the
    /// caller rolls back, resolves them, and decides the same envelope again.
    NeedDocuments(Vec<Did>),
}

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// It does not decrypt, does not parse, or is not something this protocol accepts
    /// (shown as [`Event::Rejected`](crate::Event::Rejected)).
    Malformed(String),
    /// A commit the group policy or the proofs of its added leaves refuse (shown as
    /// [`Event::CommitRefused`](crate::Event::CommitRefused)).
    Policy(PolicyViolation),
}

impl Refusal {
    /// Every refusal of an envelope is permanent (docs/spec.md §11.14): the same bytes
    /// would be refused again. What may pass (a DID document not yet resolved, the local
    /// database) is not a refusal: [`EnvelopeOutcome::NeedDocuments`], or an `Err`.
    pub(crate) fn kind(&self) -> FailureKind {
        match self {
            Self::Malformed(_) | Self::Policy(_) => FailureKind::Permanent,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(reason) => f.write_str(reason),
            Self::Policy(v) => v.fmt(f),
        }
    }
}

/// Decides an envelope `payload` that another member sent to `group`'s mailbox, which
/// the DS accepted at `accepted` (the instant every receiver checks the added leaves'
/// KeyPackages against, §11.13). A commit that passes is merged, a leave proposal
/// stored; nothing else changes the group. `Err` is a local storage failure (roll back
/// and decide again later), never a verdict on the envelope.
pub(crate) fn decide(
    provider: &Provider<'_>,
    group: &mut MlsGroup,
    payload: &[u8],
    accepted: Timestamp,
    documents: &Documents,
) -> Result<EnvelopeOutcome, Error> {
    let refuse = |reason: String| Ok(EnvelopeOutcome::Refused(Refusal::Malformed(reason)));
    let message = match content::unpad(payload) {
        Ok(m) => m,
        Err(e) => return refuse(e.to_string()),
    };
    let protocol = match message.try_into_protocol_message() {
        Ok(p) => p,
        Err(e) => return refuse(format!("not a protocol message: {e}")),
    };
    if protocol.group_id() != group.group_id() {
        return refuse("message for another group".into());
    }
    let message_epoch = protocol.epoch();
    // The sender's epoch tag (§11.17): readable before decryption, compared only at the
    // same epoch and only when the envelope does not decrypt.
    let tag = match &protocol {
        ProtocolMessage::PrivateMessage(p) => reentry::aad_tag(p.aad()),
        ProtocolMessage::PublicMessage(_) => None,
    };
    let processed = match group.process_message(provider, protocol) {
        Ok(p) => p,
        Err(ProcessMessageError::StorageError(e)) => return Err(StoreError::Sqlite(e).into()),
        Err(e) if message_epoch < group.epoch() => {
            let reason = format!("epoch {} is past: {e}", message_epoch.as_u64());
            return Ok(EnvelopeOutcome::Ignored(reason));
        }
        // The mailbox is read in order: an epoch beyond ours means the others merged a
        // commit this device did not.
        Err(_) if message_epoch > group.epoch() => {
            return Ok(EnvelopeOutcome::Broken(BrokenReason::Behind));
        }
        Err(_)
            if tag.is_some_and(|t| {
                t != reentry::epoch_tag(group.epoch_authenticator().as_slice())
            }) =>
        {
            return Ok(EnvelopeOutcome::Broken(BrokenReason::Forked));
        }
        Err(e) => return refuse(e.to_string()),
    };
    let sender = match credential_did(processed.credential()) {
        Ok(d) => d,
        Err(e) => return refuse(e.to_string()),
    };
    let sender_leaf = match processed.sender() {
        Sender::Member(i) => Some(*i),
        _ => None,
    };
    match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(app) => {
            match content::decode(&app.into_bytes()) {
                Ok(content) => Ok(EnvelopeOutcome::Message {
                    sender,
                    sender_device: sender_leaf
                        .and_then(|i| group.public_group().leaf(i))
                        .and_then(leaf_device_id),
                    content: Box::new(content),
                }),
                Err(e) => refuse(e.to_string()),
            }
        }
        ProcessedMessageContent::ProposalMessage(proposal) => {
            let self_removal = matches!(
                (proposal.proposal(), sender_leaf),
                (Proposal::Remove(r), Some(from)) if r.removed() == from
            );
            if !self_removal {
                // Only self-removals are accepted as standalone proposals.
                return refuse("only proposals to leave are accepted".into());
            }
            group
                .store_pending_proposal(provider.storage(), *proposal)
                .map_err(StoreError::Sqlite)?;
            Ok(EnvelopeOutcome::LeaveProposed { did: sender })
        }
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            let policy = |v| Ok(EnvelopeOutcome::Refused(Refusal::Policy(v)));
            if let Err(v) = check_commit(group, &staged, &sender, sender_leaf) {
                return policy(v);
            }
            let accepted_ms = accepted.as_millis();
            match proofs::check_added_leaves(provider.crypto(), &staged, documents, accepted_ms) {
                Ok(()) => {}
                Err(LeafCheck::NeedDocuments(dids)) => {
                    return Ok(EnvelopeOutcome::NeedDocuments(dids));
                }
                Err(LeafCheck::Refused(v)) => return policy(v),
            }
            // Every new leaf key is bound to its account's repo (§11.16).
            match binding::check_commit_leaves(group, &staged, sender_leaf, documents, accepted_ms)
            {
                Ok(()) => {}
                Err(LeafCheck::NeedDocuments(dids)) => {
                    return Ok(EnvelopeOutcome::NeedDocuments(dids));
                }
                Err(LeafCheck::Refused(v)) => return policy(v),
            }
            let removed_self = staged.self_removed();
            match group.merge_staged_commit(provider, *staged) {
                Ok(()) => {}
                Err(MergeCommitError::StorageError(e)) => return Err(StoreError::Sqlite(e).into()),
                Err(e) => return refuse(e.to_string()),
            }
            Ok(EnvelopeOutcome::Merged {
                committer: sender,
                epoch: group.epoch().as_u64(),
                removed_self,
            })
        }
        ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
            refuse("external joins are not accepted".into())
        }
        _ => refuse("unsupported message".into()),
    }
}
