//! Validating a value against a field schema.

use serde_json::Value;
use unicode_segmentation::UnicodeSegmentation;

use super::Catalog;
use super::data_model::{self, MAX_DEPTH, fail, type_name};
use super::error::{ValidationError, ValidationErrorKind as Kind};
use super::path::DataPath;
use crate::schema::{
    BlobSchema, Def, FieldSchema, IntegerSchema, ObjectSchema, Reference, StringFormat,
    StringSchema, UnionSchema,
};
use crate::syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid, Uri,
};

type Result<T> = std::result::Result<T, ValidationError>;

/// Validates values against the schemas of one catalog.
pub(crate) struct Validator<'c> {
    pub(crate) catalog: &'c Catalog,
}

impl Validator<'_> {
    pub(crate) fn field(&self, schema: &FieldSchema, v: &Value, path: &DataPath<'_>) -> Result<()> {
        if path.depth() > MAX_DEPTH {
            return fail(path, Kind::TooDeep);
        }
        match schema {
            FieldSchema::Boolean(s) => {
                let Some(b) = v.as_bool() else {
                    return wrong("a boolean", v, path);
                };
                match s.const_value {
                    Some(c) if c != b => fail(path, Kind::NotConst(c.to_string())),
                    _ => Ok(()),
                }
            }
            FieldSchema::Integer(s) => integer(s, v, path),
            FieldSchema::String(s) => match v.as_str() {
                Some(text) => string(s, text, path),
                None => wrong("a string", v, path),
            },
            FieldSchema::Bytes(s) => {
                let len = data_model::bytes(v, path)?.len() as u64;
                lengths(len, s.min_length, s.max_length, "bytes", path)
            }
            FieldSchema::CidLink(_) => data_model::link(v, path).map(drop),
            FieldSchema::Blob(s) => blob(s, v, path),
            FieldSchema::Array(s) => {
                let Some(items) = v.as_array() else {
                    return wrong("an array", v, path);
                };
                lengths(
                    items.len() as u64,
                    s.min_length,
                    s.max_length,
                    "elements",
                    path,
                )?;
                for (i, item) in items.iter().enumerate() {
                    self.field(&s.items, item, &path.index(i))?;
                }
                Ok(())
            }
            FieldSchema::Object(s) => self.object(s, v, path),
            FieldSchema::Ref(r) => self.reference(&r.target, v, path),
            FieldSchema::Union(u) => self.union(u, v, path, None),
            FieldSchema::Unknown(_) => {
                data_model::plain_object(v, path)?;
                data_model::check(v, path)
            }
        }
    }

    pub(crate) fn object(&self, s: &ObjectSchema, v: &Value, path: &DataPath<'_>) -> Result<()> {
        let map = data_model::plain_object(v, path)?;
        for (name, schema) in &s.properties {
            let at = path.key(name);
            match map.get(name) {
                None if s.required.contains(name) => return fail(&at, Kind::MissingRequired),
                None => {}
                Some(Value::Null) if s.nullable.contains(name) => {}
                Some(Value::Null) => return fail(&at, Kind::Null),
                Some(value) => self.field(schema, value, &at)?,
            }
        }
        for (name, value) in map {
            if !s.properties.contains_key(name) {
                data_model::check(value, &path.key(name))?;
            }
        }
        Ok(())
    }

    pub(crate) fn reference(
        &self,
        target: &Reference,
        v: &Value,
        path: &DataPath<'_>,
    ) -> Result<()> {
        match self.catalog.def(target) {
            Some(Def::Field(f)) => self.field(f, v, path),
            Some(Def::Record(r)) => {
                expect_type(v, &target.to_string(), path)?;
                self.object(&r.record, v, path)
            }
            // The catalog refuses references to anything else when it is loaded.
            Some(other) => fail(
                path,
                Kind::WrongDefinition {
                    nsid: target.to_string(),
                    expected: "data",
                    found: other.type_name(),
                },
            ),
            None => fail(path, Kind::UnknownLexicon(target.to_string())),
        }
    }

    /// Validates a union variant. `local` allows `$type` values of the form `#name`
    /// relative to that document (subscription messages only).
    pub(crate) fn union(
        &self,
        u: &UnionSchema,
        v: &Value,
        path: &DataPath<'_>,
        local: Option<&Nsid>,
    ) -> Result<()> {
        let map = data_model::plain_object(v, path)?;
        let type_path = path.key("$type");
        let Some(raw) = map.get("$type") else {
            return fail(&type_path, Kind::MissingType);
        };
        let Some(raw) = raw.as_str() else {
            return fail(&type_path, Kind::BadTypeName(raw.to_string()));
        };
        let variant = match (raw.strip_prefix('#'), local) {
            (Some(name), Some(base)) if !name.is_empty() => {
                Some(Reference::new(base.clone(), name))
            }
            (Some(_), _) => None,
            (None, _) if raw.ends_with("#main") => None,
            (None, _) => Reference::parse_absolute(raw),
        };
        let Some(variant) = variant else {
            return fail(&type_path, Kind::BadTypeName(raw.to_owned()));
        };
        if !u.refs.contains(&variant) {
            if u.closed {
                return fail(&type_path, Kind::NotInUnion(raw.to_owned()));
            }
            return data_model::check(v, path);
        }
        match self.catalog.def(&variant) {
            Some(Def::Field(FieldSchema::Object(o))) => self.object(o, v, path),
            Some(Def::Record(r)) => self.object(&r.record, v, path),
            Some(other) => fail(
                path,
                Kind::WrongDefinition {
                    nsid: variant.to_string(),
                    expected: "object",
                    found: other.type_name(),
                },
            ),
            None => fail(path, Kind::UnknownLexicon(variant.to_string())),
        }
    }
}

