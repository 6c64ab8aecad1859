//! `group-data-extension.json`: the chat.mls group data extension (type 0xF0A7,
//! docs/spec.md §11.2) of several groups, as `GroupData::to_bytes` and as the GroupContext
//! `Extension` the client puts in the group (its TLS encoding by openmls).

use atmls_client::group::{
    GROUP_DATA_EXTENSION_TYPE, GroupData, MessageLifetime, PaddingPolicy, data_extension,
};
use openmls::prelude::tls_codec::Serialize as _;
use serde_json::{Value, json};

use crate::hex::hex;
use crate::{VectorError, VectorFile, fail, topic_file};

const TOPIC: &str = "group-data-extension.json";

struct Case {
    name: &'static str,
    ds: &'static str,
    mailbox: [u8; 32],
    name_field: String,
    description: String,
    admins: Vec<&'static str>,
    padding: PaddingPolicy,
    lifetime_seconds: u32,
}

fn vector(case: Case) -> Result<Value, VectorError> {
    let data = GroupData {
        ds: case.ds.parse().map_err(|e| fail(TOPIC, e))?,
        mailbox: case.mailbox,
        name: case.name_field.clone(),
        description: case.description.clone(),
        admins: case
            .admins
            .iter()
            .map(|a| a.parse().map_err(|e| fail(TOPIC, e)))
            .collect::<Result<_, _>>()?,
        padding: case.padding,
        message_lifetime: MessageLifetime::from_seconds(case.lifetime_seconds)
            .map_err(|e| fail(TOPIC, e))?,
    };
    let bytes = data.to_bytes();
    if GroupData::from_bytes(&bytes).as_ref() != Ok(&data) {
        return Err(fail(TOPIC, "the extension does not parse back"));
    }
    let extension = data_extension(&data)
        .tls_serialize_detached()
        .map_err(|e| fail(TOPIC, e))?;
    Ok(json!({
        "name": case.name,
        "extensionType": GROUP_DATA_EXTENSION_TYPE,
        "version": 2,
        "ds": case.ds,
        "mailbox": hex(&case.mailbox),
        "groupName": case.name_field,
        "groupDescription": case.description,
        "admins": case.admins,
        "padding": match case.padding {
            PaddingPolicy::None => 0,
            _ => 1,
        },
        "messageLifetimeSeconds": case.lifetime_seconds,
        "groupData": hex(&bytes),
        "extension": hex(&extension),
    }))
}

pub(crate) fn file() -> Result<VectorFile, VectorError> {
    let cases = vec![
        Case {
            name: "spec example (docs/spec.md §11.2)",
            ds: "did:web:ds.example.com",
            mailbox: [1; 32],
            name_field: "tea".into(),
            description: String::new(),
            admins: vec!["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"],
            padding: PaddingPolicy::BucketsV1,
            lifetime_seconds: 0,
        },
        Case {
            name: "epoch 0: zero mailbox, no admins, no padding",
            ds: "did:plc:abcdefghijklmnopqrstuvwx",
            mailbox: [0; 32],
            name_field: String::new(),
            description: String::new(),
            admins: vec![],
            padding: PaddingPolicy::None,
            lifetime_seconds: 0,
        },
        Case {
            name: "two-byte varints (name of 70 bytes, description of 300 bytes), two admins",
            ds: "did:web:ds.example.com",
            mailbox: crate::rng::array("group-data-extension/mailbox"),
            name_field: "Thé dansant — ".repeat(4) + "ok",
            description: "a".repeat(300),
            admins: vec![
                "did:plc:abcdefghijklmnopqrstuvwx",
                "did:web:alice.example.com",
            ],
            padding: PaddingPolicy::BucketsV1,
            lifetime_seconds: 0,
        },
        Case {
            name: "disappearing messages: a one-day lifetime (docs/spec.md §11.18)",
            ds: "did:web:ds.example.com",
            mailbox: [1; 32],
            name_field: "tea".into(),
            description: String::new(),
            admins: vec!["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"],
            padding: PaddingPolicy::BucketsV1,
            lifetime_seconds: 86_400,
        },
    ];
    let vectors = cases.into_iter().map(vector).collect::<Result<_, _>>()?;
    Ok(topic_file(
        TOPIC,
        "docs/spec.md §11.2",
        "groupData = u8 version || ds<V> || mailbox[32] || name<V> || description<V> || \
         admins<V> (concatenated did<V>) || u8 padding || u32 lifetime_seconds \
         (big-endian; 0 = off, else 60..=31536000), with <V> the RFC 9420 §2.1.2 \
         varint-length vector (UTF-8 strings). extension = the TLS Extension: \
         u16 extensionType || groupData<V>.",
        vectors,
    ))
}
