//! PLC operation types, their DAG-CBOR encoding, signing, CIDs and DID derivation.

use std::collections::BTreeMap;

use atmls_crypto::{PublicKey, SigningKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cid::Cid;
use serde::{Deserialize, Serialize};

use super::{PlcError, PlcState};
use crate::PlcDid;

/// Largest DAG-CBOR encoding of an operation the directory accepts.
pub const MAX_OPERATION_BYTES: usize = 7500;

const DAG_CBOR: u64 = 0x71;
const SHA2_256: u64 = 0x12;

/// A service entry of a PLC operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlcService {
    /// Service type, e.g. `AtprotoPersonalDataServer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Service URL.
    pub endpoint: String,
}

/// A regular (`plc_operation`) operation, unsigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlcOperation {
    /// did:key rotation keys, highest authority first.
    pub rotation_keys: Vec<String>,
    /// did:key signing keys by name (`atproto`).
    pub verification_methods: BTreeMap<String, String>,
    /// Other names (`at://handle`).
    pub also_known_as: Vec<String>,
    /// Services by name (`atproto_pds`).
    pub services: BTreeMap<String, PlcService>,
    /// CID of the previous operation; `None` for genesis (encoded as `null`).
    pub prev: Option<String>,
}

/// A `plc_tombstone` operation, unsigned: deactivates the DID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// CID of the previous operation.
    pub prev: String,
}

/// The deprecated genesis format (`create`), still found in old logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyCreate {
    /// did:key of the signing key.
    pub signing_key: String,
    /// did:key of the recovery key.
    pub recovery_key: String,
    /// Bare handle.
    pub handle: String,
    /// PDS URL.
    pub service: String,
    /// Always `null`.
    pub prev: Option<String>,
}

/// Any operation, unsigned. Encoded with its `type` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum UnsignedOperation {
    /// `plc_operation`
    #[serde(rename = "plc_operation")]
    Operation(PlcOperation),
    /// `plc_tombstone`
    #[serde(rename = "plc_tombstone")]
    Tombstone(Tombstone),
    /// `create` (legacy genesis)
    #[serde(rename = "create")]
    LegacyCreate(LegacyCreate),
}

/// A signed operation, as sent to and served by the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOperation {
    /// The operation.
    #[serde(flatten)]
    pub op: UnsignedOperation,
    /// base64url (unpadded) of the 64-byte low-S signature over the unsigned DAG-CBOR.
    pub sig: String,
}

/// Builds a genesis operation: one rotation key, the `#atproto` signing key, and
/// optionally a handle and a PDS.
#[derive(Debug, Clone)]
pub struct GenesisBuilder {
    op: PlcOperation,
}

impl GenesisBuilder {
    /// A genesis with `rotation` as the only rotation key and `signing` as `#atproto`.
    pub fn new(rotation: &PublicKey, signing: &PublicKey) -> Self {
        let mut verification_methods = BTreeMap::new();
        verification_methods.insert("atproto".to_owned(), signing.to_did_key());
        GenesisBuilder {
            op: PlcOperation {
                rotation_keys: vec![rotation.to_did_key()],
                verification_methods,
                also_known_as: Vec::new(),
                services: BTreeMap::new(),
                prev: None,
            },
        }
    }

    /// Appends a lower-priority rotation key.
    pub fn rotation_key(mut self, key: &PublicKey) -> Self {
        self.op.rotation_keys.push(key.to_did_key());
        self
    }

    /// Adds `at://handle` to `alsoKnownAs`.
    pub fn handle(mut self, handle: &str) -> Self {
        self.op.also_known_as.push(format!("at://{handle}"));
        self
    }

    /// Sets the `atproto_pds` service.
    pub fn pds(self, endpoint: &str) -> Self {
        self.service("atproto_pds", "AtprotoPersonalDataServer", endpoint)
    }

    /// Sets a service by name.
    pub fn service(mut self, name: &str, kind: &str, endpoint: &str) -> Self {
        self.op.services.insert(
            name.to_owned(),
            PlcService {
                kind: kind.to_owned(),
                endpoint: endpoint.to_owned(),
            },
        );
        self
    }

    /// The unsigned operation.
    pub fn build(self) -> PlcOperation {
        self.op
    }

    /// Signs with `key` (which should be one of the rotation keys).
    pub fn sign(self, key: &SigningKey) -> SignedOperation {
        self.op.sign(key)
    }
}

