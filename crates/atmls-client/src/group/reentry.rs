//! Recovery on the wire (docs/spec.md §11.17): the epoch tag members put in the
//! authenticated data of what they send, and re-entry requests, sealed to a member
//! device's KeyPackage like a welcome but with their own version byte and HPKE `info`.

use std::collections::BTreeMap;

use atmls_ds_proto::MailboxId;
use atmls_identity::Did;
use ipld_core::ipld::Ipld;
use openmls::prelude::*;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::Signer;
use openmls_traits::types::HpkeConfig;
use sha2::{Digest as _, Sha256};

use super::seal;

/// The HPKE `info` of sealed re-entry requests.
pub const REENTRY_INFO: &[u8] = b"chat.mls reentry v1";
/// The label prefixed to a re-entry request's body before it is signed.
pub const REENTRY_SIGNATURE_LABEL: &[u8] = b"chat.mls reentry signature v1";
/// The label hashed before the epoch authenticator into the epoch tag.
pub const EPOCH_TAG_LABEL: &[u8] = b"chat.mls epoch tag v1";
/// The first byte of a sealed re-entry request (sealed welcomes start with `0x01`).
pub const SEALED_REENTRY_VERSION: u8 = 2;
/// The first byte of the authenticated data carrying an epoch tag.
pub const EPOCH_TAG_AAD_VERSION: u8 = 1;
/// The length of the epoch tag.
pub const EPOCH_TAG_LEN: usize = 16;

const REENTRY_PLAINTEXT_VERSION: i128 = 1;

/// The epoch tag: the first 16 bytes of
/// `SHA-256("chat.mls epoch tag v1" || epoch_authenticator)` (RFC 9420 §8.7).
pub fn epoch_tag(authenticator: &[u8]) -> [u8; EPOCH_TAG_LEN] {
    let digest = Sha256::new()
        .chain_update(EPOCH_TAG_LABEL)
        .chain_update(authenticator)
        .finalize();
    let mut tag = [0; EPOCH_TAG_LEN];
    tag.copy_from_slice(&digest[..EPOCH_TAG_LEN]);
    tag
}

/// The `authenticated_data` a member puts in each message and commit it sends:
/// `0x01 || epoch_tag` (17 bytes).
pub fn tag_aad(authenticator: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + EPOCH_TAG_LEN);
    out.push(EPOCH_TAG_AAD_VERSION);
    out.extend_from_slice(&epoch_tag(authenticator));
    out
}

/// The epoch tag in an `authenticated_data`, if it carries one (anything else — empty,
/// another version or length — carries none and is not compared).
pub fn aad_tag(aad: &[u8]) -> Option<[u8; EPOCH_TAG_LEN]> {
    match aad.split_first() {
        Some((&EPOCH_TAG_AAD_VERSION, tag)) => tag.try_into().ok(),
        _ => None,
    }
}

/// Sets the epoch tag of the group's current epoch as the authenticated data of the next
/// message or commit built on `group` (openmls resets it after each one).
pub(crate) fn tag_next(group: &mut MlsGroup) {
    let aad = tag_aad(group.epoch_authenticator().as_slice());
    group.set_aad(aad);
}

/// Why a device cannot go on in a group (docs/spec.md §11.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BrokenReason {
    /// It refused a commit the other members merged: the DS no longer serves its epoch.
    CommitRefused,
    /// A member sent at this device's epoch with another epoch tag, and it does not
    /// decrypt: the device's state and the sender's diverged.
    Forked,
    /// An envelope of an epoch beyond this device's arrived that it cannot read (it
    /// missed a commit: restored from a backup, or its own commit it no longer knows).
    Behind,
    /// The DS no longer serves the epoch this device is at and it refused nothing: what
    /// it needed to catch up is out of reach (retention, or a commit of its own it
    /// cannot read after a restore).
    OutOfReach,
}

