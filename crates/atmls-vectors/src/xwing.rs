//! The X-Wing suite (0x004D, docs/spec.md §11.19): `xwing-sealed-welcome.json` and
//! `xwing-mailbox-key.json`.
//!
//! A welcome is sealed by the client's `seal_welcome` with the group's suite; the HPKE
//! seal runs X-Wing (draft-connolly-cfrg-xwing-kem-06, HPKE KEM id 0x647A) with HKDF-SHA256
//! and ChaCha20-Poly1305. To make it reproducible, [`seal_base`] encapsulates with the
//! RustCrypto `x-wing` crate's deterministic encapsulation (64 fixed bytes of randomness);
//! every sealed value is then opened by the client's `open_welcome` over **libcrux** (the
//! client's provider, decision 0027) and over RustCrypto, so three implementations agree
//! before Python checks it a fourth way.

use atmls_client::group::MAILBOX_KEY_LABEL;
use atmls_client::group::WELCOME_INFO;
use atmls_client::group::seal::{WelcomeInfo, open_welcome, seal_welcome, seed_key};
use atmls_client::suite::XWING;
use atmls_ds_proto::MailboxId;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{CryptoError, HpkeCiphertext};
use serde_json::{Value, json};

use crate::hex::hex;
use crate::welcome::{FixedEphemeral, labeled_expand, labeled_extract, labeled_extract_prk};
use crate::{VectorError, VectorFile, fail, topic_file};

const WELCOME_TOPIC: &str = "xwing-sealed-welcome.json";
const KEY_TOPIC: &str = "xwing-mailbox-key.json";

/// `HPKE` || kem_id 0x647A (X-Wing) || kdf_id 0x0001 (HKDF-SHA256) || aead_id 0x0003
/// (ChaCha20-Poly1305).
const HPKE_SUITE: &[u8] = b"HPKE\x64\x7a\x00\x01\x00\x03";

