//! The X-Wing suite end to end through the CLI and a real `atmls serve` (docs/spec.md
//! §11.19): Alice and Bob prefer X-Wing, Carol's device has it off. A group of Alice and
//! Bob is X-Wing; adding Carol to it is refused by name (`SuiteMissing`), the group
//! unchanged; a group created with Carol is 0x0001 and works; `keys list` and `group info`
//! show the suites.
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

/// `atmls` as `profile`, with the X-Wing policy `xwing` (`""`: none given, the profile's).
fn atmls(profiles: &Path, profile: &str, xwing: &str, pds: &str, args: &[&str]) -> Output {
    let policy: &[&str] = if xwing.is_empty() {
        &[]
    } else {
        &["--xwing", xwing]
    };
    Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["--profile", profile])
        .args(policy)
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
        .env_remove("ATMLS_XWING")
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

fn err(out: &Output) -> Value {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
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
