//! The outbox at a terminal (issue 21): the real `atmls serve` on loopback is killed and
//! restarted over the same data directory on the same port while Alice sends (with
//! `send`, `send --wait` and lines typed in `watch --chat`) and Bob watches; every line
//! reaches Bob once, in order. Bounded by timeouts; nothing sleeps to assert speed.
#![cfg(unix)]

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Lines, listening_url};

/// Start-up, account creation, a message while all is up.
const WAIT: Duration = Duration::from_secs(60);
/// Delivery after the restart: until a DS persists its replay cache, a restarted SQLite
/// DS refuses mailbox requests for 120 s (docs/spec.md §10.2.1); then the clients' back-off
/// (at most 30 s in the CLI) and poll (30 s) bring the messages.
const AFTER_RESTART: Duration = Duration::from_secs(300);

/// `atmls serve` over `data`, listening on `listen`; returns the process and its URL.
fn serve(data: &Path, listen: &str) -> (Lines, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atmls"));
    // Quiet: while the replay guard is on, every refused request is logged.
    cmd.args(["serve", "--listen", listen])
        .env("ATMLS_DATA_DIR", data)
        .env("ATMLS_LOG", "warn,atmls_xrpc::service=off");
    let mut server = Lines::spawn(cmd);
    let line = server.wait_for("the start-up line with the address", WAIT, |l| {
        listening_url(l).is_some()
    });
    let url = listening_url(&line).expect("url");
    (server, url)
}

struct Terminal {
    url: String,
    profiles: PathBuf,
}

impl Terminal {
    fn command(&self, profile: &str, args: &[&str]) -> Command {
        support::command(&self.profiles, profile, &self.url, args)
    }

    fn run(&self, profile: &str, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.push("--json");
        self.command(profile, &all).output().expect("run atmls")
    }

    /// Runs a command that must succeed and prints one JSON object.
    fn json(&self, profile: &str, args: &[&str]) -> Value {
        let out = self.run(profile, args);
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

fn from_alice(line: &str) -> Option<String> {
    let e = event(line);
    (e["type"] == "message" && e["senderHandle"] == "alice.test")
        .then(|| e["text"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn every_line_sent_while_the_ds_is_down_or_restarting_arrives_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let (server, url) = serve(&data, "127.0.0.1:0");
    let port = url.rsplit(':').next().expect("port").to_owned();
    let t = Terminal {
        url,
        profiles: dir.path().join("profiles"),
    };
    for name in ["alice", "bob"] {
        t.json(
            name,
            &[
                "account",
                "create",
                "--handle",
                &format!("{name}.test"),
                "--email",
                &format!("{name}@example.com"),
            ],
        );
    }
    t.json("alice", &["group", "create", "tea", "--with", "bob.test"]);
    let mut bob = t.watch("bob", &[]);
    let sent = t.json("alice", &["send", "tea", "before the outage"]);
    assert_eq!(sent["queued"], false, "{sent}");
    bob.wait_for("the first message at bob", WAIT, |l| {
        from_alice(l).as_deref() == Some("before the outage")
    });

    // The DS (and the host with it) dies.
    server.kill();
    for text in ["sent while down 1", "sent while down 2"] {
        let queued = t.json("alice", &["send", "tea", text]);
        assert_eq!(queued["queued"], true, "{queued}");
        assert_eq!(queued["error"]["error"], "NetworkError", "{queued}");
    }
    let out = t.run(
        "alice",
        &[
            "send",
            "tea",
            "--wait",
            "--wait-timeout",
            "1",
            "waited while down",
        ],
    );
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"], "NotSent", "{err}");
    // Text output says what happened.
    let out = t
        .command("alice", &["send", "tea", "sent while down 3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("queued, will send"), "{text}");

    // Alice chats: a line typed while the DS is down is queued.
    let mut alice = t.watch("alice", &["tea", "--chat"]);
    writeln!(alice.stdin(), "typed while down").unwrap();
    alice.wait_for("the typed line queued", WAIT, |l| {
        event(l)["type"] == "queued" && event(l)["text"] == "typed while down"
    });

    // The DS comes back over the same data on the same port; Alice types while it
    // restarts.
    let (_server, _) = serve(&data, &format!("127.0.0.1:{port}"));
    writeln!(alice.stdin(), "typed while restarting").unwrap();

    let want = [
        "sent while down 1",
        "sent while down 2",
        "waited while down",
        "sent while down 3",
        "typed while down",
        "typed while restarting",
    ];
    let mut got = Vec::new();
    let deadline = Instant::now() + AFTER_RESTART;
    while got.len() < want.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = bob.wait_for("alice's queued messages at bob", left, |l| {
            from_alice(l).is_some()
        });
        got.extend(from_alice(&line));
    }
    assert_eq!(got, want);
    // Alice's own watch shows them sent, in the same order.
    for text in want.iter().filter(|t| t.starts_with("typed")) {
        alice.wait_for("alice's typed line sent", WAIT, |l| {
            from_alice(l).as_deref() == Some(*text)
        });
    }
    alice.kill();
    bob.kill();
    // Nothing arrives twice later, and nothing is left in Alice's outbox.
    let inbox = t.json("bob", &["inbox"]);
    let later: Vec<&Value> = inbox["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .collect();
    assert!(later.is_empty(), "{inbox}");
    let inbox = t.json("alice", &["inbox"]);
    assert!(
        !inbox["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "message" || e["type"] == "unsent"),
        "{inbox}"
    );
}
