//! Reading a Lexicon document from JSON, checking it on the way.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::parse_primary as primary;
use super::types::*;
use super::{LexiconDoc, Reference, SchemaError, SchemaErrorKind as Kind};
use crate::syntax::Nsid;

pub(super) type Result<T> = std::result::Result<T, SchemaError>;

const PRIMARY: &[&str] = &[
    "record",
    "query",
    "procedure",
    "subscription",
    "permission-set",
];
const NOT_DATA: &[&str] = &[
    "record",
    "query",
    "procedure",
    "subscription",
    "permission-set",
    "token",
    "params",
    "permission",
];

pub(super) fn fail<T>(path: impl Into<String>, kind: Kind) -> Result<T> {
    Err(SchemaError::new(path, kind))
}

/// A JSON object being read at `path`.
pub(super) struct Obj<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) path: &'a str,
}

impl<'a> Obj<'a> {
    pub(super) fn new(value: &'a Value, path: &'a str) -> Result<Self> {
        match value.as_object() {
            Some(map) => Ok(Obj { map, path }),
            None => fail(path, Kind::WrongJsonType("an object")),
        }
    }

    pub(super) fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    /// Refuses any field not in `keys`, naming `ty` as the type that lacks it.
    pub(super) fn allow(&self, ty: &str, keys: &[&str]) -> Result<()> {
        match self.map.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => fail(
                self.at(k),
                Kind::UnexpectedField {
                    field: k.clone(),
                    ty: ty.to_owned(),
                },
            ),
            None => Ok(()),
        }
    }

    pub(super) fn opt<T>(
        &self,
        key: &str,
        expected: &'static str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => match read(v) {
                Some(t) => Ok(Some(t)),
                None => fail(self.at(key), Kind::WrongJsonType(expected)),
            },
        }
    }

    pub(super) fn req<T>(&self, key: &'static str, got: Option<T>) -> Result<T> {
        match got {
            Some(t) => Ok(t),
            None => fail(self.path, Kind::MissingField(key)),
        }
    }

    pub(super) fn str(&self, key: &str) -> Result<Option<&'a str>> {
        self.opt(key, "a string", Value::as_str)
    }

    pub(super) fn string(&self, key: &str) -> Result<Option<String>> {
        Ok(self.str(key)?.map(str::to_owned))
    }

    pub(super) fn str_req(&self, key: &'static str) -> Result<&'a str> {
        let got = self.str(key)?;
        self.req(key, got)
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.opt(key, "a boolean", Value::as_bool)
    }

    pub(super) fn int(&self, key: &str) -> Result<Option<i64>> {
        self.opt(key, "an integer", Value::as_i64)
    }

    pub(super) fn count(&self, key: &str) -> Result<Option<u64>> {
        self.opt(key, "a non-negative integer", Value::as_u64)
    }

    pub(super) fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        self.opt(key, "an array of strings", |v| {
            v.as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
    }

    pub(super) fn ints(&self, key: &str) -> Result<Option<Vec<i64>>> {
        self.opt(key, "an array of integers", |v| {
            v.as_array()?.iter().map(Value::as_i64).collect()
        })
    }
}

/// Reads a whole document.
pub(super) fn document(value: &Value) -> Result<LexiconDoc> {
    let doc = Obj::new(value, "(document)")?;
    match value.get("lexicon") {
        None => return fail("lexicon", Kind::MissingField("lexicon")),
        Some(v) if v.as_u64() == Some(super::LEXICON_VERSION) => {}
        Some(Value::Number(_)) => return fail("lexicon", Kind::UnsupportedVersion),
        Some(_) => return fail("lexicon", Kind::WrongJsonType("the integer 1")),
    }
    let id = match value.get("id") {
        None => return fail("id", Kind::MissingField("id")),
        Some(Value::String(s)) => Nsid::new(s.as_str()).map_err(|source| {
            SchemaError::new(
                "id",
                Kind::InvalidNsid {
                    value: s.clone(),
                    source,
                },
            )
        })?,
        Some(_) => return fail("id", Kind::WrongJsonType("a string")),
    };
    let allowed = ["$type", "lexicon", "id", "revision", "description", "defs"];
    if let Some(k) = doc.map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return fail(
            k.as_str(),
            Kind::UnexpectedField {
                field: k.clone(),
                ty: "lexicon document".into(),
            },
        );
    }
    let revision = doc
        .count("revision")
        .map_err(|e| SchemaError::new("revision", e.kind().clone()))?;
    let description = doc
        .string("description")
        .map_err(|e| SchemaError::new("description", e.kind().clone()))?;
    let defs_value = value
        .get("defs")
        .ok_or_else(|| SchemaError::new("defs", Kind::MissingField("defs")))?;
    let defs_map = defs_value
        .as_object()
        .ok_or_else(|| SchemaError::new("defs", Kind::WrongJsonType("an object")))?;
    if defs_map.is_empty() {
        return fail("defs", Kind::NoDefs);
    }
    let mut defs = BTreeMap::new();
    for (name, v) in defs_map {
        if name.is_empty() || name.contains('#') {
            return fail(format!("defs.{name}"), Kind::BadDefName(name.clone()));
        }
        let path = format!("{id}#{name}");
        defs.insert(name.clone(), def(name, v, &path, &id)?);
    }
    Ok(LexiconDoc {
        id,
        revision,
        description,
        defs,
    })
}

