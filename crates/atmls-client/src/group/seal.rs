//! Mailbox keys derived from MLS, and welcomes sealed to an invitee's KeyPackage.

use atmls_ds_proto::MailboxId;
use atmls_identity::Did;
use ed25519_dalek::SigningKey;
use ipld_core::ipld::Ipld;
use openmls::prelude::*;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{HpkeCiphertext, HpkeConfig};
use std::collections::BTreeMap;

/// The MLS exporter label of mailbox keys.
pub const MAILBOX_KEY_LABEL: &str = "chat.mls mailbox";

/// The HPKE `info` of sealed welcomes (domain-separated from MLS's own HPKE uses, whose
/// labels all start with `MLS 1.0 `).
pub const WELCOME_INFO: &[u8] = b"chat.mls welcome v1";

const SEALED_VERSION: u8 = 1;
const WELCOME_PLAINTEXT_VERSION: i128 = 1;

/// The Ed25519 mailbox key of the group's current epoch:
/// `seed = MLS-Exporter("chat.mls mailbox", mailbox_id_raw, 32)`.
pub(crate) fn mailbox_key(
    group: &MlsGroup,
    crypto: &impl OpenMlsCrypto,
    mailbox: &[u8; 32],
) -> Result<SigningKey, ExportSecretError> {
    seed_key(group.export_secret(crypto, MAILBOX_KEY_LABEL, mailbox, 32)?)
}

/// The mailbox key of the epoch a staged commit moves to (before merging).
pub(crate) fn staged_mailbox_key(
    staged: &StagedCommit,
    crypto: &impl OpenMlsCrypto,
    mailbox: &[u8; 32],
) -> Result<SigningKey, ExportSecretError> {
    seed_key(staged.export_secret(crypto, MAILBOX_KEY_LABEL, mailbox, 32)?)
}

/// The Ed25519 mailbox key pair whose RFC 8032 secret seed is `seed` (32 bytes, the
/// exporter output).
pub fn seed_key(seed: Vec<u8>) -> Result<SigningKey, ExportSecretError> {
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| ExportSecretError::KeyLengthTooLong)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// What a sealed welcome tells the invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeInfo {
    /// The MLSMessage (wire format welcome), TLS-encoded.
    pub welcome: Vec<u8>,
    /// The DS of the group mailbox.
    pub ds: Did,
    /// The group mailbox.
    pub mailbox: MailboxId,
    /// The first sequence number the invitee reads (the one after the adding commit).
    pub from_seq: u64,
    /// Where the ratchet tree is when the Welcome leaves it out (it did not fit).
    pub ratchet_tree: Option<TreeRef>,
}

/// A ratchet tree stored out of band: encrypted like an attachment (AES-256-GCM, fresh
/// key, zero padding to the size bucket) and uploaded as a blob to the committer's PDS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeRef {
    /// The account whose PDS holds the blob.
    pub did: Did,
    /// The blob's CID (raw codec, SHA-256).
    pub cid: cid::Cid,
    /// The AES-256-GCM key.
    pub key: [u8; 32],
    /// The AES-256-GCM nonce.
    pub nonce: [u8; 12],
    /// SHA-256 of the blob (the ciphertext).
    pub digest: [u8; 32],
    /// The length of the TLS-encoded ratchet tree (the plaintext before padding).
    pub size: u64,
}

impl TreeRef {
    /// DAG-CBOR map `{"cid", "did", "key", "size", "nonce", "digest"}` (CID and DID as
    /// strings).
    fn to_ipld(&self) -> Ipld {
        Ipld::Map(BTreeMap::from([
            ("did".to_owned(), Ipld::String(self.did.to_string())),
            ("cid".to_owned(), Ipld::String(self.cid.to_string())),
            ("key".to_owned(), Ipld::Bytes(self.key.to_vec())),
            ("nonce".to_owned(), Ipld::Bytes(self.nonce.to_vec())),
            ("digest".to_owned(), Ipld::Bytes(self.digest.to_vec())),
            ("size".to_owned(), Ipld::Integer(i128::from(self.size))),
        ]))
    }

