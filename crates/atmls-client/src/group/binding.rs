//! Device bindings (docs/spec.md §11.16): every leaf carries, in the leaf node extension
//! `0xF0A9`, a signature by its device's long-term device key over the account's DID, the
//! device id, the ciphersuite and the leaf's signature public key, together with the
//! `getRecord` proof of the `chat.mls.device` record that publishes that device key in
//! the account's repo. Anyone holding the leaf (a receiver of an update, a joiner given
//! the tree) checks it from the group state and the account's DID document alone.

use atmls_identity::{Did, DidDocument};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use openmls::prelude::*;

use super::extension::{Reader, put_vec};
use super::proofs::{Documents, LeafCheck};
use super::{credential_did, leaf_device_id};
use crate::error::{KeyPackageRefusal, PolicyViolation};

/// The leaf node extension type (private-use range, RFC 9420 §17.3) of the binding.
pub const DEVICE_BINDING_EXTENSION_TYPE: u16 = 0xF0A9;
/// The label that opens the signed content.
pub const DEVICE_BINDING_LABEL: &str = "chat.mls device binding v1";
/// The collection of device records.
pub const DEVICE_COLLECTION: &str = "chat.mls.device";
/// The version byte of the layout.
const VERSION: u8 = 1;
/// Longest device id (as in the `chat.mls.device` and `chat.mls.keyPackage` lexicons).
const MAX_DEVICE_ID: usize = 64;
/// Largest proof CAR of one record (as for leaf proofs, §11.13).
const MAX_CAR: usize = 1 << 20;
/// An Ed25519 signature.
const SIGNATURE_LEN: usize = 64;

/// A leaf's device binding: the extension's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceBinding {
    /// The device's id (equal to the leaf's `application_id` and the record key).
    pub device_id: String,
    /// The `com.atproto.sync.getRecord` CAR of `chat.mls.device/<device_id>`.
    pub proof: Vec<u8>,
    /// The device key's Ed25519 signature over [`signature_input`].
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why binding bytes do not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceBindingError {
    /// Unknown layout version.
    #[error("unknown version {0}")]
    Version(u8),
    /// Truncated, trailing bytes, a bad varint or a field over its limit.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The device id is not UTF-8.
    #[error("device id is not UTF-8")]
    DeviceId,
    /// The signature is not 64 bytes.
    #[error("signature is not 64 bytes")]
    SignatureLength,
}

impl DeviceBinding {
    /// `version(1) || device_id<V> || proof<V> || signature<V>` (MLS variable-length
    /// vectors, RFC 9420 §2.1.2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        put_vec(&mut out, self.device_id.as_bytes());
        put_vec(&mut out, &self.proof);
        put_vec(&mut out, &self.signature);
        out
    }

    /// Parses the extension strictly (version, minimal varints, limits, no trailing
    /// bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DeviceBindingError> {
        let bad = |e: super::GroupDataError| DeviceBindingError::Malformed(e.to_string());
        let mut r = Reader(bytes);
        let version = r.u8().map_err(bad)?;
        if version != VERSION {
            return Err(DeviceBindingError::Version(version));
        }
        let device_id = r.vec(MAX_DEVICE_ID, "device id").map_err(bad)?;
        let proof = r.vec(MAX_CAR, "proof").map_err(bad)?;
        let signature = r.vec(SIGNATURE_LEN, "signature").map_err(bad)?;
        if !r.0.is_empty() {
            return Err(DeviceBindingError::Malformed("trailing bytes".into()));
        }
        Ok(Self {
            device_id: String::from_utf8(device_id.to_vec())
                .map_err(|_| DeviceBindingError::DeviceId)?,
            proof: proof.to_vec(),
            signature: signature
                .try_into()
                .map_err(|_| DeviceBindingError::SignatureLength)?,
        })
    }

    /// Signs the binding of the leaf key `leaf_key` of `did`'s device `device_id` in
    /// `ciphersuite`, carrying `proof` (the device record's CAR).
    pub fn sign(
        device_key: &SigningKey,
        did: &str,
        device_id: &str,
        ciphersuite: u16,
        leaf_key: &[u8],
        proof: Vec<u8>,
    ) -> Self {
        let input = signature_input(did, device_id, ciphersuite, leaf_key);
        Self {
            device_id: device_id.to_owned(),
            proof,
            signature: device_key.sign(&input).to_bytes(),
        }
    }

    /// The binding as a leaf node extension.
    pub fn extension(&self) -> Extension {
        Extension::Unknown(
            DEVICE_BINDING_EXTENSION_TYPE,
            UnknownExtension(self.to_bytes()),
        )
    }
}

