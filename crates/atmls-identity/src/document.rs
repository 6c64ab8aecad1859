//! The DID document model and the atproto lookups on it.

use atmls_crypto::{Algorithm, CryptoError, PublicKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{Did, Handle};

/// Fragment of the atproto signing key.
pub const ATPROTO_KEY_FRAGMENT: &str = "atproto";
/// Fragment of the PDS service entry.
pub const ATPROTO_PDS_FRAGMENT: &str = "atproto_pds";
/// Service type of a PDS.
pub const ATPROTO_PDS_TYPE: &str = "AtprotoPersonalDataServer";

/// Why a DID document could not be parsed, or a lookup on it failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The JSON does not have the shape of a DID document (or its `id` is not a DID).
    #[error("malformed DID document: {0}")]
    Malformed(String),
    /// No verification method with this fragment.
    #[error("no verification method #{0}")]
    MissingVerificationMethod(String),
    /// The verification method's type is not Multikey or a supported legacy type.
    #[error("unsupported verification method type {0:?}")]
    UnsupportedKeyType(String),
    /// The verification method has no `publicKeyMultibase`.
    #[error("verification method has no publicKeyMultibase")]
    MissingPublicKey,
    /// The key bytes are not a valid atproto key.
    #[error("invalid key: {0}")]
    InvalidKey(#[from] CryptoError),
    /// No service with this fragment.
    #[error("no service #{0}")]
    MissingService(String),
    /// The service entry's endpoint is not an http(s) URL string.
    #[error("service #{0} has no http(s) endpoint")]
    InvalidServiceEndpoint(String),
}

/// A DID document, as far as atproto uses it. Unknown members are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// JSON-LD context, kept as given.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// The DID this document describes.
    pub id: Did,
    /// Other names of the subject; the handle is the first `at://` entry.
    #[serde(default)]
    pub also_known_as: Vec<String>,
    /// Public keys.
    #[serde(default)]
    pub verification_method: Vec<VerificationMethod>,
    /// Service endpoints.
    #[serde(default)]
    pub service: Vec<Service>,
}

/// One entry of `verificationMethod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// `#fragment` or `did#fragment`.
    pub id: String,
    /// `Multikey`, `EcdsaSecp256k1VerificationKey2019` or `EcdsaSecp256r1VerificationKey2019`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The controlling DID.
    #[serde(default)]
    pub controller: String,
    /// The key, in the encoding `kind` implies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_multibase: Option<String>,
}

/// One entry of `service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `#fragment` or `did#fragment`.
    pub id: String,
    /// Service type, e.g. `AtprotoPersonalDataServer`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Usually a URL string; DID core also allows maps and arrays.
    pub service_endpoint: serde_json::Value,
}

impl Service {
    /// The endpoint when it is an `http://` or `https://` URL string.
    pub fn endpoint(&self) -> Option<&str> {
        self.service_endpoint
            .as_str()
            .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
    }
}

impl VerificationMethod {
    /// Builds a current-form (`Multikey`) entry.
    pub fn multikey(did: &Did, fragment: &str, key: &PublicKey) -> Self {
        VerificationMethod {
            id: format!("{did}#{fragment}"),
            kind: "Multikey".to_owned(),
            controller: did.to_string(),
            public_key_multibase: Some(key.to_multikey()),
        }
    }

    /// The public key, for `Multikey` and both legacy types.
    pub fn public_key(&self) -> Result<PublicKey, DocumentError> {
        let multibase = self
            .public_key_multibase
            .as_deref()
            .ok_or(DocumentError::MissingPublicKey)?;
        if self.kind == "Multikey" {
            return Ok(PublicKey::from_multikey(multibase)?);
        }
        match Algorithm::from_legacy_did_doc_suite(&self.kind) {
            Some(alg) => Ok(PublicKey::from_legacy_multibase(alg, multibase)?),
            None => Err(DocumentError::UnsupportedKeyType(self.kind.clone())),
        }
    }
}

impl DidDocument {
    /// Parses a DID document from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DocumentError> {
        serde_json::from_slice(bytes).map_err(|e| DocumentError::Malformed(e.to_string()))
    }

    /// Serialises the document as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and JSON values always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The verification method named `#fragment` (as `#fragment` or `did#fragment`).
    pub fn verification_method(&self, fragment: &str) -> Option<&VerificationMethod> {
        self.verification_method
            .iter()
            .find(|m| self.id_matches(&m.id, fragment))
    }

    /// The key of the verification method named `#fragment`.
    pub fn key(&self, fragment: &str) -> Result<PublicKey, DocumentError> {
        self.verification_method(fragment)
            .ok_or_else(|| DocumentError::MissingVerificationMethod(fragment.to_owned()))?
            .public_key()
    }

    /// The atproto signing key (`#atproto`).
    pub fn atproto_key(&self) -> Result<PublicKey, DocumentError> {
        self.key(ATPROTO_KEY_FRAGMENT)
    }

    /// The service entry named `#fragment` (e.g. `chat_mls_ds`).
    pub fn service(&self, fragment: &str) -> Option<&Service> {
        self.service
            .iter()
            .find(|s| self.id_matches(&s.id, fragment))
    }

    /// The http(s) endpoint of the service named `#fragment`.
    pub fn service_endpoint(&self, fragment: &str) -> Result<&str, DocumentError> {
        self.service(fragment)
            .ok_or_else(|| DocumentError::MissingService(fragment.to_owned()))?
            .endpoint()
            .ok_or_else(|| DocumentError::InvalidServiceEndpoint(fragment.to_owned()))
    }

    /// The PDS endpoint (`#atproto_pds`, type `AtprotoPersonalDataServer`).
    pub fn pds_endpoint(&self) -> Result<&str, DocumentError> {
        let service = self
            .service(ATPROTO_PDS_FRAGMENT)
            .filter(|s| s.kind == ATPROTO_PDS_TYPE)
            .ok_or_else(|| DocumentError::MissingService(ATPROTO_PDS_FRAGMENT.to_owned()))?;
        service
            .endpoint()
            .ok_or_else(|| DocumentError::InvalidServiceEndpoint(ATPROTO_PDS_FRAGMENT.to_owned()))
    }

    /// The claimed handle: the first `at://` entry of `alsoKnownAs` that is a valid
    /// handle, lowercased. Claimed only: confirm it by resolving the handle back to this DID.
    pub fn handle(&self) -> Option<Handle> {
        self.also_known_as
            .iter()
            .filter_map(|aka| aka.strip_prefix("at://"))
            .find_map(|h| Handle::new(h).ok())
            .map(|h| h.to_normalized())
    }

    fn id_matches(&self, id: &str, fragment: &str) -> bool {
        match id.split_once('#') {
            Some(("", f)) => f == fragment,
            Some((did, f)) => f == fragment && did == self.id.as_str(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_the_first_valid_at_uri_lowercased() {
        let doc = DidDocument::from_json(
            br#"{"id": "did:plc:fh5jrlbsm47qlufaem7aasei",
                 "alsoKnownAs": ["https://x.test", "at://not_a_handle", "at://Alice.Test"]}"#,
        )
        .unwrap();
        assert_eq!(doc.handle().unwrap().as_str(), "alice.test");
    }
}
