//! Proofs of added leaves' KeyPackages, carried inside the (encrypted) commit as a custom
//! proposal by value, so that every receiver verifies each new leaf against its
//! account's repo before merging (docs/spec.md §11.13).

use std::collections::{BTreeSet, HashMap};

use atmls_identity::{Did, DidHistory};
use openmls::prelude::*;
use openmls_traits::crypto::OpenMlsCrypto;

use super::credential_did;
use super::extension::{Reader, put_vec};
use crate::error::PolicyViolation;
use crate::keypackage::{VerifiedKeyPackage, verify_added_key_package};

/// The proposal type (private-use range, RFC 9420 §17.4) of the leaf-proofs proposal.
pub const LEAF_PROOFS_PROPOSAL_TYPE: u16 = 0xF0A8;
/// The version byte of the layout.
const VERSION: u8 = 1;
/// Longest record key (atproto record keys are at most 512 characters).
const MAX_RKEY: usize = 512;
/// Largest KeyPackageRef (a hash of at most 64 bytes).
const MAX_REF: usize = 64;
/// Largest proof CAR of one record.
const MAX_CAR: usize = 1 << 20;

/// One added leaf's proof: which KeyPackage, where its record lives, the `getRecord` CAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeafProof {
    pub(crate) key_package_ref: Vec<u8>,
    pub(crate) rkey: String,
    pub(crate) car: Vec<u8>,
}

/// Encodes the proposal payload: `version || LeafProof proofs<V>`.
pub(crate) fn encode(proofs: &[LeafProof]) -> Vec<u8> {
    let mut list = Vec::new();
    for p in proofs {
        put_vec(&mut list, &p.key_package_ref);
        put_vec(&mut list, p.rkey.as_bytes());
        put_vec(&mut list, &p.car);
    }
    let mut out = vec![VERSION];
    put_vec(&mut out, &list);
    out
}

/// Decodes the proposal payload strictly (version, minimal varints, limits, no trailing
/// bytes).
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<LeafProof>, String> {
    let mut r = Reader(bytes);
    let version = r.u8().map_err(|e| e.to_string())?;
    if version != VERSION {
        return Err(format!("unknown version {version}"));
    }
    let list = r.vec(usize::MAX, "proofs").map_err(|e| e.to_string())?;
    if !r.0.is_empty() {
        return Err("trailing bytes".into());
    }
    let mut r = Reader(list);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let key_package_ref = r.vec(MAX_REF, "keyPackageRef").map_err(|e| e.to_string())?;
        let rkey = r.vec(MAX_RKEY, "rkey").map_err(|e| e.to_string())?;
        let car = r.vec(MAX_CAR, "proof").map_err(|e| e.to_string())?;
        out.push(LeafProof {
            key_package_ref: key_package_ref.to_vec(),
            rkey: String::from_utf8(rkey.to_vec()).map_err(|_| "rkey is not UTF-8")?,
            car: car.to_vec(),
        });
    }
    Ok(out)
}

/// The leaf-proofs proposal for the packages a commit adds, or `None` if none of them
/// carries a proof (a verified package always does; tests clear it to play a malicious
/// committer).
pub(crate) fn proposal(
    crypto: &impl OpenMlsCrypto,
    added: &[&VerifiedKeyPackage],
) -> Result<Option<Proposal>, crate::Error> {
    let mut proofs = Vec::new();
    for k in added.iter().filter(|k| !k.proof.is_empty()) {
        let hash_ref = k
            .key_package
            .hash_ref(crypto)
            .map_err(|e| crate::Error::mls("key package ref", e))?;
        proofs.push(LeafProof {
            key_package_ref: hash_ref.as_slice().to_vec(),
            rkey: k.rkey.clone(),
            car: k.proof.clone(),
        });
    }
    Ok((!proofs.is_empty()).then(|| {
        Proposal::Custom(Box::new(CustomProposal::new(
            LEAF_PROOFS_PROPOSAL_TYPE,
            encode(&proofs),
        )))
    }))
}

/// DID documents resolved for checking added leaves: each DID's documents over time (the
/// proof is checked against the one in force at `acceptedAt`, §11.13), or why they could
/// not be had (a DID that does not resolve refuses the leaf).
pub(crate) type Documents = HashMap<Did, Result<DidHistory, String>>;

/// Why added leaves could not be accepted (yet).
#[derive(Debug)]
pub(crate) enum LeafCheck {
    /// These DIDs' documents are needed first (resolve them and process again).
    NeedDocuments(Vec<Did>),
    /// The commit is refused.
    Refused(PolicyViolation),
}

impl From<PolicyViolation> for LeafCheck {
    fn from(v: PolicyViolation) -> Self {
        Self::Refused(v)
    }
}

