//! `mailbox-key.json`: mailbox keys from a given MLS exporter secret (docs/spec.md §11.3).
//!
//! openmls keeps an epoch's exporter secret private (`MlsGroup::export_secret` derives from
//! it but never shows it), so this module computes MLS-Exporter (RFC 9420 §8.5) from a
//! given secret with openmls' own HKDF and hash, and the first vector is the exporter of
//! the RFC 9420 key-schedule test vector (cipher suite 1, epoch 0), which pins that
//! computation. The Ed25519 key pair is the client's own `seal::seed_key`.

use atmls_client::group::MAILBOX_KEY_LABEL;
use atmls_client::group::seal::seed_key;
use atmls_ds_proto::MailboxId;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::HashType;
use serde_json::{Value, json};

use crate::hex::hex;
use crate::{VectorError, VectorFile, fail, topic_file};

const TOPIC: &str = "mailbox-key.json";

/// An MLS variable-length vector (RFC 9420 §2.1.2).
fn vl(out: &mut Vec<u8>, data: &[u8]) {
    let n = data.len();
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&(0x4000 | n as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&(0x8000_0000 | n as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
}

/// ExpandWithLabel(secret, label, context, length) with SHA-256 (RFC 9420 §8).
fn expand_with_label(
    crypto: &RustCrypto,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    length: u16,
) -> Result<Vec<u8>, VectorError> {
    let mut info = length.to_be_bytes().to_vec();
    vl(&mut info, &[b"MLS 1.0 ".as_slice(), label].concat());
    vl(&mut info, context);
    Ok(crypto
        .hkdf_expand(HashType::Sha2_256, secret, &info, usize::from(length))
        .map_err(|e| fail(TOPIC, format!("{e:?}")))?
        .as_slice()
        .to_vec())
}

/// MLS-Exporter(label, context, length) from `exporter_secret` (cipher suite 1).
pub(crate) fn mls_exporter(
    exporter_secret: &[u8],
    label: &[u8],
    context: &[u8],
    length: u16,
) -> Result<Vec<u8>, VectorError> {
    let crypto = RustCrypto::default();
    let derived = expand_with_label(&crypto, exporter_secret, label, &[], 32)?;
    let context_hash = crypto
        .hash(HashType::Sha2_256, context)
        .map_err(|e| fail(TOPIC, format!("{e:?}")))?;
    expand_with_label(&crypto, &derived, b"exported", &context_hash, length)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// RFC 9420 key-schedule test vector, cipher suite 1, epoch 0 (exporter part).
const KAT_SECRET: &str = "5a097e149f2a375d0b9e1d1f4dc3a9c6c1788df888e5441f41a8791f4dc56cea";
const KAT_LABEL: &str = "9ba13d54ecdec7cbefcb47b4268d7b1990fabc6d6e67681e167959389d84e4e4";
const KAT_CONTEXT: &str = "884f1af892ab002f5be4c5d5081ade9e0e6418c6ea7a9a92e90534f19dcef785";
const KAT_EXPORTED: &str = "dbce4e25e59ab4dfa6f6200f113ed08393cf6e7286d024811141c6a4dd11c0cb";

fn kat() -> Result<Value, VectorError> {
    // As openmls' own KAT test and the published vectors' generator do, the label is the
    // text of the `label` field itself (its ASCII characters), not the bytes it spells.
    let exported = mls_exporter(
        &unhex(KAT_SECRET),
        KAT_LABEL.as_bytes(),
        &unhex(KAT_CONTEXT),
        32,
    )?;
    if hex(&exported) != KAT_EXPORTED {
        return Err(fail(
            TOPIC,
            "MLS-Exporter disagrees with RFC 9420's test vector",
        ));
    }
    Ok(json!({
        "name": "MLS-Exporter: RFC 9420 key-schedule test vector, cipher suite 1, epoch 0",
        "cipherSuite": 1,
        "exporterSecret": KAT_SECRET,
        "label": KAT_LABEL,
        "context": KAT_CONTEXT,
        "length": 32,
        "exported": KAT_EXPORTED,
    }))
}

fn mailbox_vector(name: &str, secret: &[u8], mailbox: [u8; 32]) -> Result<Value, VectorError> {
    let exported = mls_exporter(secret, MAILBOX_KEY_LABEL.as_bytes(), &mailbox, 32)?;
    let key = seed_key(exported.clone()).map_err(|e| fail(TOPIC, e))?;
    Ok(json!({
        "name": name,
        "cipherSuite": 1,
        "exporterSecret": hex(secret),
        "label": MAILBOX_KEY_LABEL,
        "mailbox": MailboxId::from_bytes(mailbox).to_string(),
        "length": 32,
        "exported": hex(&exported),
        "publicKey": hex(key.verifying_key().as_bytes()),
    }))
}

pub(crate) fn file() -> Result<VectorFile, VectorError> {
    let vectors = vec![
        kat()?,
        mailbox_vector(
            "epoch 0: context is 32 zero bytes",
            &crate::rng::bytes("mailbox-key/epoch 0", 32),
            [0; 32],
        )?,
        mailbox_vector(
            "epoch e >= 1: context is the raw group mailbox id",
            &crate::rng::bytes("mailbox-key/epoch 1", 32),
            crate::rng::array("mailbox-key/mailbox"),
        )?,
    ];
    Ok(topic_file(
        TOPIC,
        "docs/spec.md §11.3",
        "exported = MLS-Exporter(label, context, length) = ExpandWithLabel(DeriveSecret(\
         exporterSecret, label), \"exported\", SHA-256(context), length) (RFC 9420 §8.5, \
         cipher suite 1). For mailbox keys the label is \"chat.mls mailbox\", the context the \
         32 raw bytes of `mailbox` (base32 text here; zero bytes in epoch 0), and \
         `publicKey` the Ed25519 public key whose RFC 8032 secret seed is `exported`.",
        vectors,
    ))
}