/// What this device signs its leaves' bindings with: its device key, its account and
/// device id, and the latest proof of its `chat.mls.device` record.
#[derive(Clone)]
pub(crate) struct Binder {
    pub(crate) key: SigningKey,
    pub(crate) did: String,
    pub(crate) device_id: String,
    pub(crate) proof: Vec<u8>,
}

impl std::fmt::Debug for Binder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Binder").finish_non_exhaustive()
    }
}

impl Binder {
    /// The leaf node extensions of a leaf of this device with signature key `leaf_key`
    /// in `ciphersuite`: `application_id` (the device id) and the device binding.
    pub(crate) fn leaf_extensions(
        &self,
        ciphersuite: Ciphersuite,
        leaf_key: &[u8],
    ) -> Result<Extensions<LeafNode>, crate::Error> {
        let binding = DeviceBinding::sign(
            &self.key,
            &self.did,
            &self.device_id,
            u16::from(ciphersuite),
            leaf_key,
            self.proof.clone(),
        );
        Extensions::from_vec(vec![
            Extension::ApplicationId(ApplicationIdExtension::new(self.device_id.as_bytes())),
            binding.extension(),
        ])
        .map_err(|e| crate::Error::mls("leaf extensions", e))
    }
}

/// The signed content, a TLS struct (RFC 9420 §2.1.2 vectors):
///
/// ```text
/// struct {
///   opaque label<V>;          // "chat.mls device binding v1"
///   opaque did<V>;            // the leaf credential's identity
///   opaque device_id<V>;
///   uint16 ciphersuite;
///   opaque signature_key<V>;  // the leaf's signature public key
/// } DeviceBindingTBS;
/// ```
pub fn signature_input(did: &str, device_id: &str, ciphersuite: u16, leaf_key: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_vec(&mut out, DEVICE_BINDING_LABEL.as_bytes());
    put_vec(&mut out, did.as_bytes());
    put_vec(&mut out, device_id.as_bytes());
    out.extend_from_slice(&ciphersuite.to_be_bytes());
    put_vec(&mut out, leaf_key);
    out
}

/// Why a leaf's binding was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingRefusal {
    /// The leaf carries no `0xF0A9` extension.
    #[error("no device binding")]
    Missing,
    /// The extension does not parse.
    #[error("device binding: {0}")]
    Malformed(DeviceBindingError),
    /// The leaf's `application_id` is not the binding's device id.
    #[error("the leaf's application_id is not the bound device id")]
    DeviceIdMismatch,
    /// The DID document, the CAR, or the record fails (steps 1–7 of §3.3).
    #[error("device record: {0}")]
    Record(KeyPackageRefusal),
    /// The proof verifies but the account's repo holds no such device record.
    #[error("the account has no such device record")]
    NoSuchDevice,
    /// The device key does not verify the signature.
    #[error("the device key does not verify the binding")]
    BadSignature,
}

/// Checks `leaf`'s device binding in a group of `ciphersuite` against the DID document
/// `doc` of the leaf credential's identity (docs/spec.md §11.16.4): the extension parses,
/// names the leaf's `application_id`, its CAR proves `chat.mls.device/<device_id>` in
/// that DID's repo, and the record's `deviceKey` verifies the signature over the DID,
/// the device id, the ciphersuite and the leaf's signature key.
pub(crate) fn verify_leaf(
    doc: &DidDocument,
    leaf: &LeafNode,
    ciphersuite: Ciphersuite,
) -> Result<(), PolicyViolation> {
    let did = credential_did(leaf.credential())?;
    check_leaf(doc, &did, leaf, ciphersuite).map_err(|reason| PolicyViolation::DeviceBinding {
        did: did.to_string(),
        reason,
    })
}

