//! Reading XRPC query-string parameters into JSON values by their schema.

use serde_json::{Map, Value};

use super::ValidationError;
use super::ValidationErrorKind as Kind;
use super::data_model::fail;
use super::path::DataPath;
use crate::schema::{FieldSchema, ParamsSchema};

pub(super) fn from_query<'q>(
    schema: Option<&ParamsSchema>,
    pairs: impl IntoIterator<Item = (&'q str, &'q str)>,
    root: &DataPath<'_>,
) -> Result<Map<String, Value>, ValidationError> {
    let mut out = Map::new();
    for (name, raw) in pairs {
        let at = root.key(name);
        match schema.and_then(|s| s.properties.get(name)) {
            Some(FieldSchema::Array(a)) => {
                let item = scalar(&a.items, raw, &at)?;
                let slot = out
                    .entry(name.to_owned())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = slot {
                    items.push(item);
                }
            }
            Some(field) => {
                out.insert(name.to_owned(), scalar(field, raw, &at)?);
            }
            None => {
                out.insert(name.to_owned(), Value::String(raw.to_owned()));
            }
        }
    }
    Ok(out)
}

fn scalar(field: &FieldSchema, raw: &str, at: &DataPath<'_>) -> Result<Value, ValidationError> {
    match field {
        FieldSchema::Boolean(_) => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => fail(at, Kind::BadParam(raw.to_owned(), "a boolean")),
        },
        FieldSchema::Integer(_) => match raw.parse::<i64>() {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => fail(at, Kind::BadParam(raw.to_owned(), "an integer")),
        },
        _ => Ok(Value::String(raw.to_owned())),
    }
}
