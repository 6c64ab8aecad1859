//! One round trip per method: the server codec encodes, the client codec decodes, the
//! values are equal. Each body is also compared byte for byte with what the DS server
//! sent before the codecs existed (its hand-built `json!` bodies: required members in
//! the lexicon's order, optional ones appended).

use atmls_ds_proto::codec::{client, server};
use atmls_ds_proto::{
    DecodeError, DidResult, DidStatus, Envelope, EnvelopeKind, EnvelopePage, InboxPage, Limits,
    MailboxId, MailboxInfo, MailboxKind, OutgoingEnvelope, ProvenRecord, SendReceipt,
    ServerDescription, Timestamp,
};
use atmls_lexicon::chat::mls::ds::{
    create_mailbox, delete_inbox_items, send_envelopes, send_welcome,
};

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

fn id() -> MailboxId {
    MailboxId::from_bytes([1; 32])
}

const ID: &str = "aeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaq";

fn commit() -> Envelope {
    Envelope {
        seq: 300,
        kind: EnvelopeKind::Commit,
        epoch: Some(3),
        payload: b"hi".to_vec(),
        received_at: Timestamp::from_millis(1_800_000_001_234),
    }
}

fn message() -> Envelope {
    Envelope {
        seq: 301,
        kind: EnvelopeKind::Message,
        epoch: None,
        payload: vec![0xff],
        received_at: Timestamp::from_millis(1_800_000_002_000),
    }
}

const COMMIT: &str = r#"{"seq":300,"kind":"commit","payload":{"$bytes":"aGk"},"receivedAt":"2027-01-15T08:00:01.234Z","epoch":3}"#;
const MESSAGE: &str = r#"{"seq":301,"kind":"message","payload":{"$bytes":"/w"},"receivedAt":"2027-01-15T08:00:02.000Z"}"#;

