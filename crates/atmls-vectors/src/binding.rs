//! `device-binding.json`: the device binding leaf extension (type 0xF0A9, docs/spec.md
//! §11.16) made by the client's `DeviceBinding::sign` with fixed device keys: the signed
//! content (`signature_input`), the Ed25519 signature, the extension data
//! (`DeviceBinding::to_bytes`) and the leaf node `Extension` as openmls encodes it.

use atmls_client::group::DEVICE_BINDING_EXTENSION_TYPE;
use atmls_client::group::binding::{DEVICE_BINDING_LABEL, DeviceBinding, signature_input};
use ed25519_dalek::SigningKey;
use openmls::prelude::tls_codec::Serialize as _;
use serde_json::{Value, json};

use crate::hex::hex;
use crate::{VectorError, VectorFile, fail, topic_file};

const TOPIC: &str = "device-binding.json";

struct Case {
    name: &'static str,
    seed_label: &'static str,
    did: &'static str,
    device_id: &'static str,
    ciphersuite: u16,
    leaf_key_label: &'static str,
    proof_len: usize,
}

fn vector(case: Case) -> Result<Value, VectorError> {
    let seed: [u8; 32] = crate::rng::array(case.seed_label);
    let key = SigningKey::from_bytes(&seed);
    let leaf_key: [u8; 32] = crate::rng::array(case.leaf_key_label);
    // The proof is opaque here (a `getRecord` CAR, checked per §3.3): fixed bytes.
    let proof = crate::rng::bytes(&format!("{}/proof", case.name), case.proof_len);
    let input = signature_input(case.did, case.device_id, case.ciphersuite, &leaf_key);
    let binding = DeviceBinding::sign(
        &key,
        case.did,
        case.device_id,
        case.ciphersuite,
        &leaf_key,
        proof.clone(),
    );
    let bytes = binding.to_bytes();
    if DeviceBinding::from_bytes(&bytes).as_ref() != Ok(&binding) {
        return Err(fail(TOPIC, "the binding does not parse back"));
    }
    let extension = binding
        .extension()
        .tls_serialize_detached()
        .map_err(|e| fail(TOPIC, e))?;
    Ok(json!({
        "name": case.name,
        "extensionType": DEVICE_BINDING_EXTENSION_TYPE,
        "version": 1,
        "label": DEVICE_BINDING_LABEL,
        "deviceKeySeed": hex(&seed),
        "deviceKey": hex(&key.verifying_key().to_bytes()),
        "did": case.did,
        "deviceId": case.device_id,
        "cipherSuite": case.ciphersuite,
        "leafSignatureKey": hex(&leaf_key),
        "signatureInput": hex(&input),
        "signature": hex(&binding.signature),
        "proof": hex(&proof),
        "binding": hex(&bytes),
        "extension": hex(&extension),
    }))
}

pub(crate) fn file() -> Result<VectorFile, VectorError> {
    let cases = vec![
        Case {
            name: "did:plc account, short proof",
            seed_label: "device-binding/device key 1",
            did: "did:plc:abcdefghijklmnopqrstuvwx",
            device_id: "k5v3mkq2xfa7ltqe",
            ciphersuite: 1,
            leaf_key_label: "device-binding/leaf key 1",
            proof_len: 40,
        },
        Case {
            name: "did:web account, two-byte proof length",
            seed_label: "device-binding/device key 2",
            did: "did:web:alice.example.com",
            device_id: "a7c2xq9mlt3vb4ne",
            ciphersuite: 1,
            leaf_key_label: "device-binding/leaf key 2",
            proof_len: 900,
        },
    ];
    let vectors = cases.into_iter().map(vector).collect::<Result<_, _>>()?;
    Ok(topic_file(
        TOPIC,
        "docs/spec.md §11.16",
        "signatureInput = label<V> || did<V> || deviceId<V> || u16 cipherSuite || \
         leafSignatureKey<V>; signature = Ed25519(deviceKeySeed, signatureInput); \
         binding = u8 version || deviceId<V> || proof<V> || signature<V>; extension = the \
         TLS Extension: u16 extensionType || binding<V>; with <V> the RFC 9420 §2.1.2 \
         varint-length vector (UTF-8 strings).",
        vectors,
    ))
}