fn def(name: &str, value: &Value, path: &str, base: &Nsid) -> Result<Def> {
    let obj = Obj::new(value, path)?;
    let ty = obj.str_req("type")?;
    if PRIMARY.contains(&ty) && name != "main" {
        return fail(path, Kind::PrimaryNotMain(ty.to_owned()));
    }
    Ok(match ty {
        "record" => Def::Record(Box::new(primary::record(&obj, base)?)),
        "query" => Def::Query(Box::new(primary::query(&obj, base)?)),
        "procedure" => Def::Procedure(Box::new(primary::procedure(&obj, base)?)),
        "subscription" => Def::Subscription(Box::new(primary::subscription(&obj, base)?)),
        "permission-set" => Def::PermissionSet(Box::new(primary::permission_set(&obj)?)),
        "token" => {
            obj.allow(ty, &["type", "description"])?;
            Def::Token(TokenDef {
                description: obj.string("description")?,
            })
        }
        "ref" | "union" | "unknown" | "params" | "permission" => {
            return fail(path, Kind::NotADef(ty.to_owned()));
        }
        _ => Def::Field(field(value, path, base)?),
    })
}

/// Reads a data schema (anything that can be a property, array item or named data type).
pub(super) fn field(value: &Value, path: &str, base: &Nsid) -> Result<FieldSchema> {
    let obj = Obj::new(value, path)?;
    let ty = obj.str_req("type")?;
    let description = obj.string("description")?;
    Ok(match ty {
        "boolean" => {
            obj.allow(ty, &["type", "description", "default", "const"])?;
            let s = BooleanSchema {
                description,
                default: obj.bool("default")?,
                const_value: obj.bool("const")?,
            };
            if s.default.is_some() && s.const_value.is_some() {
                return fail(
                    path,
                    Kind::Invalid("const and default are mutually exclusive".into()),
                );
            }
            FieldSchema::Boolean(s)
        }
        "integer" => FieldSchema::Integer(integer(&obj, description)?),
        "string" => FieldSchema::String(string(&obj, description)?),
        "bytes" => {
            obj.allow(ty, &["type", "description", "minLength", "maxLength"])?;
            let (min_length, max_length) = (obj.count("minLength")?, obj.count("maxLength")?);
            ordered(path, "minLength", min_length, "maxLength", max_length)?;
            FieldSchema::Bytes(BytesSchema {
                description,
                min_length,
                max_length,
            })
        }
        "cid-link" => {
            obj.allow(ty, &["type", "description"])?;
            FieldSchema::CidLink(CidLinkSchema { description })
        }
        "blob" => {
            obj.allow(ty, &["type", "description", "accept", "maxSize"])?;
            let accept = obj.strings("accept")?;
            for (i, pattern) in accept.iter().flatten().enumerate() {
                if !is_mime_pattern(pattern) {
                    let msg = format!("{pattern:?} is not a MIME type or pattern like image/*");
                    return fail(format!("{}[{i}]", obj.at("accept")), Kind::Invalid(msg));
                }
            }
            FieldSchema::Blob(BlobSchema {
                description,
                accept,
                max_size: obj.count("maxSize")?,
            })
        }
        "array" => {
            obj.allow(
                ty,
                &["type", "description", "items", "minLength", "maxLength"],
            )?;
            let items = obj.req("items", obj.map.get("items"))?;
            let items = Box::new(field(items, &obj.at("items"), base)?);
            let (min_length, max_length) = (obj.count("minLength")?, obj.count("maxLength")?);
            ordered(path, "minLength", min_length, "maxLength", max_length)?;
            FieldSchema::Array(ArraySchema {
                description,
                items,
                min_length,
                max_length,
            })
        }
        "object" => FieldSchema::Object(object(&obj, base)?),
        "ref" => {
            obj.allow(ty, &["type", "description", "ref"])?;
            let raw = obj.str_req("ref")?;
            let target = reference(raw, &obj.at("ref"), base)?;
            FieldSchema::Ref(RefSchema {
                description,
                target,
            })
        }
        "union" => FieldSchema::Union(union(&obj, base)?),
        "unknown" => {
            obj.allow(ty, &["type", "description"])?;
            FieldSchema::Unknown(UnknownSchema { description })
        }
        t if NOT_DATA.contains(&t) => {
            return fail(
                path,
                Kind::TypeNotAllowed {
                    ty: t.to_owned(),
                    expected: "a data type",
                },
            );
        }
        other => return fail(path, Kind::UnknownType(other.to_owned())),
    })
}

