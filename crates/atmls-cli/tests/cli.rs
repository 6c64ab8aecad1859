//! Runs the built `atmls` binary on the official-PDS fixtures and on garbage.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/official-pds")
        .join(name)
}

fn atmls(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(args)
        .output()
        .expect("run atmls")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(name: &str) -> String {
    fixture(name).to_string_lossy().into_owned()
}

const DID: &str = "did:plc:fh5jrlbsm47qlufaem7aasei";

#[test]
fn status_lists_components_honestly() {
    let out = atmls(&["status"]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(s.contains("atmls-repo") && s.contains("built"));
    for component in ["atmls-client", "atmls demo", "atmls serve", "send / watch"] {
        let line = s.lines().find(|l| l.contains(component));
        assert!(
            line.is_some_and(|l| l.contains("built")),
            "{component}: {s}"
        );
    }
}

#[test]
fn inspect_whole_repo_as_json() {
    let out = atmls(&["repo", "inspect", &path("alice-repo.car"), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["commit"]["did"], DID);
    assert_eq!(v["commit"]["rev"], "3n334aph34k2i");
    assert_eq!(v["complete"], true);
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[1]["uri"],
        format!("{DID}/chat.mls.keyPackage/3kpaaaaaaaaa2").replace("did:", "at://did:")
    );
    assert_eq!(records[1]["value"]["$type"], "chat.mls.keyPackage");
}

#[test]
fn inspect_text() {
    let out = atmls(&["repo", "inspect", &path("keypackage-record-proof.car")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains(DID));
    assert!(s.contains("3n334aph34k2i"));
    assert!(s.contains("chat.mls.keyPackage/3kpaaaaaaaaa2"));
}

#[test]
fn verify_inclusion_proof() {
    let out = atmls(&[
        "repo",
        "verify-record",
        &path("keypackage-record-proof.car"),
        "--did-doc",
        &path("alice-did-doc.json"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert_eq!(s.lines().count(), 1);
    assert!(s.starts_with("OK: ") && s.contains("is present"));
}

#[test]
fn verify_absence_proof() {
    let out = atmls(&[
        "repo",
        "verify-record",
        &path("absent-record-proof.car"),
        "--did-doc",
        &path("alice-did-doc.json"),
        "--collection",
        "chat.mls.keyPackage",
        "--rkey",
        "3kpaaaaaaaaa3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("is absent"));
}

#[test]
fn tampered_proof_fails_with_reason() {
    let mut car = std::fs::read(fixture("keypackage-record-proof.car")).unwrap();
    let last = car.len() - 1;
    car[last] ^= 1;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tampered.car");
    std::fs::write(&file, car).unwrap();
    let out = atmls(&[
        "repo",
        "verify-record",
        file.to_str().unwrap(),
        "--did-doc",
        &path("alice-did-doc.json"),
        "--collection",
        "chat.mls.keyPackage",
        "--rkey",
        "3kpaaaaaaaaa2",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).starts_with("error: "));
    assert!(!text(&out.stderr).contains("panicked"));
}

#[test]
fn wrong_did_document_fails() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("other.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("alice-did-doc.json")).unwrap()).unwrap();
    v["id"] = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into();
    std::fs::write(&doc, v.to_string()).unwrap();
    let out = atmls(&[
        "repo",
        "verify-record",
        &path("keypackage-record-proof.car"),
        "--did-doc",
        doc.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("NOT verify"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn garbage_gives_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.car");
    let mut bytes = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        bytes.push((x >> 16) as u8);
    }
    std::fs::write(&garbage, &bytes).unwrap();
    let empty = dir.path().join("empty.car");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("missing.car");
    for file in [&garbage, &empty, &missing] {
        let f = file.to_str().unwrap();
        for args in [
            vec!["repo", "inspect", f],
            vec!["repo", "inspect", f, "--json"],
            vec![
                "repo",
                "verify-record",
                f,
                "--did-doc",
                &path("alice-did-doc.json"),
            ],
            vec![
                "repo",
                "verify-record",
                &path("alice-repo.car"),
                "--did-doc",
                f,
            ],
        ] {
            let out = atmls(&args);
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            let err = text(&out.stderr);
            assert!(err.starts_with("error: "), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
        }
    }
}

/// `atmls ds migrate-store` copies a SQLite DS into PostgreSQL (into a fresh schema, named
/// by the URL's `search_path`) and refuses a second run into the now non-empty target.
/// Needs `ATMLS_TEST_DATABASE_URL` (scripts/test); fails without it.
#[test]
fn ds_migrate_store_copies_once_and_refuses_a_non_empty_target() {
    use atmls_ds::{DeliveryService, DsConfig, MailboxKind, SqliteStore, Timestamp};

    let url = std::env::var("ATMLS_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "ATMLS_TEST_DATABASE_URL is not set: this test needs a PostgreSQL server. Start \
             a throw-away one with `eval \"$(scripts/pg-cluster start)\"` (scripts/test does this)."
        )
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("ds.sqlite");
    {
        let store = SqliteStore::open(&db).expect("open");
        let mut core = DeliveryService::new(store, rand::rngs::OsRng, DsConfig::default());
        for n in 1..=3u8 {
            let key = ed25519_dalek::SigningKey::from_bytes(&[n; 32]).verifying_key();
            let info = core
                .create_mailbox("did:plc:migratecli", MailboxKind::Inbox, key.as_bytes(), 0)
                .expect("create");
            core.send_welcome(&info.mailbox, vec![n; 10], Timestamp::from_millis(1))
                .expect("welcome");
        }
    }
    // A schema of its own, made with psql, and named in the URL.
    let schema = format!("cli_{}", std::process::id());
    let psql = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin/psql"))
                .filter(|p| p.is_file())
                .max()
        })
        .unwrap_or_else(|| "psql".into());
    let made = Command::new(psql)
        .args([&url, "-X", "-q", "-c", &format!("CREATE SCHEMA {schema}")])
        .output()
        .expect("run psql");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let sep = if url.contains('?') { '&' } else { '?' };
    let target = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let from = db.to_string_lossy().into_owned();

    let first = atmls(&["ds", "migrate-store", "--from", &from, "--to", &target]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("0 groups, 3 inboxes, 3 envelopes (30 payload bytes)"),
        "{}",
        text(&first.stdout)
    );
    let second = atmls(&["ds", "migrate-store", "--from", &from, "--to", &target]);
    assert!(!second.status.success());
    let err = text(&second.stderr);
    assert!(err.contains("not empty (3 mailboxes, 3 envelopes"), "{err}");
    assert!(
        !err.contains(&url),
        "the URL (with its password) is never printed"
    );
    let missing = atmls(&[
        "ds",
        "migrate-store",
        "--from",
        "/nonexistent/ds.sqlite",
        "--to",
        &target,
    ]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no such file"));
}
