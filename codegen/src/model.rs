//! A minimal model of lexicon documents: only what the emitter needs.
//!
//! Codegen keeps its own small reader instead of depending on `atmls-lexicon`, whose
//! generated half is codegen's output: a broken `src/gen/` must never stop codegen from
//! rebuilding it. Full validation of documents is `atmls-lexicon`'s job; this reader only
//! refuses what it cannot turn into Rust.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

/// A failure to read a lexicon document, naming the document and the JSON path.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ModelError {
    /// `nsid#def.path` or a file name.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

fn err(location: &str, message: impl Into<String>) -> ModelError {
    ModelError {
        location: location.to_string(),
        message: message.into(),
    }
}

/// One lexicon document.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// The NSID.
    pub id: String,
    /// Document description.
    pub description: Option<String>,
    /// Definitions by name (sorted).
    pub defs: BTreeMap<String, Def>,
    /// The document's JSON text as read from its file, embedded in the generated module.
    pub source: Option<String>,
}

/// A named definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Def {
    /// A repo record (only as `main`).
    Record {
        /// Description of the record type.
        description: Option<String>,
        /// The record's object schema.
        object: Object,
    },
    /// An XRPC query, procedure or subscription (only as `main`).
    Method(Box<Method>),
    /// A named object.
    Object(Object),
    /// A token: a named string constant.
    Token {
        /// Description.
        description: Option<String>,
    },
    /// Any other named type (string, integer, array, ...).
    Type {
        /// Description.
        description: Option<String>,
        /// The type.
        ty: Type,
    },
}

/// The three kinds of XRPC method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// HTTP GET.
    Query,
    /// HTTP POST.
    Procedure,
    /// WebSocket.
    Subscription,
}

/// An XRPC method definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    /// Which kind.
    pub kind: MethodKind,
    /// Description.
    pub description: Option<String>,
    /// Query parameters.
    pub parameters: Option<Object>,
    /// Request body schema (procedures).
    pub input: Option<Body>,
    /// Response body schema.
    pub output: Option<Body>,
    /// Subscription message schema.
    pub message: Option<Type>,
    /// Named errors.
    pub errors: Vec<ErrorDef>,
}

/// A request or response body.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// MIME type.
    pub encoding: String,
    /// Schema, when the body is JSON described by the lexicon.
    pub schema: Option<Type>,
}

/// A named XRPC error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDef {
    /// The error name (`InvalidSwap`).
    pub name: String,
    /// Description.
    pub description: Option<String>,
}

/// An object schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Description.
    pub description: Option<String>,
    /// Required property names.
    pub required: Vec<String>,
    /// Nullable property names.
    pub nullable: Vec<String>,
    /// Properties by name (sorted).
    pub properties: BTreeMap<String, Property>,
    /// Property names in the order the document declares them.
    pub declared: Vec<String>,
}

/// One property of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// Description.
    pub description: Option<String>,
    /// Its type.
    pub ty: Type,
}

/// A field type.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// `boolean`
    Boolean,
    /// `integer`
    Integer,
    /// `string`, with its `format` if any.
    String(Option<String>),
    /// `bytes`
    Bytes,
    /// `cid-link`
    CidLink,
    /// `blob`
    Blob,
    /// `unknown`
    Unknown,
    /// `array` of items.
    Array(Box<Type>),
    /// `ref` to another definition.
    Ref(String),
    /// `union` of refs; `closed` unions reject unknown `$type`s.
    Union {
        /// The referenced definitions.
        refs: Vec<String>,
        /// Whether the union is closed.
        closed: bool,
    },
    /// An inline object (bodies and messages).
    Object(Object),
}

/// Reads every `*.json` file under `dir` (recursively), sorted by NSID.
pub fn read_dir(dir: &Path) -> Result<Vec<Doc>, ModelError> {
    let mut files = Vec::new();
    collect_json(dir, &mut files).map_err(|e| {
        err(
            &dir.display().to_string(),
            format!("cannot read directory: {e}"),
        )
    })?;
    let mut docs = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let text =
            std::fs::read_to_string(&file).map_err(|e| err(&name, format!("cannot read: {e}")))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| err(&name, format!("invalid JSON: {e}")))?;
        let mut doc = parse_doc(&value).map_err(|e| err(&name, e.to_string()))?;
        doc.source = Some(text);
        docs.push(doc);
    }
    docs.sort_by(|a, b| a.id.cmp(&b.id));
    for pair in docs.windows(2) {
        if pair[0].id == pair[1].id {
            return Err(err(&pair[0].id, "defined by more than one file"));
        }
    }
    Ok(docs)
}

