//! How core values and errors look on the wire: JSON bodies, DAG-CBOR frames, and the
//! XRPC status of every error name.

use std::fmt::Display;

use atmls_ds::auth::ReplayShare;
use atmls_ds::{
    AuthError, CreateMailboxError, Envelope, InboxError, MailboxFull, MailboxInfo, ReadError,
    SendEnvelopesError, SendWelcomeError, Timestamp,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use atmls_xrpc::XrpcError;
use atmls_xrpc::subscription::{Frame, FrameError};

/// An atproto datetime (RFC 3339, milliseconds, `Z`).
pub(crate) fn datetime(t: Timestamp) -> String {
    i64::try_from(t.as_millis())
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `{"$bytes": …}`.
pub(crate) fn bytes_json(b: &[u8]) -> Value {
    json!({ "$bytes": STANDARD_NO_PAD.encode(b) })
}

/// `chat.mls.defs#envelope` in JSON.
pub fn envelope_json(e: &Envelope) -> Value {
    let mut v = json!({
        "seq": e.seq,
        "kind": e.kind.as_str(),
        "payload": bytes_json(&e.payload),
        "receivedAt": datetime(e.received_at),
    });
    if let Some(epoch) = e.epoch {
        v["epoch"] = json!(epoch);
    }
    v
}

/// The output of `createMailbox` and `getMailbox`.
pub(crate) fn mailbox_info_json(info: &MailboxInfo) -> Value {
    let mut v = json!({
        "mailbox": info.mailbox.to_string(),
        "kind": info.kind.as_str(),
        "seq": info.seq,
    });
    if let Some(epoch) = info.epoch {
        v["epoch"] = json!(epoch);
    }
    v
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeBody<'a> {
    seq: u64,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<u64>,
    #[serde(with = "serde_bytes")]
    payload: &'a [u8],
    received_at: String,
}

#[derive(Serialize)]
struct EnvelopeMessage<'a> {
    mailbox: &'a str,
    envelope: EnvelopeBody<'a>,
}

/// The `#envelope` frame of `subscribeEnvelopes`: `{mailbox, envelope}` in DAG-CBOR.
pub fn envelope_frame(mailbox: &str, e: &Envelope) -> Result<Frame, FrameError> {
    Frame::message(
        "#envelope",
        &EnvelopeMessage {
            mailbox,
            envelope: EnvelopeBody {
                seq: e.seq,
                kind: e.kind.as_str(),
                epoch: e.epoch,
                payload: &e.payload,
                received_at: datetime(e.received_at),
            },
        },
    )
}

/// The `#heartbeat` message body.
#[derive(Serialize)]
pub(crate) struct Heartbeat {
    pub(crate) time: String,
}

/// The HTTP status of a DS error name (`docs/spec.md` §7).
pub(crate) fn status_of(name: &str) -> StatusCode {
    match name {
        "AuthRequired" | "InvalidToken" | "ExpiredToken" | "BadToken" | "BadSignature"
        | "KeyExpired" | "RequestExpired" | "ReplayedRequest" => StatusCode::UNAUTHORIZED,
        "NotOwner" => StatusCode::FORBIDDEN,
        "MailboxNotFound" => StatusCode::NOT_FOUND,
        "EpochConflict" => StatusCode::CONFLICT,
        "EnvelopeTooLarge" | "BatchTooLarge" => StatusCode::PAYLOAD_TOO_LARGE,
        "QuotaExceeded" | "RateLimitExceeded" | "MailboxFull" => StatusCode::TOO_MANY_REQUESTS,
        "InternalServerError" => StatusCode::INTERNAL_SERVER_ERROR,
        "UpstreamFailure" => StatusCode::BAD_GATEWAY,
        "ServiceUnavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// A core error with its lexicon name.
pub(crate) trait Named: Display {
    /// The lexicon error name.
    fn error_name(&self) -> &'static str;

    /// The limit that refused the request, if one did (a `/metrics` label).
    fn limit(&self) -> Option<&'static str> {
        None
    }

    /// The kind of a store failure, without identifiers (for logs).
    fn store_kind(&self) -> Option<&'static str>;
}

fn auth_limit(e: &AuthError) -> Option<&'static str> {
    match e {
        AuthError::ReplayCacheFull => Some("replay_cache"),
        AuthError::ReplayShareExceeded(ReplayShare::Key) => Some("replay_share_key"),
        AuthError::ReplayShareExceeded(ReplayShare::Mailbox) => Some("replay_share_mailbox"),
        AuthError::ReplayShareExceeded(ReplayShare::Source) => Some("replay_share_source"),
        AuthError::ReplayShareExceeded(_) => Some("replay_share"),
        _ => None,
    }
}

fn full_limit(e: &MailboxFull) -> &'static str {
    match e {
        MailboxFull::Sequence { .. } => "mailbox_seqs",
        _ => "mailbox_bytes",
    }
}