#[test]
fn create_mailbox() {
    for (info, want) in [
        (
            MailboxInfo {
                mailbox: id(),
                kind: MailboxKind::Group,
                epoch: Some(7),
                seq: 0,
                message_lifetime: None,
            },
            format!(r#"{{"mailbox":"{ID}","kind":"group","seq":0,"epoch":7}}"#),
        ),
        (
            MailboxInfo {
                mailbox: id(),
                kind: MailboxKind::Inbox,
                epoch: None,
                seq: 12,
                message_lifetime: None,
            },
            format!(r#"{{"mailbox":"{ID}","kind":"inbox","seq":12}}"#),
        ),
    ] {
        let body = json(&server::create_mailbox_output(&info));
        assert_eq!(text(&body), want);
        assert_eq!(client::create_mailbox_output(&body), Ok(info));
        let body = json(&server::get_mailbox_output(&info));
        assert_eq!(text(&body), want);
        assert_eq!(client::get_mailbox_output(&body), Ok(info));
    }
}

/// `getMailbox` answers the message lifetime a commit set (§11.18); `createMailbox`
/// never carries one.
#[test]
fn get_mailbox_message_lifetime() {
    let info = MailboxInfo {
        mailbox: id(),
        kind: MailboxKind::Group,
        epoch: Some(2),
        seq: 5,
        message_lifetime: Some(3600),
    };
    let body = json(&server::get_mailbox_output(&info));
    assert_eq!(
        text(&body),
        format!(r#"{{"mailbox":"{ID}","kind":"group","seq":5,"epoch":2,"messageLifetime":3600}}"#)
    );
    assert_eq!(client::get_mailbox_output(&body), Ok(info));
    let zero = format!(r#"{{"mailbox":"{ID}","kind":"group","seq":5,"messageLifetime":0}}"#);
    assert!(client::get_mailbox_output(zero.as_bytes()).is_err());
}

#[test]
fn create_mailbox_input() {
    let body = client::create_mailbox_body(MailboxKind::Group, &[2; 32], 5);
    let input: create_mailbox::Input = serde_json::from_slice(&body).unwrap();
    let parsed = server::create_mailbox_input(input).unwrap();
    assert_eq!(
        (parsed.kind, parsed.key, parsed.epoch),
        (MailboxKind::Group, vec![2; 32], Some(5))
    );
    // An inbox sends no epoch.
    let body = client::create_mailbox_body(MailboxKind::Inbox, &[2; 32], 5);
    assert!(!text(&body).contains("epoch"), "{}", text(&body));
    // An unknown kind is `UnsupportedKind`, a negative epoch `InvalidRequest`.
    let input: create_mailbox::Input =
        serde_json::from_str(r#"{"kind":"room","key":{"$bytes":"AA"}}"#).unwrap();
    let e = server::create_mailbox_input(input).unwrap_err();
    assert_eq!(e.error_name().as_str(), "UnsupportedKind");
    let input: create_mailbox::Input =
        serde_json::from_str(r#"{"kind":"group","key":{"$bytes":"AA"},"epoch":-1}"#).unwrap();
    let e = server::create_mailbox_input(input).unwrap_err();
    assert_eq!(e.to_string(), "input/epoch: must be >= 0");
}

#[test]
fn send_envelopes() {
    let batch = vec![
        OutgoingEnvelope::message(b"m".to_vec()),
        OutgoingEnvelope::commit(3, b"c".to_vec(), [4; 32]).with_message_lifetime(86_400),
    ];
    let body = client::send_envelopes_body(&id(), &batch);
    assert!(
        text(&body).contains(r#""messageLifetime":86400"#),
        "{}",
        text(&body)
    );
    let input: send_envelopes::Input = serde_json::from_slice(&body).unwrap();
    let request = server::send_envelopes_input(input).unwrap();
    assert_eq!(request.mailbox, id());
    assert_eq!(request.envelopes, batch);
    assert!(request.unknown_kinds.is_empty());

    let receipt = SendReceipt {
        first_seq: 10,
        last_seq: 11,
        epoch: 4,
    };
    let body = json(&server::send_envelopes_output(&receipt));
    assert_eq!(text(&body), r#"{"firstSeq":10,"lastSeq":11,"epoch":4}"#);
    assert_eq!(client::send_envelopes_output(&body), Ok(receipt));
}

#[test]
fn send_envelopes_keeps_unknown_kinds_for_the_core() {
    let input: send_envelopes::Input = serde_json::from_str(&format!(
        r#"{{"mailbox":"{ID}","envelopes":[{{"kind":"message","payload":{{"$bytes":"AA"}}}},{{"kind":"poll","payload":{{"$bytes":"AA"}}}}]}}"#
    ))
    .unwrap();
    let request = server::send_envelopes_input(input).unwrap();
    assert_eq!(request.envelopes[1].kind, EnvelopeKind::Welcome);
    assert_eq!(request.unknown_kinds.len(), 1);
    assert_eq!(request.unknown_kinds[0].0, 1);
    assert_eq!(request.unknown_kinds[0].1.0, "poll");
}

#[test]
fn get_envelopes() {
    let page = EnvelopePage {
        envelopes: vec![commit(), message()],
        cursor: 301,
        head_seq: 301,
        epoch: Some(4),
    };
    let body = json(&server::get_envelopes_output(&page));
    assert_eq!(
        text(&body),
        format!(r#"{{"envelopes":[{COMMIT},{MESSAGE}],"cursor":301,"headSeq":301,"epoch":4}}"#)
    );
    let back = client::get_envelopes_output(&body).unwrap();
    assert!(back.at_head());
    assert_eq!(back, page);
    // An ended epoch's key reads without `epoch`: not at the head.
    let ended = EnvelopePage {
        epoch: None,
        ..page
    };
    let back = client::get_envelopes_output(&json(&server::get_envelopes_output(&ended))).unwrap();
    assert!(!back.at_head());
    assert_eq!(back, ended);
}

#[test]
fn send_welcome() {
    let body = client::send_welcome_body(&id(), b"sealed");
    let input: send_welcome::Input = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        server::send_welcome_input(input),
        Ok((id(), b"sealed".to_vec()))
    );
    let body = json(&server::send_welcome_output(42));
    assert_eq!(text(&body), r#"{"seq":42}"#);
    assert_eq!(client::send_welcome_output(&body), Ok(42));
}

#[test]
fn list_inbox() {
    let welcome = Envelope {
        kind: EnvelopeKind::Welcome,
        ..message()
    };
    let page = InboxPage {
        items: vec![welcome],
        cursor: 301,
    };
    let body = json(&server::list_inbox_output(&page));
    assert_eq!(
        text(&body),
        r#"{"items":[{"seq":301,"kind":"welcome","payload":{"$bytes":"/w"},"receivedAt":"2027-01-15T08:00:02.000Z"}],"cursor":301}"#
    );
    assert_eq!(client::list_inbox_output(&body), Ok(page));
}

#[test]
fn delete_inbox_items() {
    let body = client::delete_inbox_items_body(&id(), &[1, 2, 3]);
    let input: delete_inbox_items::Input = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        server::delete_inbox_items_input(input),
        Ok((id(), vec![1, 2, 3]))
    );
    let body = json(&server::delete_inbox_items_output(2));
    assert_eq!(text(&body), r#"{"deleted":2}"#);
    assert_eq!(client::delete_inbox_items_output(&body), Ok(2));
}

#[test]
fn describe_server() {
    let mut d = ServerDescription {
        did: "did:web:ds.example.com".into(),
        protocol_version: 1,
        limits: Limits {
            max_envelope_bytes: 1_048_576,
            max_batch_envelopes: 100,
            max_mailboxes_per_account: 1000,
            inbox_deposits_per_minute: 60,
            key_grace_seconds: 60,
            request_max_age_seconds: 120,
            max_subscription_mailboxes: 100,
            max_mailbox_bytes: Some(268_435_456),
            inbox_deposit_bytes_per_minute: Some(16_777_216),
            group_retention_seconds: None,
            inbox_retention_seconds: None,
        },
    };
    let body = json(&server::describe_server_output(&d).unwrap());
    assert_eq!(
        text(&body),
        r#"{"did":"did:web:ds.example.com","protocolVersion":1,"limits":{"maxEnvelopeBytes":1048576,"maxBatchEnvelopes":100,"maxMailboxesPerAccount":1000,"inboxDepositsPerMinute":60,"keyGraceSeconds":60,"requestMaxAgeSeconds":120,"maxSubscriptionMailboxes":100,"maxMailboxBytes":268435456,"inboxDepositBytesPerMinute":16777216}}"#
    );
    assert_eq!(client::describe_server_output(&body), Ok(d.clone()));
    d.limits.group_retention_seconds = Some(86_400);
    d.limits.inbox_retention_seconds = Some(3600);
    let body = json(&server::describe_server_output(&d).unwrap());
    assert!(
        text(&body).ends_with(
            r#""inboxDepositBytesPerMinute":16777216,"groupRetentionSeconds":86400,"inboxRetentionSeconds":3600}}"#
        ),
        "{}",
        text(&body)
    );
    assert_eq!(client::describe_server_output(&body), Ok(d));
}

#[test]
fn get_key_packages() {
    let cid = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
    let ok = DidResult {
        did: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into(),
        status: DidStatus::Ok,
        message: None,
        declaration: Some(ProvenRecord {
            uri: "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/chat.mls.declaration/self".into(),
            cid: cid.into(),
            proof: vec![1, 2, 3],
        }),
        key_packages: vec![],
    };
    let failed = DidResult {
        did: "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".into(),
        status: DidStatus::Unreachable,
        message: Some("timed out".into()),
        declaration: None,
        key_packages: vec![],
    };
    let one = json(&server::did_result(&ok).unwrap());
    assert_eq!(
        text(&one),
        format!(
            r#"{{"did":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","status":"ok","keyPackages":[],"declaration":{{"uri":"at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/chat.mls.declaration/self","cid":"{cid}","proof":{{"$bytes":"AQID"}}}}}}"#
        )
    );
    let two = json(&server::did_result(&failed).unwrap());
    assert_eq!(
        text(&two),
        r#"{"did":"did:plc:bbbbbbbbbbbbbbbbbbbbbbbb","status":"unreachable","keyPackages":[],"message":"timed out"}"#
    );
    let body = format!(r#"{{"results":[{},{}]}}"#, text(&one), text(&two));
    assert_eq!(
        client::get_key_packages_output(body.as_bytes()),
        Ok(vec![ok, failed])
    );
}

#[test]
fn subscribe_envelopes_frame() {
    // The frame: a DAG-CBOR header {op: 1, t: "#envelope"} then the body.
    let mut frame = Vec::new();
    #[derive(serde::Serialize)]
    struct Header<'a> {
        op: i64,
        t: &'a str,
    }
    frame.extend(
        serde_ipld_dagcbor::to_vec(&Header {
            op: 1,
            t: "#envelope",
        })
        .unwrap(),
    );
    frame.extend(
        serde_ipld_dagcbor::to_vec(&server::envelope_frame_body(&id(), &commit())).unwrap(),
    );
    assert_eq!(
        client::frame(&frame),
        Ok(client::Frame::Envelope {
            mailbox: id(),
            envelope: commit(),
        })
    );
}

#[test]
fn errors() {
    let body = br#"{"error":"EpochConflict","message":"mailbox is at epoch 5","currentEpoch":5,"currentSeq":311}"#;
    let e = client::error_body(body).unwrap().unwrap();
    assert_eq!(e.name(), Some(atmls_ds_proto::ErrorName::EpochConflict));
    let c = e.conflict.unwrap();
    assert_eq!((c.current_epoch, c.current_seq), (5, 311));
    // Without its fields, or with a negative one, an EpochConflict is malformed.
    assert!(client::error_body(br#"{"error":"EpochConflict","message":"x"}"#).is_err());
    assert!(
        client::error_body(br#"{"error":"EpochConflict","currentEpoch":-1,"currentSeq":1}"#)
            .is_err()
    );
    // An unknown name is kept as text; a body that is no XRPC error is `None`.
    let e = client::error_body(br#"{"error":"Brand new"}"#)
        .unwrap()
        .unwrap();
    assert_eq!((e.name(), e.error.as_str()), (None, "Brand new"));
    assert_eq!(client::error_body(b"<html>"), Ok(None));
}

#[test]
fn bad_fields_are_errors_not_defaults() {
    for (body, field) in [
        (
            r#"{"items":[{"seq":1,"kind":"welcome","payload":{"$bytes":"AA"},"receivedAt":"1969-12-31T23:59:59.000Z"}],"cursor":1}"#,
            "items/0/receivedAt",
        ),
        (
            r#"{"items":[{"seq":0,"kind":"welcome","payload":{"$bytes":"AA"},"receivedAt":"2027-01-15T08:00:02.000Z"}],"cursor":1}"#,
            "items/0/seq",
        ),
        (
            r#"{"items":[{"seq":1,"kind":"welcome","payload":{"$bytes":"AA"},"receivedAt":"2027-01-15T08:00:02.000Z"}],"cursor":-5}"#,
            "cursor",
        ),
    ] {
        match client::list_inbox_output(body.as_bytes()) {
            Err(DecodeError::Field { field: f, .. }) => assert_eq!(f, field, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    // Not a datetime at all: refused by the generated type.
    assert!(matches!(
        client::list_inbox_output(
            br#"{"items":[{"seq":1,"kind":"welcome","payload":{"$bytes":"AA"},"receivedAt":"soon"}],"cursor":1}"#
        ),
        Err(DecodeError::Shape { .. })
    ));
}

/// What the generated per-method `Error` enums (`tag = "error", content = "message"`) can
/// and cannot carry, which is why [`client::error_body`] decodes errors itself: extra
/// members are ignored (so `currentEpoch`/`currentSeq` are lost), and a name the method's
/// lexicon does not list (`InvalidRequest`, `InternalServerError`, …, which every XRPC
/// service may answer) does not parse at all.
#[test]
fn generated_error_enums_cannot_carry_the_wire() {
    let conflict = r#"{"error":"EpochConflict","message":"m","currentEpoch":5,"currentSeq":3}"#;
    let parsed: send_envelopes::Error = serde_json::from_str(conflict).unwrap();
    assert_eq!(
        parsed,
        send_envelopes::Error::EpochConflict(Some("m".into()))
    );
    let generic = r#"{"error":"InvalidRequest","message":"m"}"#;
    assert!(serde_json::from_str::<send_envelopes::Error>(generic).is_err());
    // Written back, the extra members are gone.
    assert_eq!(
        serde_json::to_string(&parsed).unwrap(),
        r#"{"error":"EpochConflict","message":"m"}"#
    );
}