fn ordered(
    path: &str,
    lo_name: &str,
    lo: Option<u64>,
    hi_name: &str,
    hi: Option<u64>,
) -> Result<()> {
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo > hi => fail(
            path,
            Kind::Invalid(format!("{lo_name} ({lo}) is greater than {hi_name} ({hi})")),
        ),
        _ => Ok(()),
    }
}

fn integer(obj: &Obj<'_>, description: Option<String>) -> Result<IntegerSchema> {
    obj.allow(
        "integer",
        &[
            "type",
            "description",
            "minimum",
            "maximum",
            "enum",
            "default",
            "const",
        ],
    )?;
    let s = IntegerSchema {
        description,
        minimum: obj.int("minimum")?,
        maximum: obj.int("maximum")?,
        enum_values: obj.ints("enum")?,
        default: obj.int("default")?,
        const_value: obj.int("const")?,
    };
    if let (Some(lo), Some(hi)) = (s.minimum, s.maximum)
        && lo > hi
    {
        return fail(
            obj.path,
            Kind::Invalid(format!("minimum ({lo}) is greater than maximum ({hi})")),
        );
    }
    if s.default.is_some() && s.const_value.is_some() {
        return fail(
            obj.path,
            Kind::Invalid("const and default are mutually exclusive".into()),
        );
    }
    if let Some(d) = s.default {
        let in_range = s.minimum.is_none_or(|m| d >= m) && s.maximum.is_none_or(|m| d <= m);
        let in_enum = s.enum_values.as_ref().is_none_or(|e| e.contains(&d));
        if !in_range || !in_enum {
            return fail(
                obj.at("default"),
                Kind::Invalid(format!("default {d} is not an allowed value")),
            );
        }
    }
    Ok(s)
}

