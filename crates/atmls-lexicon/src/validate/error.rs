//! Errors of loading a catalog and of validating data.

use std::path::PathBuf;

use thiserror::Error;

use crate::schema::{SchemaError, StringFormat};
use crate::syntax::Nsid;

/// A set of Lexicon documents could not be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not a valid Lexicon document.
    #[error("{}: {source}", file.display())]
    InFile {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        source: SchemaError,
    },
    /// A document is invalid in the context of the whole set (e.g. a dangling reference).
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Two documents have the same `id`.
    #[error("lexicon {0} is defined more than once")]
    DuplicateId(Nsid),
}

impl CatalogError {
    /// The schema error behind this error, if it is one.
    pub fn schema_error(&self) -> Option<&SchemaError> {
        match self {
            CatalogError::InFile { source, .. } | CatalogError::Schema(source) => Some(source),
            _ => None,
        }
    }
}

/// Data does not match its Lexicon schema; [`ValidationError::path`] says where.
///
/// The message reads `<path>: <problem>`, e.g. `record/text: must not be longer than 3000
/// graphemes`. Paths start at `record`, `params`, `input`, `output` or `message` and name
/// object fields and array positions separated by `/`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {kind}")]
pub struct ValidationError {
    path: String,
    kind: ValidationErrorKind,
}

impl ValidationError {
    pub(crate) fn new(path: impl Into<String>, kind: ValidationErrorKind) -> Self {
        ValidationError {
            path: path.into(),
            kind,
        }
    }

    /// Where in the data, e.g. `record/embed/images/0/alt`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn kind(&self) -> &ValidationErrorKind {
        &self.kind
    }
}

/// What is wrong with data at a [`ValidationError::path`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValidationErrorKind {
    /// The catalog has no document with this NSID (or no such definition).
    #[error("no lexicon definition {0:?} is loaded")]
    UnknownLexicon(String),
    /// The definition is of another kind than the operation needs.
    #[error("{nsid} is a {found} definition, not a {expected}")]
    WrongDefinition {
        /// The definition.
        nsid: String,
        /// What the operation needs, e.g. `record`.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// The endpoint declares no such body (`input` or `output`).
    #[error("{0} declares no {1}")]
    NoBody(String, &'static str),
    /// A required field is absent.
    #[error("required field is missing")]
    MissingRequired,
    /// `null` where the field is not nullable.
    #[error("must not be null")]
    Null,
    /// The value has the wrong data model type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The expected type.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A floating-point number; the atproto data model has only integers.
    #[error("floats are not allowed in the atproto data model")]
    Float,
    /// An integer outside the signed 64-bit range.
    #[error("integer does not fit in 64 bits")]
    IntegerRange,
    /// Shorter than the minimum.
    #[error("must not be shorter than {min} {unit}")]
    TooShort {
        /// The minimum.
        min: u64,
        /// `bytes`, `graphemes` or `elements`.
        unit: &'static str,
    },
    /// Longer than the maximum.
    #[error("must not be longer than {max} {unit}")]
    TooLong {
        /// The maximum.
        max: u64,
        /// `bytes`, `graphemes` or `elements`.
        unit: &'static str,
    },
    /// An integer below `minimum`.
    #[error("must be at least {0}")]
    TooSmall(i64),
    /// An integer above `maximum`.
    #[error("must be at most {0}")]
    TooLarge(i64),
    /// Not one of the closed `enum` values (listed).
    #[error("must be one of {0}")]
    NotInEnum(String),
    /// Not the `const` value.
    #[error("must be {0}")]
    NotConst(String),
    /// A string that does not have its `format`.
    #[error("not a valid {format}: {reason}")]
    BadFormat {
        /// The format.
        format: StringFormat,
        /// Why.
        reason: String,
    },
    /// A malformed `{"$bytes": …}` value.
    #[error("invalid bytes: {0}")]
    BadBytes(String),
    /// A malformed `{"$link": …}` value.
    #[error("invalid cid-link: {0}")]
    BadLink(String),
    /// A malformed blob.
    #[error("invalid blob: {0}")]
    BadBlob(String),
    /// A blob larger than `maxSize`.
    #[error("blob is {size} bytes, more than the maximum of {max}")]
    BlobTooLarge {
        /// The blob's size.
        size: u64,
        /// `maxSize`.
        max: u64,
    },
    /// A blob whose MIME type `accept` does not allow.
    #[error("blob MIME type {0:?} is not accepted")]
    MimeNotAccepted(String),
    /// `$type` is absent where it is required (records, union variants).
    #[error("$type is required")]
    MissingType,
    /// `$type` is not the expected type.
    #[error("$type {found:?} must be {expected:?}")]
    TypeMismatch {
        /// The expected `$type`.
        expected: String,
        /// The `$type` found.
        found: String,
    },
    /// `$type` is not a variant of a closed union.
    #[error("$type {0:?} is not one of the variants of this closed union")]
    NotInUnion(String),
    /// `$type` is not a string of the form `nsid` or `nsid#name` (and not `nsid#main`).
    #[error("$type {0:?} is malformed")]
    BadTypeName(String),
    /// A record key that the record's `key` type does not allow.
    #[error("record key {key:?} is not allowed: {reason}")]
    BadRecordKey {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A query parameter string that does not decode as its type.
    #[error("cannot read {0:?} as {1}")]
    BadParam(String, &'static str),
    /// Data nested deeper than the validator follows.
    #[error("data is nested too deeply")]
    TooDeep,
}
