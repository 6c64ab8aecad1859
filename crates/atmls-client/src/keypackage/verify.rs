//! Verifying another account's KeyPackage record (docs/spec.md §3.3, in that order).

use atmls_ds_proto::MailboxId;
use atmls_identity::{Did, DidDocument};
use atmls_lexicon::chat::mls::key_package;
use atmls_repo::{Nsid, RecordKey, RepoPath};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls_traits::crypto::OpenMlsCrypto;

use super::KEY_PACKAGE_COLLECTION;
use crate::error::KeyPackageRefusal;
use crate::group::{GROUP_DATA_EXTENSION_TYPE, LEAF_PROOFS_PROPOSAL_TYPE};

/// A KeyPackage record that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedKeyPackage {
    /// The account.
    pub did: Did,
    /// The record key.
    pub rkey: String,
    /// The device's opaque id.
    pub device_id: String,
    /// The DS of the device's inbox.
    pub inbox_ds: Did,
    /// The device's inbox.
    pub inbox: MailboxId,
    /// Whether this is the device's last-resort package.
    pub last_resort: bool,
    /// The validated KeyPackage.
    pub key_package: KeyPackage,
    /// The repo revision of the proof.
    pub rev: String,
    /// The `getRecord` CAR that proved it (travels with the commit that adds it, §11.13).
    pub(crate) proof: Vec<u8>,
    /// The record's `expiresAt` (Unix seconds).
    pub(crate) expires_at: i64,
}

/// Steps 1–7 of §3.3 for any record: the DID document's `#atproto` key, the CAR, the
/// signed commit of `did`'s repo, and the MST path to `collection/rkey`. Returns the
/// proof's repo revision and the record as JSON (`None`: proven absent).
pub(crate) fn prove_record(
    doc: &DidDocument,
    did: &Did,
    collection: &str,
    rkey: &str,
    car: &[u8],
) -> Result<(atmls_syntax::Tid, Option<serde_json::Value>), KeyPackageRefusal> {
    use KeyPackageRefusal as R;
    // 1. DID document.
    if &doc.id != did {
        return Err(R::DidDocument(format!("document is for {}", doc.id)));
    }
    let key = doc
        .atproto_key()
        .map_err(|e| R::DidDocument(e.to_string()))?;
    // 2–7. CAR, commit, repo identity, signature, MST path, record.
    let repo_did = atmls_repo::Did::new(did.as_str()).map_err(|e| R::DidDocument(e.to_string()))?;
    let path = RepoPath::new(
        Nsid::new(collection).map_err(|e| R::Proof(e.to_string()))?,
        RecordKey::new(rkey).map_err(|e| R::Proof(e.to_string()))?,
    );
    let proof = atmls_repo::proof::verify_record_proof(car, &repo_did, &key, &path)
        .map_err(|e| R::Proof(e.to_string()))?;
    let rev = proof.commit().rev();
    let json = proof
        .record()
        .map(|(_, value)| atmls_repo::json::from_ipld(value).map_err(|e| R::Lexicon(e.to_string())))
        .transpose()?;
    if let Some(json) = &json {
        crate::lexicons::validate_record(collection, json).map_err(R::Lexicon)?;
    }
    Ok((rev, json))
}

/// A KeyPackage the committer adds must stay unexpired this long after its check
/// (commit retries, the DS's clock ahead of the committer's).
const EXPIRY_MARGIN_SECS: i64 = 3600;

