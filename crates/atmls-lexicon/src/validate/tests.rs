//! Catalog loading and validation of every kind of data, with paths asserted.

use serde_json::{Value, json};

use super::*;
use crate::schema::SchemaErrorKind;

fn doc(v: Value) -> LexiconDoc {
    LexiconDoc::from_value(&v).unwrap_or_else(|e| panic!("{e}"))
}

fn nsid(s: &str) -> Nsid {
    s.parse().unwrap()
}

fn defs() -> LexiconDoc {
    doc(json!({
        "lexicon": 1, "id": "com.example.defs",
        "defs": {
            "view": { "type": "object", "required": ["uri"], "properties": {
                "uri": { "type": "string", "format": "at-uri" },
                "note": { "type": "string", "const": "hi" }
            } },
            "label": { "type": "string", "knownValues": ["a", "b"], "maxLength": 4 },
            "flag": { "type": "token" }
        }
    }))
}

fn catalog() -> Catalog {
    let post = doc(json!({
        "lexicon": 1, "id": "com.example.post",
        "defs": { "main": {
            "type": "record", "key": "tid",
            "record": { "type": "object", "required": ["text", "reply"], "nullable": ["reply"], "properties": {
                "text": { "type": "string", "maxGraphemes": 3 },
                "reply": { "type": "ref", "ref": "com.example.defs#view" },
                "label": { "type": "ref", "ref": "com.example.defs#label" },
                "count": { "type": "integer", "default": 1 },
                "embed": { "type": "union", "refs": ["com.example.defs#view"] },
                "tags": { "type": "array", "items": { "type": "string", "maxLength": 3 } }
            } }
        } }
    }));
    let get = doc(json!({
        "lexicon": 1, "id": "com.example.getThing",
        "defs": { "main": {
            "type": "query",
            "parameters": { "type": "params", "required": ["actor"], "properties": {
                "actor": { "type": "string", "format": "at-identifier" },
                "limit": { "type": "integer", "minimum": 1, "maximum": 100 },
                "ids": { "type": "array", "items": { "type": "integer" } },
                "deep": { "type": "boolean" }
            } },
            "output": { "encoding": "application/json", "schema": { "type": "ref", "ref": "com.example.defs#view" } }
        } }
    }));
    let put = doc(json!({
        "lexicon": 1, "id": "com.example.putThing",
        "defs": { "main": {
            "type": "procedure",
            "input": { "encoding": "application/json", "schema": { "type": "object", "required": ["n"], "properties": {
                "n": { "type": "integer" }
            } } }
        } }
    }));
    let sub = doc(json!({
        "lexicon": 1, "id": "com.example.subscribe",
        "defs": {
            "main": { "type": "subscription", "message": { "schema": { "type": "union", "refs": ["#tick"] } } },
            "tick": { "type": "object", "required": ["seq"], "properties": { "seq": { "type": "integer" } } }
        }
    }));
    Catalog::from_docs([post, get, put, sub, defs()]).unwrap_or_else(|e| panic!("{e}"))
}

fn record_err(record: Value) -> ValidationError {
    catalog()
        .validate_record(&nsid("com.example.post"), &record)
        .expect_err("record must be refused")
}

#[test]
fn dangling_ref_is_refused_with_its_path() {
    let lonely = doc(json!({
        "lexicon": 1, "id": "com.example.lonely",
        "defs": { "main": { "type": "object", "properties": {
            "a": { "type": "ref", "ref": "com.example.missing#thing" }
        } } }
    }));
    let err = Catalog::from_docs([lonely]).unwrap_err();
    let schema = err.schema_error().expect("a schema error");
    assert_eq!(schema.path(), "com.example.lonely#main.properties.a");
    assert_eq!(
        schema.kind(),
        &SchemaErrorKind::UnresolvedRef("com.example.missing#thing".into())
    );
    assert_eq!(
        err.to_string(),
        "com.example.lonely#main.properties.a: reference \"com.example.missing#thing\" does not resolve to a definition"
    );
}

#[test]
fn missing_local_def_is_dangling_too() {
    let d = doc(json!({
        "lexicon": 1, "id": "com.example.local",
        "defs": { "main": { "type": "object", "properties": { "a": { "type": "union", "refs": ["#nope"] } } } }
    }));
    let err = Catalog::from_docs([d]).unwrap_err();
    assert_eq!(
        err.schema_error().unwrap().path(),
        "com.example.local#main.properties.a.refs[0]"
    );
}