impl BrokenReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CommitRefused => "commit-refused",
            Self::Forked => "forked",
            Self::Behind => "behind",
            Self::OutOfReach => "out-of-reach",
        }
    }

    /// The reason named `s` ([`Self::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::CommitRefused,
            Self::Forked,
            Self::Behind,
            Self::OutOfReach,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for BrokenReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a re-entry request was refused by the device that received it (it costs no
/// commit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReentryRefusal {
    /// It does not parse (after opening).
    #[error("malformed re-entry request: {0}")]
    Malformed(String),
    /// The named KeyPackage is not a published, valid KeyPackage of that device.
    #[error("the named KeyPackage is not usable: {0}")]
    KeyPackage(String),
    /// The signature does not verify with the named KeyPackage's leaf signature key.
    #[error("the request's signature does not verify")]
    BadSignature,
    /// This device is not in the named group, or its state there is broken.
    #[error("this device cannot act in that group")]
    UnknownGroup,
    /// The requesting device has no leaf in the group (no group, for a request without
    /// one).
    #[error("the requesting device has no leaf in the group")]
    NoLeaf,
    /// This device may not add devices of that account (not an admin, not a sibling).
    #[error("this device may not add devices of that account")]
    NoRight,
    /// This device already acted on a request of that device with that KeyPackage.
    #[error("already acted on this KeyPackage")]
    AlreadyDone,
}

/// The group a re-entry request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReentryGroup {
    /// The MLS group id.
    pub id: Vec<u8>,
    /// The DS of its mailbox.
    pub ds: Did,
    /// Its mailbox.
    pub mailbox: MailboxId,
}

/// A device's request to be removed and added again with a new KeyPackage: in one group,
/// or (after its database was lost, `group` absent) in every group where its device id
/// has a leaf, asked of its own account's other devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReentryRequest {
    /// The requesting account.
    pub did: Did,
    /// The requesting device's id.
    pub device_id: String,
    /// The record key of its new `chat.mls.keyPackage` record.
    pub key_package: String,
    /// That KeyPackage's reference (as in the record's `keyPackageRef`).
    pub key_package_ref: Vec<u8>,
    /// The group, or none (every group where the device has a leaf).
    pub group: Option<ReentryGroup>,
    /// When it was made (Unix milliseconds; informative).
    pub created_at: i64,
}

impl ReentryRequest {
    fn body(&self) -> BTreeMap<String, Ipld> {
        let mut map = BTreeMap::from([
            (
                "version".to_owned(),
                Ipld::Integer(REENTRY_PLAINTEXT_VERSION),
            ),
            ("did".to_owned(), Ipld::String(self.did.to_string())),
            ("deviceId".to_owned(), Ipld::String(self.device_id.clone())),
            (
                "keyPackage".to_owned(),
                Ipld::String(self.key_package.clone()),
            ),
            (
                "keyPackageRef".to_owned(),
                Ipld::Bytes(self.key_package_ref.clone()),
            ),
            (
                "createdAt".to_owned(),
                Ipld::Integer(i128::from(self.created_at)),
            ),
        ]);
        if let Some(g) = &self.group {
            map.insert(
                "group".to_owned(),
                Ipld::Map(BTreeMap::from([
                    ("id".to_owned(), Ipld::Bytes(g.id.clone())),
                    ("ds".to_owned(), Ipld::String(g.ds.to_string())),
                    ("mailbox".to_owned(), Ipld::String(g.mailbox.to_string())),
                ])),
            );
        }
        map
    }