/// Runs §3.3 on one record proof. `seen_rev` is the highest rev already verified for
/// the DID; `now` is Unix seconds.
#[allow(clippy::too_many_arguments)] // the inputs of §3.3, each needed
pub(crate) fn verify_key_package(
    crypto: &impl OpenMlsCrypto,
    doc: &DidDocument,
    did: &Did,
    rkey: &str,
    car: &[u8],
    seen_rev: Option<&str>,
    supported: &[Ciphersuite],
    now: i64,
) -> Result<VerifiedKeyPackage, KeyPackageRefusal> {
    use KeyPackageRefusal as R;
    let (rev_tid, json) = prove_record(doc, did, KEY_PACKAGE_COLLECTION, rkey, car)?;
    let rev = rev_tid.to_string();
    if let Some(seen) = seen_rev
        && rev.as_str() < seen
    {
        return Err(R::StaleRevision {
            proof: rev,
            seen: seen.to_owned(),
        });
    }
    let json = json.ok_or(R::Absent)?;
    // 8. Content: lexicon (checked above), then MLS.
    let record: key_package::RecordData =
        serde_json::from_value(json).map_err(|e| R::Lexicon(e.to_string()))?;
    let message = MlsMessageIn::tls_deserialize_exact(record.key_package.as_slice())
        .map_err(|e| R::Malformed(e.to_string()))?;
    let MlsMessageBodyIn::KeyPackage(key_package_in) = message.extract() else {
        return Err(R::Malformed("not a KeyPackage message".into()));
    };
    let key_package = key_package_in
        .validate(crypto, ProtocolVersion::Mls10)
        .map_err(|e| R::Invalid(e.to_string()))?;
    let hash_ref = key_package
        .hash_ref(crypto)
        .map_err(|e| R::Invalid(e.to_string()))?;
    if hash_ref.as_slice() != record.key_package_ref.as_slice() {
        return Err(R::RefMismatch);
    }
    // Receivers compare the record's bytes with the added KeyPackage as re-encoded in the
    // commit (§11.13): a record that is not the canonical encoding would be refused by
    // them after this committer merged.
    let canonical = {
        use openmls::prelude::tls_codec::Serialize as _;
        MlsMessageOut::from(key_package.clone())
            .tls_serialize_detached()
            .map_err(|e| R::Malformed(e.to_string()))?
    };
    if canonical.as_slice() != record.key_package.as_slice() {
        return Err(R::Malformed("not the canonical encoding".into()));
    }
    let credential = BasicCredential::try_from(key_package.leaf_node().credential().clone())
        .map_err(|_| R::WrongIdentity {
            found: "(not a basic credential)".into(),
        })?;
    if credential.identity() != did.as_str().as_bytes() {
        return Err(R::WrongIdentity {
            found: String::from_utf8_lossy(credential.identity()).into_owned(),
        });
    }
    let suite = u16::from(key_package.ciphersuite());
    if i64::from(suite) != record.ciphersuite || !supported.contains(&key_package.ciphersuite()) {
        return Err(R::Ciphersuite(
            u16::try_from(record.ciphersuite).unwrap_or(suite),
        ));
    }
    let expires = chrono::DateTime::parse_from_rfc3339(record.expires_at.as_str())
        .map_err(|e| R::Lexicon(e.to_string()))?;
    // Receivers compare `expiresAt` with when the DS accepted the commit (§11.13), a
    // little later than now: a package this close to expiry is not used.
    if expires.timestamp() <= now.saturating_add(EXPIRY_MARGIN_SECS) {
        return Err(R::Expired(record.expires_at.as_str().to_owned()));
    }
    let capabilities = key_package.leaf_node().capabilities();
    if !capabilities
        .extensions()
        .contains(&ExtensionType::Unknown(GROUP_DATA_EXTENSION_TYPE))
        || !capabilities
            .proposals()
            .contains(&ProposalType::Custom(LEAF_PROOFS_PROPOSAL_TYPE))
    {
        return Err(R::MissingCapability);
    }
    // 9. The leaf's device binding (§11.16): receivers refuse an unbound added leaf, so
    // the committer does not add one.
    crate::group::binding::check_leaf(doc, did, key_package.leaf_node(), key_package.ciphersuite())
        .map_err(|r| R::DeviceBinding(Box::new(r)))?;
    Ok(VerifiedKeyPackage {
        did: did.clone(),
        rkey: rkey.to_owned(),
        device_id: record.device_id,
        inbox_ds: Did::new(record.inbox.service.as_str()).map_err(|e| R::Lexicon(e.to_string()))?,
        inbox: record
            .inbox
            .mailbox
            .parse()
            .map_err(|_| R::Lexicon("inbox mailbox id".into()))?,
        last_resort: record.last_resort,
        key_package,
        rev,
        proof: car.to_vec(),
        expires_at: expires.timestamp(),
    })
}

/// A receiver's check of the proof that travels with an added leaf (§11.13): steps 1–7
/// of §3.3 against `did` (the added credential's identity), and a record holding exactly
/// the added KeyPackage, not expired at `accepted_ms` (when the DS accepted the commit:
/// the same instant for every receiver). The proof's revision is not bounded: it is the
/// repo's head when the committer read it, as old as the account's last write. Returns
/// the proof's revision.
pub(crate) fn verify_added_key_package(
    crypto: &impl OpenMlsCrypto,
    doc: &DidDocument,
    did: &Did,
    rkey: &str,
    car: &[u8],
    added: &KeyPackage,
    accepted_ms: u64,
) -> Result<String, KeyPackageRefusal> {
    use KeyPackageRefusal as R;
    use openmls::prelude::tls_codec::Serialize as _;
    let (rev, json) = prove_record(doc, did, KEY_PACKAGE_COLLECTION, rkey, car)?;
    let json = json.ok_or(R::Absent)?;
    let record: key_package::RecordData =
        serde_json::from_value(json).map_err(|e| R::Lexicon(e.to_string()))?;
    let expected = MlsMessageOut::from(added.clone())
        .tls_serialize_detached()
        .map_err(|e| R::Malformed(e.to_string()))?;
    let hash_ref = added
        .hash_ref(crypto)
        .map_err(|e| R::Invalid(e.to_string()))?;
    if record.key_package.as_slice() != expected.as_slice()
        || record.key_package_ref.as_slice() != hash_ref.as_slice()
    {
        return Err(R::NotAdded);
    }
    if record.ciphersuite != i64::from(u16::from(added.ciphersuite())) {
        return Err(R::Ciphersuite(
            u16::try_from(record.ciphersuite).unwrap_or_default(),
        ));
    }
    let expires = chrono::DateTime::parse_from_rfc3339(record.expires_at.as_str())
        .map_err(|e| R::Lexicon(e.to_string()))?;
    let accepted_s = i64::try_from(accepted_ms / 1000).unwrap_or(i64::MAX);
    if expires.timestamp() <= accepted_s {
        return Err(R::Expired(record.expires_at.as_str().to_owned()));
    }
    Ok(rev.to_string())
}
