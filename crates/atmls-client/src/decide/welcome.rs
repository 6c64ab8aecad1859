//! What one inbox item (a sealed welcome, docs/spec.md §11.4) comes to: opened with one
//! of this device's KeyPackages, then joined, or refused with a reason.

use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls_traits::storage::StorageProvider as _;

use crate::device::store::{KeyPackageRow, Provider};
use crate::error::{Error, PolicyViolation, StoreError};
use crate::group::seal::{self, WelcomeInfo};
use crate::group::{self as grp, GroupData};

/// Why an inbox item was refused (each is permanent: the same bytes would be refused
/// again; a tree that could not be fetched is the device's to retry, not this).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum WelcomeRefusal {
    /// No KeyPackage of this device opens it.
    #[error("welcome is not sealed to any of this device's KeyPackages")]
    NotForThisDevice,
    /// It opens, but its content does not parse.
    #[error("{0}")]
    Malformed(String),
    /// The sealed MLS message is not a Welcome.
    #[error("sealed message is not a Welcome")]
    NotAWelcome,
    /// The out-of-band ratchet tree does not parse.
    #[error("ratchet tree: {0}")]
    RatchetTree(String),
    /// openmls refused the Welcome (secrets, tree, lifetimes, capabilities).
    #[error("join: {0}")]
    Join(String),
    /// The group's data extension is missing or does not parse.
    #[error("{0}")]
    GroupData(PolicyViolation),
    /// The welcome names another mailbox or DS than the group data does.
    #[error("the welcome's mailbox is not the group's")]
    MailboxMismatch,
    /// The welcome is for a group this device is a member of, and its state there is
    /// not broken (§11.17): it is not replaced.
    #[error("already a member of that group")]
    AlreadyMember,
}

/// A welcome opened with one of this device's KeyPackages.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    /// What the inviter sealed.
    pub(crate) info: WelcomeInfo,
    /// The KeyPackage that opened it.
    pub(crate) package: KeyPackageRow,
}

/// A group joined from a welcome: the MLS group (stored by openmls) and what the device
/// records about it.
#[derive(Debug)]
pub(crate) struct Joined {
    /// The group.
    pub(crate) group: MlsGroup,
    /// Its data (name, DS, mailbox).
    pub(crate) data: GroupData,
    /// The mailbox cursor to read from (the commit that added us is before it).
    pub(crate) cursor: u64,
    /// The KeyPackage the welcome consumed.
    pub(crate) package: KeyPackageRow,
}

/// Opens a sealed welcome with one of `packages` (this device's, whose private keys
/// openmls keeps), with the HPKE of each package's own suite (§11.19). `Err` is a local
/// storage failure.
pub(crate) fn open(
    provider: &Provider<'_>,
    packages: Vec<KeyPackageRow>,
    payload: &[u8],
) -> Result<Result<Opened, WelcomeRefusal>, Error> {
    for package in packages {
        let Some(hash_ref) = crate::keypackage::key_package_ref(&package.key_package_ref) else {
            continue;
        };
        let bundle: Option<KeyPackageBundle> = provider
            .storage()
            .key_package(&hash_ref)
            .map_err(StoreError::Sqlite)?;
        let Some(bundle) = bundle else { continue };
        let Some(plain) = seal::open_welcome(
            provider.crypto(),
            bundle.key_package().ciphersuite().hpke_config(),
            bundle.init_private_key(),
            payload,
        ) else {
            continue;
        };
        return Ok(WelcomeInfo::from_cbor(&plain)
            .map(|info| Opened { info, package })
            .map_err(WelcomeRefusal::Malformed));
    }
    Ok(Err(WelcomeRefusal::NotForThisDevice))
}

/// Joins the group of an opened welcome; `tree` is the out-of-band ratchet tree
/// (TLS-encoded) when the Welcome leaves it out. A group joined and then refused (its
/// mailbox is not the welcome's) is deleted again. A group this device already holds is
/// replaced only if `replaceable` names it (broken or left, §11.17), and only once the
/// welcome is verified.
pub(crate) fn join(
    provider: &Provider<'_>,
    opened: Opened,
    tree: Option<Vec<u8>>,
    replaceable: &[Vec<u8>],
) -> Result<Joined, WelcomeRefusal> {
    let Opened { info, package } = opened;
    let message = MlsMessageIn::tls_deserialize_exact(info.welcome.as_slice())
        .map_err(|e| WelcomeRefusal::Malformed(e.to_string()))?;
    let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
        return Err(WelcomeRefusal::NotAWelcome);
    };
    let tree = tree
        .map(|t| {
            RatchetTreeIn::tls_deserialize_exact(t.as_slice())
                .map_err(|e| WelcomeRefusal::RatchetTree(e.to_string()))
        })
        .transpose()?;
    let config = grp::create::join_config();
    let join_err = |e: WelcomeError<_>| WelcomeRefusal::Join(e.to_string());
    let mut builder =
        StagedWelcome::build_from_welcome(provider, &config, welcome).map_err(join_err)?;
    let id = builder
        .processed_welcome()
        .unverified_group_info()
        .group_id()
        .clone();
    let old =
        MlsGroup::load(provider.storage(), &id).map_err(|e| WelcomeRefusal::Join(e.to_string()))?;
    if old.is_some() {
        if !replaceable.iter().any(|r| r.as_slice() == id.as_slice()) {
            return Err(WelcomeRefusal::AlreadyMember);
        }
        builder = builder.replace_old_group();
    }
    if let Some(tree) = tree {
        builder = builder.with_ratchet_tree(tree);
    }
    let staged = builder.build().map_err(join_err)?;
    if let Some(mut old) = old {
        old.delete(provider.storage())
            .map_err(|e| WelcomeRefusal::Join(e.to_string()))?;
    }
    let group = staged.into_group(provider).map_err(join_err)?;
    let refused = |mut group: MlsGroup, why| {
        let _ = group.delete(provider.storage());
        Err(why)
    };
    let data = match grp::group_data(group.extensions()) {
        Ok(d) => d,
        Err(v) => return refused(group, WelcomeRefusal::GroupData(v)),
    };
    if data.mailbox != *info.mailbox.as_bytes() || data.ds != info.ds {
        return refused(group, WelcomeRefusal::MailboxMismatch);
    }
    Ok(Joined {
        group,
        data,
        cursor: info.from_seq.saturating_sub(1),
        package,
    })
}
