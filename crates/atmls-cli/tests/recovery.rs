//! Recovery from the CLI (docs/spec.md §11.17): the profile keeps the device's id outside
//! the device database; when the database file is deleted, the next command restores the
//! device under that id, the account's other device re-adds it, and it reads new messages.
#![cfg(unix)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(data: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_atmls"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("ATMLS_DATA_DIR", data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn atmls serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let Ok(line) = rx.recv_timeout(WAIT) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("atmls serve did not print its address");
            };
            if line.contains("listening")
                && let Some(at) = line.find("http://")
            {
                let url = line[at..].split_whitespace().next().unwrap();
                let url = url.trim_end_matches('/').to_owned();
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return Self { child, url };
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn atmls(profiles: &Path, profile: &str, pds: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["--profile", profile])
        .args(args)
        .arg("--json")
        .env("ATMLS_PROFILE_DIR", profiles)
        .env("ATMLS_PASSWORD", "correct horse")
        .env("ATMLS_PASSPHRASE", "test passphrase")
        .env("ATMLS_KDF_INSECURE_FOR_TESTS", "1")
        .env("ATMLS_PDS", pds)
        .env_remove("ATMLS_DATA_DIR")
        .env_remove("ATMLS_DS")
        .env_remove("ATMLS_PLC")
        .stdin(Stdio::null())
        .output()
        .expect("run atmls")
}

fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

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
