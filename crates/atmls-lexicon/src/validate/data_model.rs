//! The atproto data model in JSON form: `$bytes`, `$link`, blobs, no floats.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cid::Cid;
use serde_json::{Map, Value};

use super::error::{ValidationError, ValidationErrorKind as Kind};
use super::path::DataPath;
use crate::syntax::CidString;

type Result<T> = std::result::Result<T, ValidationError>;

/// Standard base64; atproto writes it without padding, but padded input is read too, and
/// so are unused trailing bits.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Deepest data the validator follows.
pub(crate) const MAX_DEPTH: usize = 128;

pub(crate) fn fail<T>(path: &DataPath<'_>, kind: Kind) -> Result<T> {
    Err(ValidationError::new(path.to_string(), kind))
}

/// The data model type of `v`, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(m) => special(m).unwrap_or("object"),
    }
}

/// Which compound type an object encodes, if any: `bytes`, `cid-link` or `blob`.
fn special(m: &Map<String, Value>) -> Option<&'static str> {
    if m.contains_key("$bytes") {
        Some("bytes")
    } else if m.contains_key("$link") {
        Some("cid-link")
    } else if m.get("$type").and_then(Value::as_str) == Some("blob") {
        Some("blob")
    } else {
        None
    }
}

/// A plain object (not bytes, a link or a blob), or a `WrongType` error.
pub(crate) fn plain_object<'v>(
    v: &'v Value,
    path: &DataPath<'_>,
) -> Result<&'v Map<String, Value>> {
    match v {
        Value::Object(m) if special(m).is_none() => Ok(m),
        other => fail(
            path,
            Kind::WrongType {
                expected: "an object",
                found: type_name(other),
            },
        ),
    }
}

/// Reads `{"$bytes": "<base64>"}`.
pub(crate) fn bytes(v: &Value, path: &DataPath<'_>) -> Result<Vec<u8>> {
    let Some(m) = v.as_object() else {
        return fail(
            path,
            Kind::WrongType {
                expected: "bytes",
                found: type_name(v),
            },
        );
    };
    let Some(encoded) = m.get("$bytes") else {
        return fail(
            path,
            Kind::WrongType {
                expected: "bytes",
                found: type_name(v),
            },
        );
    };
    if m.len() != 1 {
        return fail(
            path,
            Kind::BadBytes("an object with \"$bytes\" must have no other fields".into()),
        );
    }
    let Some(encoded) = encoded.as_str() else {
        return fail(
            path,
            Kind::BadBytes("\"$bytes\" must be a base64 string".into()),
        );
    };
    BASE64
        .decode(encoded)
        .or_else(|e| fail(path, Kind::BadBytes(e.to_string())))
}

/// Reads `{"$link": "<cid>"}`.
pub(crate) fn link(v: &Value, path: &DataPath<'_>) -> Result<Cid> {
    let Some(m) = v.as_object().filter(|m| m.contains_key("$link")) else {
        return fail(
            path,
            Kind::WrongType {
                expected: "cid-link",
                found: type_name(v),
            },
        );
    };
    if m.len() != 1 {
        return fail(
            path,
            Kind::BadLink("an object with \"$link\" must have no other fields".into()),
        );
    }
    let Some(s) = m["$link"].as_str() else {
        return fail(path, Kind::BadLink("\"$link\" must be a CID string".into()));
    };
    match CidString::new_decoded(s) {
        Ok(c) => Ok(*c.cid().expect("new_decoded always decodes")),
        Err(e) => fail(path, Kind::BadLink(e.to_string())),
    }
}

/// The fields of a blob that Lexicon constraints look at.
pub(crate) struct Blob<'v> {
    pub(crate) mime_type: &'v str,
    pub(crate) size: u64,
}

/// Reads `{"$type": "blob", "ref": {"$link": …}, "mimeType": …, "size": …}`.
pub(crate) fn blob<'v>(v: &'v Value, path: &DataPath<'_>) -> Result<Blob<'v>> {
    let Some(m) = v.as_object().filter(|m| special(m) == Some("blob")) else {
        return fail(
            path,
            Kind::WrongType {
                expected: "blob",
                found: type_name(v),
            },
        );
    };
    let Some(r) = m.get("ref") else {
        return fail(path, Kind::BadBlob("missing \"ref\"".into()));
    };
    link(r, &path.key("ref"))?;
    let mime_type = match m.get("mimeType").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => t,
        _ => {
            return fail(
                path,
                Kind::BadBlob("\"mimeType\" must be a non-empty string".into()),
            );
        }
    };
    let Some(size) = m.get("size").and_then(Value::as_u64) else {
        return fail(
            path,
            Kind::BadBlob("\"size\" must be a non-negative integer".into()),
        );
    };
    Ok(Blob { mime_type, size })
}

/// An integer in the signed 64-bit range.
pub(crate) fn integer(v: &Value, path: &DataPath<'_>) -> Result<i64> {
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(i),
            None if n.is_f64() => fail(path, Kind::Float),
            None => fail(path, Kind::IntegerRange),
        },
        other => fail(
            path,
            Kind::WrongType {
                expected: "an integer",
                found: type_name(other),
            },
        ),
    }
}

/// Checks that `v` is valid data-model data with no schema: no floats, integers in range,
/// well-formed bytes, links and blobs at any depth, and string `$type` fields.
pub(crate) fn check(v: &Value, path: &DataPath<'_>) -> Result<()> {
    if path.depth() > MAX_DEPTH {
        return fail(path, Kind::TooDeep);
    }
    match v {
        Value::Number(_) => integer(v, path).map(drop),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check(item, &path.index(i))),
        Value::Object(m) => match special(m) {
            Some("bytes") => bytes(v, path).map(drop),
            Some("cid-link") => link(v, path).map(drop),
            Some(_) => blob(v, path).map(drop),
            None => {
                if let Some(t) = m.get("$type")
                    && t.as_str().is_none_or(str::is_empty)
                {
                    return fail(&path.key("$type"), Kind::BadTypeName(t.to_string()));
                }
                m.iter().try_for_each(|(k, item)| check(item, &path.key(k)))
            }
        },
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CID: &str = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";

    #[test]
    fn bytes_padding_is_optional() {
        let root = DataPath::Root("x");
        assert_eq!(bytes(&json!({"$bytes": "b25l"}), &root).unwrap(), b"one");
        assert_eq!(bytes(&json!({"$bytes": "b24"}), &root).unwrap(), b"on");
        assert_eq!(bytes(&json!({"$bytes": "b24="}), &root).unwrap(), b"on");
        assert!(bytes(&json!({"$bytes": "b!"}), &root).is_err());
    }

    #[test]
    fn nested_problems_are_found() {
        let root = DataPath::Root("record");
        let err = check(&json!({"a": [1, {"b": 1.5}]}), &root).unwrap_err();
        assert_eq!(
            err.to_string(),
            "record/a/1/b: floats are not allowed in the atproto data model"
        );
        let err = check(&json!({"l": {"$link": "nope"}}), &root).unwrap_err();
        assert_eq!(err.path(), "record/l");
        assert!(check(&json!({"l": {"$link": CID}, "n": null}), &root).is_ok());
    }
}