fn string(obj: &Obj<'_>, description: Option<String>) -> Result<StringSchema> {
    obj.allow(
        "string",
        &[
            "type",
            "description",
            "format",
            "maxLength",
            "minLength",
            "maxGraphemes",
            "minGraphemes",
            "knownValues",
            "enum",
            "default",
            "const",
        ],
    )?;
    let format = match obj.str("format")? {
        None => None,
        Some(name) => match StringFormat::from_name(name) {
            Some(f) => Some(f),
            None => return fail(obj.at("format"), Kind::UnknownFormat(name.to_owned())),
        },
    };
    let s = StringSchema {
        description,
        format,
        min_length: obj.count("minLength")?,
        max_length: obj.count("maxLength")?,
        min_graphemes: obj.count("minGraphemes")?,
        max_graphemes: obj.count("maxGraphemes")?,
        known_values: obj.strings("knownValues")?,
        enum_values: obj.strings("enum")?,
        default: obj.string("default")?,
        const_value: obj.string("const")?,
    };
    ordered(
        obj.path,
        "minLength",
        s.min_length,
        "maxLength",
        s.max_length,
    )?;
    ordered(
        obj.path,
        "minGraphemes",
        s.min_graphemes,
        "maxGraphemes",
        s.max_graphemes,
    )?;
    if s.default.is_some() && s.const_value.is_some() {
        return fail(
            obj.path,
            Kind::Invalid("const and default are mutually exclusive".into()),
        );
    }
    if let (Some(d), Some(e)) = (&s.default, &s.enum_values)
        && !e.contains(d)
    {
        return fail(
            obj.at("default"),
            Kind::Invalid(format!("default {d:?} is not in enum")),
        );
    }
    Ok(s)
}

pub(super) fn object(obj: &Obj<'_>, base: &Nsid) -> Result<ObjectSchema> {
    obj.allow(
        "object",
        &["type", "description", "properties", "required", "nullable"],
    )?;
    let props = obj.req("properties", obj.map.get("properties"))?;
    let props_path = obj.at("properties");
    let props = Obj::new(props, &props_path)?;
    let mut properties = BTreeMap::new();
    for (name, v) in props.map {
        properties.insert(name.clone(), field(v, &props.at(name), base)?);
    }
    let required = obj.strings("required")?.unwrap_or_default();
    let nullable = obj.strings("nullable")?.unwrap_or_default();
    listed_properties(obj, "required", &required, &properties)?;
    listed_properties(obj, "nullable", &nullable, &properties)?;
    Ok(ObjectSchema {
        description: obj.string("description")?,
        properties,
        required,
        nullable,
    })
}

fn listed_properties(
    obj: &Obj<'_>,
    list: &'static str,
    names: &[String],
    properties: &BTreeMap<String, FieldSchema>,
) -> Result<()> {
    match names
        .iter()
        .enumerate()
        .find(|(_, n)| !properties.contains_key(*n))
    {
        Some((i, name)) => fail(
            format!("{}[{i}]", obj.at(list)),
            Kind::NotAProperty {
                name: name.clone(),
                list,
            },
        ),
        None => Ok(()),
    }
}

fn reference(raw: &str, path: &str, base: &Nsid) -> Result<Reference> {
    Reference::parse(raw, base)
        .ok_or_else(|| SchemaError::new(path, Kind::BadReference(raw.to_owned())))
}

fn union(obj: &Obj<'_>, base: &Nsid) -> Result<UnionSchema> {
    obj.allow("union", &["type", "description", "refs", "closed"])?;
    let raw = obj.strings("refs")?;
    let raw = obj.req("refs", raw)?;
    let refs_path = obj.at("refs");
    let refs = raw
        .iter()
        .enumerate()
        .map(|(i, r)| reference(r, &format!("{refs_path}[{i}]"), base))
        .collect::<Result<Vec<_>>>()?;
    let closed = obj.bool("closed")?.unwrap_or(false);
    if closed && refs.is_empty() {
        return fail(
            obj.path,
            Kind::Invalid("a closed union must have at least one ref".into()),
        );
    }
    Ok(UnionSchema {
        description: obj.string("description")?,
        refs,
        closed,
    })
}

fn is_mime_pattern(p: &str) -> bool {
    let Some((ty, sub)) = p.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_graphic() && !matches!(c, b'/' | b'*'))
    };
    (ty == "*" && sub == "*") || (token(ty) && (sub == "*" || token(sub)))
}
