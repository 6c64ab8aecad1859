//! Both codecs, built on the generated lexicon types
//! (`atmls_lexicon::chat::mls::ds::*::{Input, Output, Parameters}`, `chat::mls::defs`):
//!
//! - [`server`]: proto values → generated outputs (JSON bodies, the DAG-CBOR `#envelope`
//!   frame); generated inputs → proto values.
//! - [`client`]: proto values → request bodies; response bytes → generated outputs →
//!   proto values, and error bodies → [`crate::ErrorBody`].
//!
//! A field that does not convert is a [`DecodeError`], never a default.

pub mod client;
pub mod server;

use atmls_lexicon::chat::mls::defs;
use atmls_syntax::Timestamp;
use atrium_api::types::Object;
use atrium_api::types::string::Datetime;

use crate::error::DecodeError;
use crate::id::{EnvelopeKind, MailboxId};
use crate::values::Envelope;

/// The atproto datetime of a timestamp: RFC 3339, UTC, milliseconds, `Z`
/// (`2027-01-15T08:00:00.123Z`).
pub fn datetime(t: Timestamp) -> Datetime {
    let text = i64::try_from(t.as_millis())
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // chrono's RFC 3339 output is a valid atproto datetime; the fallback is never taken.
    text.parse()
        .unwrap_or_else(|_| Datetime::new(chrono::DateTime::UNIX_EPOCH.fixed_offset()))
}

/// The timestamp of a datetime a peer sent. A time before 1970 is refused.
pub fn timestamp(field: &str, d: &Datetime) -> Result<Timestamp, DecodeError> {
    let ms = d.as_ref().timestamp_millis();
    u64::try_from(ms)
        .map(Timestamp::from_millis)
        .map_err(|_| DecodeError::field(field, "a time before 1970"))
}

/// The timestamp of a datetime's text form (RFC 3339 as atproto restricts it).
pub fn parse_timestamp(field: &str, text: &str) -> Result<Timestamp, DecodeError> {
    let d: Datetime = text
        .parse()
        .map_err(|_| DecodeError::field(field, "not an atproto datetime"))?;
    timestamp(field, &d)
}

fn wire_int(v: u64) -> i64 {
    // Every integer of this protocol is at most 2^53 - 1 (MAX_SEQ, MAX_EPOCH) or a
    // configured limit; saturate rather than wrap if one were not.
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn non_negative(field: &str, v: i64) -> Result<u64, DecodeError> {
    u64::try_from(v).map_err(|_| DecodeError::field(field, "must be >= 0"))
}

fn mailbox_id(field: &str, text: &str) -> Result<MailboxId, DecodeError> {
    text.parse().map_err(|e| DecodeError::field(field, e))
}

/// `chat.mls.defs#envelope` of an envelope.
pub fn envelope_object(e: &Envelope) -> defs::Envelope {
    Object::from(defs::EnvelopeData {
        seq: wire_int(e.seq),
        kind: e.kind.as_str().to_owned(),
        payload: e.payload.clone().into(),
        received_at: datetime(e.received_at),
        epoch: e.epoch.map(wire_int),
    })
}

/// The envelope of a `chat.mls.defs#envelope` a peer sent (`field` names it in errors).
pub fn envelope_of(field: &str, e: defs::Envelope) -> Result<Envelope, DecodeError> {
    let e = e.data;
    let seq = non_negative(&format!("{field}/seq"), e.seq)?;
    if seq == 0 {
        return Err(DecodeError::field(format!("{field}/seq"), "must be >= 1"));
    }
    Ok(Envelope {
        seq,
        kind: e
            .kind
            .parse::<EnvelopeKind>()
            .map_err(|u| DecodeError::field(format!("{field}/kind"), u))?,
        epoch: e
            .epoch
            .map(|v| non_negative(&format!("{field}/epoch"), v))
            .transpose()?,
        payload: e.payload.into_vec(),
        received_at: timestamp(&format!("{field}/receivedAt"), &e.received_at)?,
    })
}
