//! The server side: proto values → generated outputs, generated inputs → proto values.

use atmls_lexicon::chat::mls::defs;
use atmls_lexicon::chat::mls::ds::{
    create_mailbox, delete_inbox_items, describe_server, get_envelopes, get_key_packages,
    get_mailbox, list_inbox, send_envelopes, send_welcome, subscribe_envelopes,
};
use atrium_api::types::Object;

use super::{envelope_object, mailbox_id, non_negative, wire_int};
use crate::error::DecodeError;
use crate::id::{EnvelopeKind, MailboxId, MailboxKind, UnknownKind};
use crate::values::{
    CreateMailbox, DidResult, Envelope, EnvelopePage, InboxPage, MailboxInfo, OutgoingEnvelope,
    ProvenRecord, SendReceipt, ServerDescription,
};

/// `createMailbox` output.
pub fn create_mailbox_output(info: &MailboxInfo) -> create_mailbox::Output {
    Object::from(create_mailbox::OutputData {
        mailbox: info.mailbox.to_string(),
        kind: info.kind.as_str().to_owned(),
        seq: wire_int(info.seq),
        epoch: info.epoch.map(wire_int),
    })
}

/// `getMailbox` output.
pub fn get_mailbox_output(info: &MailboxInfo) -> get_mailbox::Output {
    Object::from(get_mailbox::OutputData {
        mailbox: info.mailbox.to_string(),
        kind: info.kind.as_str().to_owned(),
        seq: wire_int(info.seq),
        epoch: info.epoch.map(wire_int),
        message_lifetime: info.message_lifetime.map(i64::from),
    })
}

/// `sendEnvelopes` output.
pub fn send_envelopes_output(r: &SendReceipt) -> send_envelopes::Output {
    Object::from(send_envelopes::OutputData {
        first_seq: wire_int(r.first_seq),
        last_seq: wire_int(r.last_seq),
        epoch: wire_int(r.epoch),
    })
}

/// `getEnvelopes` output.
pub fn get_envelopes_output(page: &EnvelopePage) -> get_envelopes::Output {
    Object::from(get_envelopes::OutputData {
        envelopes: page.envelopes.iter().map(envelope_object).collect(),
        cursor: wire_int(page.cursor),
        head_seq: wire_int(page.head_seq),
        epoch: page.epoch.map(wire_int),
    })
}

/// `sendWelcome` output.
pub fn send_welcome_output(seq: u64) -> send_welcome::Output {
    Object::from(send_welcome::OutputData { seq: wire_int(seq) })
}

/// `listInbox` output.
pub fn list_inbox_output(page: &InboxPage) -> list_inbox::Output {
    Object::from(list_inbox::OutputData {
        items: page.items.iter().map(envelope_object).collect(),
        cursor: wire_int(page.cursor),
    })
}

/// `deleteInboxItems` output.
pub fn delete_inbox_items_output(deleted: u64) -> delete_inbox_items::Output {
    Object::from(delete_inbox_items::OutputData {
        deleted: wire_int(deleted),
    })
}

/// `describeServer` output; `Err` if the service's DID is not a DID.
pub fn describe_server_output(
    d: &ServerDescription,
) -> Result<describe_server::Output, DecodeError> {
    let l = &d.limits;
    let opt = |v: Option<u64>| v.map(wire_int);
    Ok(Object::from(describe_server::OutputData {
        did: d.did.parse().map_err(|e| DecodeError::field("did", e))?,
        protocol_version: wire_int(d.protocol_version),
        limits: Object::from(defs::LimitsData {
            max_envelope_bytes: wire_int(l.max_envelope_bytes),
            max_batch_envelopes: wire_int(l.max_batch_envelopes),
            max_mailboxes_per_account: wire_int(l.max_mailboxes_per_account),
            inbox_deposits_per_minute: wire_int(l.inbox_deposits_per_minute),
            key_grace_seconds: wire_int(l.key_grace_seconds),
            request_max_age_seconds: wire_int(l.request_max_age_seconds),
            max_subscription_mailboxes: wire_int(l.max_subscription_mailboxes),
            group_retention_seconds: opt(l.group_retention_seconds),
            inbox_deposit_bytes_per_minute: opt(l.inbox_deposit_bytes_per_minute),
            inbox_retention_seconds: opt(l.inbox_retention_seconds),
            max_mailbox_bytes: opt(l.max_mailbox_bytes),
        }),
    }))
}

/// `getKeyPackages#provenRecord`; `Err` if `cid` is not a CID.
pub fn proven_record(r: &ProvenRecord) -> Result<get_key_packages::ProvenRecord, DecodeError> {
    Ok(Object::from(get_key_packages::ProvenRecordData {
        uri: r.uri.clone(),
        cid: r.cid.parse().map_err(|e| DecodeError::field("cid", e))?,
        proof: r.proof.clone().into(),
    }))
}

