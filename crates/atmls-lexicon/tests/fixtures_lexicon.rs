//! The atproto interop Lexicon schema fixtures (`tests/fixtures/atproto-interop-tests/
//! lexicon/`): `lexicon-valid.json` must load, `lexicon-invalid.json` must be refused, and
//! the documents of `catalog/` must load as a set once the one document they refer to but
//! do not include (`app.bsky.actor.defs`) is supplied.

use std::path::PathBuf;

use atmls_lexicon::schema::{LexiconDoc, SchemaErrorKind};
use atmls_lexicon::validate::{Catalog, CatalogError};
use serde_json::{Value, json};

fn lexicon_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/atproto-interop-tests/lexicon")
}

/// `(name, lexicon)` for every case in a fixture file.
fn cases(file: &str) -> Vec<(String, Value)> {
    let path = lexicon_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(!list.is_empty(), "{file} has no cases");
    list.into_iter()
        .map(|c| {
            (
                c["name"].as_str().expect("case name").to_owned(),
                c["lexicon"].clone(),
            )
        })
        .collect()
}

fn assert_none(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Loads one document alone, as parse and then as a one-document catalog.
fn load(lexicon: &Value) -> Result<Catalog, String> {
    let doc = LexiconDoc::from_value(lexicon).map_err(|e| e.to_string())?;
    Catalog::from_docs([doc]).map_err(|e| e.to_string())
}

#[test]
fn lexicon_valid() {
    let mut failures = Vec::new();
    for (name, lexicon) in cases("lexicon-valid.json") {
        if let Err(e) = load(&lexicon) {
            failures.push(format!("{name:?}: rejected: {e}"));
        }
    }
    assert_none(failures);
}

#[test]
fn lexicon_invalid() {
    let mut failures = Vec::new();
    for (name, lexicon) in cases("lexicon-invalid.json") {
        if load(&lexicon).is_ok() {
            failures.push(format!("{name:?}: accepted"));
        }
    }
    assert_none(failures);
}

/// The catalog documents, read from disk, plus a stand-in for `app.bsky.actor.defs`.
fn catalog_docs() -> Vec<LexiconDoc> {
    let dir = lexicon_dir().join("catalog");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("catalog dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 5, "expected the five catalog documents");
    let mut docs: Vec<LexiconDoc> = paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("read catalog doc");
            LexiconDoc::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect();
    docs.push(stand_in_actor_defs());
    docs
}

/// `procedure.json` refers to `app.bsky.actor.defs#preferences`, which the fixtures do not
/// include; this minimal stand-in has the same shape as the real definition (an array of
/// an open union).
pub fn stand_in_actor_defs() -> LexiconDoc {
    LexiconDoc::from_value(&json!({
        "lexicon": 1,
        "id": "app.bsky.actor.defs",
        "defs": {
            "preferences": { "type": "array", "items": { "type": "union", "refs": [] } }
        }
    }))
    .expect("stand-in document is valid")
}

#[test]
fn catalog_loads_with_its_one_outside_reference_supplied() {
    let catalog = Catalog::from_docs(catalog_docs()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(catalog.len(), 6);
}

#[test]
fn catalog_dir_alone_has_exactly_the_dangling_preferences_ref() {
    let err =
        Catalog::load_dir(lexicon_dir().join("catalog")).expect_err("dangling ref must be refused");
    let schema_err = match &err {
        CatalogError::Schema(e) => e,
        other => panic!("unexpected error: {other}"),
    };
    assert_eq!(
        schema_err.path(),
        "example.lexicon.procedure#main.input.schema.properties.preferences"
    );
    assert_eq!(
        schema_err.kind(),
        &SchemaErrorKind::UnresolvedRef("app.bsky.actor.defs#preferences".into())
    );
}
