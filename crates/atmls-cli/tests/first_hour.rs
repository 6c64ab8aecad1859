//! A chatter's first hour (issue 21): `account create` checks before it creates and goes
//! on after a half-way failure; a profile's PLC directory can be seen and changed; a
//! closed pipe ends a command quietly.
#![cfg(unix)]

mod support;

use std::process::{Command, Stdio};

use support::{Serve, WAIT, atmls, err, ok};

const CREATE: [&str; 6] = [
    "account",
    "create",
    "--handle",
    "alice.test",
    "--email",
    "alice@example.com",
];

#[test]
fn account_create_checks_first_and_a_retry_goes_on_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");

    // A PDS that describes no delivery service: refused before anything is created.
    let nothing = atmls(&profiles, "alice", "http://127.0.0.1:9", &CREATE);
    let e = err(&nothing);
    assert_eq!(e["error"], "NoDeliveryService", "{e}");
    assert!(e["message"].as_str().unwrap().contains("--ds"), "{e}");
    assert!(!profiles.join("alice/session.json").exists());

    // A DS that cannot be reached: the account is created, the device is not.
    let serve = Serve::start(&dir.path().join("server"));
    let mut args = CREATE.to_vec();
    args.extend(["--ds", "did:web:ds.invalid"]);
    let half = atmls(&profiles, "alice", &serve.url, &args);
    err(&half);
    assert!(profiles.join("alice/session.json").exists());
    assert!(!profiles.join("alice/device.sqlite").exists());

    // The same command again, without the bad DS: it goes on from the saved session
    // (before, the PDS answered "handle already taken").
    let done = ok(&atmls(&profiles, "alice", &serve.url, &CREATE));
    assert!(
        done["did"].as_str().unwrap().starts_with("did:plc:"),
        "{done}"
    );
    assert_eq!(done["handle"], "alice.test");
    let shown = ok(&atmls(&profiles, "alice", &serve.url, &["account", "show"]));
    assert_eq!(shown["did"], done["did"]);
}

#[test]
fn a_profiles_plc_directory_is_seen_and_changed_in_one_place() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    let serve = Serve::start(&dir.path().join("server"));
    ok(&atmls(&profiles, "alice", &serve.url, &CREATE));
    let shown = ok(&atmls(&profiles, "alice", &serve.url, &["profile", "show"]));
    assert_eq!(shown["plc"], serve.url.as_str());
    assert_eq!(shown["pds"], serve.url.as_str());
    assert_eq!(shown["device"], true);

    // A wrong PLC directory: DIDs stop resolving, and the setting says why.
    let set = ok(&atmls(
        &profiles,
        "alice",
        &serve.url,
        &["profile", "set", "--plc", "http://127.0.0.1:9/"],
    ));
    assert_eq!(set["plc"], "http://127.0.0.1:9");
    let listed = atmls(
        &profiles,
        "alice",
        &serve.url,
        &["keys", "list", "alice.test"],
    );
    err(&listed);
    // Put right again, and everything resolves.
    ok(&atmls(
        &profiles,
        "alice",
        &serve.url,
        &["profile", "set", "--plc", &serve.url],
    ));
    let keys = ok(&atmls(
        &profiles,
        "alice",
        &serve.url,
        &["keys", "list", "alice.test"],
    ));
    assert!(!keys["records"].as_array().unwrap().is_empty(), "{keys}");

    let bad = err(&atmls(
        &profiles,
        "alice",
        &serve.url,
        &["profile", "set", "--plc", "plc.example.com"],
    ));
    assert_eq!(bad["error"], "BadUrl");
    let none = err(&atmls(&profiles, "alice", &serve.url, &["profile", "set"]));
    assert_eq!(none["error"], "NothingToSet");
}

