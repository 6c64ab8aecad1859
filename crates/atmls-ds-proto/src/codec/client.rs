//! The client side: proto values → request bodies; response bodies → generated outputs →
//! proto values. Every field a server sends is checked: an unparsable `receivedAt`, a
//! negative `seq`, an unknown kind or a bad mailbox id is a [`DecodeError`].

use atmls_lexicon::chat::mls::ds::{
    create_mailbox, delete_inbox_items, describe_server, get_envelopes, get_key_packages,
    get_mailbox, list_inbox, send_envelopes, send_welcome, subscribe_envelopes,
};
use atrium_api::types::Object;
use ipld_core::ipld::Ipld;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{envelope_of, mailbox_id, non_negative, wire_int};
use crate::error::{DecodeError, EpochConflict, ErrorBody, ErrorName};
use crate::id::{MailboxId, MailboxKind};
use crate::values::{
    DidResult, DidStatus, Envelope, EnvelopePage, InboxPage, Limits, MailboxInfo, OutgoingEnvelope,
    ProvenRecord, SendReceipt, ServerDescription,
};

fn json<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(body).map_err(|e| DecodeError::shape(what, e))
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Generated types hold strings, integers, bytes and maps only: serializing them to
    // JSON cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The `createMailbox` request body. `epoch` is sent for groups only.
pub fn create_mailbox_body(kind: MailboxKind, key: &[u8], epoch: u64) -> Vec<u8> {
    to_json(&create_mailbox::Input::from(create_mailbox::InputData {
        kind: kind.as_str().to_owned(),
        key: key.to_vec().into(),
        epoch: (kind == MailboxKind::Group).then(|| wire_int(epoch)),
    }))
}

/// The `sendEnvelopes` request body.
pub fn send_envelopes_body(mailbox: &MailboxId, envelopes: &[OutgoingEnvelope]) -> Vec<u8> {
    to_json(&send_envelopes::Input::from(send_envelopes::InputData {
        mailbox: mailbox.to_string(),
        envelopes: envelopes
            .iter()
            .map(|e| {
                Object::from(send_envelopes::OutgoingEnvelopeData {
                    kind: e.kind.as_str().to_owned(),
                    payload: e.payload.clone().into(),
                    epoch: e.epoch.map(wire_int),
                    next_key: e.next_key.clone().map(Into::into),
                    message_lifetime: e.message_lifetime.map(i64::from),
                })
            })
            .collect(),
    }))
}

/// The `sendWelcome` request body.
pub fn send_welcome_body(inbox: &MailboxId, payload: &[u8]) -> Vec<u8> {
    to_json(&send_welcome::Input::from(send_welcome::InputData {
        inbox: inbox.to_string(),
        payload: payload.to_vec().into(),
    }))
}

/// The `deleteInboxItems` request body.
pub fn delete_inbox_items_body(inbox: &MailboxId, seqs: &[u64]) -> Vec<u8> {
    to_json(&delete_inbox_items::Input::from(
        delete_inbox_items::InputData {
            inbox: inbox.to_string(),
            seqs: seqs.iter().copied().map(wire_int).collect(),
        },
    ))
}

fn mailbox_info(
    mailbox: &str,
    kind: &str,
    seq: i64,
    epoch: Option<i64>,
) -> Result<MailboxInfo, DecodeError> {
    Ok(MailboxInfo {
        mailbox: mailbox_id("mailbox", mailbox)?,
        kind: kind.parse().map_err(|kind| DecodeError::UnknownKind {
            field: "kind".into(),
            kind,
        })?,
        seq: non_negative("seq", seq)?,
        epoch: epoch.map(|e| non_negative("epoch", e)).transpose()?,
        message_lifetime: None,
    })
}

/// Decodes a `createMailbox` answer.
pub fn create_mailbox_output(body: &[u8]) -> Result<MailboxInfo, DecodeError> {
    let o: create_mailbox::Output = json("createMailbox output", body)?;
    mailbox_info(&o.mailbox, &o.kind, o.seq, o.epoch)
}

/// Decodes a `getMailbox` answer.
pub fn get_mailbox_output(body: &[u8]) -> Result<MailboxInfo, DecodeError> {
    let o: get_mailbox::Output = json("getMailbox output", body)?;
    let lifetime =
        o.message_lifetime
            .map(|v| {
                u32::try_from(v).ok().filter(|v| *v > 0).ok_or_else(|| {
                    DecodeError::field("messageLifetime", "must be > 0 and fit 32 bits")
                })
            })
            .transpose()?;
    Ok(MailboxInfo {
        message_lifetime: lifetime,
        ..mailbox_info(&o.mailbox, &o.kind, o.seq, o.epoch)?
    })
}

