//! Building this device's KeyPackages and their record values.

use atmls_lexicon::chat::mls::{declaration, defs, key_package};
use atmls_lexicon::generated::KnownRecord;
use atrium_api::types::string::Datetime;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;

use crate::device::store::Provider;
use crate::group::binding::Binder;
use crate::group::{
    DEVICE_BINDING_EXTENSION_TYPE, GROUP_DATA_EXTENSION_TYPE, LEAF_PROOFS_PROPOSAL_TYPE,
};

/// The capabilities every leaf of this client advertises: the group data extension,
/// `last_resort` (NOTES: both must be listed or adds fail) and the leaf-proofs proposal.
pub fn capabilities(ciphersuite: Ciphersuite) -> Capabilities {
    Capabilities::builder()
        .ciphersuites(vec![ciphersuite])
        .extensions(vec![
            ExtensionType::Unknown(GROUP_DATA_EXTENSION_TYPE),
            ExtensionType::LastResort,
        ])
        .proposals(vec![ProposalType::Custom(LEAF_PROOFS_PROPOSAL_TYPE)])
        .credentials(vec![CredentialType::Basic])
        .build()
}

/// The capabilities of this client's leaves: [`capabilities`] and the device binding
/// leaf extension `0xF0A9` (docs/spec.md §11.16), which every leaf carries.
pub fn leaf_capabilities(ciphersuite: Ciphersuite) -> Capabilities {
    Capabilities::builder()
        .ciphersuites(vec![ciphersuite])
        .extensions(vec![
            ExtensionType::Unknown(GROUP_DATA_EXTENSION_TYPE),
            ExtensionType::LastResort,
            ExtensionType::Unknown(DEVICE_BINDING_EXTENSION_TYPE),
        ])
        .proposals(vec![ProposalType::Custom(LEAF_PROOFS_PROPOSAL_TYPE)])
        .credentials(vec![CredentialType::Basic])
        .build()
}

/// A KeyPackage built and stored (private keys in the device database), with its record.
#[derive(Debug)]
pub(crate) struct BuiltKeyPackage {
    pub(crate) key_package_ref: Vec<u8>,
    pub(crate) rkey: String,
    pub(crate) last_resort: bool,
    pub(crate) expires_at: i64,
    pub(crate) record: serde_json::Value,
}

pub(crate) struct KeyPackageParams<'a> {
    pub(crate) ciphersuite: Ciphersuite,
    pub(crate) did: &'a str,
    pub(crate) device_id: &'a str,
    pub(crate) inbox_ds: &'a str,
    pub(crate) inbox_mailbox: &'a str,
    pub(crate) lifetime_secs: u64,
    pub(crate) last_resort: bool,
    /// Signs the leaf's device binding (its `did` and `device_id` are this package's).
    pub(crate) binder: &'a Binder,
    /// When it is created (Unix milliseconds, the device clock): its `createdAt`,
    /// `expiresAt` and MLS lifetime run from here.
    pub(crate) now: i64,
}

/// Longest MLS lifetime range openmls considers acceptable (84 days and an hour).
const MAX_MLS_LIFETIME_SECS: u64 = 84 * 86_400 + 3_600;
/// How far before its creation a KeyPackage's MLS lifetime starts (receivers' clocks
/// behind the creator's).
const MLS_LIFETIME_BACKDATE_SECS: u64 = 86_400;

/// The MLS lifetime of a KeyPackage created at `now` (Unix seconds) whose record expires
/// `lifetime_secs` later. When a KeyPackage expires is decided by its record's
/// `expiresAt` against the instant the DS accepted the commit (§11.13), the same at every
/// member; openmls however checks the MLS lifetime of an added leaf against the local
/// clock of each receiver, and a receiver that fails it never merges the commit (it
/// is forked off the group). So the MLS lifetime is as wide as openmls accepts: from a
/// day before creation to 84 days after it (or `expiresAt` and a day, if later), which
/// leaves receivers at least 53 days (with the default 30-day `expiresAt`) after the
/// latest possible commit to process it.
pub(crate) fn mls_lifetime(now: u64, lifetime_secs: u64) -> Result<Lifetime, crate::Error> {
    use openmls::prelude::tls_codec::Deserialize as _;
    let not_before = now.saturating_sub(MLS_LIFETIME_BACKDATE_SECS);
    let not_after = (not_before + MAX_MLS_LIFETIME_SECS)
        .max(now.saturating_add(lifetime_secs).saturating_add(86_400));
    let mut bytes = not_before.to_be_bytes().to_vec();
    bytes.extend_from_slice(&not_after.to_be_bytes());
    Lifetime::tls_deserialize_exact(bytes.as_slice())
        .map_err(|e| crate::Error::mls("key package lifetime", e))
}

