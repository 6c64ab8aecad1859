//! The X-Wing suite end to end through the CLI and a real `atmls serve` (docs/spec.md
//! §11.19): Alice and Bob prefer X-Wing, Carol's device has it off. A group of Alice and
//! Bob is X-Wing; adding Carol to it is refused by name (`SuiteMissing`), the group
//! unchanged; a group created with Carol is 0x0001 and works; `keys list` and `group info`
//! show the suites.
#![cfg(unix)]

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use support::{Serve, err, ok};

/// `atmls` as `profile`, with the X-Wing policy `xwing` (`""`: none given, the profile's).
fn atmls(profiles: &Path, profile: &str, xwing: &str, pds: &str, args: &[&str]) -> Output {
    let mut all: Vec<&str> = if xwing.is_empty() {
        Vec::new()
    } else {
        vec!["--xwing", xwing]
    };
    all.extend_from_slice(args);
    support::atmls(profiles, profile, pds, &all)
}

fn create(profiles: &Path, name: &str, xwing: &str, pds: &str) {
    let handle = format!("{name}.test");
    let email = format!("{name}@example.com");
    ok(&atmls(
        profiles,
        name,
        xwing,
        pds,
        &["account", "create", "--handle", &handle, "--email", &email],
    ));
}

/// The ciphersuites of an account's KeyPackage records, as `keys list` shows them.
fn suites(listed: &Value) -> Vec<i64> {
    let mut out: Vec<i64> = listed["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["ciphersuite"].as_i64().expect("ciphersuite"))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn x_wing_is_negotiated_and_a_device_without_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    let serve = Serve::start(&dir.path().join("server"));
    let url = serve.url.as_str();
    create(&profiles, "alice", "prefer", url);
    create(&profiles, "bob", "prefer", url);
    create(&profiles, "carol", "off", url);

    let alice = |args: &[&str]| atmls(&profiles, "alice", "prefer", url, args);
    let listed = ok(&alice(&["keys", "list", "bob.test"]));
    assert_eq!(suites(&listed), [0x0001, 0x004D]);
    let listed = ok(&alice(&["keys", "list", "carol.test"]));
    assert_eq!(suites(&listed), [0x0001]);

    // Every first device has X-Wing: the group is X-Wing.
    let created = ok(&alice(&["group", "create", "pq", "--with", "bob.test"]));
    assert_eq!(created["ciphersuite"], 0x004D, "{created}");
    assert!(created["suite"].as_str().unwrap().contains("X-Wing"));
    ok(&alice(&["send", "pq", "hello in X-Wing"]));
    let inbox = ok(&atmls(&profiles, "bob", "prefer", url, &["inbox"]));
    assert!(inbox.to_string().contains("hello in X-Wing"), "{inbox}");

    // Carol's device has no X-Wing KeyPackage: refused by name, the group unchanged.
    let before = ok(&alice(&["group", "info", "pq"]));
    let refused = err(&alice(&["group", "add", "pq", "carol.test"]));
    assert_eq!(refused["error"], "SuiteMissing", "{refused}");
    let after = ok(&alice(&["group", "info", "pq"]));
    assert_eq!(after["epoch"], before["epoch"]);
    assert_eq!(after["ciphersuite"], 0x004D);

    // With Carol among the first devices, the group is 0x0001, and she reads it.
    let mixed = ok(&alice(&[
        "group",
        "create",
        "mixed",
        "--with",
        "bob.test,carol.test",
    ]));
    assert_eq!(mixed["ciphersuite"], 0x0001, "{mixed}");
    ok(&alice(&["send", "mixed", "hello in 0x0001"]));
    // Carol's policy was kept in her profile: no flag now, still off (she joins, renews
    // her packages, and still publishes none in X-Wing).
    let inbox = ok(&atmls(&profiles, "carol", "", url, &["inbox"]));
    assert!(inbox.to_string().contains("hello in 0x0001"), "{inbox}");
    let listed = ok(&alice(&["keys", "list", "carol.test"]));
    assert_eq!(suites(&listed), [0x0001]);
    let shown = ok(&atmls(&profiles, "carol", "", url, &["keys", "list"]));
    assert_eq!(suites(&shown), [0x0001]);
}