/// Checks that `v` is an object whose `$type` is `expected`.
pub(crate) fn expect_type(v: &Value, expected: &str, path: &DataPath<'_>) -> Result<()> {
    let map = data_model::plain_object(v, path)?;
    let at = path.key("$type");
    match map.get("$type") {
        None => fail(&at, Kind::MissingType),
        Some(Value::String(t)) if t == expected => Ok(()),
        Some(other) => fail(
            &at,
            Kind::TypeMismatch {
                expected: expected.to_owned(),
                found: other
                    .as_str()
                    .map_or_else(|| other.to_string(), str::to_owned),
            },
        ),
    }
}

fn wrong(expected: &'static str, v: &Value, path: &DataPath<'_>) -> Result<()> {
    fail(
        path,
        Kind::WrongType {
            expected,
            found: type_name(v),
        },
    )
}

fn lengths(
    len: u64,
    min: Option<u64>,
    max: Option<u64>,
    unit: &'static str,
    path: &DataPath<'_>,
) -> Result<()> {
    if let Some(min) = min.filter(|m| len < *m) {
        return fail(path, Kind::TooShort { min, unit });
    }
    if let Some(max) = max.filter(|m| len > *m) {
        return fail(path, Kind::TooLong { max, unit });
    }
    Ok(())
}

fn integer(s: &IntegerSchema, v: &Value, path: &DataPath<'_>) -> Result<()> {
    let i = data_model::integer(v, path)?;
    if let Some(c) = s.const_value.filter(|c| *c != i) {
        return fail(path, Kind::NotConst(c.to_string()));
    }
    if let Some(e) = s.enum_values.as_ref().filter(|e| !e.contains(&i)) {
        let list: Vec<String> = e.iter().map(i64::to_string).collect();
        return fail(path, Kind::NotInEnum(list.join(", ")));
    }
    if let Some(min) = s.minimum.filter(|m| i < *m) {
        return fail(path, Kind::TooSmall(min));
    }
    if let Some(max) = s.maximum.filter(|m| i > *m) {
        return fail(path, Kind::TooLarge(max));
    }
    Ok(())
}

fn string(s: &StringSchema, text: &str, path: &DataPath<'_>) -> Result<()> {
    if let Some(c) = s.const_value.as_ref().filter(|c| *c != text) {
        return fail(path, Kind::NotConst(format!("{c:?}")));
    }
    if let Some(e) = s
        .enum_values
        .as_ref()
        .filter(|e| !e.iter().any(|x| x == text))
    {
        let list: Vec<String> = e.iter().map(|x| format!("{x:?}")).collect();
        return fail(path, Kind::NotInEnum(list.join(", ")));
    }
    lengths(text.len() as u64, s.min_length, s.max_length, "bytes", path)?;
    if s.min_graphemes.is_some() || s.max_graphemes.is_some() {
        let count = text.graphemes(true).count() as u64;
        lengths(count, s.min_graphemes, s.max_graphemes, "graphemes", path)?;
    }
    match s.format {
        Some(format) => check_format(format, text)
            .or_else(|reason| fail(path, Kind::BadFormat { format, reason })),
        None => Ok(()),
    }
}

/// Checks `text` against a string format, returning why it does not match.
pub(crate) fn check_format(format: StringFormat, text: &str) -> std::result::Result<(), String> {
    fn ok<T, E: ToString>(r: std::result::Result<T, E>) -> std::result::Result<(), String> {
        r.map(drop).map_err(|e| e.to_string())
    }
    match format {
        StringFormat::AtIdentifier => ok(AtIdentifier::new(text)),
        StringFormat::AtUri => ok(AtUri::new(text)),
        StringFormat::Cid => ok(CidString::new(text)),
        StringFormat::Datetime => ok(Datetime::new(text)),
        StringFormat::Did => ok(Did::new(text)),
        StringFormat::Handle => ok(Handle::new(text)),
        StringFormat::Nsid => ok(Nsid::new(text)),
        StringFormat::Tid => ok(Tid::new(text)),
        StringFormat::RecordKey => ok(RecordKey::new(text)),
        StringFormat::Uri => ok(Uri::new(text)),
        StringFormat::Language => ok(Language::new(text)),
    }
}

fn blob(s: &BlobSchema, v: &Value, path: &DataPath<'_>) -> Result<()> {
    let b = data_model::blob(v, path)?;
    if let Some(max) = s.max_size.filter(|m| b.size > *m) {
        return fail(path, Kind::BlobTooLarge { size: b.size, max });
    }
    if let Some(accept) = &s.accept
        && !accept
            .iter()
            .any(|pattern| mime_matches(pattern, b.mime_type))
    {
        return fail(path, Kind::MimeNotAccepted(b.mime_type.to_owned()));
    }
    Ok(())
}

/// `*/*` matches anything, `image/*` any `image/…`, anything else only itself (MIME types
/// compare case-insensitively).
fn mime_matches(pattern: &str, mime: &str) -> bool {
    if pattern == "*/*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(ty) => mime
            .split_once('/')
            .is_some_and(|(t, sub)| t.eq_ignore_ascii_case(ty) && !sub.is_empty()),
        None => pattern.eq_ignore_ascii_case(mime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_patterns() {
        assert!(mime_matches("image/*", "image/png"));
        assert!(!mime_matches("image/*", "text/plain"));
        assert!(!mime_matches("image/*", "image/"));
        assert!(mime_matches("*/*", "text/plain"));
        assert!(mime_matches("text/plain", "TEXT/plain"));
    }
}