#[test]
fn refs_to_tokens_and_union_of_strings_are_refused() {
    let d = doc(json!({
        "lexicon": 1, "id": "com.example.bad",
        "defs": { "main": { "type": "object", "properties": {
            "t": { "type": "ref", "ref": "com.example.defs#flag" }
        } } }
    }));
    let err = Catalog::from_docs([defs(), d]).unwrap_err();
    assert!(
        matches!(err.schema_error().unwrap().kind(), SchemaErrorKind::BadRefTarget { target, .. } if target == "token")
    );
    let d = doc(json!({
        "lexicon": 1, "id": "com.example.bad",
        "defs": { "main": { "type": "object", "properties": {
            "u": { "type": "union", "refs": ["com.example.defs#label"] }
        } } }
    }));
    let err = Catalog::from_docs([defs(), d]).unwrap_err();
    assert_eq!(
        err.schema_error().unwrap().path(),
        "com.example.bad#main.properties.u.refs[0]"
    );
}

#[test]
fn add_is_all_or_nothing() {
    let mut catalog = Catalog::from_docs([defs()]).unwrap();
    let bad = doc(json!({
        "lexicon": 1, "id": "com.example.bad",
        "defs": { "main": { "type": "object", "properties": { "a": { "type": "ref", "ref": "com.example.gone" } } } }
    }));
    let fine = doc(
        json!({ "lexicon": 1, "id": "com.example.fine", "defs": { "n": { "type": "integer" } } }),
    );
    assert!(catalog.add_all([fine, bad]).is_err());
    assert_eq!(catalog.len(), 1);
    assert!(matches!(
        catalog.add(defs()),
        Err(CatalogError::DuplicateId(_))
    ));
}

#[test]
fn valid_record() {
    let c = catalog();
    let ok = json!({
        "$type": "com.example.post", "text": "abc", "reply": null, "label": "zzz",
        "embed": { "$type": "com.example.defs#view", "uri": "at://did:plc:x/com.example.post/3jzfcijpj2z2a" },
        "tags": ["a", "bb"], "extra": { "anything": [1, "two"] }
    });
    c.validate_record(&nsid("com.example.post"), &ok).unwrap();
}

