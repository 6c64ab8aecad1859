//! Document-level rejections, each asserted with its path.

use serde_json::{Value, json};

use super::*;

fn doc_with_field(field: Value) -> Value {
    json!({
        "lexicon": 1,
        "id": "com.example.lexicon",
        "defs": { "main": {
            "type": "object",
            "properties": { "foo": field }
        } }
    })
}

fn err(doc: Value) -> SchemaError {
    LexiconDoc::from_value(&doc).expect_err("document must be refused")
}

#[test]
fn unknown_type_names_the_property() {
    let e = err(doc_with_field(json!({ "type": "strin" })));
    assert_eq!(
        e.to_string(),
        "com.example.lexicon#main.properties.foo: unknown type \"strin\""
    );
    assert_eq!(e.kind(), &SchemaErrorKind::UnknownType("strin".into()));
}

#[test]
fn bad_nsid_in_id() {
    let e =
        err(json!({ "lexicon": 1, "id": "one-two-three", "defs": { "a": { "type": "integer" } } }));
    assert_eq!(e.path(), "id");
    assert!(
        matches!(e.kind(), SchemaErrorKind::InvalidNsid { value, .. } if value == "one-two-three")
    );
}

#[test]
fn string_constraints_on_other_types() {
    for (ty, field) in [
        ("integer", "maxLength"),
        ("boolean", "format"),
        ("bytes", "maxGraphemes"),
        ("array", "knownValues"),
    ] {
        let mut schema = json!({ "type": ty, field: 3 });
        if ty == "array" {
            schema["items"] = json!({ "type": "integer" });
        }
        let e = err(doc_with_field(schema));
        assert_eq!(
            e.path(),
            format!("com.example.lexicon#main.properties.foo.{field}"),
            "{ty}"
        );
        assert_eq!(
            e.kind(),
            &SchemaErrorKind::UnexpectedField {
                field: field.into(),
                ty: ty.into()
            }
        );
    }
    // …while on a string they are fine.
    assert!(
        LexiconDoc::from_value(&doc_with_field(json!({ "type": "string", "maxLength": 3 })))
            .is_ok()
    );
}

#[test]
fn required_must_name_a_property() {
    let e = err(json!({
        "lexicon": 1, "id": "com.example.lexicon",
        "defs": { "main": { "type": "object", "required": ["a", "b"], "properties": { "a": { "type": "integer" } } } }
    }));
    assert_eq!(e.path(), "com.example.lexicon#main.required[1]");
    assert_eq!(
        e.kind(),
        &SchemaErrorKind::NotAProperty {
            name: "b".into(),
            list: "required"
        }
    );
}

#[test]
fn primary_types_only_as_main() {
    let e = err(json!({
        "lexicon": 1, "id": "com.example.lexicon",
        "defs": { "other": { "type": "query" } }
    }));
    assert_eq!(e.path(), "com.example.lexicon#other");
    assert_eq!(e.kind(), &SchemaErrorKind::PrimaryNotMain("query".into()));
}

#[test]
fn nested_paths_through_endpoints() {
    let e = err(json!({
        "lexicon": 1, "id": "com.example.lexicon",
        "defs": { "main": {
            "type": "procedure",
            "input": { "encoding": "application/json", "schema": {
                "type": "object", "properties": { "list": { "type": "array", "items": { "type": "nope" } } }
            } }
        } }
    }));
    assert_eq!(
        e.path(),
        "com.example.lexicon#main.input.schema.properties.list.items"
    );
}

#[test]
fn params_only_take_scalars() {
    let e = err(json!({
        "lexicon": 1, "id": "com.example.lexicon",
        "defs": { "main": {
            "type": "query",
            "parameters": { "type": "params", "properties": { "o": { "type": "object", "properties": {} } } }
        } }
    }));
    assert_eq!(e.path(), "com.example.lexicon#main.parameters.properties.o");
    assert!(matches!(e.kind(), SchemaErrorKind::TypeNotAllowed { ty, .. } if ty == "object"));
}

#[test]
fn contradictions_are_refused() {
    let e = err(doc_with_field(
        json!({ "type": "string", "minLength": 5, "maxLength": 2 }),
    ));
    assert_eq!(e.path(), "com.example.lexicon#main.properties.foo");
    let e = err(doc_with_field(
        json!({ "type": "union", "refs": [], "closed": true }),
    ));
    assert_eq!(e.path(), "com.example.lexicon#main.properties.foo");
    let e = err(doc_with_field(
        json!({ "type": "string", "format": "email" }),
    ));
    assert_eq!(e.path(), "com.example.lexicon#main.properties.foo.format");
    let e = err(doc_with_field(
        json!({ "type": "blob", "accept": ["image/*", "*"] }),
    ));
    assert_eq!(
        e.path(),
        "com.example.lexicon#main.properties.foo.accept[1]"
    );
}

#[test]
fn record_key_types() {
    let record = |key: &str| {
        json!({
            "lexicon": 1, "id": "com.example.lexicon",
            "defs": { "main": { "type": "record", "key": key, "record": { "type": "object", "properties": {} } } }
        })
    };
    for key in ["tid", "nsid", "any", "literal:self"] {
        assert!(LexiconDoc::from_value(&record(key)).is_ok(), "{key}");
    }
    let e = err(record("literal:."));
    assert_eq!(e.path(), "com.example.lexicon#main.key");
}

#[test]
fn references_resolve_local_forms() {
    let doc = LexiconDoc::from_value(&json!({
        "lexicon": 1, "id": "com.example.lexicon",
        "defs": {
            "main": { "type": "object", "properties": {
                "a": { "type": "ref", "ref": "#view" },
                "b": { "type": "union", "refs": ["com.example.other", "com.example.other#thing"] }
            } },
            "view": { "type": "object", "properties": {} }
        }
    }))
    .unwrap();
    let refs: Vec<(String, String)> = doc
        .references()
        .into_iter()
        .map(|(p, r, _)| (p, r.to_string()))
        .collect();
    assert_eq!(
        refs,
        [
            (
                "com.example.lexicon#main.properties.a".to_owned(),
                "com.example.lexicon#view".to_owned()
            ),
            (
                "com.example.lexicon#main.properties.b.refs[0]".to_owned(),
                "com.example.other".to_owned()
            ),
            (
                "com.example.lexicon#main.properties.b.refs[1]".to_owned(),
                "com.example.other#thing".to_owned()
            ),
        ]
    );
}

#[test]
fn serde_reads_documents() {
    let doc: LexiconDoc =
        serde_json::from_value(doc_with_field(json!({ "type": "integer" }))).unwrap();
    assert_eq!(doc.id.as_str(), "com.example.lexicon");
    let e = serde_json::from_value::<LexiconDoc>(doc_with_field(json!({ "type": "strin" })))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("com.example.lexicon#main.properties.foo"),
        "{e}"
    );
}
