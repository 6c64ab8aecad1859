//! `records.json`: the DAG-CBOR encoding and CID of one record of every `chat.mls.*`
//! record type (docs/spec.md §3), through the repo crate's JSON → data model → DAG-CBOR →
//! CID path. The KeyPackage is a real one, built by openmls with fixed keys and randomness
//! and the client's capabilities.

use atmls_ds_proto::MailboxId;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use serde_json::{Value, json};

use crate::hex::hex;
use crate::rng::FixedProvider;
use crate::{VectorError, VectorFile, fail, topic_file};

const TOPIC: &str = "records.json";

/// The DID of the example account of every vector.
pub(crate) const DID: &str = "did:plc:abcdefghijklmnopqrstuvwx";
/// The DS of every vector.
pub(crate) const DS: &str = "did:web:ds.example.com";

/// `{"record", "dagCbor", "cid"}` of one record.
fn encoded(name: &str, record: Value) -> Result<Value, VectorError> {
    let ipld = atmls_repo::json::record_to_ipld(&record).map_err(|e| fail(TOPIC, e))?;
    let bytes = atmls_repo::cbor::encode(&ipld).map_err(|e| fail(TOPIC, e))?;
    let cid = atmls_repo::cid::dag_cbor(&bytes);
    Ok(json!({
        "name": name,
        "record": record,
        "dagCbor": hex(&bytes),
        "cid": cid.to_string(),
    }))
}

fn key_package() -> Result<(Vec<u8>, Vec<u8>), VectorError> {
    let provider = FixedProvider::new("records/keyPackage");
    let suite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
    let seed: [u8; 32] = crate::rng::array("records/keyPackage/leaf signature key");
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let signer =
        SignatureKeyPair::from_raw(SignatureScheme::ED25519, seed.to_vec(), public.to_vec());
    let credential = CredentialWithKey {
        credential: BasicCredential::new(DID.as_bytes().to_vec()).into(),
        signature_key: public.to_vec().into(),
    };
    let extensions = Extensions::single(Extension::ApplicationId(ApplicationIdExtension::new(
        b"k5v3mkq2xfa7ltqe",
    )))
    .map_err(|e| fail(TOPIC, e))?;
    let bundle = KeyPackage::builder()
        .leaf_node_capabilities(atmls_client::keypackage::capabilities(suite))
        .leaf_node_extensions(extensions)
        .key_package_lifetime(Lifetime::init(1_800_000_000, 1_805_270_400))
        .mark_as_last_resort()
        .build(suite, &provider, &signer, credential)
        .map_err(|e| fail(TOPIC, e))?;
    let key_package = bundle.key_package().clone();
    let reference = key_package
        .hash_ref(openmls_traits::OpenMlsProvider::crypto(&provider))
        .map_err(|e| fail(TOPIC, e))?
        .as_slice()
        .to_vec();
    let message = MlsMessageOut::from(key_package)
        .tls_serialize_detached()
        .map_err(|e| fail(TOPIC, e))?;
    Ok((message, reference))
}

pub(crate) fn file() -> Result<VectorFile, VectorError> {
    let declaration = json!({
        "$type": "chat.mls.declaration",
        "deliveryService": DS,
        "invitePolicy": "anyone",
        "ciphersuites": [1],
        "createdAt": "2026-11-24T12:00:00.000Z",
    });
    let (message, reference) = key_package()?;
    let inbox = MailboxId::from_bytes(crate::rng::array("records/keyPackage/inbox"));
    let key_package = json!({
        "$type": "chat.mls.keyPackage",
        "keyPackage": { "$bytes": STANDARD_NO_PAD.encode(&message) },
        "keyPackageRef": { "$bytes": STANDARD_NO_PAD.encode(&reference) },
        "ciphersuite": 1,
        "deviceId": "k5v3mkq2xfa7ltqe",
        "inbox": { "service": DS, "mailbox": inbox.to_string() },
        "lastResort": true,
        "createdAt": "2027-01-15T08:00:00.000Z",
        "expiresAt": "2027-03-16T08:00:00.000Z",
    });
    let mut key_package = encoded("keyPackage", key_package)?;
    key_package["did"] = json!(DID);
    let blob = crate::rng::bytes("records/attachmentRef/blob", 256);
    let attachment_ref = json!({
        "$type": "chat.mls.attachmentRef",
        "blob": {
            "$type": "blob",
            "ref": { "$link": atmls_repo::cid::raw(&blob).to_string() },
            "mimeType": "application/octet-stream",
            "size": blob.len(),
        },
    });
    let mut attachment = encoded("attachmentRef", attachment_ref)?;
    attachment["blob"] = json!(hex(&blob));
    Ok(topic_file(
        TOPIC,
        "docs/spec.md §2, §3",
        "Each record (JSON form, as in com.atproto.repo.*) encodes to `dagCbor` (canonical \
         DAG-CBOR of the atproto data model: $bytes -> byte string, $link -> tag 42) whose \
         CIDv1 (dag-cbor 0x71, sha2-256) in base32 is `cid`. keyPackage: `keyPackageRef` is \
         RefHash(\"MLS 1.0 KeyPackage Reference\", KeyPackage) of the MLSMessage in \
         `keyPackage` (RFC 9420 §5.2) and `ciphersuite` its cipher suite. attachmentRef: \
         `blob` is the blob's bytes; `ref` is their CIDv1 (raw 0x55, sha2-256) and `size` \
         their length. keyPackage: `did` is the account; the KeyPackage's BasicCredential \
         identity is `did`, its leaf's application_id extension is `deviceId`, its \
         capabilities list the extensions 0xF0A7 and last_resort, it carries the last_resort \
         extension iff `lastResort`, and its leaf and KeyPackage signatures (SignWithLabel \
         \"LeafNodeTBS\" / \"KeyPackageTBS\", Ed25519) verify with the leaf's signature key.",
        vec![
            encoded("declaration", declaration)?,
            key_package,
            attachment,
        ],
    ))
}
