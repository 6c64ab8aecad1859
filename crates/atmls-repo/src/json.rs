//! The JSON form of the atproto data model: `{"$link": …}` for CID links,
//! `{"$bytes": …}` (base64, no padding) for bytes, and blob objects
//! `{"$type": "blob", "ref": {"$link": …}, "mimeType": …, "size": …}`.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use ipld_core::ipld::Ipld;
use serde_json::{Map, Number, Value};

/// Why JSON is not valid atproto data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// A record (or other top-level object) that is not a JSON object.
    #[error("top-level value is not an object")]
    NotAnObject,
    /// A number with a fractional part, or outside the integer range.
    #[error("{0} is not an integer (floats are not allowed)")]
    Float(String),
    /// `$link` that is not a lone string holding a CID.
    #[error("invalid $link: {0}")]
    InvalidLink(String),
    /// `$bytes` that is not a lone base64 string.
    #[error("invalid $bytes: {0}")]
    InvalidBytes(String),
    /// `$type` present but not a non-empty string.
    #[error("$type must be a non-empty string")]
    InvalidType,
    /// A blob object with a missing or mistyped field.
    #[error("invalid blob: {0}")]
    InvalidBlob(String),
    /// An integer that does not fit the data model's 64 bits.
    #[error("integer out of range: {0}")]
    IntegerOutOfRange(String),
    /// A value that has no JSON form (a float in the data model).
    #[error("value has no JSON form: {0}")]
    Unrepresentable(String),
}

/// Converts a JSON object (a record) to the data model; the top level must be an object.
pub fn record_to_ipld(value: &Value) -> Result<Ipld, JsonError> {
    if !value.is_object() {
        return Err(JsonError::NotAnObject);
    }
    to_ipld(value)
}

/// Converts any JSON value to the data model.
pub fn to_ipld(value: &Value) -> Result<Ipld, JsonError> {
    Ok(match value {
        Value::Null => Ipld::Null,
        Value::Bool(b) => Ipld::Bool(*b),
        Value::Number(n) => Ipld::Integer(integer(n)?),
        Value::String(s) => Ipld::String(s.clone()),
        Value::Array(items) => Ipld::List(items.iter().map(to_ipld).collect::<Result<_, _>>()?),
        Value::Object(map) => object(map)?,
    })
}

fn integer(n: &Number) -> Result<i128, JsonError> {
    if let Some(i) = n.as_i64() {
        return Ok(i128::from(i));
    }
    if n.as_u64().is_some() {
        return Err(JsonError::IntegerOutOfRange(n.to_string()));
    }
    // A float such as `123.0` is an integer written in float syntax: accepted when it is
    // exactly an integer that JavaScript can represent.
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0 => Ok(f as i128),
        _ => Err(JsonError::Float(n.to_string())),
    }
}

fn object(map: &Map<String, Value>) -> Result<Ipld, JsonError> {
    if let Some(link) = map.get("$link") {
        if map.len() != 1 {
            return Err(JsonError::InvalidLink("extra fields beside $link".into()));
        }
        let s = link
            .as_str()
            .ok_or_else(|| JsonError::InvalidLink("not a string".into()))?;
        let cid = crate::cid::parse(s).map_err(|e| JsonError::InvalidLink(e.to_string()))?;
        return Ok(Ipld::Link(cid));
    }
    if let Some(bytes) = map.get("$bytes") {
        if map.len() != 1 {
            return Err(JsonError::InvalidBytes("extra fields beside $bytes".into()));
        }
        let s = bytes
            .as_str()
            .ok_or_else(|| JsonError::InvalidBytes("not a string".into()))?;
        let decoded = STANDARD_NO_PAD
            .decode(s)
            .or_else(|_| STANDARD.decode(s))
            .map_err(|e| JsonError::InvalidBytes(e.to_string()))?;
        return Ok(Ipld::Bytes(decoded));
    }
    if let Some(ty) = map.get("$type") {
        match ty.as_str() {
            Some("blob") => check_blob(map)?,
            Some(s) if !s.is_empty() => {}
            _ => return Err(JsonError::InvalidType),
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in map {
        out.insert(k.clone(), to_ipld(v)?);
    }
    Ok(Ipld::Map(out))
}

fn check_blob(map: &Map<String, Value>) -> Result<(), JsonError> {
    let link = map
        .get("ref")
        .and_then(Value::as_object)
        .and_then(|r| r.get("$link"))
        .ok_or_else(|| JsonError::InvalidBlob("missing ref.$link".into()))?;
    if !link.is_string() {
        return Err(JsonError::InvalidBlob("ref.$link is not a string".into()));
    }
    if !map.get("mimeType").is_some_and(Value::is_string) {
        return Err(JsonError::InvalidBlob(
            "mimeType missing or not a string".into(),
        ));
    }
    if map
        .get("size")
        .and_then(Value::as_i64)
        .is_none_or(|n| n < 0)
    {
        return Err(JsonError::InvalidBlob(
            "size missing or not a non-negative integer".into(),
        ));
    }
    Ok(())
}

/// Converts data-model values to their JSON form.
pub fn from_ipld(value: &Ipld) -> Result<Value, JsonError> {
    Ok(match value {
        Ipld::Null => Value::Null,
        Ipld::Bool(b) => Value::Bool(*b),
        Ipld::Integer(i) => {
            let i = i64::try_from(*i).map_err(|_| JsonError::IntegerOutOfRange(i.to_string()))?;
            Value::Number(i.into())
        }
        Ipld::Float(f) => return Err(JsonError::Unrepresentable(f.to_string())),
        Ipld::String(s) => Value::String(s.clone()),
        Ipld::Bytes(b) => single("$bytes", Value::String(STANDARD_NO_PAD.encode(b))),
        Ipld::List(items) => Value::Array(items.iter().map(from_ipld).collect::<Result<_, _>>()?),
        Ipld::Map(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), from_ipld(v)?);
            }
            Value::Object(out)
        }
        Ipld::Link(cid) => single("$link", Value::String(cid.to_string())),
    })
}

fn single(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Value::Object(map)
}