/// The leaves a commit brings whose binding this receiver has not checked before
/// (§11.16.5): every added KeyPackage's leaf, every Update proposal's leaf and the
/// committer's UpdatePath leaf, the last two unless they keep the signature key and the
/// binding of the leaf they replace (checked when it entered the group or this member
/// joined). Each must verify against its DID's document in force when the DS accepted
/// the commit (`accepted_ms`, its envelope's `receivedAt`), as the leaf proofs of §11.13:
/// a key rotation after that does not split a late member off.
pub(crate) fn check_commit_leaves(
    group: &MlsGroup,
    staged: &StagedCommit,
    committer: Option<LeafNodeIndex>,
    docs: &Documents,
    accepted_ms: u64,
) -> Result<(), LeafCheck> {
    let unchanged = |index: LeafNodeIndex, new: &LeafNode| {
        group.public_group().leaf(index).is_some_and(|old| {
            old.signature_key() == new.signature_key()
                && old.extensions().unknown(DEVICE_BINDING_EXTENSION_TYPE)
                    == new.extensions().unknown(DEVICE_BINDING_EXTENSION_TYPE)
        })
    };
    let mut leaves: Vec<LeafNode> = staged
        .add_proposals()
        .map(|a| a.add_proposal().key_package().leaf_node().clone())
        .collect();
    for update in staged.update_proposals() {
        let leaf = update.update_proposal().leaf_node();
        match update.sender() {
            Sender::Member(i) if unchanged(*i, leaf) => {}
            _ => leaves.push(leaf.clone()),
        }
    }
    if let Some(leaf) = staged.update_path_leaf_node() {
        match committer {
            Some(i) if unchanged(i, leaf) => {}
            _ => leaves.push(leaf.clone()),
        }
    }
    let leaves: Vec<&LeafNode> = leaves.iter().collect();
    check_leaves(&leaves, group.ciphersuite(), docs, Some(accepted_ms))
}

/// Checks every leaf of the tree a joiner is about to accept except its own
/// (§11.16.5): a welcome into a group with a member whose binding does not verify is
/// refused.
pub(crate) fn check_tree(group: &MlsGroup, docs: &Documents) -> Result<(), LeafCheck> {
    let own = group.own_leaf_index();
    let leaves: Vec<&LeafNode> = group
        .members()
        .filter(|m| m.index != own)
        .filter_map(|m| group.public_group().leaf(m.index))
        .collect();
    check_leaves(&leaves, group.ciphersuite(), docs, None)
}

/// Each leaf's binding against its DID's document — the one in force at `at` (Unix ms)
/// if given, else the current one: the documents missing from `docs` are asked for first
/// (all at once, each DID once); a DID that did not resolve refuses its leaves.
fn check_leaves(
    leaves: &[&LeafNode],
    ciphersuite: Ciphersuite,
    docs: &Documents,
    at: Option<u64>,
) -> Result<(), LeafCheck> {
    let mut dids = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        dids.push(credential_did(leaf.credential())?);
    }
    let mut missing: Vec<Did> = dids
        .iter()
        .filter(|d| !docs.contains_key(*d))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        return Err(LeafCheck::NeedDocuments(missing));
    }
    for (leaf, did) in leaves.iter().zip(&dids) {
        match docs.get(did) {
            // A joiner has no trusted time for a leaf already in the tree: the current
            // document, not the one at the proof's revision (the revision is chosen by
            // whoever signed the repo commit, so a retired key could backdate one,
            // §11.16.4).
            Some(Ok(history)) => {
                let doc = match at {
                    Some(ms) => history
                        .at(atmls_ds_proto::Timestamp::from_millis(ms))
                        .map_err(|e| e.to_string()),
                    None => history
                        .latest()
                        .ok_or_else(|| "the DID is tombstoned".to_owned()),
                };
                match doc {
                    Ok(doc) => verify_leaf(doc, leaf, ciphersuite)?,
                    Err(e) => {
                        return Err(PolicyViolation::DeviceBinding {
                            did: did.to_string(),
                            reason: BindingRefusal::Record(KeyPackageRefusal::DidDocument(e)),
                        }
                        .into());
                    }
                }
            }
            Some(Err(e)) => {
                return Err(PolicyViolation::DeviceBinding {
                    did: did.to_string(),
                    reason: BindingRefusal::Record(KeyPackageRefusal::DidDocument(e.clone())),
                }
                .into());
            }
            None => return Err(LeafCheck::NeedDocuments(vec![did.clone()])),
        }
    }
    Ok(())
}

