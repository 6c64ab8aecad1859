//! The definition and field types of Lexicon v1.

use std::collections::BTreeMap;
use std::fmt;

use crate::syntax::{Language, RecordKey};

use super::Reference;

/// A named definition in a document's `defs`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Def {
    /// `record` (only as `main`).
    Record(Box<RecordDef>),
    /// `query` (only as `main`).
    Query(Box<QueryDef>),
    /// `procedure` (only as `main`).
    Procedure(Box<ProcedureDef>),
    /// `subscription` (only as `main`).
    Subscription(Box<SubscriptionDef>),
    /// `permission-set` (only as `main`).
    PermissionSet(Box<PermissionSetDef>),
    /// `token`.
    Token(TokenDef),
    /// A data type: never `ref`, `union` or `unknown`, which cannot be named definitions.
    Field(FieldSchema),
}

impl Def {
    /// The Lexicon `type` name, e.g. `record` or `string`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Def::Record(_) => "record",
            Def::Query(_) => "query",
            Def::Procedure(_) => "procedure",
            Def::Subscription(_) => "subscription",
            Def::PermissionSet(_) => "permission-set",
            Def::Token(_) => "token",
            Def::Field(f) => f.type_name(),
        }
    }
}

/// A schema for one data value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldSchema {
    /// `boolean`.
    Boolean(BooleanSchema),
    /// `integer`.
    Integer(IntegerSchema),
    /// `string`.
    String(StringSchema),
    /// `bytes`.
    Bytes(BytesSchema),
    /// `cid-link`.
    CidLink(CidLinkSchema),
    /// `blob`.
    Blob(BlobSchema),
    /// `array`.
    Array(ArraySchema),
    /// `object`.
    Object(ObjectSchema),
    /// `ref`.
    Ref(RefSchema),
    /// `union`.
    Union(UnionSchema),
    /// `unknown`.
    Unknown(UnknownSchema),
}

impl FieldSchema {
    /// The Lexicon `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldSchema::Boolean(_) => "boolean",
            FieldSchema::Integer(_) => "integer",
            FieldSchema::String(_) => "string",
            FieldSchema::Bytes(_) => "bytes",
            FieldSchema::CidLink(_) => "cid-link",
            FieldSchema::Blob(_) => "blob",
            FieldSchema::Array(_) => "array",
            FieldSchema::Object(_) => "object",
            FieldSchema::Ref(_) => "ref",
            FieldSchema::Union(_) => "union",
            FieldSchema::Unknown(_) => "unknown",
        }
    }
}

/// `boolean`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BooleanSchema {
    /// Description.
    pub description: Option<String>,
    /// Value assumed when absent.
    pub default: Option<bool>,
    /// The only allowed value.
    pub const_value: Option<bool>,
}

/// `integer` (64-bit signed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegerSchema {
    /// Description.
    pub description: Option<String>,
    /// Smallest allowed value.
    pub minimum: Option<i64>,
    /// Largest allowed value.
    pub maximum: Option<i64>,
    /// Closed set of allowed values.
    pub enum_values: Option<Vec<i64>>,
    /// Value assumed when absent.
    pub default: Option<i64>,
    /// The only allowed value.
    pub const_value: Option<i64>,
}

/// `string`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringSchema {
    /// Description.
    pub description: Option<String>,
    /// Required string format.
    pub format: Option<StringFormat>,
    /// Smallest length in UTF-8 bytes.
    pub min_length: Option<u64>,
    /// Largest length in UTF-8 bytes.
    pub max_length: Option<u64>,
    /// Smallest length in grapheme clusters.
    pub min_graphemes: Option<u64>,
    /// Largest length in grapheme clusters.
    pub max_graphemes: Option<u64>,
    /// Suggested values; other values are allowed.
    pub known_values: Option<Vec<String>>,
    /// Closed set of allowed values.
    pub enum_values: Option<Vec<String>>,
    /// Value assumed when absent.
    pub default: Option<String>,
    /// The only allowed value.
    pub const_value: Option<String>,
}

/// The Lexicon string formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StringFormat {
    /// `at-identifier`: a DID or a handle.
    AtIdentifier,
    /// `at-uri`.
    AtUri,
    /// `cid`.
    Cid,
    /// `datetime`.
    Datetime,
    /// `did`.
    Did,
    /// `handle`.
    Handle,
    /// `nsid`.
    Nsid,
    /// `tid`.
    Tid,
    /// `record-key`.
    RecordKey,
    /// `uri`.
    Uri,
    /// `language`.
    Language,
}

impl StringFormat {
    /// Every format.
    pub const ALL: [StringFormat; 11] = [
        StringFormat::AtIdentifier,
        StringFormat::AtUri,
        StringFormat::Cid,
        StringFormat::Datetime,
        StringFormat::Did,
        StringFormat::Handle,
        StringFormat::Nsid,
        StringFormat::Tid,
        StringFormat::RecordKey,
        StringFormat::Uri,
        StringFormat::Language,
    ];

    /// The name used in `format`.
    pub fn as_str(self) -> &'static str {
        match self {
            StringFormat::AtIdentifier => "at-identifier",
            StringFormat::AtUri => "at-uri",
            StringFormat::Cid => "cid",
            StringFormat::Datetime => "datetime",
            StringFormat::Did => "did",
            StringFormat::Handle => "handle",
            StringFormat::Nsid => "nsid",
            StringFormat::Tid => "tid",
            StringFormat::RecordKey => "record-key",
            StringFormat::Uri => "uri",
            StringFormat::Language => "language",
        }
    }

    /// The format called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for StringFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `bytes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BytesSchema {
    /// Description.
    pub description: Option<String>,
    /// Smallest size in bytes.
    pub min_length: Option<u64>,
    /// Largest size in bytes.
    pub max_length: Option<u64>,
}

