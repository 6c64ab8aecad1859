//! The group policy a commit must meet before it is merged (docs/spec.md §11.2): who may
//! add, remove and change what.

use atmls_identity::Did;
use openmls::prelude::*;

use crate::error::PolicyViolation;
use crate::group::{LEAF_PROOFS_PROPOSAL_TYPE, credential_did, group_data};

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
            Proposal::Custom(c) if c.proposal_type() == LEAF_PROOFS_PROPOSAL_TYPE => {}
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
