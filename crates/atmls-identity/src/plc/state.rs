//! The current data of a did:plc and the DID document it renders.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{PlcError, PlcOperation, PlcService, UnsignedOperation};
use crate::{DidDocument, PlcDid, Service, VerificationMethod};

/// The state of a did:plc after its latest valid operation (`GET /:did/data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlcState {
    /// The DID.
    pub did: PlcDid,
    /// Rotation keys, highest authority first.
    pub rotation_keys: Vec<String>,
    /// Signing keys by name.
    pub verification_methods: BTreeMap<String, String>,
    /// Other names.
    pub also_known_as: Vec<String>,
    /// Services by name.
    pub services: BTreeMap<String, PlcService>,
}

impl PlcState {
    /// The state an operation sets; a tombstone has none.
    pub fn from_operation(did: &PlcDid, op: &UnsignedOperation) -> Result<Self, PlcError> {
        match op {
            UnsignedOperation::Operation(op) => Ok(PlcState {
                did: did.clone(),
                rotation_keys: op.rotation_keys.clone(),
                verification_methods: op.verification_methods.clone(),
                also_known_as: op.also_known_as.clone(),
                services: op.services.clone(),
            }),
            UnsignedOperation::LegacyCreate(c) => {
                let mut verification_methods = BTreeMap::new();
                verification_methods.insert("atproto".to_owned(), c.signing_key.clone());
                let mut services = BTreeMap::new();
                services.insert(
                    "atproto_pds".to_owned(),
                    PlcService {
                        kind: "AtprotoPersonalDataServer".to_owned(),
                        endpoint: c.service.clone(),
                    },
                );
                Ok(PlcState {
                    did: did.clone(),
                    rotation_keys: vec![c.recovery_key.clone(), c.signing_key.clone()],
                    verification_methods,
                    also_known_as: vec![format!("at://{}", c.handle)],
                    services,
                })
            }
            UnsignedOperation::Tombstone(_) => Err(PlcError::Tombstoned),
        }
    }

    /// An unsigned update carrying this state, chained to `prev` (the CID of the latest
    /// operation): change what is needed, then [`PlcOperation::sign`] it.
    pub fn to_update(&self, prev: &str) -> PlcOperation {
        PlcOperation {
            rotation_keys: self.rotation_keys.clone(),
            verification_methods: self.verification_methods.clone(),
            also_known_as: self.also_known_as.clone(),
            services: self.services.clone(),
            prev: Some(prev.to_owned()),
        }
    }

    /// The DID document this state renders (Multikey form).
    pub fn document(&self) -> DidDocument {
        let id = self.did.as_did().clone();
        let verification_method = self
            .verification_methods
            .iter()
            .map(|(name, did_key)| VerificationMethod {
                id: format!("{}#{name}", self.did),
                kind: "Multikey".to_owned(),
                controller: self.did.to_string(),
                public_key_multibase: Some(
                    did_key
                        .strip_prefix(atmls_crypto::DID_KEY_PREFIX)
                        .unwrap_or(did_key)
                        .to_owned(),
                ),
            })
            .collect();
        let service = self
            .services
            .iter()
            .map(|(name, s)| Service {
                id: format!("#{name}"),
                kind: s.kind.clone(),
                service_endpoint: serde_json::Value::String(s.endpoint.clone()),
            })
            .collect();
        DidDocument {
            context: Some(serde_json::json!([
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/multikey/v1",
                "https://w3id.org/security/suites/secp256k1-2019/v1"
            ])),
            id,
            also_known_as: self.also_known_as.clone(),
            verification_method,
            service,
        }
    }
}