    /// What is signed: `"chat.mls reentry signature v1" || DAG-CBOR(body)` (the body is
    /// the plaintext map without `sig`).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let body = atmls_repo::cbor::encode(&Ipld::Map(self.body())).unwrap_or_default();
        [REENTRY_SIGNATURE_LABEL, body.as_slice()].concat()
    }

    /// Signs the request with the new KeyPackage's leaf signature key.
    pub fn sign(&self, signer: &impl Signer) -> Result<Vec<u8>, String> {
        signer
            .sign(&self.signed_bytes())
            .map_err(|e| format!("{e:?}"))
    }

    /// Whether `signature` over the request verifies with `public` (`scheme`).
    pub fn verify(
        &self,
        crypto: &impl OpenMlsCrypto,
        scheme: SignatureScheme,
        public: &[u8],
        signature: &[u8],
    ) -> bool {
        crypto
            .verify_signature(scheme, &self.signed_bytes(), public, signature)
            .is_ok()
    }

    /// The plaintext: the body with `"sig"` added, DAG-CBOR.
    pub fn to_cbor(&self, signature: &[u8]) -> Vec<u8> {
        let mut map = self.body();
        map.insert("sig".to_owned(), Ipld::Bytes(signature.to_vec()));
        atmls_repo::cbor::encode(&Ipld::Map(map)).unwrap_or_default()
    }

    /// Parses an opened request: the request and its signature.
    pub fn from_cbor(bytes: &[u8]) -> Result<(Self, Vec<u8>), ReentryRefusal> {
        let bad = |s: &str| ReentryRefusal::Malformed(s.to_owned());
        let Ipld::Map(map) = atmls_repo::cbor::decode_ipld(bytes).map_err(|_| bad("not CBOR"))?
        else {
            return Err(bad("not a map"));
        };
        match map.get("version") {
            Some(Ipld::Integer(v)) if *v == REENTRY_PLAINTEXT_VERSION => {}
            _ => return Err(bad("unknown version")),
        }
        let (
            Some(Ipld::String(did)),
            Some(Ipld::String(device_id)),
            Some(Ipld::String(key_package)),
            Some(Ipld::Bytes(key_package_ref)),
            Some(Ipld::Integer(created_at)),
            Some(Ipld::Bytes(sig)),
        ) = (
            map.get("did"),
            map.get("deviceId"),
            map.get("keyPackage"),
            map.get("keyPackageRef"),
            map.get("createdAt"),
            map.get("sig"),
        )
        else {
            return Err(bad("missing or mistyped field"));
        };
        let known = [
            "version",
            "did",
            "deviceId",
            "keyPackage",
            "keyPackageRef",
            "createdAt",
            "sig",
            "group",
        ];
        if map.keys().any(|k| !known.contains(&k.as_str())) {
            return Err(bad("unknown field"));
        }
        let group = match map.get("group") {
            None => None,
            Some(Ipld::Map(g)) => {
                let (Some(Ipld::Bytes(id)), Some(Ipld::String(ds)), Some(Ipld::String(mailbox))) =
                    (g.get("id"), g.get("ds"), g.get("mailbox"))
                else {
                    return Err(bad("group: missing or mistyped field"));
                };
                Some(ReentryGroup {
                    id: id.clone(),
                    ds: ds.parse().map_err(|_| bad("group: ds"))?,
                    mailbox: mailbox.parse().map_err(|_| bad("group: mailbox"))?,
                })
            }
            Some(_) => return Err(bad("group is not a map")),
        };
        Ok((
            Self {
                did: did.parse().map_err(|_| bad("did"))?,
                device_id: device_id.clone(),
                key_package: key_package.clone(),
                key_package_ref: key_package_ref.clone(),
                group,
                created_at: i64::try_from(*created_at).map_err(|_| bad("createdAt"))?,
            },
            sig.clone(),
        ))
    }
}

/// Whether an inbox item is a sealed re-entry request (by its first byte).
pub fn is_sealed_reentry(payload: &[u8]) -> bool {
    payload.first() == Some(&SEALED_REENTRY_VERSION)
}

/// Seals a request's plaintext to a member device's init key (HPKE base mode, `info` =
/// [`REENTRY_INFO`], empty aad): `0x02 || u16 len(enc) || enc || u32 len(ct) || ct`,
/// padded like a welcome by the sender.
pub fn seal_reentry(
    crypto: &impl OpenMlsCrypto,
    suite: Ciphersuite,
    init_key: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    seal::seal_to_init_key(
        crypto,
        suite,
        init_key,
        SEALED_REENTRY_VERSION,
        REENTRY_INFO,
        plaintext,
    )
}

