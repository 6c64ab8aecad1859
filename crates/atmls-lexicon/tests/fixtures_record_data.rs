//! The atproto interop record data fixtures (`tests/fixtures/atproto-interop-tests/lexicon/
//! record-data-{valid,invalid}.json`), validated against the documents of `catalog/`.
//!
//! Valid cases must pass both record and record-key validation. Invalid cases must be
//! refused; and because some of them also lack the required `integer` field, every
//! invalid case is checked a second time with `integer` supplied, so that the refusal is
//! known to come from what the case is about, not only from the missing field.

use std::path::PathBuf;

use atmls_lexicon::schema::LexiconDoc;
use atmls_lexicon::syntax::{Nsid, RecordKey};
use atmls_lexicon::validate::{Catalog, ValidationError};
use serde_json::{Value, json};

fn lexicon_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/atproto-interop-tests/lexicon")
}

fn catalog() -> Catalog {
    let mut docs: Vec<LexiconDoc> = [
        "permission-set",
        "procedure",
        "query",
        "record",
        "subscription",
    ]
    .iter()
    .map(|name| {
        let path = lexicon_dir().join(format!("catalog/{name}.json"));
        let text = std::fs::read_to_string(&path).expect("read catalog doc");
        LexiconDoc::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
    .collect();
    // `procedure.json` refers to this document, which the fixtures do not include.
    docs.push(
        LexiconDoc::from_value(&json!({
            "lexicon": 1,
            "id": "app.bsky.actor.defs",
            "defs": { "preferences": { "type": "array", "items": { "type": "union", "refs": [] } } }
        }))
        .expect("stand-in"),
    );
    Catalog::from_docs(docs).unwrap_or_else(|e| panic!("{e}"))
}

struct Case {
    name: String,
    rkey: String,
    data: Value,
}

fn cases(file: &str) -> Vec<Case> {
    let path = lexicon_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let list: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(!list.is_empty(), "{file} has no cases");
    list.into_iter()
        .map(|c| Case {
            name: c["name"].as_str().expect("name").to_owned(),
            rkey: c["rkey"].as_str().expect("rkey").to_owned(),
            data: c["data"].clone(),
        })
        .collect()
}

fn validate(catalog: &Catalog, case: &Case, data: &Value) -> Result<(), String> {
    let nsid: Nsid = data["$type"]
        .as_str()
        .ok_or("no $type")?
        .parse()
        .map_err(|e| format!("{e}"))?;
    let rkey: RecordKey = case.rkey.parse().map_err(|e| format!("rkey: {e}"))?;
    catalog
        .validate_record_key(&nsid, &rkey)
        .map_err(|e: ValidationError| e.to_string())?;
    catalog
        .validate_record(&nsid, data)
        .map_err(|e| e.to_string())
}

fn assert_none(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn record_data_valid() {
    let catalog = catalog();
    let mut failures = Vec::new();
    for case in cases("record-data-valid.json") {
        if let Err(e) = validate(&catalog, &case, &case.data) {
            failures.push(format!("{:?}: rejected: {e}", case.name));
        }
    }
    assert_none(failures);
}

#[test]
fn record_data_invalid() {
    let catalog = catalog();
    let mut failures = Vec::new();
    for case in cases("record-data-invalid.json") {
        if validate(&catalog, &case, &case.data).is_ok() {
            failures.push(format!("{:?}: accepted", case.name));
        }
        if case.name == "missing required field" {
            continue;
        }
        let mut with_required = case.data.clone();
        with_required
            .as_object_mut()
            .expect("record object")
            .entry("integer")
            .or_insert(json!(1));
        if validate(&catalog, &case, &with_required).is_ok() {
            failures.push(format!(
                "{:?}: accepted once \"integer\" is supplied",
                case.name
            ));
        }
    }
    assert_none(failures);
}

/// Each invalid case is refused at the field it is about (a regression guard on paths).
#[test]
fn record_data_invalid_paths() {
    let catalog = catalog();
    let mut failures = Vec::new();
    for case in cases("record-data-invalid.json") {
        let mut data = case.data.clone();
        if case.name != "missing required field" {
            data.as_object_mut()
                .expect("record object")
                .entry("integer")
                .or_insert(json!(1));
        }
        let Err(msg) = validate(&catalog, &case, &data) else {
            continue;
        };
        // The field the case sets, other than `$type` and `integer`.
        let field = case
            .data
            .as_object()
            .and_then(|m| m.keys().find(|k| *k != "$type" && *k != "integer"));
        let expected = match field {
            Some(f) => format!("record/{f}"),
            None => "record/integer".to_owned(),
        };
        if !msg.starts_with(&expected) {
            failures.push(format!(
                "{:?}: error {msg:?} is not under {expected}",
                case.name
            ));
        }
    }
    assert_none(failures);
}