/// [`verify_leaf`] for a leaf whose credential is `did` (already read from it).
pub(crate) fn check_leaf(
    doc: &DidDocument,
    did: &Did,
    leaf: &LeafNode,
    ciphersuite: Ciphersuite,
) -> Result<(), BindingRefusal> {
    use atmls_lexicon::chat::mls::device;
    let ext = leaf
        .extensions()
        .unknown(DEVICE_BINDING_EXTENSION_TYPE)
        .ok_or(BindingRefusal::Missing)?;
    let binding = DeviceBinding::from_bytes(&ext.0).map_err(BindingRefusal::Malformed)?;
    if leaf_device_id(leaf).as_deref() != Some(binding.device_id.as_str()) {
        return Err(BindingRefusal::DeviceIdMismatch);
    }
    let (_, json) = crate::keypackage::prove_record(
        doc,
        did,
        DEVICE_COLLECTION,
        &binding.device_id,
        &binding.proof,
    )
    .map_err(BindingRefusal::Record)?;
    let json = json.ok_or(BindingRefusal::NoSuchDevice)?;
    let record: device::RecordData = serde_json::from_value(json)
        .map_err(|e| BindingRefusal::Record(KeyPackageRefusal::Lexicon(e.to_string())))?;
    if record.device_id != binding.device_id {
        return Err(BindingRefusal::NoSuchDevice);
    }
    let key: [u8; 32] = record
        .device_key
        .as_slice()
        .try_into()
        .map_err(|_| BindingRefusal::BadSignature)?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| BindingRefusal::BadSignature)?;
    let input = signature_input(
        did.as_str(),
        &binding.device_id,
        u16::from(ciphersuite),
        leaf.signature_key().as_slice(),
    );
    key.verify_strict(&input, &Signature::from_bytes(&binding.signature))
        .map_err(|_| BindingRefusal::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DeviceBinding {
        let key = SigningKey::from_bytes(&[7; 32]);
        DeviceBinding::sign(
            &key,
            "did:plc:abcdefghijklmnopqrstuvwx",
            "k5v3mkq2xfa7ltqe",
            1,
            &[0x11; 32],
            vec![0xca, 0xfe],
        )
    }

    #[test]
    fn layout() {
        let b = sample();
        let bytes = b.to_bytes();
        let mut want = vec![0x01, 0x10];
        want.extend_from_slice(b"k5v3mkq2xfa7ltqe");
        want.extend_from_slice(&[0x02, 0xca, 0xfe, 0x40, 0x40]);
        want.extend_from_slice(&b.signature);
        assert_eq!(bytes, want);
        assert_eq!(DeviceBinding::from_bytes(&bytes).unwrap(), b);
    }

    #[test]
    fn signature_input_layout() {
        let input = signature_input("did:x", "dev", 0x0001, &[0xaa, 0xbb]);
        let mut want = vec![26];
        want.extend_from_slice(b"chat.mls device binding v1");
        want.extend_from_slice(&[5]);
        want.extend_from_slice(b"did:x");
        want.extend_from_slice(&[3]);
        want.extend_from_slice(b"dev");
        want.extend_from_slice(&[0x00, 0x01, 0x02, 0xaa, 0xbb]);
        assert_eq!(input, want);
        let key = SigningKey::from_bytes(&[7; 32]);
        let b = sample();
        let input = signature_input(
            "did:plc:abcdefghijklmnopqrstuvwx",
            "k5v3mkq2xfa7ltqe",
            1,
            &[0x11; 32],
        );
        assert!(
            key.verifying_key()
                .verify_strict(&input, &Signature::from_bytes(&b.signature))
                .is_ok()
        );
    }

    #[test]
    fn refuses_bad_bytes() {
        let good = sample().to_bytes();
        let mut v = good.clone();
        v[0] = 2;
        assert_eq!(
            DeviceBinding::from_bytes(&v),
            Err(DeviceBindingError::Version(2))
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(DeviceBinding::from_bytes(&trailing).is_err());
        assert!(DeviceBinding::from_bytes(&good[..good.len() - 1]).is_err());
        // A 63-byte signature.
        let mut short = vec![0x01, 0x01, b'a', 0x00, 0x3f];
        short.extend_from_slice(&[0; 63]);
        assert_eq!(
            DeviceBinding::from_bytes(&short),
            Err(DeviceBindingError::SignatureLength)
        );
        // A device id over 64 bytes.
        let mut long = vec![0x01, 0x40, 0x41];
        long.extend_from_slice(&[b'a'; 65]);
        assert!(DeviceBinding::from_bytes(&long).is_err());
    }
}
