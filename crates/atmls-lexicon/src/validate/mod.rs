//! Run-time validation of atproto data against a set of Lexicon documents.
//!
//! A [`Catalog`] holds documents whose every reference resolves (checked when documents are
//! added) and validates JSON data in the atproto data model: records, XRPC query
//! parameters, request and response bodies, and subscription messages. Failures are a
//! [`ValidationError`] naming the data path, e.g. `record/text: must not be longer than
//! 3000 graphemes`.
//!
//! ```
//! use atmls_lexicon::schema::LexiconDoc;
//! use atmls_lexicon::syntax::Nsid;
//! use atmls_lexicon::validate::Catalog;
//! use serde_json::json;
//!
//! let doc = LexiconDoc::from_value(&json!({
//!     "lexicon": 1,
//!     "id": "com.example.note",
//!     "defs": { "main": {
//!         "type": "record",
//!         "key": "tid",
//!         "record": {
//!             "type": "object",
//!             "required": ["text"],
//!             "properties": { "text": { "type": "string", "maxGraphemes": 5 } }
//!         }
//!     } }
//! }))?;
//! let catalog = Catalog::from_docs([doc])?;
//! let nsid: Nsid = "com.example.note".parse()?;
//!
//! catalog.validate_record(&nsid, &json!({ "$type": "com.example.note", "text": "hi" }))?;
//! let err = catalog
//!     .validate_record(&nsid, &json!({ "$type": "com.example.note", "text": "too long" }))
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "record/text: must not be longer than 5 graphemes");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod data_model;
mod error;
mod load;
mod params;
mod path;
mod value;

pub use error::{CatalogError, ValidationError, ValidationErrorKind};

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::schema::{Body, Def, LexiconDoc, ParamsSchema, RecordKeyType, Reference};
use crate::syntax::{Nsid, RecordKey};
use data_model::fail;
use path::DataPath;
use value::Validator;

/// A set of Lexicon documents with every reference resolved, ready to validate data.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    docs: BTreeMap<Nsid, LexiconDoc>,
}

