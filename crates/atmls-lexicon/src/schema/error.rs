//! Why a Lexicon document was refused.

use thiserror::Error;

use crate::syntax::NsidError;

/// A Lexicon document (or a set of them) is invalid; [`SchemaError::path`] says where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {kind}")]
pub struct SchemaError {
    path: String,
    kind: SchemaErrorKind,
}

impl SchemaError {
    pub(crate) fn new(path: impl Into<String>, kind: SchemaErrorKind) -> Self {
        SchemaError {
            path: path.into(),
            kind,
        }
    }

    /// Where in the document: `<nsid>#<def>.<field>…`, or a bare document field name.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn kind(&self) -> &SchemaErrorKind {
        &self.kind
    }
}

/// What is wrong with a Lexicon document at a [`SchemaError::path`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SchemaErrorKind {
    /// The text is not JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A value has the wrong JSON type.
    #[error("expected {0}")]
    WrongJsonType(&'static str),
    /// A required field is absent.
    #[error("missing required field {0:?}")]
    MissingField(&'static str),
    /// `type` names no Lexicon type.
    #[error("unknown type {0:?}")]
    UnknownType(String),
    /// A field that the type does not have (e.g. `maxLength` on an integer).
    #[error("field {field:?} is not allowed on type {ty:?}")]
    UnexpectedField {
        /// The field.
        field: String,
        /// The type it was found on.
        ty: String,
    },
    /// `lexicon` is not `1`.
    #[error("lexicon version must be 1")]
    UnsupportedVersion,
    /// `id` (or a reference) is not an NSID.
    #[error("{value:?} is not a valid NSID: {source}")]
    InvalidNsid {
        /// The string.
        value: String,
        /// Why.
        source: NsidError,
    },
    /// `defs` is empty.
    #[error("a lexicon must have at least one definition")]
    NoDefs,
    /// A definition name is empty or contains `#`.
    #[error("invalid definition name {0:?}")]
    BadDefName(String),
    /// A primary type (`record`, `query`, …) under a name other than `main`.
    #[error("type {0:?} is only allowed as the main definition")]
    PrimaryNotMain(String),
    /// A type that cannot be a named definition (`ref`, `union`, `unknown`, `params`, …).
    #[error("type {0:?} can not be a named definition")]
    NotADef(String),
    /// A known type in a place that does not allow it.
    #[error("type {ty:?} is not allowed here; expected {expected}")]
    TypeNotAllowed {
        /// The type found.
        ty: String,
        /// What is allowed at this place.
        expected: &'static str,
    },
    /// A name in `required` or `nullable` that is not in `properties`.
    #[error("{name:?} is listed in {list} but is not a property")]
    NotAProperty {
        /// The name.
        name: String,
        /// `required` or `nullable`.
        list: &'static str,
    },
    /// A reference string that is not `#name`, `nsid` or `nsid#name`.
    #[error("invalid reference {0:?}")]
    BadReference(String),
    /// A reference to a definition that no loaded document has.
    #[error("reference {0:?} does not resolve to a definition")]
    UnresolvedRef(String),
    /// A reference to a definition of a type that cannot be referenced from here.
    #[error("reference {reference:?} points to a {target:?} definition, which is not allowed here")]
    BadRefTarget {
        /// The reference.
        reference: String,
        /// The type of the definition it points to.
        target: String,
    },
    /// `format` names no string format.
    #[error("unknown string format {0:?}")]
    UnknownFormat(String),
    /// A record `key` that is not `tid`, `nsid`, `any` or `literal:<record key>`.
    #[error("invalid record key type {0:?}")]
    BadRecordKeyType(String),
    /// Constraints that contradict each other or are malformed.
    #[error("{0}")]
    Invalid(String),
}
