//! A person at a terminal: the real `atmls serve` on loopback, two accounts in two
//! profiles chatting through `send` and `watch` (watch as a child process whose output
//! is read line by line, with a timeout), every answer parsed from `--json`.
#![cfg(unix)]

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use atmls_testkit::server::TestServer;
use serde_json::Value;
use support::{Lines, WAIT, listening_url};

/// What the commands talk to: the real `atmls serve`, or the same services started in
/// this test process through `atmls-testkit` (the embedded composition on disk).
enum Services {
    /// Held for its `Drop` (which kills the server).
    Serve {
        _server: Lines,
    },
    InProcess(tokio::runtime::Runtime, Option<Box<TestServer>>),
}

impl Drop for Services {
    fn drop(&mut self) {
        if let Services::InProcess(runtime, services) = self
            && let Some(s) = services.take()
        {
            runtime.block_on(s.shutdown());
        }
    }
}

struct Terminal {
    _services: Services,
    url: String,
    profiles: PathBuf,
}

impl Terminal {
    /// Starts `atmls serve --listen 127.0.0.1:0` and reads its address from its start-up
    /// lines.
    fn serve(dir: &Path) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atmls"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("ATMLS_DATA_DIR", dir.join("server"));
        let mut server = Lines::spawn(cmd);
        let line = server.wait_for("start-up line with the address", WAIT, |l| {
            listening_url(l).is_some()
        });
        let url = listening_url(&line).expect("url");
        Self {
            _services: Services::Serve { _server: server },
            url,
            profiles: dir.join("profiles"),
        }
    }

    /// Starts the embedded services in this process.
    fn in_process(dir: &Path) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let services = runtime.block_on(
            TestServer::builder()
                .system_clock()
                .data_dir(dir.join("server"))
                .start(),
        );
        Self {
            url: services.url().to_owned(),
            _services: Services::InProcess(runtime, Some(Box::new(services))),
            profiles: dir.join("profiles"),
        }
    }

    fn command(&self, profile: &str, args: &[&str]) -> Command {
        support::command(&self.profiles, profile, &self.url, args)
    }

    fn run(&self, profile: &str, args: &[&str]) -> Output {
        self.command(profile, args).output().expect("run atmls")
    }

    /// Runs a command that must succeed and prints one JSON object.
    fn json(&self, profile: &str, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(profile, &all);
        assert!(
            out.status.success(),
            "atmls --profile {profile} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    fn watch(&self, profile: &str, args: &[&str]) -> Lines {
        let mut cmd = self.command(profile, &["watch", "--json"]);
        cmd.args(args);
        if args.contains(&"--chat") {
            cmd.stdin(Stdio::piped());
        }
        let mut lines = Lines::spawn(cmd);
        lines.wait_for("the watching line", WAIT, |l| {
            event(l)["type"] == "watching"
        });
        lines
    }
}

fn event(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or(Value::Null)
}

fn message_from(line: &str, handle: &str, text: &str) -> bool {
    let e = event(line);
    e["type"] == "message" && e["senderHandle"] == handle && e["text"] == text
}

#[test]
fn two_accounts_chat_against_atmls_serve() {
    let dir = tempfile::tempdir().unwrap();
    chat(&Terminal::serve(dir.path()));
}

#[test]
fn two_accounts_chat_against_the_embedded_services() {
    let dir = tempfile::tempdir().unwrap();
    chat(&Terminal::in_process(dir.path()));
}