fn collect_json(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses one lexicon document from JSON.
pub fn parse_doc(value: &Value) -> Result<Doc, ModelError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err("$", "a lexicon document is a JSON object"))?;
    if obj.get("lexicon").and_then(Value::as_i64) != Some(1) {
        return Err(err("$", "\"lexicon\" must be 1"));
    }
    let id = str_field(obj, "id", "$")?.ok_or_else(|| err("$", "\"id\" is required"))?;
    if !looks_like_nsid(&id) {
        return Err(err("$.id", format!("not an NSID: {id:?}")));
    }
    let description = str_field(obj, "description", &id)?;
    let defs_value = obj
        .get("defs")
        .and_then(Value::as_object)
        .ok_or_else(|| err(&id, "\"defs\" must be an object"))?;
    let mut defs = BTreeMap::new();
    for (name, def) in defs_value {
        let loc = format!("{id}#{name}");
        defs.insert(name.clone(), parse_def(def, &loc, name == "main")?);
    }
    Ok(Doc {
        id,
        description,
        defs,
        source: None,
    })
}

fn looks_like_nsid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 63
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && parts
            .last()
            .is_some_and(|name| name.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn str_field(obj: &Map<String, Value>, key: &str, loc: &str) -> Result<Option<String>, ModelError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(err(loc, format!("\"{key}\" must be a string"))),
    }
}

fn type_name<'a>(obj: &'a Map<String, Value>, loc: &str) -> Result<&'a str, ModelError> {
    obj.get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| err(loc, "\"type\" is required"))
}

fn parse_def(value: &Value, loc: &str, is_main: bool) -> Result<Def, ModelError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err(loc, "a definition is a JSON object"))?;
    let description = str_field(obj, "description", loc)?;
    let ty = type_name(obj, loc)?;
    let primary = matches!(ty, "record" | "query" | "procedure" | "subscription");
    if primary && !is_main {
        return Err(err(loc, format!("a {ty} definition must be named main")));
    }
    match ty {
        "record" => {
            let record = obj
                .get("record")
                .ok_or_else(|| err(loc, "record needs \"record\""))?;
            let object = parse_object(record, &format!("{loc}.record"))?;
            Ok(Def::Record {
                description,
                object,
            })
        }
        "query" | "procedure" | "subscription" => {
            let kind = match ty {
                "query" => MethodKind::Query,
                "procedure" => MethodKind::Procedure,
                _ => MethodKind::Subscription,
            };
            parse_method(obj, kind, description, loc).map(|m| Def::Method(Box::new(m)))
        }
        "object" => parse_object(value, loc).map(Def::Object),
        "token" => Ok(Def::Token { description }),
        "permission-set" => Ok(Def::Token { description }),
        _ => Ok(Def::Type {
            description,
            ty: parse_type(value, loc)?,
        }),
    }
}

fn parse_method(
    obj: &Map<String, Value>,
    kind: MethodKind,
    description: Option<String>,
    loc: &str,
) -> Result<Method, ModelError> {
    let parameters = match obj.get("parameters") {
        Some(p) => Some(parse_params(p, &format!("{loc}.parameters"))?),
        None => None,
    };
    let input = match obj.get("input") {
        Some(b) if kind == MethodKind::Procedure => Some(parse_body(b, &format!("{loc}.input"))?),
        Some(_) => return Err(err(loc, "only procedures have an input")),
        None => None,
    };
    let output = match obj.get("output") {
        Some(b) if kind != MethodKind::Subscription => {
            Some(parse_body(b, &format!("{loc}.output"))?)
        }
        Some(_) => return Err(err(loc, "subscriptions have a message, not an output")),
        None => None,
    };
    let message = match obj.get("message") {
        Some(m) if kind == MethodKind::Subscription => {
            let mloc = format!("{loc}.message");
            let schema = m
                .as_object()
                .and_then(|o| o.get("schema"))
                .ok_or_else(|| err(&mloc, "message needs a schema"))?;
            Some(parse_type(schema, &format!("{mloc}.schema"))?)
        }
        Some(_) => return Err(err(loc, "only subscriptions have a message")),
        None => None,
    };
    let mut errors = Vec::new();
    if let Some(list) = obj.get("errors") {
        let list = list
            .as_array()
            .ok_or_else(|| err(loc, "\"errors\" must be an array"))?;
        for (i, e) in list.iter().enumerate() {
            let eloc = format!("{loc}.errors[{i}]");
            let e = e
                .as_object()
                .ok_or_else(|| err(&eloc, "an error is an object"))?;
            let name =
                str_field(e, "name", &eloc)?.ok_or_else(|| err(&eloc, "\"name\" is required"))?;
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(err(
                    &eloc,
                    format!("error name must be alphanumeric: {name:?}"),
                ));
            }
            errors.push(ErrorDef {
                name,
                description: str_field(e, "description", &eloc)?,
            });
        }
    }
    Ok(Method {
        kind,
        description,
        parameters,
        input,
        output,
        message,
        errors,
    })
}

