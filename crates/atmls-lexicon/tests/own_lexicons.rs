//! Our own lexicons, checked with our validator: every document loads with every ref
//! resolved, and the example records in `tests/lexicon-examples/` behave as their names say
//! (`valid-*` accepted, `invalid-*` rejected). The same examples are checked by the official
//! JavaScript tooling in `tests/lexicon-js/`.

use std::path::{Path, PathBuf};

use atmls_lexicon::schema::Reference;
use atmls_lexicon::syntax::Nsid;
use atmls_lexicon::validate::Catalog;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn catalog() -> Catalog {
    Catalog::load_dir(root().join("lexicons")).expect("our lexicons load")
}

fn check(catalog: &Catalog, nsid: &Nsid, value: &Value) -> Result<(), String> {
    let is_record = catalog
        .doc(nsid)
        .and_then(|d| d.main())
        .is_some_and(|def| matches!(def, atmls_lexicon::schema::Def::Record(_)));
    if is_record {
        catalog
            .validate_record(nsid, value)
            .map_err(|e| e.to_string())
    } else {
        let target = Reference::new(nsid.clone(), "main");
        catalog
            .validate_value(&target, value)
            .map_err(|e| e.to_string())
    }
}

#[test]
fn every_example_behaves_as_its_name_says() {
    let catalog = catalog();
    let examples = root().join("tests/lexicon-examples");
    let mut failures = Vec::new();
    let mut counts = (0, 0);
    let mut dirs: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        let nsid: Nsid = dir.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_str().unwrap().to_string();
            let value: Value =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let result = check(&catalog, &nsid, &value);
            if name.starts_with("valid-") {
                counts.0 += 1;
                if let Err(e) = result {
                    failures.push(format!("{nsid}/{name}: rejected: {e}"));
                }
            } else if name.starts_with("invalid-") {
                counts.1 += 1;
                if result.is_ok() {
                    failures.push(format!("{nsid}/{name}: accepted"));
                }
            }
        }
    }
    assert!(
        counts.0 >= 10 && counts.1 >= 15,
        "too few examples found: {counts:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_examples_fail_at_the_field_their_name_names() {
    let catalog = catalog();
    let cases = [
        (
            "chat.mls.keyPackage",
            "invalid-missing-keyPackage",
            "keyPackage",
        ),
        (
            "chat.mls.keyPackage",
            "invalid-keyPackageRef-too-short",
            "record/keyPackageRef",
        ),
        (
            "chat.mls.keyPackage",
            "invalid-ciphersuite-out-of-range",
            "record/ciphersuite",
        ),
        (
            "chat.mls.keyPackage",
            "invalid-inbox-service-not-a-did",
            "record/inbox/service",
        ),
        (
            "chat.mls.keyPackage",
            "invalid-mailbox-id-length",
            "record/inbox/mailbox",
        ),
        (
            "chat.mls.declaration",
            "invalid-ciphersuites-empty",
            "record/ciphersuites",
        ),
        (
            "chat.mls.declaration",
            "invalid-ciphersuite-float",
            "record/ciphersuites",
        ),
        (
            "chat.mls.content",
            "invalid-reaction-two-graphemes",
            "value/body/value",
        ),
        (
            "chat.mls.content",
            "invalid-attachment-digest-length",
            "value/body/digest",
        ),
    ];
    for (nsid, file, expected) in cases {
        let path = root().join(format!("tests/lexicon-examples/{nsid}/{file}.json"));
        let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let err = check(&catalog, &nsid.parse().unwrap(), &value).unwrap_err();
        assert!(
            err.contains(expected),
            "{nsid}/{file}: {err:?} does not name {expected:?}"
        );
    }
}

#[test]
fn content_type_must_match_when_present() {
    let catalog = catalog();
    let target = Reference::new("chat.mls.content".parse().unwrap(), "main");
    let mut msg: Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("tests/lexicon-examples/chat.mls.content/valid-text.json"),
        )
        .unwrap(),
    )
    .unwrap();
    msg["$type"] = "chat.mls.declaration".into();
    assert!(catalog.validate_value(&target, &msg).is_err());
}