    fn from_ipld(value: &Ipld) -> Result<Self, String> {
        let Ipld::Map(map) = value else {
            return Err("ratchetTree is not a map".into());
        };
        let (
            Some(Ipld::String(did)),
            Some(Ipld::String(cid)),
            Some(Ipld::Bytes(key)),
            Some(Ipld::Bytes(nonce)),
            Some(Ipld::Bytes(digest)),
            Some(Ipld::Integer(size)),
        ) = (
            map.get("did"),
            map.get("cid"),
            map.get("key"),
            map.get("nonce"),
            map.get("digest"),
            map.get("size"),
        )
        else {
            return Err("ratchetTree: missing or mistyped field".into());
        };
        Ok(Self {
            did: did.parse().map_err(|_| "ratchetTree: did".to_owned())?,
            cid: cid.parse().map_err(|_| "ratchetTree: cid".to_owned())?,
            key: key.as_slice().try_into().map_err(|_| "ratchetTree: key")?,
            nonce: nonce
                .as_slice()
                .try_into()
                .map_err(|_| "ratchetTree: nonce")?,
            digest: digest
                .as_slice()
                .try_into()
                .map_err(|_| "ratchetTree: digest")?,
            size: u64::try_from(*size).map_err(|_| "ratchetTree: size".to_owned())?,
        })
    }
}

impl WelcomeInfo {
    /// DAG-CBOR `{"ds", "fromSeq", "mailbox", "version": 1, "welcome"}`, plus
    /// `"ratchetTree"` when the tree is out of band.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut map = BTreeMap::from([
            (
                "version".to_owned(),
                Ipld::Integer(WELCOME_PLAINTEXT_VERSION),
            ),
            ("welcome".to_owned(), Ipld::Bytes(self.welcome.clone())),
            ("ds".to_owned(), Ipld::String(self.ds.to_string())),
            ("mailbox".to_owned(), Ipld::String(self.mailbox.to_string())),
            (
                "fromSeq".to_owned(),
                Ipld::Integer(i128::from(self.from_seq)),
            ),
        ]);
        if let Some(tree) = &self.ratchet_tree {
            map.insert("ratchetTree".to_owned(), tree.to_ipld());
        }
        atmls_repo::cbor::encode(&Ipld::Map(map)).unwrap_or_default()
    }

    /// Parses the plaintext of an opened welcome.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, String> {
        let Ipld::Map(map) = atmls_repo::cbor::decode_ipld(bytes).map_err(|e| e.to_string())?
        else {
            return Err("not a map".into());
        };
        match map.get("version") {
            Some(Ipld::Integer(v)) if *v == WELCOME_PLAINTEXT_VERSION => {}
            _ => return Err("unknown version".into()),
        }
        let (
            Some(Ipld::Bytes(welcome)),
            Some(Ipld::String(ds)),
            Some(Ipld::String(mailbox)),
            Some(Ipld::Integer(from_seq)),
        ) = (
            map.get("welcome"),
            map.get("ds"),
            map.get("mailbox"),
            map.get("fromSeq"),
        )
        else {
            return Err("missing or mistyped field".into());
        };
        Ok(Self {
            welcome: welcome.clone(),
            ds: ds.parse().map_err(|_| "ds is not a DID".to_owned())?,
            mailbox: mailbox.parse().map_err(|_| "bad mailbox id".to_owned())?,
            from_seq: u64::try_from(*from_seq).map_err(|_| "bad fromSeq".to_owned())?,
            ratchet_tree: map.get("ratchetTree").map(TreeRef::from_ipld).transpose()?,
        })
    }
}

/// An upper bound of the length of `info` sealed (before padding) in a group of `suite`:
/// 7 bytes of layout, the KEM output (at least 133 bytes, P-521's, so that the bound of
/// the classical suites does not depend on the suite; X-Wing's is 1,120) and the 16-byte
/// AEAD tag.
pub fn sealed_len_bound(info: &WelcomeInfo, suite: Ciphersuite) -> usize {
    info.to_cbor().len() + 7 + kem_output_len(suite).max(133) + 16
}

/// The length of the HPKE KEM output (`enc`) of `suite`'s KEM.
pub fn kem_output_len(suite: Ciphersuite) -> usize {
    use openmls_traits::types::HpkeKemType;
    match suite.hpke_kem_algorithm() {
        HpkeKemType::DhKemP256 => 65,
        HpkeKemType::DhKemP384 => 97,
        HpkeKemType::DhKemP521 => 133,
        HpkeKemType::DhKem25519 => 32,
        HpkeKemType::DhKem448 => 56,
        HpkeKemType::MlKem768 => 1088,
        HpkeKemType::MlKem1024 => 1568,
        HpkeKemType::XWingKemDraft6 => 1120,
    }
}

