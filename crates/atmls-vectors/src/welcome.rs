//! `sealed-welcome.json`: welcomes sealed to a KeyPackage init key (docs/spec.md §11.4) by
//! the client's `seal_welcome`, with a fixed HPKE ephemeral key.
//!
//! `seal_welcome` draws the ephemeral key inside `OpenMlsCrypto::hpke_seal`. To make the
//! output reproducible, [`FixedEphemeral`] is an `OpenMlsCrypto` that is openmls' RustCrypto
//! in everything except `hpke_seal`, which runs RFC 9180 SealBase (DHKEM(X25519,
//! HKDF-SHA256), HKDF-SHA256, AES-128-GCM) with the ephemeral key pair
//! DeriveKeyPair(ikmE). Every sealed value is then opened with the client's `open_welcome`
//! over plain RustCrypto (hpke-rs), which checks this SealBase against an independent
//! HPKE implementation.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use atmls_client::group::WELCOME_INFO;
use atmls_client::group::seal::{TreeRef, WelcomeInfo, open_welcome, seal_welcome};
use atmls_ds_proto::MailboxId;
use hkdf::Hkdf;
use openmls::prelude::Ciphersuite;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{
    AeadType, CryptoError, ExporterSecret, HashType, HpkeCiphertext, HpkeConfig, HpkeKeyPair,
    KemOutput, SignatureScheme,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::hex::hex;
use crate::{VectorError, VectorFile, fail, topic_file};

const TOPIC: &str = "sealed-welcome.json";

/// RustCrypto, except that `hpke_seal` uses the ephemeral key DeriveKeyPair(`ikm_e`).
pub(crate) struct FixedEphemeral {
    pub(crate) inner: RustCrypto,
    pub(crate) ikm_e: Vec<u8>,
    /// For X-Wing seals (§11.19): the 64 bytes of encapsulation randomness.
    pub(crate) xwing_eseed: Option<[u8; 64]>,
}

const KEM_SUITE: &[u8] = b"KEM\x00\x20";
const HPKE_SUITE: &[u8] = b"HPKE\x00\x20\x00\x01\x00\x01";

pub(crate) fn labeled_extract(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Hkdf<Sha256> {
    let input = [b"HPKE-v1".as_slice(), suite, label, ikm].concat();
    Hkdf::<Sha256>::new(Some(salt), &input)
}

pub(crate) fn labeled_extract_prk(suite: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Vec<u8> {
    let input = [b"HPKE-v1".as_slice(), suite, label, ikm].concat();
    Hkdf::<Sha256>::extract(Some(salt), &input).0.to_vec()
}

pub(crate) fn labeled_expand(
    prk: &Hkdf<Sha256>,
    suite: &[u8],
    label: &[u8],
    info: &[u8],
    len: u16,
) -> Result<Vec<u8>, CryptoError> {
    let full = [
        &len.to_be_bytes(),
        b"HPKE-v1".as_slice(),
        suite,
        label,
        info,
    ]
    .concat();
    let mut out = vec![0; usize::from(len)];
    prk.expand(&full, &mut out)
        .map_err(|_| CryptoError::InvalidLength)?;
    Ok(out)
}

impl FixedEphemeral {
    /// SealBase(pkR, info, aad, pt) with skE from DeriveKeyPair(ikm_e) (RFC 9180 §5.1, §6.1).
    fn seal_base(
        &self,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        pt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        let ephemeral = self.inner.derive_hpke_keypair(
            Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.hpke_config(),
            &self.ikm_e,
        )?;
        let sk_e: [u8; 32] = (*ephemeral.private)
            .try_into()
            .map_err(|_| CryptoError::InvalidLength)?;
        let pk_r: [u8; 32] = pk_r.try_into().map_err(|_| CryptoError::InvalidLength)?;
        let dh = x25519_dalek::StaticSecret::from(sk_e)
            .diffie_hellman(&x25519_dalek::PublicKey::from(pk_r));
        let kem_context = [ephemeral.public.as_slice(), &pk_r].concat();
        let eae_prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", dh.as_bytes());
        let shared = labeled_expand(&eae_prk, KEM_SUITE, b"shared_secret", &kem_context, 32)?;
        let psk_id_hash = labeled_extract_prk(HPKE_SUITE, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract_prk(HPKE_SUITE, b"", b"info_hash", info);
        let context = [[0u8].as_slice(), &psk_id_hash, &info_hash].concat();
        let secret = labeled_extract(HPKE_SUITE, &shared, b"secret", b"");
        let key = labeled_expand(&secret, HPKE_SUITE, b"key", &context, 16)?;
        let nonce = labeled_expand(&secret, HPKE_SUITE, b"base_nonce", &context, 12)?;
        let ct = Aes128Gcm::new_from_slice(&key)
            .map_err(|_| CryptoError::InvalidLength)?
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: pt, aad })
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        Ok(HpkeCiphertext {
            kem_output: ephemeral.public.into(),
            ciphertext: ct.into(),
        })
    }
}

impl OpenMlsCrypto for FixedEphemeral {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        self.inner.supports(ciphersuite)
    }
    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        self.inner.supported_ciphersuites()
    }
    fn hkdf_extract(
        &self,
        hash_type: HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<openmls::prelude::tls_codec::SecretVLBytes, CryptoError> {
        self.inner.hkdf_extract(hash_type, salt, ikm)
    }
    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<openmls::prelude::tls_codec::SecretVLBytes, CryptoError> {
        self.inner.hmac(hash_type, key, message)
    }
    fn hkdf_expand(
        &self,
        hash_type: HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<openmls::prelude::tls_codec::SecretVLBytes, CryptoError> {
        self.inner.hkdf_expand(hash_type, prk, info, okm_len)
    }
    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.hash(hash_type, data)
    }
    fn aead_encrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.inner.aead_encrypt(alg, key, data, nonce, aad)
    }
    fn aead_decrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.inner.aead_decrypt(alg, key, ct_tag, nonce, aad)
    }
    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        self.inner.signature_key_gen(alg)
    }
    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.inner.verify_signature(alg, data, pk, signature)
    }
    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.sign(alg, data, key)
    }
    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        if let Some(eseed) = &self.xwing_eseed {
            let HpkeConfig(kem, kdf, aead) = atmls_client::suite::XWING.hpke_config();
            if (config.0, config.1, config.2) != (kem, kdf, aead) {
                return Err(CryptoError::UnsupportedCiphersuite);
            }
            return crate::xwing::seal_base(pk_r, eseed, info, aad, ptxt);
        }
        let HpkeConfig(kem, kdf, aead) =
            Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.hpke_config();
        if (config.0, config.1, config.2) != (kem, kdf, aead) {
            return Err(CryptoError::UnsupportedCiphersuite);
        }
        self.seal_base(pk_r, info, aad, ptxt)
    }
    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.inner.hpke_open(config, input, sk_r, info, aad)
    }
    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        self.inner.hpke_setup_sender_and_export(
            config,
            pk_r,
            info,
            exporter_context,
            exporter_length,
        )
    }
    fn hpke_setup_receiver_and_export(
        &self,
        config: HpkeConfig,
        enc: &[u8],
        sk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        self.inner.hpke_setup_receiver_and_export(
            config,
            enc,
            sk_r,
            info,
            exporter_context,
            exporter_length,
        )
    }
    fn derive_hpke_keypair(
        &self,
        config: HpkeConfig,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError> {
        self.inner.derive_hpke_keypair(config, ikm)
    }
}