#[test]
fn record_errors_name_the_data_path() {
    let base = || json!({ "$type": "com.example.post", "text": "abc", "reply": null });
    let with = |k: &str, v: Value| {
        let mut r = base();
        r[k] = v;
        r
    };
    let cases = [
        (
            with("text", json!("🇩🇪🇩🇪🇩🇪🇩🇪")),
            "record/text: must not be longer than 3 graphemes",
        ),
        (
            json!({ "$type": "com.example.post", "text": "a" }),
            "record/reply: required field is missing",
        ),
        (
            with("$type", json!("com.example.other")),
            "record/$type: $type \"com.example.other\" must be \"com.example.post\"",
        ),
        (
            json!({ "text": "a", "reply": null }),
            "record/$type: $type is required",
        ),
        (
            with("count", json!(1.5)),
            "record/count: floats are not allowed in the atproto data model",
        ),
        (
            with("extra", json!({ "deep": [0.5] })),
            "record/extra/deep/0: floats are not allowed in the atproto data model",
        ),
        (
            with("label", json!("toolong")),
            "record/label: must not be longer than 4 bytes",
        ),
        (
            with("tags", json!(["ok", "nope"])),
            "record/tags/1: must not be longer than 3 bytes",
        ),
        (
            with("reply", json!({ "uri": "nope" })),
            "record/reply/uri: not a valid at-uri: AT-URI must start with \"at://\"",
        ),
        (
            with("reply", json!({ "uri": "at://a.com", "note": "ho" })),
            "record/reply/note: must be \"hi\"",
        ),
        (
            with("embed", json!({ "$type": "com.example.defs#view" })),
            "record/embed/uri: required field is missing",
        ),
        (
            with("embed", json!({ "$type": "com.example.defs#view#x" })),
            "record/embed/$type: $type \"com.example.defs#view#x\" is malformed",
        ),
        (
            with("embed", json!({ "$type": "com.example.post#main" })),
            "record/embed/$type: $type \"com.example.post#main\" is malformed",
        ),
    ];
    let c = catalog();
    let mut failures = Vec::new();
    for (record, expected) in cases {
        match c.validate_record(&nsid("com.example.post"), &record) {
            Err(e) if e.to_string() == expected => {}
            other => failures.push(format!("expected {expected:?}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn open_union_accepts_unknown_variants_but_checks_the_data_model() {
    let c = catalog();
    let post = nsid("com.example.post");
    let mut r = json!({ "$type": "com.example.post", "text": "a", "reply": null });
    r["embed"] = json!({ "$type": "com.example.future#thing", "n": 1 });
    c.validate_record(&post, &r).unwrap();
    r["embed"] = json!({ "$type": "com.example.future#thing", "n": 1.5 });
    assert_eq!(record_err(r).path(), "record/embed/n");
}

#[test]
fn record_keys() {
    let c = catalog();
    let post = nsid("com.example.post");
    c.validate_record_key(&post, &"3jzfcijpj2z2a".parse().unwrap())
        .unwrap();
    let e = c
        .validate_record_key(&post, &"self".parse().unwrap())
        .unwrap_err();
    assert_eq!(e.path(), "rkey");
}

#[test]
fn wrong_definition_kind() {
    let c = catalog();
    let e = c
        .validate_record(&nsid("com.example.getThing"), &json!({}))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "record: com.example.getThing is a query definition, not a record"
    );
    let e = c
        .validate_record(&nsid("com.example.nothing"), &json!({}))
        .unwrap_err();
    assert_eq!(
        e.kind(),
        &ValidationErrorKind::UnknownLexicon("com.example.nothing".into())
    );
}

#[test]
fn params() {
    let c = catalog();
    let get = nsid("com.example.getThing");
    let pairs = [
        ("actor", "alice.test"),
        ("limit", "5"),
        ("ids", "1"),
        ("ids", "2"),
        ("deep", "true"),
        ("x", "y"),
    ];
    let params = c.params_from_query(&get, pairs).unwrap();
    assert_eq!(params["ids"], json!([1, 2]));
    assert_eq!(params["limit"], json!(5));
    c.validate_params(&get, &params).unwrap();

    let e = c.params_from_query(&get, [("limit", "ten")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "params/limit: cannot read \"ten\" as an integer"
    );
    let params = c.params_from_query(&get, [("limit", "500")]).unwrap();
    assert_eq!(
        c.validate_params(&get, &params).unwrap_err().to_string(),
        "params/actor: required field is missing"
    );
    let params = c
        .params_from_query(&get, [("actor", "alice.test"), ("limit", "500")])
        .unwrap();
    assert_eq!(
        c.validate_params(&get, &params).unwrap_err().to_string(),
        "params/limit: must be at most 100"
    );
}

#[test]
fn bodies() {
    let c = catalog();
    let put = nsid("com.example.putThing");
    c.validate_input(&put, &json!({ "n": 3 })).unwrap();
    assert_eq!(
        c.validate_input(&put, &json!({ "n": "3" }))
            .unwrap_err()
            .path(),
        "input/n"
    );
    assert_eq!(
        c.validate_output(&put, &json!({})).unwrap_err().kind(),
        &ValidationErrorKind::NoBody("com.example.putThing".into(), "output")
    );
    let get = nsid("com.example.getThing");
    c.validate_output(&get, &json!({ "uri": "at://a.com" }))
        .unwrap();
    assert_eq!(
        c.validate_output(&get, &json!({})).unwrap_err().path(),
        "output/uri"
    );
    assert!(matches!(
        c.validate_input(&get, &json!({})).unwrap_err().kind(),
        ValidationErrorKind::WrongDefinition {
            expected: "procedure",
            ..
        }
    ));
}

#[test]
fn messages() {
    let c = catalog();
    let sub = nsid("com.example.subscribe");
    c.validate_message(&sub, &json!({ "$type": "#tick", "seq": 1 }))
        .unwrap();
    c.validate_message(
        &sub,
        &json!({ "$type": "com.example.subscribe#tick", "seq": 2 }),
    )
    .unwrap();
    let e = c
        .validate_message(&sub, &json!({ "$type": "#tick" }))
        .unwrap_err();
    assert_eq!(e.to_string(), "message/seq: required field is missing");
    let e = c.validate_message(&sub, &json!({ "seq": 1 })).unwrap_err();
    assert_eq!(e.path(), "message/$type");
}