/// Two accounts chat through `send` and `watch`; keys, groups, inbox and errors.
fn chat(t: &Terminal) {
    let alice = t.json(
        "alice",
        &[
            "account",
            "create",
            "--handle",
            "alice.test",
            "--email",
            "alice@example.com",
        ],
    );
    let bob = t.json(
        "bob",
        &[
            "account",
            "create",
            "--handle",
            "bob.test",
            "--email",
            "bob@example.com",
        ],
    );
    assert!(alice["did"].as_str().unwrap().starts_with("did:plc:"));
    assert_ne!(alice["did"], bob["did"]);
    assert_eq!(alice["ds"], bob["ds"]);

    // Bob's KeyPackages, verified by Alice against Bob's repo.
    let keys = t.json("alice", &["keys", "list", "bob.test"]);
    assert_eq!(keys["account"], bob["did"]);
    let records = keys["records"].as_array().unwrap();
    assert!(records.iter().any(|r| r["verified"]["rev"].is_string()));

    let group = t.json("alice", &["group", "create", "tea", "--with", "bob.test"]);
    assert_eq!(group["name"], "tea");
    assert_eq!(group["accounts"], 2);

    // Bob watches; Alice sends; Bob's watch prints the join, then the message.
    let mut watch = t.watch("bob", &[]);
    let sent = t.json("alice", &["send", "tea", "hello", "bob"]);
    assert_eq!(sent["text"], "hello bob");
    watch.wait_for("bob's join", WAIT, |l| {
        event(l)["type"] == "joined" && event(l)["groupName"] == "tea"
    });
    let line = watch.wait_for("alice's message at bob", WAIT, |l| {
        message_from(l, "alice.test", "hello bob")
    });
    assert_eq!(event(&line)["group"], group["id"]);
    watch.kill();

    // Alice watches the group in chat mode; Bob sends; Alice answers by typing a line.
    let mut watch = t.watch("alice", &["tea", "--chat"]);
    t.json("bob", &["send", "tea", "hi alice"]);
    watch.wait_for("bob's message at alice", WAIT, |l| {
        message_from(l, "bob.test", "hi alice")
    });
    writeln!(watch.stdin(), "typed at the terminal").unwrap();
    watch.wait_for("alice's own typed message", WAIT, |l| {
        message_from(l, "alice.test", "typed at the terminal")
    });
    watch.kill();
    let inbox = t.json("bob", &["inbox"]);
    let texts: Vec<&str> = inbox["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(texts, ["typed at the terminal"]);

    // Both see the same group state.
    let a = t.json("alice", &["group", "info", "tea"]);
    let b = t.json(
        "bob",
        &["group", "info", &group["id"].as_str().unwrap()[..10]],
    );
    assert_eq!(a["epoch"], b["epoch"]);
    assert_eq!(a["epochAuthenticator"], b["epochAuthenticator"]);
    assert_eq!(a["members"].as_array().unwrap().len(), 2);

    // Errors: one sentence and a typed name (JSON on standard error with --json).
    let out = t.run("alice", &["group", "add", "tea", "nobody.test", "--json"]);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"], "UnknownHandle");
    let out = t.run("alice", &["send", "no-such-group", "x"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.starts_with("error: ") && text.trim_end().ends_with("(UnknownGroup)"),
        "{text}"
    );

    // Rotation: new records replace the old ones, and the group moves on.
    let before = t.json("bob", &["keys", "list"]);
    let rotated = t.json("bob", &["keys", "rotate", "--leaf"]);
    let old: Vec<&Value> = before["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["rkey"])
        .collect();
    let new = rotated["published"].as_array().unwrap();
    assert!(
        !new.is_empty() && new.iter().all(|r| !old.contains(&r)),
        "{old:?} {new:?}"
    );
    assert_eq!(rotated["groupsUpdated"], serde_json::json!([group["id"]]));
    let after = t.json("alice", &["group", "info", "tea"]);
    assert_eq!(after["epoch"].as_u64(), a["epoch"].as_u64().map(|e| e + 1));

    // A second device of bob's: logging in to an empty profile makes one; bob's first
    // device adds it to his groups on its next sync.
    let phone = t.json("bob-phone", &["account", "login", "--handle", "bob.test"]);
    assert_eq!(phone["did"], bob["did"]);
    assert_ne!(phone["device"], bob["device"]);
    t.json("bob", &["inbox"]);
    let joined = t.json("bob-phone", &["inbox"]);
    assert!(
        joined["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "joined" && e["group"] == group["id"]),
        "{joined}"
    );
    t.json("alice", &["send", "tea", "to both of bob's devices"]);
    for profile in ["bob", "bob-phone"] {
        let inbox = t.json(profile, &["inbox"]);
        assert!(
            inbox["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["text"] == "to both of bob's devices"),
            "{profile}: {inbox}"
        );
    }

    // One process per profile: a watch holds the profile.
    let _watch = t.watch("bob", &[]);
    let out = t.run("bob", &["send", "tea", "x", "--json"]);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"], "ProfileBusy");
}

/// The device database needs its passphrase for every command that opens it: a wrong one
/// is `WrongPassphrase`, none (and no terminal to ask on) is `NoPassphrase`, and the file
/// holds neither the group id nor the text nor a SQLite header (decision 0021).
#[test]
fn the_device_database_needs_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let t = Terminal::in_process(dir.path());
    let alice = t.json(
        "alice",
        &[
            "account",
            "create",
            "--handle",
            "alice.test",
            "--email",
            "alice@example.com",
        ],
    );
    let did = alice["did"].as_str().expect("did").to_owned();
    t.json("alice", &["group", "create", "tea"]);
    t.json("alice", &["send", "tea", "a secret 9KQ2 about tea"]);

    let wrong = t
        .command("alice", &["group", "list"])
        .env("ATMLS_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let text = String::from_utf8_lossy(&wrong.stderr);
    assert!(text.contains("(WrongPassphrase)"), "{text}");
    assert!(!text.contains("sqlcipher"), "no library noise: {text}");

    let none = t
        .command("alice", &["group", "list"])
        .env_remove("ATMLS_PASSPHRASE")
        .output()
        .unwrap();
    assert!(!none.status.success());
    let text = String::from_utf8_lossy(&none.stderr);
    assert!(text.contains("(NoPassphrase)"), "{text}");

    let listed = t.json("alice", &["group", "list"]);
    assert!(listed.to_string().contains("tea"), "{listed}");

    let device = dir.path().join("profiles/alice/device.sqlite");
    let mut bytes = std::fs::read(&device).unwrap();
    bytes.extend(
        std::fs::read(dir.path().join("profiles/alice/device.sqlite-wal")).unwrap_or_default(),
    );
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!has(b"SQLite format 3"));
    assert!(!has(b"a secret 9KQ2"));
    assert!(!has(did.as_bytes()));
    let kdf = std::fs::read_to_string(dir.path().join("profiles/alice/device.sqlite.kdf")).unwrap();
    assert!(
        kdf.contains("argon2id") && !kdf.contains("test passphrase"),
        "{kdf}"
    );
}

#[test]
fn client_errors_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_atmls"))
            .args(args)
            .env("ATMLS_PROFILE_DIR", dir.path())
            .output()
            .expect("run atmls")
    };
    let out = run(&["--profile", "nobody", "group", "list"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("(NoSession)"), "{text}");
    let out = run(&["--profile", "nobody", "inbox", "--json"]);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"], "NoSession");
    let out = run(&["--profile", "../escape", "inbox"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("(BadProfileName)"));
    // Nothing listens on port 9 of loopback.
    let out = run(&[
        "--profile",
        "p",
        "account",
        "login",
        "--pds",
        "http://127.0.0.1:9",
        "--handle",
        "a.test",
        "--password",
        "x",
        "--json",
    ]);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"], "NetworkError");
}

#[test]
fn every_client_command_has_examples_in_its_help() {
    for args in [
        &["account", "create", "--help"][..],
        &["keys", "list", "--help"],
        &["group", "create", "--help"],
        &["send", "--help"],
        &["watch", "--help"],
        &["inbox", "--help"],
        &["demo", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_atmls"))
            .args(args)
            .output()
            .expect("run atmls");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(text.contains("Example"), "{args:?}: {text}");
        assert!(text.contains("[env: ATMLS_"), "{args:?}: {text}");
    }
}
