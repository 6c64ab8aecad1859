//! atproto event-stream frames: a DAG-CBOR header followed by a DAG-CBOR body, in one
//! binary WebSocket message.

use std::io::Cursor;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The body does not encode as DAG-CBOR (e.g. it holds a float or a map with
    /// non-string keys).
    #[error("cannot encode the frame: {0}")]
    Encode(String),
    /// The bytes are not a DAG-CBOR header followed by a DAG-CBOR body.
    #[error("cannot decode the frame: {0}")]
    Decode(String),
}

/// The header of a frame: `{op: 1, t: "#name"}` for a message, `{op: -1}` for an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameHeader {
    /// `1` for a message, `-1` for an error.
    pub op: i64,
    /// The message type, `#` followed by the lexicon definition name (messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
}

/// The body of an error frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error name, e.g. `ConsumerTooSlow`.
    pub error: String,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One encoded frame, cheap to clone: encode once and send to many subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
    error: bool,
}

impl Frame {
    /// A message frame of type `t` (a definition name, with or without the leading `#`,
    /// e.g. `#envelope`), whose body is `body` encoded as DAG-CBOR.
    pub fn message<T: Serialize + ?Sized>(t: &str, body: &T) -> Result<Frame, FrameError> {
        let t = if t.starts_with('#') {
            t.to_owned()
        } else {
            format!("#{t}")
        };
        let header = FrameHeader { op: 1, t: Some(t) };
        Ok(Frame {
            bytes: encode_pair(&header, body)?,
            error: false,
        })
    }

    /// An error frame `{op: -1}` + `{error, message}`; the stream ends after it.
    pub fn error(name: &str, message: &str) -> Frame {
        let header = FrameHeader { op: -1, t: None };
        let body = ErrorBody {
            error: name.to_owned(),
            message: (!message.is_empty()).then(|| message.to_owned()),
        };
        // Strings and small integers always encode.
        let bytes = encode_pair(&header, &body).unwrap_or_default();
        Frame { bytes, error: true }
    }

    /// The bytes of the binary WebSocket message.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Whether this is an error frame.
    pub fn is_error(&self) -> bool {
        self.error
    }

    /// Splits a received frame into its header and body (for clients and tests).
    pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(FrameHeader, T), FrameError> {
        let mut cursor = Cursor::new(bytes);
        let header: FrameHeader = serde_ipld_dagcbor::de::from_reader_once(&mut cursor)
            .map_err(|e| FrameError::Decode(format!("header: {e}")))?;
        let body: T = serde_ipld_dagcbor::de::from_reader_once(&mut cursor)
            .map_err(|e| FrameError::Decode(format!("body: {e}")))?;
        if cursor.position() != bytes.len() as u64 {
            return Err(FrameError::Decode("trailing bytes after the body".into()));
        }
        Ok((header, body))
    }
}

fn encode_pair<H: Serialize, B: Serialize + ?Sized>(
    header: &H,
    body: &B,
) -> Result<Bytes, FrameError> {
    let mut out =
        serde_ipld_dagcbor::to_vec(header).map_err(|e| FrameError::Encode(e.to_string()))?;
    let body = serde_ipld_dagcbor::to_vec(body).map_err(|e| FrameError::Encode(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn message_round_trips_with_canonical_header() {
        let mut body = BTreeMap::new();
        body.insert("seq".to_owned(), 7u64);
        let frame = Frame::message("envelope", &body).unwrap();
        // {"t": "#envelope", "op": 1}: keys sorted by length, "t" first.
        assert_eq!(&frame.bytes()[..4], &[0xa2, 0x61, b't', 0x69]);
        let (header, decoded): (_, BTreeMap<String, u64>) = Frame::decode(frame.bytes()).unwrap();
        assert_eq!(
            header,
            FrameHeader {
                op: 1,
                t: Some("#envelope".into())
            }
        );
        assert_eq!(decoded, body);
    }

    #[test]
    fn error_frame_has_op_minus_one() {
        let frame = Frame::error("ConsumerTooSlow", "buffer full");
        let (header, body): (_, ErrorBody) = Frame::decode(frame.bytes()).unwrap();
        assert_eq!(header.op, -1);
        assert_eq!(body.error, "ConsumerTooSlow");
        assert!(frame.is_error());
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(Frame::decode::<ErrorBody>(&[0xff, 0x00]).is_err());
        let mut bytes = Frame::error("X", "").bytes().to_vec();
        bytes.push(0);
        assert!(Frame::decode::<ErrorBody>(&bytes).is_err());
    }
}