fn vector(
    name: &str,
    label: &str,
    welcome: Vec<u8>,
    mailbox: MailboxId,
    from_seq: u64,
    tree: Option<Vec<u8>>,
) -> Result<Value, VectorError> {
    let suite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
    let err = |e: CryptoError| fail(TOPIC, format!("{e:?}"));
    let recipient_ikm = crate::rng::bytes(&format!("{label}/recipient"), 32);
    let ephemeral_ikm = crate::rng::bytes(&format!("{label}/ephemeral"), 32);
    let crypto = FixedEphemeral {
        inner: RustCrypto::default(),
        ikm_e: ephemeral_ikm.clone(),
        xwing_eseed: None,
    };
    let recipient = crypto
        .derive_hpke_keypair(suite.hpke_config(), &recipient_ikm)
        .map_err(err)?;
    let info = WelcomeInfo {
        welcome: welcome.clone(),
        ds: crate::records::DS.parse().map_err(|e| fail(TOPIC, e))?,
        mailbox,
        from_seq,
        ratchet_tree: None,
    };
    let mut tree_json = None;
    let mut info = info;
    if let Some(tree) = &tree {
        let (tree_ref, ciphertext) = tree_blob(label, tree)?;
        tree_json = Some(json!({
            "tree": hex(tree),
            "treeCiphertext": hex(&ciphertext),
            "ratchetTree": {
                "did": tree_ref.did.to_string(),
                "cid": tree_ref.cid.to_string(),
                "key": hex(&tree_ref.key),
                "nonce": hex(&tree_ref.nonce),
                "digest": hex(&tree_ref.digest),
                "size": tree_ref.size,
            },
        }));
        info.ratchet_tree = Some(tree_ref);
    }
    let plaintext = info.to_cbor();
    let sealed = seal_welcome(&crypto, suite, &recipient.public, &info).map_err(err)?;
    let payload = atmls_client::content::pad(sealed.clone(), atmls_ds_proto::LEXICON_MAX_PAYLOAD);
    let opened = open_welcome(
        &RustCrypto::default(),
        suite.hpke_config(),
        &recipient.private,
        &payload,
    )
    .ok_or_else(|| fail(TOPIC, "hpke-rs does not open the sealed welcome"))?;
    if opened != plaintext || WelcomeInfo::from_cbor(&opened).as_ref() != Ok(&info) {
        return Err(fail(TOPIC, "the opened welcome differs"));
    }
    let enc_len = usize::from(u16::from_be_bytes([sealed[1], sealed[2]]));
    let mut v = json!({
        "name": name,
        "cipherSuite": 1,
        "recipientIkm": hex(&recipient_ikm),
        "ephemeralIkm": hex(&ephemeral_ikm),
        "info": String::from_utf8_lossy(WELCOME_INFO),
        "welcome": hex(&welcome),
        "ds": crate::records::DS,
        "mailbox": mailbox.to_string(),
        "fromSeq": from_seq,
        "recipientPublicKey": hex(&recipient.public),
        "recipientPrivateKey": hex(&recipient.private),
        "plaintext": hex(&plaintext),
        "enc": hex(&sealed[3..3 + enc_len]),
        "ciphertext": hex(&sealed[3 + enc_len + 4..]),
        "sealed": hex(&sealed),
        "payload": hex(&payload),
    });
    if let (Some(Value::Object(extra)), Value::Object(map)) = (tree_json, &mut v) {
        map.extend(extra);
    }
    Ok(v)
}

