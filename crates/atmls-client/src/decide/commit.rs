//! Building the commit for an intent on the group's current epoch. The same intent is
//! rebuilt after a lost race, so each intent says *what* to reach (these devices in,
//! these accounts out, this name), not which proposals to send. The commit is left
//! pending in the MLS group; the outcome says what to send, to whom the welcome goes
//! once the DS accepts it, and what the device records until then.

use atmls_ds_proto::MailboxId;
use atmls_identity::Did;
use ed25519_dalek::SigningKey;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;

use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::content;
use crate::device::store::Provider;
use crate::group::binding::Binder;
use crate::group::seal::{self, WelcomeInfo, mailbox_key, staged_mailbox_key};
use crate::group::{self as grp, GroupData, credential_did, group_data, with_data};
use crate::keypackage::VerifiedKeyPackage;

/// What a commit should achieve.
#[derive(Debug, Clone)]
pub(crate) enum Intent {
    /// These devices become members (those already in are skipped).
    Add(Vec<VerifiedKeyPackage>),
    /// Every device of these accounts leaves (this device excepted).
    Remove(Vec<Did>),
    /// Change name, description or admins.
    Update(DataChange),
    /// A self-update; with `rotate`, with a fresh signature key.
    SelfUpdate {
        /// Rotate the leaf signature key.
        rotate: bool,
    },
    /// Commit the proposals received (e.g. members leaving).
    CommitProposals,
    /// Re-add a device that asked for re-entry (§11.17): remove every leaf of its
    /// account with its device id and add this KeyPackage, in one commit.
    Readd(Box<VerifiedKeyPackage>),
}

impl Intent {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Add(_) => "add",
            Self::Remove(_) => "remove",
            Self::Update(_) => "update",
            Self::SelfUpdate { .. } => "self-update",
            Self::CommitProposals => "commit-proposals",
            Self::Readd(_) => "re-add",
        }
    }

    /// Whether only admins may commit it (given the committer's DID).
    pub(crate) fn needs_admin(&self, me: &Did) -> bool {
        match self {
            Self::Add(kps) => kps.iter().any(|k| &k.did != me),
            Self::Readd(k) => &k.did != me,
            Self::Remove(dids) => dids.iter().any(|d| d != me),
            Self::Update(_) => true,
            Self::SelfUpdate { .. } | Self::CommitProposals => false,
        }
    }
}

/// A change of the group data; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub(crate) struct DataChange {
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) add_admins: Vec<Did>,
    pub(crate) remove_admins: Vec<Did>,
    /// A new message lifetime (`Some(None)`: turn it off).
    pub(crate) message_lifetime: Option<Option<grp::MessageLifetime>>,
}

impl DataChange {
    fn apply(&self, data: &GroupData) -> GroupData {
        let mut out = data.clone();
        if let Some(n) = &self.name {
            out.name = n.clone();
        }
        if let Some(d) = &self.description {
            out.description = d.clone();
        }
        for a in &self.add_admins {
            if !out.admins.contains(a) {
                out.admins.push(a.clone());
            }
        }
        out.admins.retain(|a| !self.remove_admins.contains(a));
        if let Some(l) = self.message_lifetime {
            out.message_lifetime = l;
        }
        out
    }
}

/// Where a welcome goes once the commit is accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct WelcomeTarget {
    /// The invited account (for the per-member outcome).
    #[serde(default)]
    pub(crate) did: String,
    pub(crate) inbox_ds: String,
    pub(crate) inbox: String,
    pub(crate) ciphersuite: u16,
    pub(crate) init_key: Vec<u8>,
    /// The end of the added leaf's MLS lifetime (Unix seconds; 0: unknown): nobody can
    /// join with it after that, so its out-of-band tree is no longer needed (§11.4).
    #[serde(default)]
    pub(crate) not_after: u64,
}

/// The welcome of a commit and its recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct WelcomePlan {
    pub(crate) welcome: Vec<u8>,
    pub(crate) targets: Vec<WelcomeTarget>,
    /// The TLS-encoded ratchet tree of the new epoch when the Welcome leaves it out
    /// (the sealed welcome would not fit in an envelope with it): sent out of band.
    #[serde(default)]
    pub(crate) ratchet_tree: Option<Vec<u8>>,
}