/// `getKeyPackages#didResult`; `Err` if `did` is not a DID or a record's CID not a CID.
pub fn did_result(r: &DidResult) -> Result<get_key_packages::DidResult, DecodeError> {
    Ok(Object::from(get_key_packages::DidResultData {
        did: r.did.parse().map_err(|e| DecodeError::field("did", e))?,
        status: r.status.as_str().to_owned(),
        key_packages: r
            .key_packages
            .iter()
            .map(proven_record)
            .collect::<Result<_, _>>()?,
        declaration: r.declaration.as_ref().map(proven_record).transpose()?,
        message: r.message.clone(),
    }))
}

/// The body of the `#envelope` frame of `subscribeEnvelopes`: `{mailbox, envelope}`
/// (DAG-CBOR on the wire).
pub fn envelope_frame_body(mailbox: &MailboxId, e: &Envelope) -> subscribe_envelopes::Envelope {
    Object::from(subscribe_envelopes::EnvelopeData {
        mailbox: mailbox.to_string(),
        envelope: envelope_object(e),
    })
}

/// The body of the `#heartbeat` message of `subscribeEnvelopes`.
pub fn heartbeat(now: atmls_syntax::Timestamp) -> subscribe_envelopes::Heartbeat {
    Object::from(subscribe_envelopes::HeartbeatData {
        time: super::datetime(now),
    })
}

/// A `sendEnvelopes` request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendEnvelopesRequest {
    /// The group mailbox.
    pub mailbox: MailboxId,
    /// The batch. An envelope of a kind this version does not know is kept with kind
    /// `welcome`, which no group mailbox takes: the core refuses it in its place in the
    /// check order, and the server names the real kind (`unknown_kinds`).
    pub envelopes: Vec<OutgoingEnvelope>,
    /// The positions and kinds of the envelopes whose kind is unknown.
    pub unknown_kinds: Vec<(usize, UnknownKind)>,
}

/// `sendEnvelopes` input.
pub fn send_envelopes_input(
    input: send_envelopes::Input,
) -> Result<SendEnvelopesRequest, DecodeError> {
    let input = input.data;
    let mailbox = mailbox_id("input/mailbox", &input.mailbox)?;
    let mut unknown_kinds = Vec::new();
    let mut envelopes = Vec::with_capacity(input.envelopes.len());
    for (i, e) in input.envelopes.into_iter().enumerate() {
        let e = e.data;
        let kind = e.kind.parse::<EnvelopeKind>().unwrap_or_else(|u| {
            unknown_kinds.push((i, u));
            EnvelopeKind::Welcome
        });
        envelopes.push(OutgoingEnvelope {
            kind,
            epoch: e
                .epoch
                .map(|v| non_negative(&format!("input/envelopes/{i}/epoch"), v))
                .transpose()?,
            payload: e.payload.into_vec(),
            next_key: e.next_key.map(|k| k.into_vec()),
            message_lifetime: e
                .message_lifetime
                .map(|v| {
                    u32::try_from(v).map_err(|_| {
                        DecodeError::field(
                            format!("input/envelopes/{i}/messageLifetime"),
                            "must be >= 0 and fit 32 bits",
                        )
                    })
                })
                .transpose()?,
        });
    }
    Ok(SendEnvelopesRequest {
        mailbox,
        envelopes,
        unknown_kinds,
    })
}

/// `createMailbox` input. An unknown kind is [`DecodeError::UnknownKind`]
/// (`UnsupportedKind`).
pub fn create_mailbox_input(input: create_mailbox::Input) -> Result<CreateMailbox, DecodeError> {
    let input = input.data;
    let kind = input
        .kind
        .parse::<MailboxKind>()
        .map_err(|kind| DecodeError::UnknownKind {
            field: "input/kind".into(),
            kind,
        })?;
    Ok(CreateMailbox {
        kind,
        key: input.key.into_vec(),
        epoch: input
            .epoch
            .map(|v| non_negative("input/epoch", v))
            .transpose()?,
    })
}

/// `sendWelcome` input: the inbox and the sealed welcome.
pub fn send_welcome_input(input: send_welcome::Input) -> Result<(MailboxId, Vec<u8>), DecodeError> {
    let input = input.data;
    Ok((
        mailbox_id("input/inbox", &input.inbox)?,
        input.payload.into_vec(),
    ))
}

/// `deleteInboxItems` input: the inbox and the sequence numbers.
pub fn delete_inbox_items_input(
    input: delete_inbox_items::Input,
) -> Result<(MailboxId, Vec<u64>), DecodeError> {
    let input = input.data;
    let inbox = mailbox_id("input/inbox", &input.inbox)?;
    let seqs = input
        .seqs
        .into_iter()
        .map(|s| non_negative("input/seqs", s))
        .collect::<Result<_, _>>()?;
    Ok((inbox, seqs))
}
