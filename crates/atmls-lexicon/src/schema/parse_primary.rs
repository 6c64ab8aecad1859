//! Reading the primary definitions (record, endpoints, subscription, permission set).

use std::collections::BTreeMap;

use serde_json::Value;

use super::parse::{Obj, Result, fail, field, object};
use crate::schema::SchemaErrorKind as Kind;
use crate::schema::types::*;
use crate::syntax::{Language, Nsid, RecordKey};

pub(super) fn record(obj: &Obj<'_>, base: &Nsid) -> Result<RecordDef> {
    obj.allow("record", &["type", "description", "key", "record"])?;
    let raw_key = obj.str_req("key")?;
    let key = match raw_key {
        "tid" => RecordKeyType::Tid,
        "nsid" => RecordKeyType::Nsid,
        "any" => RecordKeyType::Any,
        other => match other.strip_prefix("literal:").map(RecordKey::new) {
            Some(Ok(k)) => RecordKeyType::Literal(k),
            _ => return fail(obj.at("key"), Kind::BadRecordKeyType(other.to_owned())),
        },
    };
    let schema = obj.req("record", obj.map.get("record"))?;
    let path = obj.at("record");
    let inner = Obj::new(schema, &path)?;
    match inner.str_req("type")? {
        "object" => {}
        ty => {
            return fail(
                path.as_str(),
                Kind::TypeNotAllowed {
                    ty: ty.to_owned(),
                    expected: "object",
                },
            );
        }
    }
    Ok(RecordDef {
        description: obj.string("description")?,
        key,
        record: object(&inner, base)?,
    })
}

fn params(obj: &Obj<'_>, base: &Nsid) -> Result<Option<ParamsSchema>> {
    let Some(value) = obj.map.get("parameters") else {
        return Ok(None);
    };
    let path = obj.at("parameters");
    let p = Obj::new(value, &path)?;
    match p.str_req("type")? {
        "params" => {}
        ty => {
            return fail(
                path.as_str(),
                Kind::TypeNotAllowed {
                    ty: ty.to_owned(),
                    expected: "params",
                },
            );
        }
    }
    p.allow("params", &["type", "description", "required", "properties"])?;
    let mut properties = BTreeMap::new();
    if let Some(props) = p.map.get("properties") {
        let props_path = p.at("properties");
        let props = Obj::new(props, &props_path)?;
        for (name, v) in props.map {
            let at = props.at(name);
            let schema = field(v, &at, base)?;
            let scalar = |f: &FieldSchema| {
                matches!(
                    f,
                    FieldSchema::Boolean(_) | FieldSchema::Integer(_) | FieldSchema::String(_)
                )
            };
            let ok = match &schema {
                FieldSchema::Array(a) => scalar(&a.items),
                other => scalar(other),
            };
            if !ok {
                let ty = schema.type_name().to_owned();
                let expected = "boolean, integer, string, or an array of those";
                return fail(at, Kind::TypeNotAllowed { ty, expected });
            }
            properties.insert(name.clone(), schema);
        }
    }
    let required = p.strings("required")?.unwrap_or_default();
    if let Some((i, name)) = required
        .iter()
        .enumerate()
        .find(|(_, n)| !properties.contains_key(*n))
    {
        let at = format!("{}[{i}]", p.at("required"));
        return fail(
            at,
            Kind::NotAProperty {
                name: name.clone(),
                list: "required",
            },
        );
    }
    Ok(Some(ParamsSchema {
        description: p.string("description")?,
        properties,
        required,
    }))
}

fn body(obj: &Obj<'_>, key: &str, base: &Nsid) -> Result<Option<Body>> {
    let Some(value) = obj.map.get(key) else {
        return Ok(None);
    };
    let path = obj.at(key);
    let b = Obj::new(value, &path)?;
    b.allow(key, &["description", "encoding", "schema"])?;
    let encoding = b.str_req("encoding")?.to_owned();
    let schema = match b.map.get("schema") {
        None => None,
        Some(v) => {
            let at = b.at("schema");
            let schema = field(v, &at, base)?;
            if !matches!(
                schema,
                FieldSchema::Object(_) | FieldSchema::Ref(_) | FieldSchema::Union(_)
            ) {
                let ty = schema.type_name().to_owned();
                return fail(
                    at,
                    Kind::TypeNotAllowed {
                        ty,
                        expected: "object, ref or union",
                    },
                );
            }
            Some(schema)
        }
    };
    Ok(Some(Body {
        description: b.string("description")?,
        encoding,
        schema,
    }))
}

fn errors(obj: &Obj<'_>) -> Result<Vec<ErrorDef>> {
    let Some(value) = obj.map.get("errors") else {
        return Ok(Vec::new());
    };
    let path = obj.at("errors");
    let Some(list) = value.as_array() else {
        return fail(path, Kind::WrongJsonType("an array"));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let e = Obj::new(v, &at)?;
        e.allow("error", &["name", "description"])?;
        let name = e.str_req("name")?;
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return fail(
                e.at("name"),
                Kind::Invalid("error name must be non-empty, with no whitespace".into()),
            );
        }
        out.push(ErrorDef {
            name: name.to_owned(),
            description: e.string("description")?,
        });
    }
    Ok(out)
}