/// An own commit sent (or about to be) and not yet known to be accepted or refused:
/// what the device records until its envelope shows up or the DS refuses it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PendingCommit {
    /// The intent's name.
    pub(crate) intent: String,
    /// The epoch it was built on.
    pub(crate) epoch: u64,
    /// SHA-256 of the padded payload (how its envelope is recognised).
    pub(crate) digest: Vec<u8>,
    /// Where the welcome goes once it is accepted.
    pub(crate) plan: WelcomePlan,
    /// The public key of the leaf signature key it rotates to, if it does.
    pub(crate) new_signer: Option<Vec<u8>>,
}

/// A staged own commit, ready to send.
pub(crate) struct BuiltCommit {
    /// The epoch it was built on (the DS's compare-and-swap value).
    pub(crate) epoch: u64,
    /// The padded envelope payload.
    pub(crate) payload: Vec<u8>,
    /// The mailbox key of the current epoch (signs the send).
    pub(crate) key: SigningKey,
    /// The public mailbox key of the next epoch (the DS switches to it).
    pub(crate) next_key: [u8; 32],
    /// The group's mailbox.
    pub(crate) mailbox: MailboxId,
    /// The group's DS.
    pub(crate) ds: Did,
    /// What the device records until the commit is accepted or dropped.
    pub(crate) pending: PendingCommit,
}