#[test]
fn mailboxes_can_be_created_through_the_pds_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    let serve = Serve::start(&dir.path().join("server"));
    let mut args = CREATE.to_vec();
    args.push("--ds-via-pds");
    ok(&atmls(&profiles, "alice", &serve.url, &args));
    let shown = ok(&atmls(&profiles, "alice", &serve.url, &["profile", "show"]));
    assert_eq!(shown["dsViaPds"], true);
    ok(&atmls(
        &profiles,
        "bob",
        &serve.url,
        &[
            "account",
            "create",
            "--handle",
            "bob.test",
            "--email",
            "bob@example.com",
        ],
    ));
    // A group's mailbox, created through the PDS this time (the inbox was at create).
    ok(&atmls(
        &profiles,
        "alice",
        &serve.url,
        &["group", "create", "tea", "--with", "bob.test"],
    ));
    ok(&atmls(
        &profiles,
        "alice",
        &serve.url,
        &["send", "tea", "hi"],
    ));
    let inbox = ok(&atmls(&profiles, "bob", &serve.url, &["inbox"]));
    assert!(inbox.to_string().contains("hi"), "{inbox}");
    // The host forwarded alice's createMailbox calls (bob's went to the DS directly).
    let metrics = get(&serve.url, "/metrics");
    let proxied = metrics
        .lines()
        .find(|l| l.starts_with("atmls_xrpc_requests_total{nsid=\"_proxy\",status=\"200\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(
        proxied >= 2,
        "proxied createMailbox calls: {proxied}\n{metrics}"
    );
}

/// `GET path` on `url` (HTTP/1.1, `Connection: close`): the body as text.
fn get(url: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .arg("status")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the command writes (as `| head -0` would).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}

/// `atmls serve --web-dir` serves the browser page's build folder at `/web/`, and a
/// folder without `index.html` is refused at start with a message saying how to build it.
#[test]
fn serve_shows_the_browser_page_from_its_build_folder() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("dist");
    std::fs::create_dir(&web).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>atmls</title>",
    )
    .unwrap();
    std::fs::write(web.join("app.js"), "export {};").unwrap();
    let web_arg = web.to_str().unwrap();
    let serve = Serve::start_with(&dir.path().join("server"), &["--web-dir", web_arg]);
    let get = |path: &str| {
        let addr = serve.url.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let page = get("/web/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<title>atmls</title>"), "{page}");
    assert!(get("/web/app.js").contains("export {};"));
    assert!(get("/web/missing.js").starts_with("HTTP/1.1 404"));

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["serve", "--listen", "127.0.0.1:0", "--web-dir"])
        .arg(&empty)
        .env("ATMLS_DATA_DIR", dir.path().join("server2"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("index.html") && text.contains("npm run build"),
        "{text}"
    );
}

/// An invitation the DS refuses (here: the per-source welcome rate, set to 1 a minute) is
/// reported in the `--json` answer of `group create` and `group add` (`undelivered`), not
/// only as a warning on standard error: a script sees who did not get in.
#[test]
fn invitations_the_ds_refuses_are_in_the_json_answer() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[limits]\nwelcomes-per-source-per-minute = 1\n").unwrap();
    let serve = Serve::start_with(
        &dir.path().join("server"),
        &["--config", config.to_str().unwrap()],
    );
    let profiles = dir.path().join("profiles");
    for name in ["alice", "bob", "carol", "dave"] {
        let handle = format!("{name}.test");
        let email = format!("{name}@example.com");
        let args = ["account", "create", "--handle", &handle, "--email", &email];
        ok(&atmls(&profiles, name, &serve.url, &args));
    }
    let created = ok(&atmls(
        &profiles,
        "alice",
        &serve.url,
        &["group", "create", "tea", "--with", "bob.test,carol.test"],
    ));
    let undelivered = created["undelivered"].as_array().expect("undelivered list");
    assert_eq!(undelivered.len(), 1, "{created}");
    assert_eq!(undelivered[0]["resent"], true, "{created}");
    assert!(undelivered[0]["did"].as_str().unwrap().starts_with("did:"));
    assert!(!undelivered[0]["reason"].as_str().unwrap().is_empty());

    let added = ok(&atmls(
        &profiles,
        "alice",
        &serve.url,
        &["group", "add", "tea", "dave.test"],
    ));
    assert_eq!(added["undelivered"].as_array().unwrap().len(), 1, "{added}");
}