/// Decodes a `sendEnvelopes` answer.
pub fn send_envelopes_output(body: &[u8]) -> Result<SendReceipt, DecodeError> {
    let o: send_envelopes::Output = json("sendEnvelopes output", body)?;
    Ok(SendReceipt {
        first_seq: non_negative("firstSeq", o.first_seq)?,
        last_seq: non_negative("lastSeq", o.last_seq)?,
        epoch: non_negative("epoch", o.epoch)?,
    })
}

fn envelopes(
    field: &str,
    list: Vec<atmls_lexicon::chat::mls::defs::Envelope>,
) -> Result<Vec<Envelope>, DecodeError> {
    list.into_iter()
        .enumerate()
        .map(|(i, e)| envelope_of(&format!("{field}/{i}"), e))
        .collect()
}

/// Decodes a `getEnvelopes` answer.
pub fn get_envelopes_output(body: &[u8]) -> Result<EnvelopePage, DecodeError> {
    let o: get_envelopes::Output = json("getEnvelopes output", body)?;
    let o = o.data;
    Ok(EnvelopePage {
        envelopes: envelopes("envelopes", o.envelopes)?,
        cursor: non_negative("cursor", o.cursor)?,
        head_seq: non_negative("headSeq", o.head_seq)?,
        epoch: o.epoch.map(|e| non_negative("epoch", e)).transpose()?,
    })
}

/// Decodes a `sendWelcome` answer: the welcome's sequence number.
pub fn send_welcome_output(body: &[u8]) -> Result<u64, DecodeError> {
    let o: send_welcome::Output = json("sendWelcome output", body)?;
    non_negative("seq", o.seq)
}

/// Decodes a `listInbox` answer.
pub fn list_inbox_output(body: &[u8]) -> Result<InboxPage, DecodeError> {
    let o: list_inbox::Output = json("listInbox output", body)?;
    let o = o.data;
    Ok(InboxPage {
        items: envelopes("items", o.items)?,
        cursor: non_negative("cursor", o.cursor)?,
    })
}

/// Decodes a `deleteInboxItems` answer: how many items were deleted.
pub fn delete_inbox_items_output(body: &[u8]) -> Result<u64, DecodeError> {
    let o: delete_inbox_items::Output = json("deleteInboxItems output", body)?;
    non_negative("deleted", o.deleted)
}

/// Decodes a `describeServer` answer.
pub fn describe_server_output(body: &[u8]) -> Result<ServerDescription, DecodeError> {
    let o: describe_server::Output = json("describeServer output", body)?;
    let o = o.data;
    let l = o.limits.data;
    let n = |field: &str, v: i64| non_negative(field, v);
    let opt = |field: &str, v: Option<i64>| v.map(|v| non_negative(field, v)).transpose();
    Ok(ServerDescription {
        did: o.did.as_str().to_owned(),
        protocol_version: n("protocolVersion", o.protocol_version)?,
        limits: Limits {
            max_envelope_bytes: n("limits/maxEnvelopeBytes", l.max_envelope_bytes)?,
            max_batch_envelopes: n("limits/maxBatchEnvelopes", l.max_batch_envelopes)?,
            max_mailboxes_per_account: n(
                "limits/maxMailboxesPerAccount",
                l.max_mailboxes_per_account,
            )?,
            inbox_deposits_per_minute: n(
                "limits/inboxDepositsPerMinute",
                l.inbox_deposits_per_minute,
            )?,
            key_grace_seconds: n("limits/keyGraceSeconds", l.key_grace_seconds)?,
            request_max_age_seconds: n("limits/requestMaxAgeSeconds", l.request_max_age_seconds)?,
            max_subscription_mailboxes: n(
                "limits/maxSubscriptionMailboxes",
                l.max_subscription_mailboxes,
            )?,
            max_mailbox_bytes: opt("limits/maxMailboxBytes", l.max_mailbox_bytes)?,
            inbox_deposit_bytes_per_minute: opt(
                "limits/inboxDepositBytesPerMinute",
                l.inbox_deposit_bytes_per_minute,
            )?,
            group_retention_seconds: opt(
                "limits/groupRetentionSeconds",
                l.group_retention_seconds,
            )?,
            inbox_retention_seconds: opt(
                "limits/inboxRetentionSeconds",
                l.inbox_retention_seconds,
            )?,
        },
    })
}

