//! A restarted `atmls serve` (embedded mode) serves mailbox requests at once after a
//! clean stop (SIGINT or SIGTERM): the replay cache was saved into the DS's database and
//! taken back, so a token used before the stop is still refused as a replay. After a
//! crash (SIGKILL) no clean stop is recorded and the startup guard applies (spec
//! §10.2.1).
#![cfg(unix)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atmls_ds::auth::{DsMethod, RequestToken};
use atmls_ds::{MailboxId, Timestamp};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

struct Running {
    child: Child,
    url: String,
    /// Everything the server wrote to stderr (its log) so far.
    log: Arc<Mutex<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `atmls serve` over `data` and waits (bounded) for its address.
fn start(data: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("ATMLS_DATA_DIR", data)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn atmls serve");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut running = Running {
        child,
        url: String::new(),
        log,
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("atmls serve prints its address");
        if let Some(rest) = line.trim().strip_prefix("PLC directory:") {
            let url = rest.trim().split(' ').next().unwrap().trim_end_matches('/');
            running.url = url.to_owned();
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return running;
        }
    }
}

impl Running {
    /// Sends `signal` and waits (bounded) for the exit; `clean`: it must succeed.
    fn stop(mut self, signal: &str, clean: bool) -> String {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "still running after {signal}");
            std::thread::sleep(Duration::from_millis(20));
        };
        if clean {
            assert!(status.success(), "{status}");
        }
        self.log()
    }

    /// The log so far, once the line naming the startup guard is in (bounded wait).
    fn guard_log(&self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log();
            if log.contains("startup guard") || Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, body).
fn http(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
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
    let body = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    (status, body)
}

/// The `Authorization` header of a `listInbox` on `inbox`, signed now with `nonce`.
fn list_inbox_auth(key: &SigningKey, inbox: &MailboxId, query: &str, nonce: u8) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let now = Timestamp::from_millis(u64::try_from(now.as_millis()).unwrap());
    RequestToken::sign(
        key,
        DsMethod::ListInbox,
        inbox,
        now,
        [nonce; 16],
        query.as_bytes(),
    )
    .authorization_header()
}

fn list_inbox(url: &str, query: &str, auth: &str) -> (u16, Value) {
    http(
        url,
        "GET",
        &format!("/xrpc/chat.mls.ds.listInbox?{query}"),
        &[("Authorization", auth)],
        None,
    )
}

#[test]
fn a_restart_after_a_clean_stop_serves_at_once_and_after_a_crash_guards() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path());
    // An account, and an inbox created through the host's atproto-proxy.
    let (status, session) = http(
        &r.url,
        "POST",
        "/xrpc/com.atproto.server.createAccount",
        &[],
        Some(&json!({ "handle": "alice.test", "password": "pw" })),
    );
    assert_eq!(status, 200, "{session}");
    let access = format!("Bearer {}", session["accessJwt"].as_str().unwrap());
    let (_, doc) = http(&r.url, "GET", "/.well-known/did.json", &[], None);
    let proxy = format!("{}#chat_mls_ds", doc["id"].as_str().unwrap());
    let key = SigningKey::from_bytes(&[7; 32]);
    let public = STANDARD_NO_PAD.encode(key.verifying_key().to_bytes());
    let (status, created) = http(
        &r.url,
        "POST",
        "/xrpc/chat.mls.ds.createMailbox",
        &[("Authorization", &access), ("atproto-proxy", &proxy)],
        Some(&json!({ "kind": "inbox", "key": { "$bytes": public } })),
    );
    assert_eq!(status, 200, "{created}");
    let id = created["mailbox"].as_str().unwrap().to_owned();
    let inbox: MailboxId = id.parse().unwrap();
    let query = format!("inbox={id}");

    // A mailbox request before the stop.
    let used = list_inbox_auth(&key, &inbox, &query, 1);
    let (status, body) = list_inbox(&r.url, &query, &used);
    assert_eq!(status, 200, "{body}");
    let first_log = r.stop("-INT", true);
    assert!(
        first_log.contains("startup guard off: a new database"),
        "{first_log}"
    );
    assert!(
        first_log.contains("clean stop: replay cache saved"),
        "{first_log}"
    );

    // Started again after a clean stop: a new request is served at once (before the
    // saved replay cache, this was 503 ServiceUnavailable for 120 s)...
    let r = start(dir.path());
    let (status, body) = list_inbox(&r.url, &query, &list_inbox_auth(&key, &inbox, &query, 2));
    assert_eq!(status, 200, "{body}");
    // ...and the token used before the stop is still a replay.
    let (status, body) = list_inbox(&r.url, &query, &used);
    assert_eq!(body["error"], "ReplayedRequest", "{status} {body}");
    let log = r.guard_log();
    assert!(
        log.contains("startup guard off: clean stop recorded, replay cache restored (1 entries)"),
        "{log}"
    );
    // The log names no mailbox and no key.
    assert!(!log.contains(&id), "{log}");
    assert!(!log.contains(&public), "{log}");

    // A crash: no clean stop recorded, the guard applies to tokens signed before the
    // restart (and to the token used before it).
    r.stop("-KILL", false);
    let r = start(dir.path());
    let (status, body) = list_inbox(&r.url, &query, &list_inbox_auth(&key, &inbox, &query, 3));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "ServiceUnavailable", "{body}");
    let log = r.guard_log();
    assert!(
        log.contains("startup guard on: no clean stop recorded"),
        "{log}"
    );
    // SIGTERM is a clean stop too: the next start has no guard.
    r.stop("-TERM", true);
    let r = start(dir.path());
    let (status, body) = list_inbox(&r.url, &query, &list_inbox_auth(&key, &inbox, &query, 4));
    assert_eq!(status, 200, "{body}");
    r.stop("-INT", true);
}