/// `Named` for the core's error types: the name, the limit (`limit_of`), the store kind.
macro_rules! named {
    ($($ty:ident => $limit_of:expr),* $(,)?) => {$(
        impl Named for $ty {
            fn error_name(&self) -> &'static str {
                self.name()
            }

            fn limit(&self) -> Option<&'static str> {
                let limit_of: fn(&$ty) -> Option<&'static str> = $limit_of;
                limit_of(self)
            }

            fn store_kind(&self) -> Option<&'static str> {
                match self {
                    Self::Store(e) => Some(e.kind()),
                    _ => None,
                }
            }
        }
    )*};
}

named!(
    CreateMailboxError => |e| {
        matches!(e, CreateMailboxError::QuotaExceeded { .. }).then_some("mailboxes_per_account")
    },
    SendEnvelopesError => |e| match e {
        SendEnvelopesError::Auth(a) => auth_limit(a),
        SendEnvelopesError::MailboxFull(f) => Some(full_limit(f)),
        _ => None,
    },
    ReadError => |e| match e {
        ReadError::Auth(a) => auth_limit(a),
        _ => None,
    },
    SendWelcomeError => |e| match e {
        SendWelcomeError::RateLimitExceeded { .. } => Some("inbox_deposits"),
        SendWelcomeError::MailboxFull(f) => Some(full_limit(f)),
        _ => None,
    },
    InboxError => |e| match e {
        InboxError::Auth(a) => auth_limit(a),
        _ => None,
    },
);

/// The XRPC error of a core error. Store failures are logged and answered without
/// internals.
pub(crate) fn core_error<E: Named>(e: &E) -> XrpcError {
    let name = e.error_name();
    if name == "InternalServerError" {
        tracing::error!(
            error = e.store_kind().unwrap_or(name),
            "delivery-service store failure"
        );
        return XrpcError::internal("internal server error");
    }
    if let (Some(kind), "ServiceUnavailable") = (e.store_kind(), name) {
        // A database that is unreachable or restarting: nothing was stored, retry.
        tracing::warn!(error = kind, "delivery-service store unavailable");
        return XrpcError::unavailable("the database is unavailable; nothing was stored, retry");
    }
    let error = XrpcError::new(status_of(name), name, e.to_string());
    match e.limit() {
        Some(limit) => error.with_limit(limit),
        None => error,
    }
}

/// The XRPC error of a `sendEnvelopes` failure: `EpochConflict` carries `currentEpoch`
/// and `currentSeq`.
pub(crate) fn send_error(e: &SendEnvelopesError) -> XrpcError {
    match e {
        SendEnvelopesError::EpochConflict {
            current_epoch,
            current_seq,
        } => core_error(e)
            .with_field("currentEpoch", *current_epoch)
            .with_field("currentSeq", *current_seq),
        _ => core_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atmls_ds::{EnvelopeKind, MailboxId};

    #[test]
    fn datetimes_are_atproto() {
        assert_eq!(
            datetime(Timestamp::from_millis(1_800_000_000_123)),
            "2027-01-15T08:00:00.123Z"
        );
    }

    #[test]
    fn envelope_encodings() {
        let e = Envelope {
            seq: 3,
            kind: EnvelopeKind::Commit,
            epoch: Some(4),
            payload: b"hi".to_vec(),
            received_at: Timestamp::from_millis(0),
        };
        assert_eq!(
            envelope_json(&e),
            json!({"seq": 3, "kind": "commit", "epoch": 4, "payload": {"$bytes": "aGk"},
                   "receivedAt": "1970-01-01T00:00:00.000Z"})
        );
        let id = MailboxId::from_bytes([1; 32]).to_string();
        let frame = envelope_frame(&id, &e).unwrap();
        let (header, body): (_, ipld_core::ipld::Ipld) = Frame::decode(frame.bytes()).unwrap();
        assert_eq!(header.t.as_deref(), Some("#envelope"));
        let ipld_core::ipld::Ipld::Map(m) = body else {
            panic!("not a map")
        };
        assert!(m.contains_key("mailbox") && m.contains_key("envelope"));
    }

    #[test]
    fn conflict_has_fields() {
        let e = send_error(&SendEnvelopesError::EpochConflict {
            current_epoch: 5,
            current_seq: 311,
        });
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(e.field("currentEpoch"), Some(&json!(5)));
        assert_eq!(e.field("currentSeq"), Some(&json!(311)));
    }
}