/// An out-of-band tree blob (§11.4) with fixed key and nonce, opened again by the client's
/// `open_tree`.
fn tree_blob(label: &str, tree: &[u8]) -> Result<(TreeRef, Vec<u8>), VectorError> {
    let key: [u8; 32] = crate::rng::array(&format!("{label}/tree-key"));
    let nonce: [u8; 12] = crate::rng::array(&format!("{label}/tree-nonce"));
    let mut padded = tree.to_vec();
    padded.resize(atmls_client::content::padded_len(tree.len(), usize::MAX), 0);
    let ciphertext = Aes256Gcm::new(&key.into())
        .encrypt(Nonce::from_slice(&nonce), padded.as_slice())
        .map_err(|_| fail(TOPIC, "tree encryption"))?;
    let tree_ref = TreeRef {
        did: crate::records::DID.parse().map_err(|e| fail(TOPIC, e))?,
        cid: atmls_repo::cid::raw(&ciphertext),
        key,
        nonce,
        digest: Sha256::digest(&ciphertext).into(),
        size: u64::try_from(tree.len()).map_err(|e| fail(TOPIC, e))?,
    };
    if atmls_client::open_tree(&tree_ref, &ciphertext).map_err(|e| fail(TOPIC, e))? != tree {
        return Err(fail(TOPIC, "the tree blob does not open"));
    }
    Ok((tree_ref, ciphertext))
}

pub(crate) fn file() -> Result<VectorFile, VectorError> {
    let vectors = vec![
        vector(
            "small welcome",
            "sealed-welcome/1",
            crate::rng::bytes("sealed-welcome/1/welcome", 48),
            MailboxId::from_bytes([1; 32]),
            7,
            None,
        )?,
        vector(
            "welcome over the first bucket (padded to 512 bytes)",
            "sealed-welcome/2",
            crate::rng::bytes("sealed-welcome/2/welcome", 200),
            MailboxId::from_bytes(crate::rng::array("sealed-welcome/2/mailbox")),
            1_000_001,
            None,
        )?,
        vector(
            "welcome without its ratchet tree, which is out of band (an encrypted blob)",
            "sealed-welcome/3",
            crate::rng::bytes("sealed-welcome/3/welcome", 120),
            MailboxId::from_bytes(crate::rng::array("sealed-welcome/3/mailbox")),
            42,
            Some(crate::rng::bytes("sealed-welcome/3/tree", 700)),
        )?,
    ];
    Ok(topic_file(
        TOPIC,
        "docs/spec.md §11.4, §11.5",
        "Recipient init key pair = DeriveKeyPair(recipientIkm), ephemeral = \
         DeriveKeyPair(ephemeralIkm) (RFC 9180 §7.1.3, DHKEM(X25519, HKDF-SHA256)). plaintext \
         = canonical DAG-CBOR {ds, fromSeq, mailbox, version: 1, welcome (bytes)}. enc, \
         ciphertext = HPKE SealBase(pkR = recipientPublicKey, info, aad = \"\", plaintext) \
         with HKDF-SHA256 and AES-128-GCM. sealed = 0x01 || u16 len(enc) || enc || u32 \
         len(ciphertext) || ciphertext. payload = sealed followed by zero bytes up to its size \
         bucket (256, then powers of two). With `tree` (the out-of-band ratchet tree, §11.4): \
         treeCiphertext = AES-256-GCM(ratchetTree.key, ratchetTree.nonce, tree padded with \
         zeros to its bucket), ratchetTree.digest = SHA-256(treeCiphertext), .cid = its raw \
         CID, .size = len(tree), and the plaintext map has ratchetTree = {cid, did, key, \
         size, nonce, digest} (key, nonce, digest as bytes).",
        vectors,
    ))
}
