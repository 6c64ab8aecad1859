//! `atmls serve` in attached mode, as a process: settings from a config file, environment
//! variables over the file, start-up lines, the DS's own DID document, and a clean stop on
//! SIGTERM and on SIGINT (restarting over the same data directory in between).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

struct Running {
    child: Child,
    banner: Vec<String>,
    rest: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `atmls serve` with `env` and reads its start-up lines.
fn start(env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atmls"));
    cmd.arg("serve").stdout(Stdio::piped()).stdin(Stdio::null());
    for key in [
        "ATMLS_PUBLIC_URL",
        "ATMLS_DS_DID",
        "ATMLS_PLC_URL",
        "ATMLS_DATA_DIR",
        "ATMLS_ALLOW_LOOPBACK",
    ] {
        cmd.env_remove(key);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("run atmls serve");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while !banner
        .iter()
        .any(|l: &String| l.trim_start().starts_with("PLC directory:"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        banner.push(rx.recv_timeout(left).expect("start-up lines in time"));
    }
    Running {
        child,
        banner,
        rest: rx,
    }
}

impl Running {
    fn field(&self, name: &str) -> String {
        self.banner
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.banner))
            .to_owned()
    }

    /// Sends `signal` and waits for `stopped` and a successful exit.
    fn stop(mut self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let line = self
            .rest
            .recv_timeout(LIMIT)
            .expect("a line after the signal");
        assert_eq!(line, "stopped");
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                return;
            }
            assert!(Instant::now() < deadline, "still running after {signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `GET path` on `host:port`, HTTP/1.1 with `Connection: close`: (status line, body).
fn get(authority: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(authority.replace("localhost", "127.0.0.1")).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[test]
fn attached_mode_from_config_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "pds-url = \"http://localhost:9\"\nservice-did = \"did:web:file.example\"\n\
             data-dir = {data:?}\nplc-url = \"http://localhost:10\"\n\
             group-retention-days = 30\nonly-pds-accounts = true\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = [
        ("ATMLS_CONFIG", config),
        ("ATMLS_LISTEN", "127.0.0.1:0"),
        // The variable wins over the file.
        ("ATMLS_SERVICE_DID", "did:web:ds.example.com"),
    ];
    let run = start(&env);
    let text = run.banner.join("\n");
    assert!(text.contains("attached mode"), "{text}");
    assert!(text.contains("http://localhost:9"), "{text}");
    assert!(text.contains("http://localhost:10"), "{text}");
    assert!(
        text.contains("group envelopes 30 days, inbox items kept"),
        "{text}"
    );
    assert!(
        text.contains(
            "accounts:         those whose PDS is http://localhost:9 (others: AccountNotServed)"
        ),
        "{text}"
    );
    assert_eq!(run.field("service DID:"), "did:web:ds.example.com");
    let url = run.field("public URL:");
    let authority = url
        .strip_prefix("http://localhost:")
        .map(|p| format!("localhost:{p}"));
    let authority = authority.unwrap_or_else(|| panic!("loopback default URL: {url}"));

    let (status, body) = get(&authority, "/.well-known/did.json");
    assert!(status.contains(" 200 "), "{status}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["id"], "did:web:ds.example.com");
    assert_eq!(doc["service"][0]["id"], "#chat_mls_ds");
    assert_eq!(doc["service"][0]["serviceEndpoint"], url.as_str());
    let (status, body) = get(&authority, "/xrpc/chat.mls.ds.describeServer");
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains("did:web:ds.example.com"), "{body}");
    // No account host in attached mode.
    let (status, _) = get(&authority, "/xrpc/com.atproto.server.describeServer");
    assert!(!status.contains(" 200 "), "{status}");
    run.stop("-TERM");
    assert!(data.join("ds.sqlite").exists());

    // Again over the same data directory, without the variable: the file's DID.
    let run = start(&env[..2]);
    assert_eq!(run.field("service DID:"), "did:web:file.example");
    assert_eq!(run.field("accounts:"), "those");
    run.stop("-INT");
}

/// Runs `atmls serve <args>`, which must fail; its stderr.
fn serve_fails(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .arg("serve")
        .args(args)
        .env_remove("ATMLS_CONFIG")
        .env_remove("ATMLS_PDS_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_attached_settings_fail_with_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    let path = config.to_str().unwrap();
    std::fs::write(&config, "pds_url = \"http://localhost:9\"\n").unwrap();
    let err = serve_fails(&["--config", path]);
    assert!(
        err.contains("invalid config file") && err.contains("pds_url"),
        "{err}"
    );
    let err = serve_fails(&[
        "--pds-url",
        "ftp://pds.example.com",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("invalid --pds-url"), "{err}");
    std::fs::write(&config, "inbox-retention-days = 0\n").unwrap();
    let err = serve_fails(&["--config", path]);
    assert!(err.contains("at least 1 day"), "{err}");
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A service-auth token for `createMailbox` at `aud` that passes every check before the
/// issuer's DID is resolved (its signature is never reached).
fn token_needing_resolution(aud: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = base64url(br#"{"typ":"JWT","alg":"ES256K"}"#);
    let claims = serde_json::json!({
        "iss": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "aud": aud, "iat": now, "exp": now + 60,
        "lxm": "chat.mls.ds.createMailbox", "jti": format!("probe-{now}"),
    });
    let payload = base64url(claims.to_string().as_bytes());
    format!("{header}.{payload}.{}", base64url(&[1; 64]))
}

/// `POST path` with a JSON body and a bearer token: (status line, body).
fn post(authority: &str, path: &str, token: &str, body: &str) -> (String, String) {
    let mut s = TcpStream::connect(authority.replace("localhost", "127.0.0.1")).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// Issue 14, hole 4: attached mode used to resolve DIDs on loopback (and over plain http)
/// unconditionally. Now a DID directory on loopback is never contacted unless the
/// development setting `--allow-loopback` is given, and the caller learns only that the
/// destination was refused.
#[test]
fn attached_mode_reaches_loopback_only_when_allowed() {
    // A "PLC directory" on loopback that counts the requests it gets (answering 404).
    let plc = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let plc_url = format!("http://{}", plc.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    std::thread::spawn(move || {
        for stream in plc.incoming() {
            let Ok(mut stream) = stream else { return };
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let mailbox =
        r#"{"kind":"inbox","key":{"$bytes":"WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY"}}"#;
    for allow in [None, Some("true")] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_str().unwrap().to_owned();
        let mut env = vec![
            ("ATMLS_PDS_URL", "http://localhost:9"),
            ("ATMLS_LISTEN", "127.0.0.1:0"),
            ("ATMLS_DATA_DIR", data.as_str()),
            ("ATMLS_PLC_URL", plc_url.as_str()),
        ];
        if let Some(allow) = allow {
            env.push(("ATMLS_ALLOW_LOOPBACK", allow));
        }
        let before = hits.load(Ordering::SeqCst);
        let run = start(&env);
        let text = run.banner.join("\n");
        let url = run.field("public URL:");
        let authority = url.trim_start_matches("http://").to_owned();
        let token = token_needing_resolution(&run.field("service DID:"));
        let (status, body) = post(
            &authority,
            "/xrpc/chat.mls.ds.createMailbox",
            &token,
            mailbox,
        );
        assert!(status.contains(" 401 "), "{status} {body}");
        let fetched = hits.load(Ordering::SeqCst) - before;
        if allow.is_none() {
            assert!(
                text.contains("outbound:         public addresses only"),
                "{text}"
            );
            assert_eq!(fetched, 0, "the directory on loopback was contacted");
            assert!(body.contains("destination refused"), "{body}");
            assert!(!body.contains(&plc_url[7..]), "no address in {body}");
        } else {
            assert!(text.contains("loopback (development)"), "{text}");
            assert!(fetched >= 1, "the allowed directory was asked");
            assert!(body.contains("not found"), "{body}");
        }
        run.stop("-TERM");
    }
}

/// The labels of start-up lines (`  name:   value` → `name:`), in order; the first line
/// (`atmls serve <version> (…)`) as `atmls serve`.
fn labels(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let l = l.trim();
            if l.starts_with("atmls serve ") {
                return "atmls serve".to_owned();
            }
            // "listening on" has no colon.
            if let Some(rest) = l.strip_prefix("listening on") {
                assert!(rest.starts_with(' '), "{l}");
                return "listening on".to_owned();
            }
            l.split_once(':')
                .map(|(k, _)| format!("{k}:"))
                .unwrap_or_default()
        })
        .collect()
}

/// The repository's file `path` (from the crate directory).
fn repo_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// Boolean variables in the usual spellings; the start-up lines have the labels of the
/// sample in `docs/operators.md` §3, in its order; `describeServer` answers the fields of
/// the sample in `docs/spec.md` §6.
#[test]
fn booleans_banner_and_describe_server_match_the_docs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let env = [
        ("ATMLS_PDS_URL", "http://127.0.0.1:9"),
        ("ATMLS_DATA_DIR", data),
        ("ATMLS_LISTEN", "127.0.0.1:0"),
        ("ATMLS_PLC_URL", "http://localhost:10"),
        ("ATMLS_GROUP_RETENTION_DAYS", "30"),
        ("ATMLS_INBOX_RETENTION_DAYS", "30"),
        ("ATMLS_ONLY_PDS_ACCOUNTS", "1"),
        ("ATMLS_ALLOW_LOOPBACK", "ON"),
    ];
    let run = start(&env);
    let text = run.banner.join("\n");
    assert!(
        text.contains("accounts:         those whose PDS is http://127.0.0.1:9"),
        "{text}"
    );
    assert!(text.contains("loopback (development)"), "{text}");

    let docs = repo_file("docs/operators.md");
    let sample: Vec<String> = docs
        .lines()
        .skip_while(|l| !l.starts_with("atmls serve 0.1.0 (attached mode"))
        .take_while(|l| !l.starts_with("```"))
        .map(str::to_owned)
        .collect();
    assert!(!sample.is_empty(), "no start-up sample in operators.md");
    assert_eq!(labels(&run.banner), labels(&sample), "{text}");

    let url = run.field("public URL:");
    let authority = url.trim_start_matches("http://").to_owned();
    let (status, body) = get(&authority, "/xrpc/chat.mls.ds.describeServer");
    assert!(status.contains(" 200 "), "{status}");
    let live: serde_json::Value = serde_json::from_str(&body).unwrap();
    let spec = repo_file("docs/spec.md");
    let at = spec
        .find("### `chat.mls.ds.describeServer`")
        .expect("describeServer in spec.md");
    let block = &spec[at..];
    let start_json = block.find("```json\n").unwrap() + "```json\n".len();
    let end_json = block[start_json..].find("```").unwrap() + start_json;
    let sample: serde_json::Value = serde_json::from_str(&block[start_json..end_json]).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&live), keys(&sample), "{body}");
    // The sample shows the defaults, without retention; this server keeps 30 days.
    let mut limits = live["limits"].as_object().unwrap().clone();
    assert_eq!(
        limits.remove("groupRetentionSeconds"),
        Some((30 * 86400).into())
    );
    assert_eq!(
        limits.remove("inboxRetentionSeconds"),
        Some((30 * 86400).into())
    );
    assert_eq!(
        serde_json::Value::Object(limits),
        sample["limits"],
        "{body}"
    );
    run.stop("-TERM");

    let err = serve_fails(&[
        "--pds-url",
        "http://127.0.0.1:9",
        "--only-pds-accounts",
        "maybe",
    ]);
    assert!(err.contains("1/0, true/false, yes/no or on/off"), "{err}");
}

/// `serve --help` says which options belong to which mode.
#[test]
fn help_marks_each_mode_only_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let text: String = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for (flag, mode) in [
        ("--handle-domains", "(embedded mode)"),
        ("--pds-url", "(attached mode)"),
        ("--only-pds-accounts", "(attached mode)"),
    ] {
        let at = text
            .find(flag)
            .unwrap_or_else(|| panic!("{flag} in {help}"));
        let after = &text[at..];
        assert!(
            after[..after.len().min(80)].contains(mode),
            "{flag}: {after}"
        );
    }
    assert!(text.contains("apply to that mode only"), "{help}");
}

/// `atmls serve --database` through the real binary: the DS on the test cluster's
/// PostgreSQL, in its own schema, with two writer lanes; the start-up lines say so (never
/// the URL, which may hold a password), `/_health` reports the database, and a clean stop.
/// The database-only flags without `--database` are refused.
#[test]
fn attached_mode_on_postgresql_with_its_flags() {
    let url = atmls_testkit::database::database_url();
    let schema = atmls_testkit::database::fresh_schema_name("cli_serve");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = start(&[
        ("ATMLS_PDS_URL", "http://localhost:9"),
        ("ATMLS_LISTEN", "127.0.0.1:0"),
        ("ATMLS_DATA_DIR", data.to_str().unwrap()),
        ("ATMLS_DATABASE_URL", url.as_str()),
        ("ATMLS_DB_SCHEMA", schema.as_str()),
        ("ATMLS_DB_WRITER_LANES", "2"),
    ]);
    let banner = running.banner.join("\n");
    assert!(
        banner.contains("PostgreSQL") && banner.contains("2 writer lane(s)"),
        "{banner}"
    );
    assert!(!banner.contains(&url), "the URL is never printed: {banner}");
    let listen = running.field("listening on");
    let authority = listen.trim_start_matches("http://");
    let (status, body) = get(authority, "/_health");
    assert!(status.contains("200"), "{status} {body}");
    assert!(body.contains("\"ok\""), "{body}");
    running.stop("-TERM");

    let err = serve_fails(&[
        "--pds-url",
        "http://localhost:9",
        "--listen",
        "127.0.0.1:0",
        "--db-writer-lanes",
        "2",
    ]);
    assert!(err.contains("apply to the PostgreSQL DS only"), "{err}");
    let err = serve_fails(&[
        "--pds-url",
        "http://localhost:9",
        "--listen",
        "127.0.0.1:0",
        "--database",
        &url,
        "--db-schema",
        "Bad-Name",
    ]);
    assert!(err.contains("--db-schema"), "{err}");
}