fn parse_params(value: &Value, loc: &str) -> Result<Object, ModelError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err(loc, "parameters must be an object"))?;
    if type_name(obj, loc)? != "params" {
        return Err(err(loc, "parameters must have type \"params\""));
    }
    let object = parse_object_fields(obj, loc)?;
    for (name, prop) in &object.properties {
        let ok = match &prop.ty {
            Type::Array(item) => matches!(**item, Type::Boolean | Type::Integer | Type::String(_)),
            t => matches!(
                t,
                Type::Boolean | Type::Integer | Type::String(_) | Type::Unknown
            ),
        };
        if !ok {
            return Err(err(
                &format!("{loc}.properties.{name}"),
                "not allowed in params",
            ));
        }
    }
    Ok(object)
}

fn parse_body(value: &Value, loc: &str) -> Result<Body, ModelError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err(loc, "a body is an object"))?;
    let encoding =
        str_field(obj, "encoding", loc)?.ok_or_else(|| err(loc, "\"encoding\" is required"))?;
    let schema = match obj.get("schema") {
        Some(s) => Some(parse_type(s, &format!("{loc}.schema"))?),
        None => None,
    };
    Ok(Body { encoding, schema })
}

fn parse_object(value: &Value, loc: &str) -> Result<Object, ModelError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err(loc, "an object schema is a JSON object"))?;
    if type_name(obj, loc)? != "object" {
        return Err(err(loc, "expected type \"object\""));
    }
    parse_object_fields(obj, loc)
}

fn parse_object_fields(obj: &Map<String, Value>, loc: &str) -> Result<Object, ModelError> {
    let names = |key: &str| -> Result<Vec<String>, ModelError> {
        match obj.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| err(loc, format!("\"{key}\" must list strings")))
                })
                .collect(),
            Some(_) => Err(err(loc, format!("\"{key}\" must be an array"))),
        }
    };
    let required = names("required")?;
    let nullable = names("nullable")?;
    let mut properties = BTreeMap::new();
    let mut declared = Vec::new();
    if let Some(props) = obj.get("properties") {
        let props = props
            .as_object()
            .ok_or_else(|| err(loc, "\"properties\" must be an object"))?;
        for (name, prop) in props {
            let ploc = format!("{loc}.properties.{name}");
            let pobj = prop
                .as_object()
                .ok_or_else(|| err(&ploc, "a property is an object"))?;
            let description = str_field(pobj, "description", &ploc)?;
            declared.push(name.clone());
            properties.insert(
                name.clone(),
                Property {
                    description,
                    ty: parse_type(prop, &ploc)?,
                },
            );
        }
    }
    for name in required.iter().chain(&nullable) {
        if !properties.contains_key(name) {
            return Err(err(loc, format!("{name:?} is listed but not a property")));
        }
    }
    Ok(Object {
        description: str_field(obj, "description", loc)?,
        required,
        nullable,
        properties,
        declared,
    })
}

fn parse_type(value: &Value, loc: &str) -> Result<Type, ModelError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err(loc, "a type is a JSON object"))?;
    Ok(match type_name(obj, loc)? {
        "boolean" => Type::Boolean,
        "integer" => Type::Integer,
        "string" => Type::String(str_field(obj, "format", loc)?),
        "bytes" => Type::Bytes,
        "cid-link" => Type::CidLink,
        "blob" => Type::Blob,
        "unknown" => Type::Unknown,
        "array" => {
            let items = obj
                .get("items")
                .ok_or_else(|| err(loc, "array needs \"items\""))?;
            Type::Array(Box::new(parse_type(items, &format!("{loc}.items"))?))
        }
        "ref" => {
            Type::Ref(str_field(obj, "ref", loc)?.ok_or_else(|| err(loc, "ref needs \"ref\""))?)
        }
        "union" => {
            let refs = obj
                .get("refs")
                .and_then(Value::as_array)
                .ok_or_else(|| err(loc, "union needs \"refs\""))?
                .iter()
                .map(|r| {
                    r.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| err(loc, "refs are strings"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let closed = obj.get("closed").and_then(Value::as_bool).unwrap_or(false);
            Type::Union { refs, closed }
        }
        "object" => Type::Object(parse_object_fields(obj, loc)?),
        other => return Err(err(loc, format!("unknown type {other:?}"))),
    })
}
