//! Processing one MLS message from the group mailbox: decrypt, check the group policy,
//! apply.

use atmls_identity::Did;
use openmls::prelude::*;

use super::proofs::{self, Documents, LeafCheck};
use super::{credential_did, group_data};
use crate::content::{self, Content};
use crate::device::store::Provider;
use crate::error::PolicyViolation;

/// What one message did.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// An application message.
    Message {
        sender: Did,
        sender_device: Option<String>,
        content: Box<Content>,
    },
    /// A commit was applied.
    Commit { committer: Did, removed_self: bool },
    /// A proposal was stored; `leaving` names a member proposing its own removal.
    Proposal { leaving: Option<Did> },
    /// Not for this epoch any more (a commit that lost, or a message too old).
    Ignored(String),
    /// Refused: decryption failure or malformed content.
    Rejected(String),
    /// A commit refused by the group policy or the proofs of its added leaves.
    Refused(PolicyViolation),
    /// The documents of these DIDs are needed to check the leaves a commit adds: resolve
    /// them, roll back and process the message again.
    NeedDocuments(Vec<Did>),
    /// Storage failed (a local, passing failure, not a verdict on the message): roll
    /// back and process it again later.
    StorageFailed(rusqlite::Error),
}

/// What checking a commit needs besides the group: DID documents of added accounts and
/// when the DS accepted the commit (the same for every receiver).
pub(crate) struct CommitContext<'a> {
    pub(crate) documents: &'a Documents,
    pub(crate) accepted_ms: u64,
}

/// Processes one message. Policy failures leave the group unchanged.
pub(crate) fn process(
    provider: &Provider<'_>,
    group: &mut MlsGroup,
    message: MlsMessageIn,
    ctx: &CommitContext<'_>,
) -> Outcome {
    let protocol = match message.try_into_protocol_message() {
        Ok(p) => p,
        Err(e) => return Outcome::Rejected(format!("not a protocol message: {e}")),
    };
    if protocol.group_id() != group.group_id() {
        return Outcome::Rejected("message for another group".into());
    }
    let message_epoch = protocol.epoch();
    let processed = match group.process_message(provider, protocol) {
        Ok(p) => p,
        Err(ProcessMessageError::StorageError(e)) => return Outcome::StorageFailed(e),
        Err(e) => {
            return if message_epoch < group.epoch() {
                Outcome::Ignored(format!("epoch {} is past: {e}", message_epoch.as_u64()))
            } else {
                Outcome::Rejected(e.to_string())
            };
        }
    };
    let sender = match credential_did(processed.credential()) {
        Ok(d) => d,
        Err(e) => return Outcome::Rejected(e.to_string()),
    };
    let sender_leaf = match processed.sender() {
        Sender::Member(i) => Some(*i),
        _ => None,
    };
    match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(app) => {
            match content::decode(&app.into_bytes()) {
                Ok(content) => Outcome::Message {
                    sender,
                    sender_device: sender_leaf
                        .and_then(|i| group.public_group().leaf(i))
                        .and_then(super::leaf_device_id),
                    content: Box::new(content),
                },
                Err(e) => Outcome::Rejected(e.to_string()),
            }
        }
        ProcessedMessageContent::ProposalMessage(proposal) => {
            let leaving = match (proposal.proposal(), sender_leaf) {
                (Proposal::Remove(r), Some(from)) if r.removed() == from => Some(sender.clone()),
                _ => None,
            };
            if leaving.is_none() {
                // Only self-removals are accepted as standalone proposals.
                return Outcome::Rejected("only proposals to leave are accepted".into());
            }
            if let Err(e) = group.store_pending_proposal(provider.storage(), *proposal) {
                return Outcome::StorageFailed(e);
            }
            Outcome::Proposal { leaving }
        }
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            if let Err(v) = check_commit(group, &staged, &sender, sender_leaf) {
                return Outcome::Refused(v);
            }
            match proofs::check_added_leaves(
                provider.crypto(),
                &staged,
                ctx.documents,
                ctx.accepted_ms,
            ) {
                Ok(()) => {}
                Err(LeafCheck::NeedDocuments(dids)) => return Outcome::NeedDocuments(dids),
                Err(LeafCheck::Refused(v)) => return Outcome::Refused(v),
            }
            let removed_self = staged.self_removed();
            match group.merge_staged_commit(provider, *staged) {
                Ok(()) => {}
                Err(MergeCommitError::StorageError(e)) => return Outcome::StorageFailed(e),
                Err(e) => return Outcome::Rejected(e.to_string()),
            }
            Outcome::Commit {
                committer: sender,
                removed_self,
            }
        }
        ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
            Outcome::Rejected("external joins are not accepted".into())
        }
        _ => Outcome::Rejected("unsupported message".into()),
    }
}