/// Builds one KeyPackage (stored by openmls in the device database) and its record value.
pub(crate) fn build_key_package(
    provider: &Provider<'_>,
    signer: &SignatureKeyPair,
    p: &KeyPackageParams<'_>,
    rkey: String,
) -> Result<BuiltKeyPackage, crate::Error> {
    let credential = BasicCredential::new(p.did.as_bytes().to_vec());
    let with_key = CredentialWithKey {
        credential: credential.into(),
        signature_key: signer.public().into(),
    };
    let leaf_extensions = p.binder.leaf_extensions(p.ciphersuite, signer.public())?;
    let mut builder = KeyPackage::builder()
        .leaf_node_capabilities(leaf_capabilities(p.ciphersuite))
        .leaf_node_extensions(leaf_extensions)
        .key_package_lifetime(mls_lifetime(
            u64::try_from(p.now / 1000).unwrap_or(0),
            p.lifetime_secs,
        )?);
    if p.last_resort {
        builder = builder.mark_as_last_resort();
    }
    let bundle = builder
        .build(p.ciphersuite, provider, signer, with_key)
        .map_err(|e| crate::Error::mls("build key package", e))?;
    let key_package = bundle.key_package().clone();
    let key_package_ref = key_package
        .hash_ref(openmls_traits::OpenMlsProvider::crypto(provider))
        .map_err(|e| crate::Error::mls("key package ref", e))?
        .as_slice()
        .to_vec();
    let message = MlsMessageOut::from(key_package)
        .tls_serialize_detached()
        .map_err(|e| crate::Error::mls("encode key package", e))?;
    let now = utc(p.now);
    let expires = now
        + chrono::Duration::seconds(i64::try_from(p.lifetime_secs).unwrap_or(i64::MAX / 2_000_000));
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        crate::Error::from(crate::error::StoreError::Device(format!(
            "key package record: {what}: {e}"
        )))
    };
    let time = |t| {
        datetime(t)
            .parse::<Datetime>()
            .map_err(|e| invalid("datetime", &e))
    };
    let data = key_package::RecordData {
        key_package: message.into(),
        key_package_ref: key_package_ref.clone().into(),
        ciphersuite: i64::from(u16::from(p.ciphersuite)),
        device_id: p.device_id.to_owned(),
        inbox: defs::MailboxRefData {
            service: p.inbox_ds.parse().map_err(|e| invalid("inbox DS", &e))?,
            mailbox: p.inbox_mailbox.to_owned(),
        }
        .into(),
        last_resort: p.last_resort,
        created_at: time(now)?,
        expires_at: time(expires)?,
    };
    // `$type` first, then the fields in the generated (wire) order.
    let record =
        serde_json::to_value(KnownRecord::from(data)).map_err(|e| invalid("encode", &e))?;
    Ok(BuiltKeyPackage {
        key_package_ref,
        rkey,
        last_resort: p.last_resort,
        expires_at: expires.timestamp(),
        record,
    })
}

/// A device-clock reading (Unix milliseconds) as a date and time (the epoch if out of
/// range).
pub(crate) fn utc(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// An atproto datetime with milliseconds and `Z`.
pub(crate) fn datetime(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The `chat.mls.declaration` record value (generated type, `$type` first): the account
/// uses `ds` and takes invitations per `invite_policy`, in `ciphersuites` (preferred
/// first, §11.19).
pub(crate) fn declaration_record(
    ds: &str,
    invite_policy: &str,
    ciphersuites: &[u16],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<serde_json::Value, crate::Error> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        crate::Error::from(crate::error::StoreError::Device(format!(
            "declaration record: {what}: {e}"
        )))
    };
    let data = declaration::RecordData {
        delivery_service: ds.parse().map_err(|e| invalid("delivery service", &e))?,
        invite_policy: invite_policy.to_owned(),
        ciphersuites: ciphersuites.iter().copied().map(i64::from).collect(),
        created_at: datetime(now)
            .parse::<Datetime>()
            .map_err(|e| invalid("datetime", &e))?,
    };
    serde_json::to_value(KnownRecord::from(data)).map_err(|e| invalid("encode", &e))
}
