//! The project's lexicons and the vendored `com.atproto.*` ones load into one catalog, and
//! every method the embedded host will serve can be mounted on a router.

use std::path::PathBuf;

use atmls_xrpc::{Catalog, Nsid, Router, XrpcResponse};
use serde_json::json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn catalog() -> Catalog {
    let mut catalog = Catalog::load_dir(root().join("lexicons")).expect("lexicons/ loads");
    let vendored =
        Catalog::load_dir(root().join("vendor/lexicons")).expect("vendor/lexicons loads");
    catalog
        .add_all(vendored.docs().cloned())
        .expect("both sets load together");
    catalog
}

const HOST_METHODS: [(&str, &str); 20] = [
    ("com.atproto.server.describeServer", "query"),
    ("com.atproto.server.createAccount", "procedure"),
    ("com.atproto.server.createSession", "procedure"),
    ("com.atproto.server.refreshSession", "procedure"),
    ("com.atproto.server.getSession", "query"),
    ("com.atproto.server.deleteSession", "procedure"),
    ("com.atproto.server.getServiceAuth", "query"),
    ("com.atproto.repo.createRecord", "procedure"),
    ("com.atproto.repo.putRecord", "procedure"),
    ("com.atproto.repo.deleteRecord", "procedure"),
    ("com.atproto.repo.applyWrites", "procedure"),
    ("com.atproto.repo.getRecord", "query"),
    ("com.atproto.repo.listRecords", "query"),
    ("com.atproto.repo.describeRepo", "query"),
    ("com.atproto.repo.uploadBlob", "procedure"),
    ("com.atproto.sync.getRecord", "query"),
    ("com.atproto.sync.getRepo", "query"),
    ("com.atproto.sync.getLatestCommit", "query"),
    ("com.atproto.sync.getBlob", "query"),
    ("com.atproto.identity.resolveHandle", "query"),
];

#[test]
fn project_and_vendored_lexicons_load_together() {
    let catalog = catalog();
    for id in [
        "chat.mls.ds.sendEnvelopes",
        "chat.mls.ds.subscribeEnvelopes",
        "com.atproto.repo.strongRef",
        "com.atproto.repo.defs",
    ] {
        assert!(catalog.doc(&Nsid::new(id).unwrap()).is_some(), "{id}");
    }
}

#[test]
fn every_host_method_mounts() {
    let mut router = Router::new(catalog());
    for (nsid, kind) in HOST_METHODS {
        let handler = |_req| async { Ok(XrpcResponse::empty()) };
        router = match kind {
            "query" => router.query(nsid, handler),
            _ => router.procedure(nsid, handler),
        };
    }
    router.check().expect("every route matches its lexicon");
}

#[test]
fn vendored_schemas_validate_requests() {
    let catalog = catalog();
    let create: Nsid = "com.atproto.repo.createRecord".parse().unwrap();
    let ok = json!({
        "repo": "did:plc:abcdefghijklmnopqrstuvwx",
        "collection": "chat.mls.keyPackage",
        "record": { "$type": "chat.mls.keyPackage" }
    });
    catalog.validate_input(&create, &ok).unwrap();
    let err = catalog
        .validate_input(
            &create,
            &json!({ "repo": "did:plc:x", "collection": "not an nsid", "record": {} }),
        )
        .unwrap_err();
    assert!(err.to_string().starts_with("input/collection"), "{err}");

    let list: Nsid = "com.atproto.repo.listRecords".parse().unwrap();
    let params = catalog
        .params_from_query(
            &list,
            [
                ("repo", "alice.test"),
                ("collection", "chat.mls.keyPackage"),
                ("limit", "500"),
            ],
        )
        .unwrap();
    let err = catalog.validate_params(&list, &params).unwrap_err();
    assert_eq!(err.to_string(), "params/limit: must be at most 100");
}
