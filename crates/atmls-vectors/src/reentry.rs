//! `reentry.json`: re-entry requests (docs/spec.md §11.17) — the signed plaintext by the
//! client's `ReentryRequest`, sealed by its `seal_reentry` with a fixed HPKE ephemeral key
//! and opened again by `open_reentry` over plain RustCrypto — and epoch tags.

use atmls_client::group::reentry::{
    REENTRY_INFO, ReentryGroup, ReentryRequest, epoch_tag, open_reentry, seal_reentry, tag_aad,
};
use atmls_ds_proto::MailboxId;
use ed25519_dalek::Signer as _;
use openmls::prelude::Ciphersuite;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{CryptoError, SignatureScheme};
use serde_json::{Value, json};

use crate::hex::hex;
use crate::welcome::FixedEphemeral;
use crate::{VectorError, VectorFile, fail, topic_file};

const TOPIC: &str = "reentry.json";

fn vector(name: &str, label: &str, group: bool) -> Result<Value, VectorError> {
    let suite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
    let err = |e: CryptoError| fail(TOPIC, format!("{e:?}"));
    let recipient_ikm = crate::rng::bytes(&format!("{label}/recipient"), 32);
    let ephemeral_ikm = crate::rng::bytes(&format!("{label}/ephemeral"), 32);
    let seed: [u8; 32] = crate::rng::array(&format!("{label}/signer"));
    let crypto = FixedEphemeral {
        inner: RustCrypto::default(),
        ikm_e: ephemeral_ikm.clone(),
        xwing_eseed: None,
    };
    let recipient = crypto
        .derive_hpke_keypair(suite.hpke_config(), &recipient_ikm)
        .map_err(err)?;
    let group_id = crate::rng::bytes(&format!("{label}/group"), 32);
    let mailbox = MailboxId::from_bytes(crate::rng::array(&format!("{label}/mailbox")));
    let request = ReentryRequest {
        did: crate::records::DID.parse().map_err(|e| fail(TOPIC, e))?,
        device_id: "b32device0000000".into(),
        key_package: "3jzfcijpj2z2a".into(),
        key_package_ref: crate::rng::bytes(&format!("{label}/ref"), 32),
        group: group
            .then(|| -> Result<ReentryGroup, VectorError> {
                Ok(ReentryGroup {
                    id: group_id.clone(),
                    ds: crate::records::DS.parse().map_err(|e| fail(TOPIC, e))?,
                    mailbox,
                })
            })
            .transpose()?,
        created_at: 1_800_000_000_000,
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let signed = request.signed_bytes();
    let signature = key.sign(&signed).to_bytes();
    if !request.verify(
        &RustCrypto::default(),
        SignatureScheme::ED25519,
        key.verifying_key().as_bytes(),
        &signature,
    ) {
        return Err(fail(TOPIC, "the client does not verify the signature"));
    }
    let plaintext = request.to_cbor(&signature);
    let sealed = seal_reentry(&crypto, suite, &recipient.public, &plaintext).map_err(err)?;
    let payload = atmls_client::content::pad(sealed.clone(), atmls_ds_proto::LEXICON_MAX_PAYLOAD);
    let opened = open_reentry(
        &RustCrypto::default(),
        suite.hpke_config(),
        &recipient.private,
        &payload,
    )
    .ok_or_else(|| fail(TOPIC, "hpke-rs does not open the sealed request"))?;
    match ReentryRequest::from_cbor(&opened) {
        Ok((back, sig)) if back == request && sig == signature => {}
        _ => return Err(fail(TOPIC, "the opened request differs")),
    }
    let authenticator = crate::rng::bytes(&format!("{label}/authenticator"), 32);
    let enc_len = usize::from(u16::from_be_bytes([sealed[1], sealed[2]]));
    let mut v = json!({
        "name": name,
        "cipherSuite": 1,
        "recipientIkm": hex(&recipient_ikm),
        "ephemeralIkm": hex(&ephemeral_ikm),
        "info": String::from_utf8_lossy(REENTRY_INFO),
        "recipientPublicKey": hex(&recipient.public),
        "recipientPrivateKey": hex(&recipient.private),
        "signerSeed": hex(&seed),
        "signerPublicKey": hex(key.verifying_key().as_bytes()),
        "did": crate::records::DID,
        "deviceId": request.device_id,
        "keyPackage": request.key_package,
        "keyPackageRef": hex(&request.key_package_ref),
        "createdAt": request.created_at,
        "signedBytes": hex(&signed),
        "signature": hex(&signature),
        "plaintext": hex(&plaintext),
        "enc": hex(&sealed[3..3 + enc_len]),
        "ciphertext": hex(&sealed[3 + enc_len + 4..]),
        "sealed": hex(&sealed),
        "payload": hex(&payload),
        "epochAuthenticator": hex(&authenticator),
        "epochTag": hex(&epoch_tag(&authenticator)),
        "authenticatedData": hex(&tag_aad(&authenticator)),
    });
    if let (true, Value::Object(map)) = (group, &mut v) {
        map.insert(
            "group".into(),
            json!({
                "id": hex(&group_id),
                "ds": crate::records::DS,
                "mailbox": mailbox.to_string(),
            }),
        );
    }
    Ok(v)
}

pub(crate) fn file() -> Result<VectorFile, VectorError> {
    let vectors = vec![
        vector("re-entry request for one group", "reentry/1", true)?,
        vector(
            "group-less re-entry request (a device restored after losing its database)",
            "reentry/2",
            false,
        )?,
    ];
    Ok(topic_file(
        TOPIC,
        "docs/spec.md §11.17, §11.4, §11.5",
        "Recipient init key pair = DeriveKeyPair(recipientIkm), ephemeral = \
         DeriveKeyPair(ephemeralIkm) (RFC 9180 §7.1.3, DHKEM(X25519, HKDF-SHA256)). body = \
         canonical DAG-CBOR {createdAt, deviceId, did, ? group {ds, id (bytes), mailbox}, \
         keyPackage, keyPackageRef (bytes), version: 1}. signedBytes = \"chat.mls reentry \
         signature v1\" || body; signature = Ed25519(signerSeed, signedBytes). plaintext = \
         the body map with sig (bytes) = signature. enc, ciphertext = HPKE SealBase(pkR = \
         recipientPublicKey, info, aad = \"\", plaintext) with HKDF-SHA256 and AES-128-GCM. \
         sealed = 0x02 || u16 len(enc) || enc || u32 len(ciphertext) || ciphertext. payload \
         = sealed followed by zero bytes up to its size bucket (256, then powers of two). \
         epochTag = SHA-256(\"chat.mls epoch tag v1\" || epochAuthenticator)[0..16]; \
         authenticatedData = 0x01 || epochTag.",
        vectors,
    ))
}
