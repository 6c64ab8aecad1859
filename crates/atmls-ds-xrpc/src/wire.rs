//! How core values and errors look on the wire, through the codecs of `atmls-ds-proto`:
//! JSON bodies and DAG-CBOR frames from the generated lexicon types, and the XRPC status
//! of every error name (`docs/spec.md` §7).

use std::fmt::Display;

use atmls_ds::auth::ReplayShare;
use atmls_ds::proto::ErrorName;
use atmls_ds::proto::codec::server::envelope_frame_body;
use atmls_ds::{
    AuthError, CreateMailboxError, Envelope, InboxError, MailboxFull, MailboxId, ReadError,
    SendEnvelopesError, SendWelcomeError,
};
use hyper::StatusCode;
use serde::Serialize;

use atmls_xrpc::subscription::{Frame, FrameError};
use atmls_xrpc::{XrpcError, XrpcResponse};

/// `chat.mls.defs#envelope` in JSON, as the generated type serializes it.
pub fn envelope_json(e: &Envelope) -> serde_json::Value {
    serde_json::to_value(atmls_ds::proto::codec::envelope_object(e)).unwrap_or_default()
}

/// A 200 answer with a generated output type as its JSON body.
pub(crate) fn output<T: Serialize>(body: &T) -> Result<XrpcResponse, XrpcError> {
    XrpcResponse::json_from(body)
}

/// The `#envelope` frame of `subscribeEnvelopes`: `{mailbox, envelope}` in DAG-CBOR.
pub fn envelope_frame(mailbox: &MailboxId, e: &Envelope) -> Result<Frame, FrameError> {
    Frame::message("#envelope", &envelope_frame_body(mailbox, e))
}

/// The HTTP status of a DS error name (`docs/spec.md` §7).
pub(crate) fn status_of(name: ErrorName) -> StatusCode {
    StatusCode::from_u16(name.status()).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The XRPC error `name` with `message`, at its status.
pub(crate) fn ds_error(name: ErrorName, message: impl Into<String>) -> XrpcError {
    XrpcError::new(status_of(name), name.as_str(), message)
}

/// A core error with its lexicon name.
pub(crate) trait Named: Display {
    /// The lexicon error name.
    fn error_name(&self) -> ErrorName;

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
            fn error_name(&self) -> ErrorName {
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
    if name == ErrorName::InternalServerError {
        tracing::error!(
            error = e.store_kind().unwrap_or(name.as_str()),
            "delivery-service store failure"
        );
        return XrpcError::internal("internal server error");
    }
    if let (Some(kind), ErrorName::ServiceUnavailable) = (e.store_kind(), name) {
        // A database that is unreachable or restarting: nothing was stored, retry.
        tracing::warn!(error = kind, "delivery-service store unavailable");
        return XrpcError::unavailable("the database is unavailable; nothing was stored, retry");
    }
    let error = ds_error(name, e.to_string());
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
    use atmls_ds::{EnvelopeKind, Timestamp};
    use serde_json::json;

    #[test]
    fn datetimes_are_atproto() {
        assert_eq!(
            atmls_ds::proto::codec::datetime(Timestamp::from_millis(1_800_000_000_123)).as_str(),
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
        // The bytes the server has always sent: required members first, `epoch` last.
        assert_eq!(
            serde_json::to_string(&envelope_json(&e)).unwrap(),
            r#"{"seq":3,"kind":"commit","payload":{"$bytes":"aGk"},"receivedAt":"1970-01-01T00:00:00.000Z","epoch":4}"#
        );
        let id = MailboxId::from_bytes([1; 32]);
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