impl PlcOperation {
    /// Signs this operation with a rotation key.
    pub fn sign(self, key: &SigningKey) -> SignedOperation {
        UnsignedOperation::Operation(self).sign(key)
    }
}

impl Tombstone {
    /// Signs this tombstone with a rotation key.
    pub fn sign(self, key: &SigningKey) -> SignedOperation {
        UnsignedOperation::Tombstone(self).sign(key)
    }
}

impl UnsignedOperation {
    /// The DAG-CBOR bytes that are signed.
    pub fn to_dag_cbor(&self) -> Result<Vec<u8>, PlcError> {
        serde_ipld_dagcbor::to_vec(self).map_err(|e| PlcError::Encoding(e.to_string()))
    }

    /// Signs the DAG-CBOR encoding with `key`.
    pub fn sign(self, key: &SigningKey) -> SignedOperation {
        // Strings, lists and maps of strings always encode.
        let bytes = self.to_dag_cbor().unwrap_or_default();
        let sig = URL_SAFE_NO_PAD.encode(key.sign(&bytes));
        SignedOperation { op: self, sig }
    }

    /// `prev`, for every kind of operation.
    pub fn prev(&self) -> Option<&str> {
        match self {
            UnsignedOperation::Operation(op) => op.prev.as_deref(),
            UnsignedOperation::Tombstone(t) => Some(&t.prev),
            UnsignedOperation::LegacyCreate(c) => c.prev.as_deref(),
        }
    }

    /// The rotation keys this operation grants (empty for a tombstone), highest first.
    pub fn rotation_keys(&self) -> Vec<String> {
        match self {
            UnsignedOperation::Operation(op) => op.rotation_keys.clone(),
            UnsignedOperation::Tombstone(_) => Vec::new(),
            UnsignedOperation::LegacyCreate(c) => {
                vec![c.recovery_key.clone(), c.signing_key.clone()]
            }
        }
    }
}

impl SignedOperation {
    /// Parses an operation from JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, PlcError> {
        serde_json::from_slice(bytes).map_err(|e| PlcError::Malformed(e.to_string()))
    }

    /// The operation as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The DAG-CBOR bytes of the signed operation (what the CID and DID hash).
    pub fn to_dag_cbor(&self) -> Result<Vec<u8>, PlcError> {
        serde_ipld_dagcbor::to_vec(self).map_err(|e| PlcError::Encoding(e.to_string()))
    }

    /// The CID of this operation (CIDv1, dag-cbor, sha-256), as `prev` names it.
    pub fn cid(&self) -> Result<Cid, PlcError> {
        let digest = atmls_crypto::sha256(&self.to_dag_cbor()?);
        let hash = cid::multihash::Multihash::<64>::wrap(SHA2_256, &digest)
            .map_err(|e| PlcError::Encoding(e.to_string()))?;
        Ok(Cid::new_v1(DAG_CBOR, hash))
    }

    /// The DID this operation creates, if it is a genesis operation.
    pub fn did(&self) -> Result<PlcDid, PlcError> {
        if self.op.prev().is_some() || matches!(self.op, UnsignedOperation::Tombstone(_)) {
            return Err(PlcError::NotGenesis);
        }
        let digest = atmls_crypto::sha256(&self.to_dag_cbor()?);
        let b32 = data_encoding::BASE32_NOPAD
            .encode(&digest)
            .to_ascii_lowercase();
        PlcDid::new(format!("did:plc:{}", &b32[..24]))
            .map_err(|e| PlcError::Encoding(e.to_string()))
    }

    /// The 64 signature bytes, decoded strictly (unpadded, zero trailing bits).
    pub fn signature(&self) -> Result<[u8; 64], PlcError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.sig)
            .map_err(|_| PlcError::SignatureEncoding)?;
        bytes.try_into().map_err(|_| PlcError::SignatureEncoding)
    }

    /// Index of the key in `rotation_keys` (did:key strings) that signed this operation.
    pub fn signer_index(&self, rotation_keys: &[String]) -> Result<usize, PlcError> {
        let sig = self.signature()?;
        let bytes = self.op.to_dag_cbor()?;
        rotation_keys
            .iter()
            .position(|k| {
                PublicKey::from_did_key(k).is_ok_and(|key| key.verify(&bytes, &sig).is_ok())
            })
            .ok_or(PlcError::InvalidSignature)
    }

    /// The DID data after this operation (an error for a tombstone).
    pub fn state(&self, did: &PlcDid) -> Result<PlcState, PlcError> {
        PlcState::from_operation(did, &self.op)
    }
}