/// `cid-link`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidLinkSchema {
    /// Description.
    pub description: Option<String>,
}

/// `blob`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobSchema {
    /// Description.
    pub description: Option<String>,
    /// Accepted MIME types: `type/subtype`, `type/*` or `*/*`.
    pub accept: Option<Vec<String>>,
    /// Largest size in bytes.
    pub max_size: Option<u64>,
}

/// `array`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArraySchema {
    /// Description.
    pub description: Option<String>,
    /// Schema of every element.
    pub items: Box<FieldSchema>,
    /// Fewest elements.
    pub min_length: Option<u64>,
    /// Most elements.
    pub max_length: Option<u64>,
}

/// `object`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectSchema {
    /// Description.
    pub description: Option<String>,
    /// Fields by name.
    pub properties: BTreeMap<String, FieldSchema>,
    /// Names of fields that must be present (all are in `properties`).
    pub required: Vec<String>,
    /// Names of fields that may be `null` (all are in `properties`).
    pub nullable: Vec<String>,
}

/// `ref`: the schema of another definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSchema {
    /// Description.
    pub description: Option<String>,
    /// The definition referred to.
    pub target: Reference,
}

/// `union`: one of several object or record definitions, told apart by `$type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnionSchema {
    /// Description.
    pub description: Option<String>,
    /// The variants.
    pub refs: Vec<Reference>,
    /// Whether variants outside `refs` are refused (`false`: an open union).
    pub closed: bool,
}

/// `unknown`: any object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnknownSchema {
    /// Description.
    pub description: Option<String>,
}

/// `token`: a named value with no data representation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenDef {
    /// Description.
    pub description: Option<String>,
}

/// `record`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDef {
    /// Description.
    pub description: Option<String>,
    /// Which record keys are allowed.
    pub key: RecordKeyType,
    /// The record's schema.
    pub record: ObjectSchema,
}

/// The record key type of a `record` definition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordKeyType {
    /// `tid`.
    Tid,
    /// `nsid`.
    Nsid,
    /// `any`.
    Any,
    /// `literal:<value>`: exactly this key.
    Literal(RecordKey),
}

/// `params`: the HTTP query parameters of an endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamsSchema {
    /// Description.
    pub description: Option<String>,
    /// Parameters by name: only `boolean`, `integer`, `string`, or an `array` of those.
    pub properties: BTreeMap<String, FieldSchema>,
    /// Names of parameters that must be present.
    pub required: Vec<String>,
}

/// The `input` or `output` body of an endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    /// Description.
    pub description: Option<String>,
    /// MIME type of the body, e.g. `application/json`.
    pub encoding: String,
    /// Schema of a JSON body: an `object`, `ref` or `union`.
    pub schema: Option<FieldSchema>,
}

/// A named error an endpoint may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDef {
    /// The error name (no whitespace).
    pub name: String,
    /// Description.
    pub description: Option<String>,
}

/// `query`: an XRPC HTTP GET endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryDef {
    /// Description.
    pub description: Option<String>,
    /// Query parameters.
    pub parameters: Option<ParamsSchema>,
    /// Response body.
    pub output: Option<Body>,
    /// Errors it may return.
    pub errors: Vec<ErrorDef>,
}

/// `procedure`: an XRPC HTTP POST endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcedureDef {
    /// Description.
    pub description: Option<String>,
    /// Query parameters.
    pub parameters: Option<ParamsSchema>,
    /// Request body.
    pub input: Option<Body>,
    /// Response body.
    pub output: Option<Body>,
    /// Errors it may return.
    pub errors: Vec<ErrorDef>,
}

/// `subscription`: an event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionDef {
    /// Description.
    pub description: Option<String>,
    /// Query parameters.
    pub parameters: Option<ParamsSchema>,
    /// The messages on the stream.
    pub message: Message,
    /// Errors it may return.
    pub errors: Vec<ErrorDef>,
}

/// The messages of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Description.
    pub description: Option<String>,
    /// The message variants.
    pub schema: UnionSchema,
}

/// `permission-set`: a bundle of auth permissions.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionSetDef {
    /// Description.
    pub description: Option<String>,
    /// Short name shown to users.
    pub title: Option<String>,
    /// Translations of `title`.
    pub title_lang: BTreeMap<Language, String>,
    /// Longer description shown to users.
    pub detail: Option<String>,
    /// Translations of `detail`.
    pub detail_lang: BTreeMap<Language, String>,
    /// The permissions.
    pub permissions: Vec<Permission>,
}

/// One `permission` of a permission set.
///
/// Only the shape is checked (`resource` is a string; `repo` has a non-empty `collection`,
/// `rpc` a non-empty `lxm` and `aud` or `inheritAud`); every field is kept as given, since
/// the set of resources and parameters is expected to grow.
#[derive(Debug, Clone, PartialEq)]
pub struct Permission {
    /// The resource type, e.g. `repo` or `rpc`.
    pub resource: String,
    /// Every field except `type` and `resource`.
    pub fields: serde_json::Map<String, serde_json::Value>,
}
