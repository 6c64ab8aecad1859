//! `envelopes.json`: `chat.mls.defs#envelope` as the DS server writes it: the JSON of
//! `getEnvelopes`/`listInbox` and the DAG-CBOR `#envelope` frame of `subscribeEnvelopes`
//! (docs/spec.md §4, §2a event streams, §10.5), plus an error frame.

use atmls_ds_proto::{Envelope, EnvelopeKind, MailboxId, Timestamp};
use atmls_ds_xrpc::wire::{envelope_frame, envelope_json};
use atmls_xrpc::Frame;
use serde_json::{Value, json};

use crate::hex::hex;
use crate::{VectorError, VectorFile, fail, topic_file};

const TOPIC: &str = "envelopes.json";

fn vector(name: &str, mailbox: MailboxId, envelope: Envelope) -> Result<Value, VectorError> {
    let frame = envelope_frame(&mailbox, &envelope).map_err(|e| fail(TOPIC, e))?;
    let mut v = json!({
        "name": name,
        "mailbox": mailbox.to_string(),
        "seq": envelope.seq,
        "kind": envelope.kind.as_str(),
    });
    if let Some(epoch) = envelope.epoch {
        v["epoch"] = json!(epoch);
    }
    v["payload"] = json!(hex(&envelope.payload));
    v["receivedAtMs"] = json!(envelope.received_at.as_millis());
    v["json"] = envelope_json(&envelope);
    v["frame"] = json!(hex(frame.bytes()));
    Ok(v)
}

pub(crate) fn file() -> Result<VectorFile, VectorError> {
    let group = MailboxId::from_bytes(crate::rng::array("envelopes/group"));
    let inbox = MailboxId::from_bytes(crate::rng::array("envelopes/inbox"));
    let mut vectors = vec![
        vector(
            "group message",
            group,
            Envelope {
                seq: 1,
                kind: EnvelopeKind::Message,
                epoch: None,
                payload: crate::rng::bytes("envelopes/message", 24),
                received_at: Timestamp::from_millis(1_800_000_000_000),
            },
        )?,
        vector(
            "group commit built on epoch 3",
            group,
            Envelope {
                seq: 300,
                kind: EnvelopeKind::Commit,
                epoch: Some(3),
                payload: crate::rng::bytes("envelopes/commit", 40),
                received_at: Timestamp::from_millis(1_800_000_001_234),
            },
        )?,
        vector(
            "sealed welcome in an inbox",
            inbox,
            Envelope {
                seq: 70_000,
                kind: EnvelopeKind::Welcome,
                epoch: None,
                payload: crate::rng::bytes("envelopes/welcome", 33),
                received_at: Timestamp::from_millis(1_800_086_400_999),
            },
        )?,
    ];
    let error = Frame::error("KeyExpired", "the key of this epoch has expired");
    vectors.push(json!({
        "name": "error frame",
        "error": "KeyExpired",
        "message": "the key of this epoch has expired",
        "frame": hex(error.bytes()),
    }));
    Ok(topic_file(
        TOPIC,
        "docs/spec.md §2a (event streams), §4, §10.5",
        "json = the envelope object of getEnvelopes/listInbox: {seq, kind, epoch (commits \
         only), payload: {$bytes: base64 without padding}, receivedAt: RFC 3339 UTC with \
         milliseconds and Z}. frame = one subscribeEnvelopes WebSocket message: DAG-CBOR \
         {op: 1, t: \"#envelope\"} followed by DAG-CBOR {mailbox, envelope: {seq, kind, \
         epoch?, payload (byte string), receivedAt}}. The error frame is {op: -1} followed \
         by {error, message}.",
        vectors,
    ))
}
