//! Groups: the group data extension, mailbox keys, sealed welcomes, the proofs of added
//! leaves. What a commit, an envelope or a welcome comes to is decided in
//! [`crate::decide`].

pub mod binding;
pub(crate) mod create;
mod extension;
mod lifetime;
pub(crate) mod proofs;
pub mod reentry;
pub mod seal;

use atmls_ds_proto::MailboxId;
use atmls_identity::Did;
use openmls::prelude::*;

pub use binding::{DEVICE_BINDING_EXTENSION_TYPE, DEVICE_COLLECTION};
pub use extension::{GROUP_DATA_EXTENSION_TYPE, GroupData, GroupDataError, PaddingPolicy};
pub use lifetime::{
    LifetimeOutOfBounds, MAX_MESSAGE_LIFETIME, MIN_MESSAGE_LIFETIME, MessageLifetime,
    lifetime_seconds,
};
pub use proofs::LEAF_PROOFS_PROPOSAL_TYPE;
pub use seal::{MAILBOX_KEY_LABEL, WELCOME_INFO};

use crate::error::PolicyViolation;

/// A group's id (the MLS group id: 32 random bytes that never leave the members).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub(crate) Vec<u8>);

impl GroupId {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0[..self.0.len().min(6)] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// One member device of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The account.
    pub did: Did,
    /// The device's id (its leaf's `application_id`), if it carries one.
    pub device_id: Option<String>,
    /// The leaf index.
    pub leaf: u32,
    /// The leaf's signature public key (it changes when the device rotates it, §11.16).
    pub signature_key: Vec<u8>,
}

/// A snapshot of a group as this device sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group's id.
    pub id: GroupId,
    /// The MLS epoch.
    pub epoch: u64,
    /// The group's MLS ciphersuite code point (0x0001, or 0x004D for X-Wing; §11.19).
    pub ciphersuite: u16,
    /// The epoch authenticator (equal at every member in the same epoch).
    pub epoch_authenticator: Vec<u8>,
    /// Name, description, admins, mailbox.
    pub data: GroupData,
    /// Member devices, by leaf index.
    pub members: Vec<Member>,
    /// Whether this device is still a member.
    pub active: bool,
    /// Why this device cannot go on in the group, while it waits to be re-added
    /// (docs/spec.md §11.17); `None` when it can.
    pub broken: Option<reentry::BrokenReason>,
}

impl Group {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.data.name
    }

    /// The accounts that are members (each once).
    pub fn member_dids(&self) -> Vec<Did> {
        let mut dids: Vec<Did> = self.members.iter().map(|m| m.did.clone()).collect();
        dids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        dids.dedup();
        dids
    }
}

/// The group data of the group's current context.
pub(crate) fn group_data(
    extensions: &Extensions<GroupContext>,
) -> Result<GroupData, PolicyViolation> {
    let ext = extensions
        .unknown(GROUP_DATA_EXTENSION_TYPE)
        .ok_or_else(|| PolicyViolation::GroupData("missing".into()))?;
    GroupData::from_bytes(&ext.0).map_err(|e| PolicyViolation::GroupData(e.to_string()))
}

/// The DID a credential speaks for.
pub(crate) fn credential_did(credential: &Credential) -> Result<Did, PolicyViolation> {
    let basic = BasicCredential::try_from(credential.clone())
        .map_err(|_| PolicyViolation::BadCredential("not a basic credential".into()))?;
    let text = std::str::from_utf8(basic.identity())
        .map_err(|_| PolicyViolation::BadCredential("not UTF-8".into()))?;
    Did::new(text).map_err(|_| PolicyViolation::BadCredential(text.to_owned()))
}

/// The device id a leaf carries in its `application_id` extension.
pub(crate) fn leaf_device_id(leaf: &LeafNode) -> Option<String> {
    leaf.extensions()
        .application_id()
        .and_then(|a| String::from_utf8(a.as_slice().to_vec()).ok())
}

/// The members of `group`.
pub(crate) fn members(group: &MlsGroup) -> Vec<Member> {
    group
        .members()
        .filter_map(|m| {
            let did = credential_did(&m.credential).ok()?;
            let device_id = group.public_group().leaf(m.index).and_then(leaf_device_id);
            Some(Member {
                did,
                device_id,
                leaf: m.index.u32(),
                signature_key: m.signature_key,
            })
        })
        .collect()
}

/// A snapshot of `group`.
pub(crate) fn snapshot(group: &MlsGroup, active: bool) -> Result<Group, PolicyViolation> {
    Ok(Group {
        id: GroupId(group.group_id().as_slice().to_vec()),
        epoch: group.epoch().as_u64(),
        ciphersuite: u16::from(group.ciphersuite()),
        epoch_authenticator: group.epoch_authenticator().as_slice().to_vec(),
        data: group_data(group.extensions())?,
        members: members(group),
        active,
        broken: None,
    })
}

/// The group data extension as a GroupContext extension.
pub fn data_extension(data: &GroupData) -> Extension {
    Extension::Unknown(GROUP_DATA_EXTENSION_TYPE, UnknownExtension(data.to_bytes()))
}

/// `extensions` with the group data replaced by `data` (others kept).
pub(crate) fn with_data(
    extensions: &Extensions<GroupContext>,
    data: &GroupData,
) -> Result<Extensions<GroupContext>, crate::Error> {
    let mut out: Vec<Extension> = extensions
        .iter()
        .filter(|e| e.extension_type() != ExtensionType::Unknown(GROUP_DATA_EXTENSION_TYPE))
        .cloned()
        .collect();
    out.push(data_extension(data));
    Extensions::from_vec(out).map_err(|e| crate::Error::mls("group extensions", e))
}

/// The mailbox of a group data value.
pub(crate) fn mailbox_of(data: &GroupData) -> MailboxId {
    MailboxId::from_bytes(data.mailbox)
}