/// Builds the commit for `intent` and leaves it pending in `group`; `Ok(None)` when the
/// intent is already reached. Its randomness is the provider's (openmls draws from
/// it; so does a rotated signature key); it reads no clock.
pub(crate) fn build(
    provider: &Provider<'_>,
    group: &mut MlsGroup,
    signer: &SignatureKeyPair,
    me: &Did,
    intent: &Intent,
    max_envelope: usize,
    binder: &Binder,
) -> Result<Option<BuiltCommit>, Error> {
    let data = group_data(group.extensions()).map_err(|e| Error::Protocol(e.to_string()))?;
    if intent.needs_admin(me) && !data.is_admin(me.as_str()) {
        return Err(Error::NotAdmin);
    }
    let epoch = group.epoch().as_u64();
    let key = mailbox_key(group, provider.crypto(), &data.mailbox)
        .map_err(|e| Error::mls("mailbox key", e))?;
    let mut targets = Vec::new();
    let mut new_signer = None;
    let mut ratchet_tree = None;
    // Every commit carries the epoch tag (§11.17).
    grp::reentry::tag_next(group);
    let (commit, welcome) = match intent {
        Intent::Add(_) | Intent::Readd(_) => {
            // A package already in the tree (its leaf's encryption key is there): the
            // device was re-added with it (by another member acting on the same
            // request) — nothing to do.
            if let Intent::Readd(k) = intent {
                let key = k.key_package.leaf_node().encryption_key();
                if group.members().any(|m| {
                    group
                        .public_group()
                        .leaf(m.index)
                        .is_some_and(|l| l.encryption_key() == key)
                }) {
                    return Ok(None);
                }
            }
            let (kps, removals): (Vec<&VerifiedKeyPackage>, Vec<LeafNodeIndex>) = match intent {
                Intent::Readd(k) => (vec![k.as_ref()], stale_leaves(group, k)),
                Intent::Add(kps) => (kps.iter().collect(), Vec::new()),
                _ => (Vec::new(), Vec::new()),
            };
            // A re-added device may come back under the signature key of the leaf that
            // goes in the same commit.
            let present: Vec<Vec<u8>> = group
                .members()
                .filter(|m| !removals.contains(&m.index))
                .map(|m| m.signature_key)
                .collect();
            let fresh: Vec<&VerifiedKeyPackage> = kps
                .into_iter()
                .filter(|k| {
                    !present.iter().any(|p| {
                        p.as_slice() == k.key_package.leaf_node().signature_key().as_slice()
                    })
                })
                .collect();
            if fresh.is_empty() {
                return Ok(None);
            }
            for k in &fresh {
                targets.push(WelcomeTarget {
                    did: k.did.to_string(),
                    inbox_ds: k.inbox_ds.to_string(),
                    inbox: k.inbox.to_string(),
                    ciphersuite: u16::from(k.key_package.ciphersuite()),
                    init_key: k.key_package.hpke_init_key().as_slice().to_vec(),
                    not_after: k.key_package.life_time().not_after(),
                });
            }
            let packages: Vec<KeyPackage> = fresh.iter().map(|k| k.key_package.clone()).collect();
            // The proofs travel inside the encrypted commit (§11.13).
            let proofs = grp::proofs::proposal(provider.crypto(), &fresh)?;
            let (commit, welcome) =
                add_commit(provider, group, signer, &packages, &removals, &proofs, true)?;
            // Inline tree when the sealed welcome fits (§11.4); otherwise build the commit
            // again with a Welcome without the tree, which then goes out of band.
            let inline_len = welcome
                .as_ref()
                .map(|w| w.tls_serialized_len())
                .unwrap_or_default();
            let bound = seal::sealed_len_bound(
                &WelcomeInfo {
                    welcome: vec![0; inline_len],
                    ds: data.ds.clone(),
                    mailbox: grp::mailbox_of(&data),
                    from_seq: u64::MAX,
                    ratchet_tree: None,
                },
                group.ciphersuite(),
            );
            if bound > max_envelope {
                unstage(provider, group)?;
                let (commit, welcome) = add_commit(
                    provider, group, signer, &packages, &removals, &proofs, false,
                )?;
                let staged = group
                    .pending_commit()
                    .ok_or_else(|| Error::Protocol("no pending commit".into()))?;
                let tree = staged
                    .export_ratchet_tree(provider.crypto(), group.export_ratchet_tree())
                    .map_err(|e| Error::mls("export ratchet tree", e))?
                    .ok_or_else(|| Error::Protocol("no ratchet tree after own commit".into()))?;
                ratchet_tree = Some(
                    tree.tls_serialize_detached()
                        .map_err(|e| Error::mls("encode ratchet tree", e))?,
                );
                (commit, welcome)
            } else {
                (commit, welcome)
            }
        }
        Intent::Remove(dids) => {
            let own = group.own_leaf_index();
            let leaves: Vec<LeafNodeIndex> = group
                .members()
                .filter(|m| m.index != own)
                .filter(|m| credential_did(&m.credential).is_ok_and(|d| dids.contains(&d)))
                .map(|m| m.index)
                .collect();
            if leaves.is_empty() {
                return Ok(None);
            }
            let (commit, welcome, _) = group
                .remove_members(provider, signer, &leaves)
                .map_err(|e| Error::mls("remove members", e))?;
            (commit, welcome)
        }
        Intent::Update(change) => {
            let next = change.apply(&data);
            if next == data {
                return Ok(None);
            }
            let extensions = with_data(group.extensions(), &next)?;
            let (commit, welcome, _) = group
                .update_group_context_extensions(provider, extensions, signer)
                .map_err(|e| Error::mls("update group data", e))?;
            (commit, welcome)
        }
        Intent::SelfUpdate { rotate: false } => {
            let bundle = group
                .self_update(provider, signer, LeafNodeParameters::default())
                .map_err(|e| Error::mls("self-update", e))?;
            let (commit, welcome, _) = bundle.into_messages();
            (commit, welcome)
        }
        Intent::SelfUpdate { rotate: true } => {
            let scheme = signer.signature_scheme();
            let (private, public) = provider
                .crypto()
                .signature_key_gen(scheme)
                .map_err(|e| Error::mls("new signature key", e))?;
            let fresh = SignatureKeyPair::from_raw(scheme, private, public);
            fresh
                .store(provider.storage())
                .map_err(|e| Error::mls("store signature key", e))?;
            let credential = group
                .own_leaf_node()
                .ok_or(Error::NotMember)?
                .credential()
                .clone();
            // The new key gets its own device binding (§11.16).
            let params = LeafNodeParameters::builder()
                .with_extensions(binder.leaf_extensions(group.ciphersuite(), fresh.public())?)
                .build();
            let bundle = group
                .self_update_with_new_signer(
                    provider,
                    signer,
                    NewSignerBundle {
                        signer: &fresh,
                        credential_with_key: CredentialWithKey {
                            credential,
                            signature_key: fresh.public().into(),
                        },
                    },
                    params,
                )
                .map_err(|e| Error::mls("rotate signature key", e))?;
            new_signer = Some(fresh.to_public_vec());
            let (commit, welcome, _) = bundle.into_messages();
            (commit, welcome)
        }
        Intent::CommitProposals => {
            if group.pending_proposals().next().is_none() {
                return Ok(None);
            }
            let (commit, welcome, _) = group
                .commit_to_pending_proposals(provider, signer)
                .map_err(|e| Error::mls("commit proposals", e))?;
            (commit, welcome)
        }
    };
    let staged = group
        .pending_commit()
        .ok_or_else(|| Error::Protocol("no pending commit after building one".into()))?;
    let next_data = group_data(staged.group_context().extensions())
        .map_err(|e| Error::Protocol(e.to_string()))?;
    let next_key = staged_mailbox_key(staged, provider.crypto(), &next_data.mailbox)
        .map_err(|e| Error::mls("next mailbox key", e))?;
    let welcome = match welcome {
        Some(w) if !targets.is_empty() => WelcomePlan {
            welcome: w
                .tls_serialize_detached()
                .map_err(|e| Error::mls("encode welcome", e))?,
            targets,
            ratchet_tree,
        },
        _ => WelcomePlan::default(),
    };
    let message = commit
        .tls_serialize_detached()
        .map_err(|e| Error::mls("encode commit", e))?;
    let payload = content::pad(message, max_envelope);
    Ok(Some(BuiltCommit {
        epoch,
        key,
        next_key: next_key.verifying_key().to_bytes(),
        mailbox: grp::mailbox_of(&data),
        ds: data.ds.clone(),
        pending: PendingCommit {
            intent: intent.name().into(),
            epoch,
            digest: Sha256::digest(&payload).to_vec(),
            plan: welcome,
            new_signer,
        },
        payload,
    }))
}