/// SealBase(pkR, info, aad, pt) with X-Wing encapsulation randomness `eseed` (RFC 9180
/// §5.1, §6.1; the X-Wing shared secret is the KEM's, used as is).
pub(crate) fn seal_base(
    pk_r: &[u8],
    eseed: &[u8; 64],
    info: &[u8],
    aad: &[u8],
    pt: &[u8],
) -> Result<HpkeCiphertext, CryptoError> {
    use x_wing::TryKeyInit as _;
    let ek = x_wing::EncapsulationKey::new_from_slice(pk_r)
        .map_err(|_| CryptoError::InvalidPublicKey)?;
    let (ct, shared) = ek.encapsulate_deterministic(&(*eseed).into());
    let psk_id_hash = labeled_extract_prk(HPKE_SUITE, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract_prk(HPKE_SUITE, b"", b"info_hash", info);
    let context = [[0u8].as_slice(), &psk_id_hash, &info_hash].concat();
    let secret = labeled_extract(HPKE_SUITE, shared.as_slice(), b"secret", b"");
    let key = labeled_expand(&secret, HPKE_SUITE, b"key", &context, 32)?;
    let nonce = labeled_expand(&secret, HPKE_SUITE, b"base_nonce", &context, 12)?;
    let ciphertext = ChaCha20Poly1305::new_from_slice(&key)
        .map_err(|_| CryptoError::InvalidLength)?
        .encrypt(nonce.as_slice().into(), Payload { msg: pt, aad })
        .map_err(|_| CryptoError::CryptoLibraryError)?;
    Ok(HpkeCiphertext {
        kem_output: ct.as_slice().to_vec().into(),
        ciphertext: ciphertext.into(),
    })
}

fn libcrux() -> Result<openmls_libcrux_crypto::CryptoProvider, VectorError> {
    openmls_libcrux_crypto::CryptoProvider::new().map_err(|e| fail(WELCOME_TOPIC, format!("{e:?}")))
}

fn welcome_vector(
    name: &str,
    label: &str,
    welcome: Vec<u8>,
    mailbox: MailboxId,
    from_seq: u64,
) -> Result<Value, VectorError> {
    let err = |e: CryptoError| fail(WELCOME_TOPIC, format!("{e:?}"));
    let recipient_ikm = crate::rng::bytes(&format!("{label}/recipient"), 32);
    let eseed: [u8; 64] = crate::rng::array(&format!("{label}/ephemeral"));
    // DeriveKeyPair by both providers: the same public key, the private key the 32-byte
    // X-Wing seed.
    let libcrux = libcrux()?;
    let recipient = RustCrypto::default()
        .derive_hpke_keypair(XWING.hpke_config(), &recipient_ikm)
        .map_err(err)?;
    let by_libcrux = libcrux
        .derive_hpke_keypair(XWING.hpke_config(), &recipient_ikm)
        .map_err(err)?;
    if by_libcrux.public != recipient.public || recipient.private.len() != 32 {
        return Err(fail(
            WELCOME_TOPIC,
            "libcrux and RustCrypto derive different X-Wing keys",
        ));
    }
    let crypto = FixedEphemeral {
        inner: RustCrypto::default(),
        ikm_e: Vec::new(),
        xwing_eseed: Some(eseed),
    };
    let info = WelcomeInfo {
        welcome: welcome.clone(),
        ds: crate::records::DS
            .parse()
            .map_err(|e| fail(WELCOME_TOPIC, e))?,
        mailbox,
        from_seq,
        ratchet_tree: None,
    };
    let plaintext = info.to_cbor();
    let sealed = seal_welcome(&crypto, XWING, &recipient.public, &info).map_err(err)?;
    let payload = atmls_client::content::pad(sealed.clone(), atmls_ds_proto::LEXICON_MAX_PAYLOAD);
    for (opener, private) in [
        (&libcrux as &dyn Opener, &by_libcrux.private),
        (&RustCrypto::default() as &dyn Opener, &recipient.private),
    ] {
        let opened = opener
            .open(private, &payload)
            .ok_or_else(|| fail(WELCOME_TOPIC, "a provider does not open the sealed welcome"))?;
        if opened != plaintext {
            return Err(fail(WELCOME_TOPIC, "the opened welcome differs"));
        }
    }
    let enc_len = usize::from(u16::from_be_bytes([sealed[1], sealed[2]]));
    // The X25519 half of the randomness as the scalar it acts as (RFC 7748 clamping), so
    // that every byte of the vector matters.
    let mut ephemeral_x25519 = [0u8; 32];
    ephemeral_x25519.copy_from_slice(&eseed[32..]);
    ephemeral_x25519[0] &= 248;
    ephemeral_x25519[31] &= 127;
    ephemeral_x25519[31] |= 64;
    Ok(json!({
        "name": name,
        "cipherSuite": u16::from(XWING),
        "recipientIkm": hex(&recipient_ikm),
        "ephemeralX25519": hex(&ephemeral_x25519),
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
    }))
}

/// `open_welcome` over one provider (object-safe over the two).
trait Opener {
    fn open(&self, private: &[u8], payload: &[u8]) -> Option<Vec<u8>>;
}

impl<C: OpenMlsCrypto> Opener for C {
    fn open(&self, private: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
        open_welcome(self, XWING.hpke_config(), private, payload)
    }
}

pub(crate) fn welcome_file() -> Result<VectorFile, VectorError> {
    let vectors = vec![welcome_vector(
        "X-Wing sealed welcome",
        "xwing-sealed-welcome/1",
        crate::rng::bytes("xwing-sealed-welcome/1/welcome", 48),
        MailboxId::from_bytes(crate::rng::array("xwing-sealed-welcome/1/mailbox")),
        3,
    )?];
    Ok(topic_file(
        WELCOME_TOPIC,
        "docs/spec.md §11.4, §11.19",
        "Suite 0x004D (X-Wing). Recipient: seed = SHAKE256(recipientIkm, 32) (HPKE \
         DeriveKeyPair of X-Wing) = recipientPrivateKey; expanded = SHAKE256(seed, 96); \
         ML-KEM-768 key pair from expanded[0:64] (d || z), X25519 secret expanded[64:96]; \
         recipientPublicKey = pk_M (1184) || pk_X (32). enc = ct_M (1088) || ct_X (32) with \
         ct_X = X25519(ephemeralX25519, basepoint) (ephemeralX25519 clamped as RFC 7748 \
         does: low 3 bits clear, top bit clear, bit 254 set); the ML-KEM half was encapsulated with \
         fixed randomness that is not part of the vector (decapsulate it). Shared secret = \
         SHA3-256(ss_M || ss_X || ct_X || pk_X || \"\\\\.//^\\\\\") (draft-connolly-cfrg-xwing-kem-06). \
         HPKE base mode, suite_id = \"HPKE\" || 0x647A || 0x0001 || 0x0003 (HKDF-SHA256, \
         ChaCha20-Poly1305), info, aad = \"\": ciphertext. plaintext, sealed and payload as in \
         sealed-welcome.json.",
        vectors,
    ))
}

/// MLS-Exporter of suite 0x004D (SHA-256, like 0x0001) from a given exporter secret,
/// computed with the client's provider (libcrux) and checked against the RustCrypto one.
fn key_vector(name: &str, secret: &[u8], mailbox: [u8; 32]) -> Result<Value, VectorError> {
    let err = |e: CryptoError| fail(KEY_TOPIC, format!("{e:?}"));
    let crypto = libcrux()?;
    let hash = XWING.hash_algorithm();
    let expand = |secret: &[u8], label: &[u8], context: &[u8], length: u16| {
        let mut info = length.to_be_bytes().to_vec();
        vl(&mut info, &[b"MLS 1.0 ".as_slice(), label].concat());
        vl(&mut info, context);
        crypto
            .hkdf_expand(hash, secret, &info, usize::from(length))
            .map(|v| v.as_slice().to_vec())
            .map_err(err)
    };
    let derived = expand(secret, MAILBOX_KEY_LABEL.as_bytes(), &[], 32)?;
    let context_hash = crypto.hash(hash, &mailbox).map_err(err)?;
    let exported = expand(&derived, b"exported", &context_hash, 32)?;
    if exported
        != crate::mailbox_key::mls_exporter(secret, MAILBOX_KEY_LABEL.as_bytes(), &mailbox, 32)?
    {
        return Err(fail(KEY_TOPIC, "libcrux and RustCrypto exporters differ"));
    }
    let key = seed_key(exported.clone()).map_err(|e| fail(KEY_TOPIC, e))?;
    Ok(json!({
        "name": name,
        "cipherSuite": u16::from(XWING),
        "exporterSecret": hex(secret),
        "label": MAILBOX_KEY_LABEL,
        "mailbox": MailboxId::from_bytes(mailbox).to_string(),
        "length": 32,
        "exported": hex(&exported),
        "publicKey": hex(key.verifying_key().as_bytes()),
    }))
}

/// An MLS variable-length vector header and body (RFC 9420 §2.1.2; short inputs only).
fn vl(out: &mut Vec<u8>, data: &[u8]) {
    match u8::try_from(data.len()) {
        Ok(n) if n < 64 => out.push(n),
        _ => {
            let n = u16::try_from(data.len()).unwrap_or(u16::MAX) & 0x3fff;
            out.extend_from_slice(&(0x4000 | n).to_be_bytes());
        }
    }
    out.extend_from_slice(data);
}

pub(crate) fn mailbox_key_file() -> Result<VectorFile, VectorError> {
    let vectors = vec![
        key_vector(
            "X-Wing group, epoch 0: context is 32 zero bytes",
            &crate::rng::bytes("xwing-mailbox-key/epoch 0", 32),
            [0; 32],
        )?,
        key_vector(
            "X-Wing group, epoch e >= 1: context is the raw group mailbox id",
            &crate::rng::bytes("xwing-mailbox-key/epoch 1", 32),
            crate::rng::array("xwing-mailbox-key/mailbox"),
        )?,
    ];
    Ok(topic_file(
        KEY_TOPIC,
        "docs/spec.md §11.3, §11.19",
        "As mailbox-key.json for suite 0x004D, whose KDF is HKDF-SHA256 like 0x0001's: \
         exported = MLS-Exporter(\"chat.mls mailbox\", raw mailbox id (zero bytes in epoch 0), \
         32) = ExpandWithLabel(DeriveSecret(exporterSecret, label), \"exported\", \
         SHA-256(context), 32); publicKey is the Ed25519 public key of seed `exported`. \
         Computed with the client's provider (libcrux).",
        vectors,
    ))
}