pub(super) fn query(obj: &Obj<'_>, base: &Nsid) -> Result<QueryDef> {
    obj.allow(
        "query",
        &["type", "description", "parameters", "output", "errors"],
    )?;
    Ok(QueryDef {
        description: obj.string("description")?,
        parameters: params(obj, base)?,
        output: body(obj, "output", base)?,
        errors: errors(obj)?,
    })
}

pub(super) fn procedure(obj: &Obj<'_>, base: &Nsid) -> Result<ProcedureDef> {
    obj.allow(
        "procedure",
        &[
            "type",
            "description",
            "parameters",
            "input",
            "output",
            "errors",
        ],
    )?;
    Ok(ProcedureDef {
        description: obj.string("description")?,
        parameters: params(obj, base)?,
        input: body(obj, "input", base)?,
        output: body(obj, "output", base)?,
        errors: errors(obj)?,
    })
}

pub(super) fn subscription(obj: &Obj<'_>, base: &Nsid) -> Result<SubscriptionDef> {
    obj.allow(
        "subscription",
        &["type", "description", "parameters", "message", "errors"],
    )?;
    let message = obj.req("message", obj.map.get("message"))?;
    let path = obj.at("message");
    let m = Obj::new(message, &path)?;
    m.allow("message", &["description", "schema"])?;
    let schema = m.req("schema", m.map.get("schema"))?;
    let at = m.at("schema");
    let schema = match field(schema, &at, base)? {
        FieldSchema::Union(u) => u,
        other => {
            let ty = other.type_name().to_owned();
            return fail(
                at,
                Kind::TypeNotAllowed {
                    ty,
                    expected: "union",
                },
            );
        }
    };
    Ok(SubscriptionDef {
        description: obj.string("description")?,
        parameters: params(obj, base)?,
        message: Message {
            description: m.string("description")?,
            schema,
        },
        errors: errors(obj)?,
    })
}

pub(super) fn permission_set(obj: &Obj<'_>) -> Result<PermissionSetDef> {
    obj.allow(
        "permission-set",
        &[
            "type",
            "description",
            "title",
            "title:lang",
            "detail",
            "detail:lang",
            "permissions",
        ],
    )?;
    let list = obj.opt("permissions", "an array", Value::as_array)?;
    let list = obj.req("permissions", list)?;
    let mut permissions = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let at = format!("{}[{i}]", obj.at("permissions"));
        permissions.push(permission(&Obj::new(v, &at)?)?);
    }
    Ok(PermissionSetDef {
        description: obj.string("description")?,
        title: obj.string("title")?,
        title_lang: lang_map(obj, "title:lang")?,
        detail: obj.string("detail")?,
        detail_lang: lang_map(obj, "detail:lang")?,
        permissions,
    })
}

fn lang_map(obj: &Obj<'_>, key: &str) -> Result<BTreeMap<Language, String>> {
    let Some(value) = obj.map.get(key) else {
        return Ok(BTreeMap::new());
    };
    let path = obj.at(key);
    let map = Obj::new(value, &path)?;
    let mut out = BTreeMap::new();
    for (tag, text) in map.map {
        let Ok(lang) = Language::new(tag.as_str()) else {
            return fail(
                map.at(tag),
                Kind::Invalid(format!("{tag:?} is not a language tag")),
            );
        };
        let Some(text) = text.as_str() else {
            return fail(map.at(tag), Kind::WrongJsonType("a string"));
        };
        out.insert(lang, text.to_owned());
    }
    Ok(out)
}

fn permission(p: &Obj<'_>) -> Result<Permission> {
    match p.str_req("type")? {
        "permission" => {}
        ty => {
            return fail(
                p.path,
                Kind::TypeNotAllowed {
                    ty: ty.to_owned(),
                    expected: "permission",
                },
            );
        }
    }
    let resource = p.str_req("resource")?.to_owned();
    let non_empty_strings = |key: &'static str| -> Result<()> {
        match p.strings(key)? {
            Some(list) if !list.is_empty() => Ok(()),
            Some(_) => fail(p.at(key), Kind::Invalid(format!("{key} must not be empty"))),
            None => fail(p.path, Kind::MissingField(key)),
        }
    };
    match resource.as_str() {
        "repo" => {
            non_empty_strings("collection")?;
            p.strings("action")?;
        }
        "rpc" => {
            non_empty_strings("lxm")?;
            let aud = p.str("aud")?;
            if aud.is_none() && p.bool("inheritAud")? != Some(true) {
                return fail(
                    p.path,
                    Kind::Invalid("rpc permission needs aud or inheritAud: true".into()),
                );
            }
        }
        _ => {}
    }
    let mut fields = p.map.clone();
    fields.remove("type");
    fields.remove("resource");
    Ok(Permission { resource, fields })
}