/// Whether the member `me` commits the leave proposals pending in `group`: admins do;
/// when no admin stays in the group (the last ones are leaving or left), every remaining
/// member does (the first commit wins, §11.8). A member that is leaving itself does not.
pub(crate) fn commits_leaves(group: &MlsGroup, me: &Did) -> bool {
    let Ok(data) = group_data(group.extensions()) else {
        return false;
    };
    let leaving: Vec<LeafNodeIndex> = group
        .pending_proposals()
        .filter_map(|p| match p.proposal() {
            Proposal::Remove(r) => Some(r.removed()),
            _ => None,
        })
        .collect();
    if leaving.contains(&group.own_leaf_index()) {
        return false;
    }
    if data.is_admin(me.as_str()) {
        return true;
    }
    let admin_stays = group.members().any(|m| {
        !leaving.contains(&m.index)
            && credential_did(&m.credential).is_ok_and(|d| data.is_admin(d.as_str()))
    });
    !admin_stays
}

/// The leaves of `k`'s account carrying `k`'s device id (this device's own excepted):
/// what a re-add removes.
fn stale_leaves(group: &MlsGroup, k: &VerifiedKeyPackage) -> Vec<LeafNodeIndex> {
    let own = group.own_leaf_index().u32();
    grp::members(group)
        .into_iter()
        .filter(|m| m.leaf != own && m.did == k.did)
        .filter(|m| m.device_id.as_deref() == Some(k.device_id.as_str()))
        .map(|m| LeafNodeIndex::new(m.leaf))
        .collect()
}

/// Takes the pending commit out of `group` (the MLS half of the device's
/// `drop_pending`; also used when a commit is built again without its tree).
pub(crate) fn unstage(provider: &Provider<'_>, group: &mut MlsGroup) -> Result<(), Error> {
    group
        .clear_pending_commit(provider.storage())
        .map_err(|e| Error::mls("clear pending commit", e))
}

/// Stages the commit adding `packages` (with their leaf proofs); the Welcome carries the
/// ratchet tree when `inline_tree`.
fn add_commit(
    provider: &Provider<'_>,
    group: &mut MlsGroup,
    signer: &SignatureKeyPair,
    packages: &[KeyPackage],
    removals: &[LeafNodeIndex],
    proofs: &Option<Proposal>,
    inline_tree: bool,
) -> Result<(MlsMessageOut, Option<MlsMessageOut>), Error> {
    grp::reentry::tag_next(group);
    let bundle = group
        .commit_builder()
        .propose_removals(removals.iter().copied())
        .propose_adds(packages.to_vec())
        .add_proposals(proofs.clone())
        .force_self_update(true)
        .load_psks(provider.storage())
        .map_err(|e| Error::mls("add members", e))?
        .use_ratchet_tree_extension(inline_tree)
        .build(provider.rand(), provider.crypto(), signer, |_| true)
        .map_err(|e| Error::mls("add members", e))?
        .stage_commit(provider)
        .map_err(|e| Error::mls("add members", e))?;
    let (commit, welcome, _) = bundle.into_messages();
    Ok((commit, welcome))
}