type Result<T> = std::result::Result<T, ValidationError>;

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// A catalog of `docs`, which may refer to each other.
    pub fn from_docs(
        docs: impl IntoIterator<Item = LexiconDoc>,
    ) -> std::result::Result<Self, CatalogError> {
        let mut catalog = Self::new();
        catalog.add_all(docs)?;
        Ok(catalog)
    }

    /// Adds one document; its references must resolve within the catalog and itself.
    pub fn add(&mut self, doc: LexiconDoc) -> std::result::Result<(), CatalogError> {
        self.add_all([doc])
    }

    /// Adds documents that may refer to each other. Either all are added or, on error,
    /// none.
    pub fn add_all(
        &mut self,
        docs: impl IntoIterator<Item = LexiconDoc>,
    ) -> std::result::Result<(), CatalogError> {
        let mut added = Vec::new();
        for doc in docs {
            if self.docs.contains_key(&doc.id) {
                let id = doc.id.clone();
                self.remove_all(&added);
                return Err(CatalogError::DuplicateId(id));
            }
            added.push(doc.id.clone());
            self.docs.insert(doc.id.clone(), doc);
        }
        let checked = added
            .iter()
            .try_for_each(|id| load::check_references(self, &self.docs[id]));
        if let Err(e) = checked {
            self.remove_all(&added);
            return Err(e.into());
        }
        Ok(())
    }

    fn remove_all(&mut self, ids: &[Nsid]) {
        for id in ids {
            self.docs.remove(id);
        }
    }

    /// The `chat.mls` lexicons compiled into this crate (`generated::LEXICONS`, the
    /// documents the generated types come from), so a binary needs no lexicon files at
    /// run time.
    pub fn embedded() -> std::result::Result<Self, CatalogError> {
        let docs = crate::generated::LEXICONS
            .iter()
            .map(|json| LexiconDoc::from_json(json).map_err(CatalogError::Schema))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Self::from_docs(docs)
    }

    /// Reads every `*.json` file under `dir` (recursively) as a Lexicon document.
    pub fn load_dir(dir: impl AsRef<std::path::Path>) -> std::result::Result<Self, CatalogError> {
        Self::from_docs(load::read_dir(dir.as_ref())?)
    }

    /// The document with this NSID.
    pub fn doc(&self, nsid: &Nsid) -> Option<&LexiconDoc> {
        self.docs.get(nsid)
    }

    /// The definition a reference points to.
    pub fn def(&self, r: &Reference) -> Option<&Def> {
        self.docs.get(r.nsid())?.def(r.name())
    }

    /// Every document, ordered by NSID.
    pub fn docs(&self) -> impl Iterator<Item = &LexiconDoc> {
        self.docs.values()
    }

    /// How many documents there are.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn main(&self, nsid: &Nsid, root: &DataPath<'_>) -> Result<&Def> {
        match self.docs.get(nsid).and_then(LexiconDoc::main) {
            Some(def) => Ok(def),
            None => fail(root, ValidationErrorKind::UnknownLexicon(nsid.to_string())),
        }
    }

    fn wrong_def<T>(
        nsid: &Nsid,
        expected: &'static str,
        found: &Def,
        root: &DataPath<'_>,
    ) -> Result<T> {
        let kind = ValidationErrorKind::WrongDefinition {
            nsid: nsid.to_string(),
            expected,
            found: found.type_name(),
        };
        fail(root, kind)
    }

    /// Validates a record of type `nsid` (whose `main` must be a `record`). The record's
    /// `$type` must be `nsid`.
    pub fn validate_record(&self, nsid: &Nsid, record: &Value) -> Result<()> {
        let root = DataPath::Root("record");
        let Def::Record(def) = self.main(nsid, &root)? else {
            return Self::wrong_def(nsid, "record", self.main(nsid, &root)?, &root);
        };
        value::expect_type(record, nsid.as_str(), &root)?;
        Validator { catalog: self }.object(&def.record, record, &root)
    }

    /// Validates a value against any data definition (`nsid#name`, or `nsid` for `main`),
    /// e.g. a `chat.mls.content` message, which is an object rather than a record. If the
    /// value carries `$type`, it must name that definition.
    pub fn validate_value(&self, target: &Reference, value: &Value) -> Result<()> {
        let root = DataPath::Root("value");
        if value.get("$type").is_some() {
            value::expect_type(value, &target.to_string(), &root)?;
        }
        Validator { catalog: self }.reference(target, value, &root)
    }

    /// Checks that `rkey` is allowed by the `key` type of record `nsid`.
    pub fn validate_record_key(&self, nsid: &Nsid, rkey: &RecordKey) -> Result<()> {
        let root = DataPath::Root("rkey");
        let Def::Record(def) = self.main(nsid, &root)? else {
            return Self::wrong_def(nsid, "record", self.main(nsid, &root)?, &root);
        };
        let reason = match &def.key {
            RecordKeyType::Any => None,
            RecordKeyType::Tid => crate::syntax::Tid::new(rkey.as_str())
                .err()
                .map(|e| e.to_string()),
            RecordKeyType::Nsid => Nsid::new(rkey.as_str()).err().map(|e| e.to_string()),
            RecordKeyType::Literal(k) => (k != rkey).then(|| format!("must be {:?}", k.as_str())),
        };
        match reason {
            None => Ok(()),
            Some(reason) => fail(
                &root,
                ValidationErrorKind::BadRecordKey {
                    key: rkey.to_string(),
                    reason,
                },
            ),
        }
    }

    fn params_schema(&self, nsid: &Nsid, root: &DataPath<'_>) -> Result<Option<&ParamsSchema>> {
        match self.main(nsid, root)? {
            Def::Query(q) => Ok(q.parameters.as_ref()),
            Def::Procedure(p) => Ok(p.parameters.as_ref()),
            Def::Subscription(s) => Ok(s.parameters.as_ref()),
            other => Self::wrong_def(nsid, "query, procedure or subscription", other, root),
        }
    }

    /// Validates the query parameters of endpoint `nsid`, given as JSON values (integers as
    /// numbers, booleans as booleans, repeated parameters as arrays); see
    /// [`Catalog::params_from_query`] to get them from a query string's pairs. Parameters
    /// the schema does not declare are ignored.
    pub fn validate_params(&self, nsid: &Nsid, params: &Map<String, Value>) -> Result<()> {
        let root = DataPath::Root("params");
        let Some(schema) = self.params_schema(nsid, &root)? else {
            return Ok(());
        };
        let validator = Validator { catalog: self };
        for (name, field) in &schema.properties {
            let at = root.key(name);
            match params.get(name) {
                None if schema.required.contains(name) => {
                    return fail(&at, ValidationErrorKind::MissingRequired);
                }
                None => {}
                Some(v) => validator.field(field, v, &at)?,
            }
        }
        Ok(())
    }

    /// Turns decoded query-string pairs into the JSON form [`Catalog::validate_params`]
    /// takes, reading each declared parameter as its schema type (`true`/`false`, decimal
    /// integers, and arrays from repeated names). Undeclared parameters are kept as strings.
    pub fn params_from_query<'q>(
        &self,
        nsid: &Nsid,
        pairs: impl IntoIterator<Item = (&'q str, &'q str)>,
    ) -> Result<Map<String, Value>> {
        let root = DataPath::Root("params");
        let schema = self.params_schema(nsid, &root)?;
        params::from_query(schema, pairs, &root)
    }

    fn body<'c>(
        &'c self,
        nsid: &Nsid,
        which: &'static str,
        root: &DataPath<'_>,
    ) -> Result<&'c Body> {
        let body = match (self.main(nsid, root)?, which) {
            (Def::Procedure(p), "input") => p.input.as_ref(),
            (Def::Procedure(p), _) => p.output.as_ref(),
            (Def::Query(q), "output") => q.output.as_ref(),
            (other, "input") => return Self::wrong_def(nsid, "procedure", other, root),
            (other, _) => return Self::wrong_def(nsid, "query or procedure", other, root),
        };
        match body {
            Some(b) => Ok(b),
            None => fail(root, ValidationErrorKind::NoBody(nsid.to_string(), which)),
        }
    }

    fn validate_body(&self, body: &Body, v: &Value, root: &DataPath<'_>) -> Result<()> {
        match &body.schema {
            Some(schema) => Validator { catalog: self }.field(schema, v, root),
            None => data_model::check(v, root),
        }
    }

    /// Validates the JSON request body of procedure `nsid`.
    pub fn validate_input(&self, nsid: &Nsid, input: &Value) -> Result<()> {
        let root = DataPath::Root("input");
        let body = self.body(nsid, "input", &root)?;
        self.validate_body(body, input, &root)
    }

    /// Validates the JSON response body of query or procedure `nsid`.
    pub fn validate_output(&self, nsid: &Nsid, output: &Value) -> Result<()> {
        let root = DataPath::Root("output");
        let body = self.body(nsid, "output", &root)?;
        self.validate_body(body, output, &root)
    }

    /// Validates one message of subscription `nsid`. The message must carry its variant in
    /// `$type`, either absolute (`com.example.sub#commit`) or, as in event stream frame
    /// headers, relative to the subscription (`#commit`).
    pub fn validate_message(&self, nsid: &Nsid, message: &Value) -> Result<()> {
        let root = DataPath::Root("message");
        match self.main(nsid, &root)? {
            Def::Subscription(s) => {
                Validator { catalog: self }.union(&s.message.schema, message, &root, Some(nsid))
            }
            other => Self::wrong_def(nsid, "subscription", other, &root),
        }
    }
}

#[cfg(test)]
mod tests;