/// Seals `info` to an invitee's init key (HPKE base mode of `suite`, `info` =
/// [`WELCOME_INFO`], empty aad):
/// `0x01 || u16 len(enc) || enc || u32 len(ct) || ct`, then zero padding to the bucket.
pub fn seal_welcome(
    crypto: &impl OpenMlsCrypto,
    suite: Ciphersuite,
    init_key: &[u8],
    info: &WelcomeInfo,
) -> Result<Vec<u8>, CryptoError> {
    seal_to_init_key(
        crypto,
        suite,
        init_key,
        SEALED_VERSION,
        WELCOME_INFO,
        &info.to_cbor(),
    )
}

/// HPKE-seals `plaintext` to an init key with `info`, framed
/// `version || u16 len(enc) || enc || u32 len(ct) || ct` (welcomes: version 1; re-entry
/// requests, §11.17: version 2).
pub(crate) fn seal_to_init_key(
    crypto: &impl OpenMlsCrypto,
    suite: Ciphersuite,
    init_key: &[u8],
    version: u8,
    info: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let ct = crypto.hpke_seal(suite.hpke_config(), init_key, info, &[], plaintext)?;
    let enc = ct.kem_output.as_slice();
    let body = ct.ciphertext.as_slice();
    let enc_len = u16::try_from(enc.len()).map_err(|_| CryptoError::InvalidLength)?;
    let ct_len = u32::try_from(body.len()).map_err(|_| CryptoError::InvalidLength)?;
    let mut out = Vec::with_capacity(7 + enc.len() + body.len());
    out.push(version);
    out.extend_from_slice(&enc_len.to_be_bytes());
    out.extend_from_slice(enc);
    out.extend_from_slice(&ct_len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// Opens a sealed welcome with an init private key; `None` if it is not for this key
/// (or malformed, or its padding is not zeros).
pub fn open_welcome(
    crypto: &impl OpenMlsCrypto,
    config: HpkeConfig,
    init_private: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    open_sealed(
        crypto,
        config,
        init_private,
        SEALED_VERSION,
        WELCOME_INFO,
        sealed,
    )
}

/// Opens what [`seal_to_init_key`] sealed with `version` and `info`; `None` if the
/// version differs, it is malformed, its padding is not zeros, or it does not open.
pub(crate) fn open_sealed(
    crypto: &impl OpenMlsCrypto,
    config: HpkeConfig,
    init_private: &[u8],
    version: u8,
    info: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    let (&found, rest) = sealed.split_first()?;
    if found != version {
        return None;
    }
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let (enc, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let (ciphertext, padding) =
        rest.split_at_checked(usize::try_from(u32::from_be_bytes(*len)).ok()?)?;
    if padding.iter().any(|b| *b != 0) {
        return None;
    }
    let ct = HpkeCiphertext {
        kem_output: enc.to_vec().into(),
        ciphertext: ciphertext.to_vec().into(),
    };
    crypto.hpke_open(config, &ct, init_private, info, &[]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_info_round_trip() {
        let info = WelcomeInfo {
            welcome: vec![1, 2, 3],
            ds: "did:web:ds.example.com".parse().unwrap(),
            mailbox: MailboxId::from_bytes([1; 32]),
            from_seq: 7,
            ratchet_tree: None,
        };
        let bytes = info.to_cbor();
        assert_eq!(WelcomeInfo::from_cbor(&bytes).unwrap(), info);
        // Canonical map order: shorter keys first.
        let text = String::from_utf8_lossy(&bytes);
        let ds = text.find("ds").unwrap();
        let from = text.find("fromSeq").unwrap();
        assert!(ds < from);
        assert!(WelcomeInfo::from_cbor(&bytes[..bytes.len() - 1]).is_err());
    }

    /// The inline-tree decision (§11.4) must never let a sealed welcome exceed the bound:
    /// with X-Wing's 1,120-byte KEM output a bound of 133 bytes was 987 bytes short.
    #[test]
    fn the_sealed_length_is_within_the_bound_in_every_suite() {
        let crypto = openmls_libcrux_crypto::CryptoProvider::new().unwrap();
        for suite in crate::suite::ALL.iter().copied() {
            let pair = crypto
                .derive_hpke_keypair(suite.hpke_config(), &[7; 32])
                .unwrap();
            let info = WelcomeInfo {
                welcome: vec![0x5a; 4000],
                ds: "did:web:ds.example.com".parse().unwrap(),
                mailbox: MailboxId::from_bytes([1; 32]),
                from_seq: u64::MAX,
                ratchet_tree: None,
            };
            let sealed = seal_welcome(&crypto, suite, &pair.public, &info).unwrap();
            // Without padding: the layout's own lengths say where the sealed object ends.
            let enc_len = usize::from(u16::from_be_bytes([sealed[1], sealed[2]]));
            assert_eq!(enc_len, kem_output_len(suite), "{suite:?}");
            let ct_at = 3 + enc_len;
            let ct_len = u32::from_be_bytes(sealed[ct_at..ct_at + 4].try_into().unwrap());
            let used = ct_at + 4 + usize::try_from(ct_len).unwrap();
            assert!(
                used <= sealed_len_bound(&info, suite),
                "{suite:?}: {used} > {}",
                sealed_len_bound(&info, suite)
            );
        }
    }

    #[test]
    fn out_of_band_tree_round_trip_and_refusals() {
        let mut info = WelcomeInfo {
            welcome: vec![1, 2, 3],
            ds: "did:web:ds.example.com".parse().unwrap(),
            mailbox: MailboxId::from_bytes([1; 32]),
            from_seq: 7,
            ratchet_tree: None,
        };
        let inline = info.to_cbor();
        info.ratchet_tree = Some(TreeRef {
            did: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
            cid: atmls_repo::cid::raw(b"tree"),
            key: [2; 32],
            nonce: [3; 12],
            digest: [4; 32],
            size: 70_000,
        });
        let bytes = info.to_cbor();
        assert!(bytes.len() > inline.len());
        assert_eq!(WelcomeInfo::from_cbor(&bytes).unwrap(), info);
        // A short key is refused.
        let Ipld::Map(mut map) = atmls_repo::cbor::decode_ipld(&bytes).unwrap() else {
            unreachable!()
        };
        let Some(Ipld::Map(tree)) = map.get_mut("ratchetTree") else {
            unreachable!()
        };
        tree.insert("key".into(), Ipld::Bytes(vec![2; 31]));
        let bad = atmls_repo::cbor::encode(&Ipld::Map(map)).unwrap();
        assert!(WelcomeInfo::from_cbor(&bad).is_err());
    }
}

#[cfg(test)]
mod vector {
    use super::*;

    /// The out-of-band tree vector of docs/spec.md §11.4.
    #[test]
    fn welcome_info_tree_vector() {
        let info = WelcomeInfo {
            welcome: vec![0xde, 0xad],
            ds: "did:web:ds.example.com".parse().unwrap(),
            mailbox: MailboxId::from_bytes([1; 32]),
            from_seq: 7,
            ratchet_tree: Some(TreeRef {
                did: "did:web:pds.example.com".parse().unwrap(),
                cid: atmls_repo::cid::raw(b""),
                key: [0x11; 32],
                nonce: [0x22; 12],
                digest: [0x33; 32],
                size: 300,
            }),
        };
        let hex: String = info.to_cbor().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "a6626473766469643a7765623a64732e6578616d706c652e636f6d6766726f6d53657107676d61696c\
             626f787834616561716361696261656171636169626165617163616962616561716361696261656171\
             636169626165617163616962616561716776657273696f6e016777656c636f6d6542dead6b72617463\
             68657454726565a663636964783b6261666b7265696864776463656667683464716b6a763637757a63\
             6d77376f6a6565367865647a6465746f6a757a6a657674656e78717576796b7563646964776469643a\
             7765623a7064732e6578616d706c652e636f6d636b6579582011111111111111111111111111111111\
             111111111111111111111111111111116473697a6519012c656e6f6e63654c22222222222222222222\
             2222666469676573745820333333333333333333333333333333333333333333333333333333333333\
             3333"
        );
        assert_eq!(WelcomeInfo::from_cbor(&info.to_cbor()).unwrap(), info);
    }

    /// The test vector printed in docs/spec.md §11.4.
    #[test]
    fn welcome_info_vector() {
        let info = WelcomeInfo {
            welcome: vec![0xde, 0xad],
            ds: "did:web:ds.example.com".parse().unwrap(),
            mailbox: MailboxId::from_bytes([1; 32]),
            from_seq: 7,
            ratchet_tree: None,
        };
        let hex: String = info.to_cbor().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "a5626473766469643a7765623a64732e6578616d706c652e636f6d6766726f6d53657107676d61696c\
             626f787834616561716361696261656171636169626165617163616962616561716361696261656171\
             636169626165617163616962616561716776657273696f6e016777656c636f6d6542dead"
        );
    }
}