fn proven(r: get_key_packages::ProvenRecord) -> ProvenRecord {
    ProvenRecord {
        uri: r.data.uri,
        cid: r.data.cid.as_ref().to_string(),
        proof: r.data.proof.into_vec(),
    }
}

/// Decodes a `getKeyPackages` answer. A status this version does not know is refused.
pub fn get_key_packages_output(body: &[u8]) -> Result<Vec<DidResult>, DecodeError> {
    let o: get_key_packages::Output = json("getKeyPackages output", body)?;
    o.data
        .results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let r = r.data;
            Ok(DidResult {
                did: r.did.as_str().to_owned(),
                status: DidStatus::from_name(&r.status).ok_or_else(|| {
                    DecodeError::field(format!("results/{i}/status"), "unknown status")
                })?,
                message: r.message,
                declaration: r.declaration.map(proven),
                key_packages: r.key_packages.into_iter().map(proven).collect(),
            })
        })
        .collect()
}

/// The body of an error answer, typed. `None` when the body is not an XRPC error
/// (`{"error": string, ...}`): the caller falls back on the HTTP status.
///
/// `EpochConflict` must carry `currentEpoch` and `currentSeq` (`docs/spec.md` §7); one
/// without them, or with values out of range, is a [`DecodeError`].
pub fn error_body(body: &[u8]) -> Result<Option<ErrorBody>, DecodeError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        error: String,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        current_epoch: Option<i64>,
        #[serde(default)]
        current_seq: Option<i64>,
    }
    let Ok(w) = serde_json::from_slice::<Wire>(body) else {
        return Ok(None);
    };
    let conflict = if ErrorName::from_name(&w.error) == Some(ErrorName::EpochConflict) {
        let field = |name: &str, v: Option<i64>| {
            v.ok_or_else(|| DecodeError::field(name, "EpochConflict without it"))
                .and_then(|v| non_negative(name, v))
        };
        Some(EpochConflict {
            current_epoch: field("currentEpoch", w.current_epoch)?,
            current_seq: field("currentSeq", w.current_seq)?,
        })
    } else {
        None
    };
    Ok(Some(ErrorBody {
        error: w.error,
        message: w.message,
        conflict,
    }))
}

/// One `subscribeEnvelopes` frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// `#envelope`: a new envelope of a mailbox.
    Envelope {
        /// The mailbox.
        mailbox: MailboxId,
        /// The envelope.
        envelope: Envelope,
    },
    /// `#heartbeat`, `#info`, or a message type this version does not know: nothing to do.
    Other,
    /// An error frame (`op: -1`): the stream ends with this error.
    Error(ErrorBody),
}

/// Decodes one `subscribeEnvelopes` WebSocket message: a DAG-CBOR header `{op, t}`
/// followed by a DAG-CBOR body.
pub fn frame(bytes: &[u8]) -> Result<Frame, DecodeError> {
    #[derive(Deserialize)]
    struct Header {
        op: i64,
        #[serde(default)]
        t: Option<String>,
    }
    #[derive(Deserialize)]
    struct ErrorFrame {
        error: String,
        #[serde(default)]
        message: Option<String>,
    }
    let mut reader = bytes;
    let header: Header = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
        .map_err(|e| DecodeError::shape("frame header", e))?;
    match (header.op, header.t.as_deref()) {
        (1, Some("#envelope")) => {
            let body: subscribe_envelopes::Envelope =
                serde_ipld_dagcbor::de::from_reader_once(&mut reader)
                    .map_err(|e| DecodeError::shape("#envelope frame", e))?;
            let body = body.data;
            Ok(Frame::Envelope {
                mailbox: mailbox_id("mailbox", &body.mailbox)?,
                envelope: envelope_of("envelope", body.envelope)?,
            })
        }
        (1, _) => {
            // The body must still be one DAG-CBOR item.
            let _: Ipld = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
                .map_err(|e| DecodeError::shape("frame body", e))?;
            Ok(Frame::Other)
        }
        (-1, _) => {
            let e: ErrorFrame = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
                .map_err(|e| DecodeError::shape("error frame", e))?;
            Ok(Frame::Error(ErrorBody {
                error: e.error,
                message: e.message,
                conflict: None,
            }))
        }
        (op, _) => Err(DecodeError::field("op", format!("unknown op {op}"))),
    }
}
