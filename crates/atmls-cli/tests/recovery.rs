//! Recovery from the CLI (docs/spec.md §11.17): the profile keeps the device's id outside
//! the device database; when the database file is deleted, the next command restores the
//! device under that id, the account's other device re-adds it, and it reads new messages.
#![cfg(unix)]

mod support;

use std::path::Path;

use serde_json::Value;

use support::{Serve, atmls, ok};

fn create(profiles: &Path, profile: &str, pds: &str, handle: &str) {
    ok(&atmls(
        profiles,
        profile,
        pds,
        &[
            "account",
            "create",
            "--handle",
            handle,
            "--email",
            &format!("{profile}@example.com"),
        ],
    ));
}

#[test]
fn a_deleted_device_database_is_restored_and_readded_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    let serve = Serve::start(&dir.path().join("server"));
    let url = serve.url.as_str();
    create(&profiles, "laptop", url, "alice.test");
    ok(&atmls(
        &profiles,
        "phone",
        url,
        &["account", "login", "--handle", "alice.test"],
    ));
    create(&profiles, "bob", url, "bob.test");
    ok(&atmls(
        &profiles,
        "laptop",
        url,
        &["group", "create", "tea", "--with", "bob.test"],
    ));
    ok(&atmls(&profiles, "laptop", url, &["inbox"])); // adds the phone
    ok(&atmls(&profiles, "phone", url, &["inbox"]));
    ok(&atmls(&profiles, "bob", url, &["inbox"]));
    let listed = ok(&atmls(&profiles, "phone", url, &["group", "list"]));
    assert_eq!(listed["groups"].as_array().unwrap().len(), 1, "{listed}");

    // The phone's device database is deleted; its profile still names the device.
    for name in ["device.sqlite", "device.sqlite-wal", "device.sqlite-shm"] {
        let _ = std::fs::remove_file(profiles.join("phone").join(name));
    }
    let restored = atmls(&profiles, "phone", url, &["inbox"]);
    ok(&restored);
    assert!(
        String::from_utf8_lossy(&restored.stderr).contains("restored"),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    ok(&atmls(&profiles, "laptop", url, &["inbox"])); // re-adds it
    ok(&atmls(&profiles, "phone", url, &["inbox"]));
    let listed = ok(&atmls(&profiles, "phone", url, &["group", "list"]));
    let groups = listed["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{listed}");
    assert_eq!(groups[0]["broken"], Value::Null, "{listed}");
    ok(&atmls(&profiles, "bob", url, &["inbox"]));
    ok(&atmls(
        &profiles,
        "bob",
        url,
        &["send", "tea", "after the loss"],
    ));
    let inbox = ok(&atmls(&profiles, "phone", url, &["inbox"]));
    assert!(inbox.to_string().contains("after the loss"), "{inbox}");
}
