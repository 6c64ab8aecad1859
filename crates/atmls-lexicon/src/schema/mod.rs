//! A typed model of atproto Lexicon v1 documents (<https://atproto.com/specs/lexicon>).
//!
//! [`LexiconDoc`] is read from JSON (with [`LexiconDoc::from_json`], [`LexiconDoc::from_value`]
//! or serde) and checked while it is read: unknown types, fields that do not belong to a
//! type (such as `maxLength` on an `integer`), primary types outside `main`, `required`
//! names missing from `properties`, bad NSIDs and malformed references are all refused
//! with a [`SchemaError`] whose message starts with the JSON path inside the document,
//! e.g. `example.lexicon#main.properties.foo: unknown type "strin"`.
//!
//! Definitions are addressed as `<nsid>#<name>`; fields below a definition are appended
//! with `.`, array positions with `[i]`. Document-level fields are named bare (`id`,
//! `lexicon`, `defs`).
//!
//! A single document cannot tell whether a reference to another document resolves; that is
//! checked when documents are put together in a [`Catalog`](crate::validate::Catalog).

mod error;
mod parse;
mod parse_primary;
mod reference;
mod types;
mod walk;

pub use error::{SchemaError, SchemaErrorKind};
pub use reference::Reference;
pub use types::{
    ArraySchema, BlobSchema, Body, BooleanSchema, BytesSchema, CidLinkSchema, Def, ErrorDef,
    FieldSchema, IntegerSchema, Message, ObjectSchema, ParamsSchema, Permission, PermissionSetDef,
    ProcedureDef, QueryDef, RecordDef, RecordKeyType, RefSchema, StringFormat, StringSchema,
    SubscriptionDef, TokenDef, UnionSchema, UnknownSchema,
};
pub use walk::RefUse;

use std::collections::BTreeMap;

use crate::syntax::Nsid;

/// The only Lexicon language version there is.
pub const LEXICON_VERSION: u64 = 1;

/// One Lexicon document: an NSID and its named definitions.
#[derive(Debug, Clone, PartialEq)]
pub struct LexiconDoc {
    /// The NSID the document defines.
    pub id: Nsid,
    /// Optional revision number of the document.
    pub revision: Option<u64>,
    /// Short overview of the document.
    pub description: Option<String>,
    /// Definitions by name; `main` is the primary one if present.
    pub defs: BTreeMap<String, Def>,
}

impl LexiconDoc {
    /// Reads and checks a document from JSON text.
    pub fn from_json(json: &str) -> Result<Self, SchemaError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| SchemaError::new("(document)", SchemaErrorKind::Json(e.to_string())))?;
        Self::from_value(&value)
    }

    /// Reads and checks a document from a JSON value.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, SchemaError> {
        parse::document(value)
    }

    /// The definition called `name`, if any.
    pub fn def(&self, name: &str) -> Option<&Def> {
        self.defs.get(name)
    }

    /// The `main` definition, if any.
    pub fn main(&self) -> Option<&Def> {
        self.def("main")
    }
}

impl<'de> serde::Deserialize<'de> for LexiconDoc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
        Self::from_value(&value).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