/// Checks every leaf `staged` adds against the proofs it carries (§11.13): exactly one
/// leaf-proofs proposal when something is added (none otherwise), one proof per added
/// KeyPackage and none for anything else, each verifying against the added DID's repo
/// within the window around `accepted_ms`.
pub(crate) fn check_added_leaves(
    crypto: &impl OpenMlsCrypto,
    staged: &StagedCommit,
    docs: &Documents,
    accepted_ms: u64,
) -> Result<(), LeafCheck> {
    let bad = |m: &str| LeafCheck::Refused(PolicyViolation::LeafProofs(m.to_owned()));
    let carriers: Vec<&CustomProposal> = staged
        .queued_proposals()
        .filter_map(|q| match q.proposal() {
            Proposal::Custom(c) if c.proposal_type() == LEAF_PROOFS_PROPOSAL_TYPE => Some(&**c),
            _ => None,
        })
        .collect();
    let mut adds = Vec::new();
    for add in staged.add_proposals() {
        let kp = add.add_proposal().key_package().clone();
        let did = credential_did(kp.leaf_node().credential())?;
        let hash_ref = kp
            .hash_ref(crypto)
            .map_err(|e| bad(&format!("key package ref: {e}")))?;
        adds.push((did, kp, hash_ref.as_slice().to_vec()));
    }
    let proofs = match (carriers.as_slice(), adds.first()) {
        ([], None) => return Ok(()),
        ([], Some((did, _, _))) => {
            return Err(PolicyViolation::LeafProofMissing {
                did: did.to_string(),
            }
            .into());
        }
        ([_], None) => return Err(bad("proofs in a commit that adds nobody")),
        ([one], Some(_)) => decode(one.payload()).map_err(|e| bad(&e))?,
        _ => return Err(bad("more than one leaf-proofs proposal")),
    };
    let mut refs = BTreeSet::new();
    for p in &proofs {
        if !refs.insert(p.key_package_ref.as_slice()) {
            return Err(bad("two proofs for one KeyPackage"));
        }
        if !adds.iter().any(|(_, _, r)| r == &p.key_package_ref) {
            return Err(bad("a proof for a KeyPackage the commit does not add"));
        }
    }
    let mut missing: Vec<Did> = adds
        .iter()
        .map(|(did, _, _)| did)
        .filter(|did| !docs.contains_key(*did))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        return Err(LeafCheck::NeedDocuments(missing));
    }
    for (did, kp, hash_ref) in &adds {
        let Some(proof) = proofs.iter().find(|p| &p.key_package_ref == hash_ref) else {
            return Err(PolicyViolation::LeafProofMissing {
                did: did.to_string(),
            }
            .into());
        };
        let refused = |reason| {
            LeafCheck::Refused(PolicyViolation::LeafProofRefused {
                did: did.to_string(),
                reason,
            })
        };
        let doc = match docs.get(did).map(|h| doc_at(h, accepted_ms)) {
            Some(Ok(doc)) => doc,
            Some(Err(e)) => {
                return Err(refused(crate::error::KeyPackageRefusal::DidDocument(
                    e.clone(),
                )));
            }
            None => return Err(LeafCheck::NeedDocuments(vec![did.clone()])),
        };
        verify_added_key_package(crypto, doc, did, &proof.rkey, &proof.car, kp, accepted_ms)
            .map_err(refused)?;
    }
    Ok(())
}

/// The document of a resolved history in force at `accepted_ms` (§11.13): the DID did
/// not exist yet, or was tombstoned, then: the leaf is refused.
fn doc_at(
    history: &Result<DidHistory, String>,
    accepted_ms: u64,
) -> Result<&atmls_identity::DidDocument, String> {
    let history = history.as_ref().map_err(Clone::clone)?;
    history
        .at(atmls_ds_proto::Timestamp::from_millis(accepted_ms))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<LeafProof> {
        vec![
            LeafProof {
                key_package_ref: vec![0xab; 32],
                rkey: "3jzfcijpj2z2a".into(),
                car: vec![0xca, 0xfe],
            },
            LeafProof {
                key_package_ref: vec![0x01; 32],
                rkey: "3jzfcijpj2z2b".into(),
                car: vec![0x5a; 100],
            },
        ]
    }

    /// The byte layout of docs/spec.md §11.13.
    #[test]
    fn vector() {
        let one = &sample()[..1];
        let bytes = encode(one);
        let mut want = vec![0x01, 0x32, 0x20];
        want.extend_from_slice(&[0xab; 32]);
        want.push(0x0d);
        want.extend_from_slice(b"3jzfcijpj2z2a");
        want.extend_from_slice(&[0x02, 0xca, 0xfe]);
        assert_eq!(bytes, want);
        assert_eq!(decode(&bytes).unwrap(), one);
        let both = encode(&sample());
        assert_eq!(decode(&both).unwrap(), sample());
    }

    #[test]
    fn refuses_bad_bytes() {
        let good = encode(&sample());
        let mut wrong_version = good.clone();
        wrong_version[0] = 2;
        assert!(decode(&wrong_version).is_err());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        assert!(decode(&good[..good.len() - 1]).is_err());
        // A non-minimal varint (1 encoded in two bytes).
        assert!(decode(&[0x01, 0x40, 0x01, 0x00]).is_err());
        // A KeyPackageRef over 64 bytes.
        let long = LeafProof {
            key_package_ref: vec![0; 65],
            rkey: "a".into(),
            car: vec![],
        };
        assert!(decode(&encode(&[long])).is_err());
    }
}