/// The group policy: only admins add others, remove others, or change the group data;
/// anyone may add or remove devices of their own account, update themselves, or have
/// their leave proposal committed; no leaf changes identity; the mailbox stays.
pub(crate) fn check_commit(
    group: &MlsGroup,
    staged: &StagedCommit,
    committer: &Did,
    committer_leaf: Option<LeafNodeIndex>,
) -> Result<(), PolicyViolation> {
    // External commits (and anything else not from a member) add a leaf that no
    // KeyPackage proof covers: refused, whoever built them.
    if committer_leaf.is_none() {
        return Err(PolicyViolation::NotFromMember);
    }
    let data = group_data(group.extensions())?;
    let admin = data.is_admin(committer.as_str());
    let not_admin = || PolicyViolation::NotAdmin(committer.to_string());
    // Only the proposal types this protocol uses; the others (PSKs only some members
    // hold, ReInit, ExternalInit, other custom types) are refused before openmls acts
    // on them, the same way at every member.
    for queued in staged.queued_proposals() {
        match queued.proposal() {
            Proposal::Add(_) | Proposal::Remove(_) | Proposal::Update(_) => {}
            Proposal::Custom(c) if c.proposal_type() == super::LEAF_PROOFS_PROPOSAL_TYPE => {}
            Proposal::GroupContextExtensions(_) if admin => {}
            Proposal::GroupContextExtensions(_) => return Err(not_admin()),
            other => {
                return Err(PolicyViolation::UnsupportedProposal(format!(
                    "{:?}",
                    other.proposal_type()
                )));
            }
        }
    }
    for add in staged.add_proposals() {
        let did = credential_did(add.add_proposal().key_package().leaf_node().credential())?;
        if &did != committer && !admin {
            return Err(not_admin());
        }
    }
    for remove in staged.remove_proposals() {
        let removed = remove.remove_proposal().removed();
        let removed_did = group
            .member_at(removed)
            .map(|m| credential_did(&m.credential))
            .transpose()?;
        let self_leave = matches!(remove.sender(), Sender::Member(s) if *s == removed);
        let own_device = removed_did.as_ref() == Some(committer);
        if !(admin || self_leave || own_device) {
            return Err(not_admin());
        }
    }
    for update in staged.update_proposals() {
        let Sender::Member(leaf) = update.sender() else {
            continue;
        };
        let old = group
            .member_at(*leaf)
            .map(|m| credential_did(&m.credential))
            .transpose()?;
        let new = credential_did(update.update_proposal().leaf_node().credential())?;
        if let Some(old) = old
            && old != new
        {
            return Err(PolicyViolation::IdentityChange {
                from: old.to_string(),
                to: new.to_string(),
            });
        }
    }
    if let Some(leaf) = staged.update_path_leaf_node() {
        let new = credential_did(leaf.credential())?;
        if &new != committer {
            return Err(PolicyViolation::IdentityChange {
                from: committer.to_string(),
                to: new.to_string(),
            });
        }
    }
    let next = group_data(staged.group_context().extensions())?;
    if next != data {
        if !admin {
            return Err(not_admin());
        }
        if next.mailbox != data.mailbox || next.ds != data.ds {
            return Err(PolicyViolation::MailboxChange);
        }
    }
    Ok(())
}
