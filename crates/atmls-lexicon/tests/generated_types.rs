//! The generated types serialize to the atproto data model: DAG-CBOR with byte strings and
//! CID links, JSON with `$bytes`, `$link` and `$type`, as the official PDS stores records.

use std::collections::BTreeMap;

use atmls_lexicon::Bytes;
use atmls_lexicon::chat::mls::{content, declaration, defs, key_package};
use atmls_lexicon::generated::KnownRecord;
use atrium_api::types::string::{Datetime, Did};
use atrium_api::types::{CidLink, Union};
use ipld_core::ipld::Ipld;
use serde_json::json;

const MAILBOX: &str = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst";
const BLOB_CID: &str = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy";

fn datetime(s: &str) -> Datetime {
    s.parse().expect("valid datetime")
}

fn did(s: &str) -> Did {
    s.parse().expect("valid DID")
}

fn key_package_record() -> key_package::Record {
    key_package::RecordData {
        ciphersuite: 1,
        created_at: datetime("2026-11-24T12:00:00.000Z"),
        device_id: "q3x7zk2mv4ba".into(),
        expires_at: datetime("2026-12-24T12:00:00.000Z"),
        inbox: defs::MailboxRefData {
            service: did("did:web:ds.example.com"),
            mailbox: MAILBOX.into(),
        }
        .into(),
        key_package: Bytes(vec![0, 1, 2, 3, 250, 251]),
        key_package_ref: Bytes(vec![7; 32]),
        last_resort: true,
    }
    .into()
}

fn key_package_json() -> serde_json::Value {
    json!({
        "$type": "chat.mls.keyPackage",
        "ciphersuite": 1,
        "createdAt": "2026-11-24T12:00:00.000Z",
        "deviceId": "q3x7zk2mv4ba",
        "expiresAt": "2026-12-24T12:00:00.000Z",
        "inbox": { "service": "did:web:ds.example.com", "mailbox": MAILBOX },
        "keyPackage": { "$bytes": "AAECA/r7" },
        "keyPackageRef": { "$bytes": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc" },
        "lastResort": true
    })
}

#[test]
fn record_json_has_type_and_bytes_as_the_pds_stores_it() {
    let known = KnownRecord::from(key_package_record());
    assert_eq!(serde_json::to_value(&known).unwrap(), key_package_json());
    let back: KnownRecord = serde_json::from_value(key_package_json()).unwrap();
    assert_eq!(back, known);
}

#[test]
fn record_dag_cbor_has_byte_strings_and_decodes_back() {
    let known = KnownRecord::from(key_package_record());
    let cbor = serde_ipld_dagcbor::to_vec(&known).unwrap();
    // An independent reading of the bytes: a generic IPLD decode.
    let ipld: Ipld = serde_ipld_dagcbor::from_slice(&cbor).unwrap();
    let Ipld::Map(map) = &ipld else {
        panic!("record is a map: {ipld:?}")
    };
    assert_eq!(
        map.get("$type"),
        Some(&Ipld::String("chat.mls.keyPackage".into()))
    );
    assert_eq!(
        map.get("keyPackage"),
        Some(&Ipld::Bytes(vec![0, 1, 2, 3, 250, 251]))
    );
    assert_eq!(map.get("keyPackageRef"), Some(&Ipld::Bytes(vec![7; 32])));
    assert_eq!(map.get("lastResort"), Some(&Ipld::Bool(true)));
    assert_eq!(map.get("ciphersuite"), Some(&Ipld::Integer(1)));
    assert_eq!(map.len(), 9);
    // DAG-CBOR map keys are sorted by length, then bytes: "$type" (5 bytes, '$' < 'i')
    // comes before "inbox", and the 13-byte "keyPackageRef" comes last.
    assert_eq!(&cbor[1..7], b"\x65$type");
    assert_eq!(&cbor[7..27], b"\x73chat.mls.keyPackage");
    assert_eq!(&cbor[27..33], b"\x65inbox");
    let back: KnownRecord = serde_ipld_dagcbor::from_slice(&cbor).unwrap();
    assert_eq!(back, known);
}

#[test]
fn unknown_record_fields_survive_a_round_trip() {
    let mut value = key_package_json();
    value["futureField"] = json!("kept");
    let back: KnownRecord = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), value);
}

#[test]
fn declaration_round_trips() {
    let rec: declaration::Record = declaration::RecordData {
        ciphersuites: vec![1, 3],
        created_at: datetime("2026-11-24T12:00:00Z"),
        delivery_service: did("did:web:ds.example.com"),
        invite_policy: "anyone".into(),
    }
    .into();
    let known = KnownRecord::from(rec);
    let v = serde_json::to_value(&known).unwrap();
    assert_eq!(v["$type"], "chat.mls.declaration");
    assert_eq!(v["ciphersuites"], json!([1, 3]));
    let cbor = serde_ipld_dagcbor::to_vec(&known).unwrap();
    assert_eq!(
        serde_ipld_dagcbor::from_slice::<KnownRecord>(&cbor).unwrap(),
        known
    );
}