/// Opens a sealed request with an init private key; `None` if it is not for this key.
pub fn open_reentry(
    crypto: &impl OpenMlsCrypto,
    config: HpkeConfig,
    init_private: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    seal::open_sealed(
        crypto,
        config,
        init_private,
        SEALED_REENTRY_VERSION,
        REENTRY_INFO,
        sealed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ReentryRequest {
        ReentryRequest {
            did: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
            device_id: "dev1".into(),
            key_package: "3kabcdefghijk".into(),
            key_package_ref: vec![7; 32],
            group: Some(ReentryGroup {
                id: vec![1; 32],
                ds: "did:web:ds.example.com".parse().unwrap(),
                mailbox: MailboxId::from_bytes([1; 32]),
            }),
            created_at: 1_800_000_000_000,
        }
    }

    #[test]
    fn request_round_trip_signature_and_refusals() {
        let crypto = openmls_rust_crypto::RustCrypto::default();
        let signer =
            openmls_basic_credential::SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
        let r = request();
        let sig = r.sign(&signer).unwrap();
        let bytes = r.to_cbor(&sig);
        let (back, sig2) = ReentryRequest::from_cbor(&bytes).unwrap();
        assert_eq!(back, r);
        assert!(back.verify(&crypto, SignatureScheme::ED25519, signer.public(), &sig2));
        // Another device id under the same signature: refused.
        let other = ReentryRequest {
            device_id: "dev2".into(),
            ..r.clone()
        };
        assert!(!other.verify(&crypto, SignatureScheme::ED25519, signer.public(), &sig));
        let groupless = ReentryRequest { group: None, ..r };
        let (back, _) = ReentryRequest::from_cbor(&groupless.to_cbor(&sig)).unwrap();
        assert_eq!(back.group, None);
        assert!(ReentryRequest::from_cbor(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn sealed_request_is_not_a_welcome_and_back() {
        let crypto = openmls_rust_crypto::RustCrypto::default();
        let suite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
        let kp = crypto
            .derive_hpke_keypair(suite.hpke_config(), &[9; 32])
            .unwrap();
        let sealed = seal_reentry(&crypto, suite, kp.public.as_slice(), b"hello").unwrap();
        assert!(is_sealed_reentry(&sealed));
        let private: &[u8] = kp.private.as_ref();
        assert_eq!(
            open_reentry(&crypto, suite.hpke_config(), private, &sealed).unwrap(),
            b"hello"
        );
        assert!(seal::open_welcome(&crypto, suite.hpke_config(), private, &sealed).is_none());
    }

    #[test]
    fn epoch_tag_in_aad() {
        let aad = tag_aad(&[5; 32]);
        assert_eq!(aad.len(), 17);
        assert_eq!(aad_tag(&aad), Some(epoch_tag(&[5; 32])));
        assert_ne!(epoch_tag(&[5; 32]), epoch_tag(&[6; 32]));
        assert_eq!(aad_tag(&[]), None);
        assert_eq!(aad_tag(&aad[..16]), None);
    }
}

#[cfg(test)]
mod vector {
    use super::*;
    use ed25519_dalek::Signer as _;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The re-entry request and epoch tag vectors printed in docs/spec.md §11.17.
    #[test]
    fn reentry_request_and_epoch_tag_vectors() {
        let request = ReentryRequest {
            did: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
            device_id: "dev1".into(),
            key_package: "3kabcdefghijk".into(),
            key_package_ref: vec![7; 32],
            group: Some(ReentryGroup {
                id: vec![1; 32],
                ds: "did:web:ds.example.com".parse().unwrap(),
                mailbox: MailboxId::from_bytes([1; 32]),
            }),
            created_at: 1_800_000_000_000,
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[0x42; 32]);
        let signature = key.sign(&request.signed_bytes()).to_bytes();
        let crypto = openmls_rust_crypto::RustCrypto::default();
        assert!(request.verify(
            &crypto,
            SignatureScheme::ED25519,
            key.verifying_key().as_bytes(),
            &signature
        ));
        let plaintext = request.to_cbor(&signature);
        assert_eq!(
            hex(&request.signed_bytes()),
            "636861742e6d6c73207265656e747279207369676e6174757265207631a76364696478206469643a70\
             6c633a6161616161616161616161616161616161616161616161616567726f7570a362647376646964\
             3a7765623a64732e6578616d706c652e636f6d62696458200101010101010101010101010101010101\
             010101010101010101010101010101676d61696c626f78783461656171636169626165617163616962\
             6165617163616962616561716361696261656171636169626165617163616962616561716776657273\
             696f6e016864657669636549646464657631696372656174656441741b000001a3185c50006a6b6579\
             5061636b6167656d336b6162636465666768696a6b6d6b65795061636b616765526566582007070707\
             07070707070707070707070707070707070707070707070707070707"
        );
        assert_eq!(
            hex(&plaintext),
            "a86364696478206469643a706c633a6161616161616161616161616161616161616161616161616373\
             69675840093e6ee0632de1b9c890a681e8b3ae2a44ef12dbdaf29d712bcd44b6efbafc347e48a66b5b\
             e9ebd3b9245d251cf289a89fac740e9414e06fa79cf7e2c5d825076567726f7570a362647376646964\
             3a7765623a64732e6578616d706c652e636f6d62696458200101010101010101010101010101010101\
             010101010101010101010101010101676d61696c626f78783461656171636169626165617163616962\
             6165617163616962616561716361696261656171636169626165617163616962616561716776657273\
             696f6e016864657669636549646464657631696372656174656441741b000001a3185c50006a6b6579\
             5061636b6167656d336b6162636465666768696a6b6d6b65795061636b616765526566582007070707\
             07070707070707070707070707070707070707070707070707070707"
        );
        assert_eq!(
            hex(&epoch_tag(&(0u8..32).collect::<Vec<_>>())),
            "ce439bb3fd0525945d301e6442ee291d"
        );
        assert_eq!(ReentryRequest::from_cbor(&plaintext).unwrap().0, request);
    }
}
