//! `atmls serve` on 127.0.0.1:0: prints its URLs, serves the host and the PLC directory,
//! stops cleanly on SIGINT, and keeps accounts and sessions across a restart.
#![cfg(unix)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

struct Running {
    child: Child,
    url: String,
    lines: Vec<String>,
}

/// Starts `atmls serve` and waits (bounded) for the line with its address.
fn start(data: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("ATMLS_DATA_DIR", data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn atmls serve");
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no stdout");
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(WAIT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("atmls serve did not print its address: {lines:?}");
        };
        lines.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("PLC directory:") {
            let url = rest.trim().split(' ').next().unwrap().trim_end_matches('/');
            // Keep draining stdout so the server never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return Running {
                child,
                url: url.to_owned(),
                lines,
            };
        }
    }
}

/// Sends SIGINT and waits (bounded) for a clean exit.
fn stop(mut r: Running) {
    let pid = r.child.id().to_string();
    let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(status.success());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(r.child.wait());
    });
    let exit = rx.recv_timeout(WAIT).expect("exits after SIGINT").unwrap();
    assert!(exit.success(), "clean exit: {exit:?}");
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, body).
fn http(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Vec<u8>) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http_with(url, method, path, &headers, body)
}

/// [`http`] with any extra headers.
fn http_with(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Vec<u8>) {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    let status_line = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[test]
fn serve_prints_urls_stops_cleanly_and_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path());
    assert!(
        r.lines.iter().any(|l| l.contains("PDS host (XRPC):")),
        "{:?}",
        r.lines
    );
    let (status, _) = http(&r.url, "GET", "/_health", None, None);
    assert_eq!(status, 200);
    let (status, body) = http(
        &r.url,
        "POST",
        "/xrpc/com.atproto.server.createAccount",
        None,
        Some(&json!({ "handle": "alice.test", "password": "pw" })),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let session = json_of(&body);
    let did = session["did"].as_str().unwrap().to_owned();
    let access = session["accessJwt"].as_str().unwrap().to_owned();
    // The DID document comes from the PLC directory on the same listener.
    let (status, body) = http(&r.url, "GET", &format!("/{did}"), None, None);
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["id"], did.as_str());
    // The delivery service runs on the same listener, with its own did:web document,
    // and the host proxies an account's createMailbox to it with a service-auth token.
    let (status, body) = http(&r.url, "GET", "/.well-known/did.json", None, None);
    assert_eq!(status, 200);
    let ds_doc = json_of(&body);
    let ds_did = ds_doc["id"].as_str().unwrap().to_owned();
    assert!(ds_did.starts_with("did:web:127.0.0.1%3A"), "{ds_did}");
    assert_eq!(ds_doc["service"][0]["id"], "#chat_mls_ds");
    let (status, body) = http(
        &r.url,
        "GET",
        "/xrpc/chat.mls.ds.describeServer",
        None,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(json_of(&body)["did"], ds_did.as_str());
    let auth = format!("Bearer {access}");
    let proxy = format!("{ds_did}#chat_mls_ds");
    let key = json!({ "kind": "inbox", "key": { "$bytes": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik" } });
    let (status, body) = http_with(
        &r.url,
        "POST",
        "/xrpc/chat.mls.ds.createMailbox",
        &[("Authorization", &auth), ("atproto-proxy", &proxy)],
        Some(&key),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mailbox = json_of(&body);
    assert_eq!(mailbox["kind"], "inbox");
    assert_eq!(mailbox["mailbox"].as_str().unwrap().len(), 52);
    // Without the host's session there is no service-auth token: refused.
    let (status, _) = http_with(
        &r.url,
        "POST",
        "/xrpc/chat.mls.ds.createMailbox",
        &[("atproto-proxy", &proxy)],
        Some(&key),
    );
    assert_eq!(status, 401);
    stop(r);
    for file in ["accounts.sqlite", "repos.sqlite", "plc.sqlite", "ds.sqlite"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }

    let r = start(dir.path());
    let (status, body) = http(
        &r.url,
        "GET",
        "/xrpc/com.atproto.server.getSession",
        Some(&access),
        None,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_of(&body)["did"], did.as_str());
    let (status, _) = http(
        &r.url,
        "POST",
        "/xrpc/com.atproto.server.createSession",
        None,
        Some(&json!({ "identifier": "alice.test", "password": "pw" })),
    );
    assert_eq!(status, 200);
    stop(r);
}

#[test]
fn serve_flags_have_env_vars() {
    let out = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "ATMLS_LISTEN",
        "ATMLS_DATA_DIR",
        "ATMLS_PUBLIC_URL",
        "ATMLS_HANDLE_DOMAINS",
    ] {
        assert!(help.contains(var), "{var} in {help}");
    }
    assert!(help.contains("127.0.0.1:2583"));
}