fn attachment_message() -> content::Main {
    let attachment: content::Attachment = content::AttachmentData {
        alt: None,
        cipher: "aes-256-gcm".into(),
        digest: Bytes(vec![9; 32]),
        key: Bytes(vec![1; 32]),
        location: content::BlobLocationData {
            cid: CidLink::try_from(BLOB_CID).unwrap(),
            did: did("did:plc:abcdefghijklmnopqrstuvwx"),
        }
        .into(),
        mime_type: "image/png".into(),
        name: Some("cat.png".into()),
        nonce: Bytes(vec![2; 12]),
        size: 1234,
    }
    .into();
    content::MainData {
        body: Union::Refs(content::MainBodyRefs::Attachment(Box::new(attachment))),
        fallback_text: Some("[attachment]".into()),
        id: "aaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
        sent_at: datetime("2026-11-24T12:00:00Z"),
    }
    .into()
}

#[test]
fn content_union_carries_type_and_cid_link_in_both_encodings() {
    let msg = attachment_message();
    let v = serde_json::to_value(&msg).unwrap();
    assert_eq!(v["body"]["$type"], "chat.mls.content#attachment");
    assert_eq!(v["body"]["location"]["cid"], json!({ "$link": BLOB_CID }));
    assert_eq!(
        v["body"]["key"],
        json!({ "$bytes": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE" })
    );
    assert_eq!(serde_json::from_value::<content::Main>(v).unwrap(), msg);

    let cbor = serde_ipld_dagcbor::to_vec(&msg).unwrap();
    let ipld: Ipld = serde_ipld_dagcbor::from_slice(&cbor).unwrap();
    let body = match &ipld {
        Ipld::Map(m) => m.get("body").cloned().unwrap(),
        other => panic!("{other:?}"),
    };
    let Ipld::Map(body) = body else {
        panic!("body is a map")
    };
    let location: &BTreeMap<String, Ipld> = match body.get("location") {
        Some(Ipld::Map(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(matches!(location.get("cid"), Some(Ipld::Link(c)) if c.to_string() == BLOB_CID));
    assert_eq!(body.get("key"), Some(&Ipld::Bytes(vec![1; 32])));
    assert_eq!(
        serde_ipld_dagcbor::from_slice::<content::Main>(&cbor).unwrap(),
        msg
    );
}

#[test]
fn unknown_content_type_is_kept_for_its_fallback() {
    let v = json!({
        "id": "aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "sentAt": "2026-11-24T12:00:00Z",
        "body": { "$type": "com.example.poll", "question": "tea?" },
        "fallbackText": "a poll: tea?"
    });
    let msg: content::Main = serde_json::from_value(v).unwrap();
    match &msg.body {
        Union::Unknown(u) => assert_eq!(u.r#type, "com.example.poll"),
        Union::Refs(r) => panic!("should be unknown: {r:?}"),
    }
    assert_eq!(msg.fallback_text.as_deref(), Some("a poll: tea?"));
}

#[test]
fn bytes_accept_padding_but_reject_garbage() {
    let padded: Bytes = serde_json::from_value(json!({ "$bytes": "AAECA/r7" })).unwrap();
    assert_eq!(padded.as_slice(), [0, 1, 2, 3, 250, 251]);
    let with_pad: Bytes = serde_json::from_value(json!({ "$bytes": "AAE=" })).unwrap();
    assert_eq!(with_pad.as_slice(), [0, 1]);
    assert!(serde_json::from_value::<Bytes>(json!({ "$bytes": "!!!" })).is_err());
    assert!(serde_json::from_value::<Bytes>(json!([1, 2, 3])).is_err());
    assert!(serde_json::from_value::<Bytes>(json!({ "$bytes": "AA", "x": 1 })).is_err());
}

#[test]
fn xrpc_errors_use_the_error_and_message_fields() {
    use atmls_lexicon::chat::mls::ds::send_envelopes::Error;
    let e = Error::EpochConflict(Some("current epoch is 7".into()));
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({ "error": "EpochConflict", "message": "current epoch is 7" })
    );
    assert_eq!(e.name(), "EpochConflict");
    assert_eq!(e.to_string(), "EpochConflict: current epoch is 7");
    let parsed: Error =
        serde_json::from_value(json!({ "error": "MailboxNotFound", "message": null })).unwrap();
    assert_eq!(parsed, Error::MailboxNotFound(None));
}
