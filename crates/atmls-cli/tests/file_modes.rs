//! Secrets on disk (issue 20): `atmls serve` and the client profiles create every file
//! owner-only (`0600`, SQLite's `-wal`/`-shm` included) in owner-only directories
//! (`0700`), tighten wider modes they find (with a warning), and refuse directories other
//! users can write to.
#![cfg(unix)]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// `atmls serve` on 127.0.0.1:0 over `data`; killed on drop.
struct Serve {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
}

impl Serve {
    fn start(data: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_atmls"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("ATMLS_DATA_DIR", data)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn atmls serve");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if etx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let Ok(line) = rx.recv_timeout(WAIT) else {
                let _ = child.kill();
                let _ = child.wait();
                let lines: Vec<String> = erx.try_iter().collect();
                panic!("atmls serve did not print its address; stderr: {lines:#?}");
            };
            if line.contains("listening")
                && let Some(at) = line.find("http://")
            {
                let url = line[at..].split_whitespace().next().unwrap();
                let url = url.trim_end_matches('/').to_owned();
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return Self {
                    child,
                    url,
                    stderr: erx,
                };
            }
        }
    }

    fn logged(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(url: &str, profiles: &Path, profile: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["--profile", profile])
        .args(args)
        .env("ATMLS_PROFILE_DIR", profiles)
        .env("ATMLS_PASSWORD", "correct horse")
        .env("ATMLS_PASSPHRASE", "test passphrase")
        .env("ATMLS_KDF_INSECURE_FOR_TESTS", "1")
        .env("ATMLS_PDS", url)
        .env_remove("ATMLS_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run atmls")
}

fn ok(out: Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Every directory and file under `root` (itself included).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut all = vec![root.to_owned()];
    let mut i = 0;
    while i < all.len() {
        if all[i].is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&all[i])
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            children.sort();
            all.extend(children);
        }
        i += 1;
    }
    all
}

/// Asserts the modes under `root`; returns the names of the files seen.
fn assert_private(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for path in walk(root) {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(
            mode(&path),
            want,
            "{} is {:o}, want {want:o}",
            path.display(),
            mode(&path)
        );
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names
}

#[test]
fn host_ds_plc_and_profiles_are_owner_only_after_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let profiles = dir.path().join("profiles");
    let serve = Serve::start(&data);
    for (p, handle) in [("alice", "alice.test"), ("bob", "bob.test")] {
        let email = format!("{p}@example.com");
        let out = client(
            &serve.url,
            &profiles,
            p,
            &["account", "create", "--handle", handle, "--email", &email],
        );
        ok(out, "account create");
    }
    let out = client(
        &serve.url,
        &profiles,
        "alice",
        &["group", "create", "tea", "--with", "bob.test"],
    );
    ok(out, "group create");
    ok(
        client(&serve.url, &profiles, "alice", &["send", "tea", "hello"]),
        "send",
    );
    ok(client(&serve.url, &profiles, "bob", &["inbox"]), "inbox");

    // While the server runs its WAL files exist: they hold recent pages in clear.
    let server_files = assert_private(&data);
    for name in [
        "accounts.sqlite",
        "repos.sqlite",
        "plc.sqlite",
        "ds.sqlite",
        "ds.sqlite-wal",
        "ds.sqlite-shm",
        "accounts.sqlite-wal",
    ] {
        assert!(
            server_files.iter().any(|f| f == name),
            "{name} not in {server_files:?}"
        );
    }
    let profile_files = assert_private(&profiles);
    assert!(
        profile_files.iter().any(|f| f.ends_with(".sqlite")),
        "{profile_files:?}"
    );
    assert!(
        profile_files.iter().any(|f| f == "session.json"),
        "{profile_files:?}"
    );
}

#[test]
fn wider_modes_are_tightened_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let accounts = data.join("accounts.sqlite");
    std::fs::write(&accounts, b"").unwrap();
    std::fs::set_permissions(&accounts, std::fs::Permissions::from_mode(0o644)).unwrap();

    let serve = Serve::start(&data);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&accounts), 0o600);
    let logged = serve.logged().join("\n");
    assert!(logged.contains("tightened to 0700"), "{logged}");
    assert!(logged.contains("tightened to 0600"), "{logged}");
}

#[test]
fn directories_other_users_can_write_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("ATMLS_DATA_DIR", &data)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("can be written by other users (world-writable)") && err.contains("chmod 700"),
        "{err}"
    );
    // Nothing was created in it.
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);

    let profiles = dir.path().join("profiles");
    let carol = profiles.join("carol");
    std::fs::create_dir_all(&carol).unwrap();
    std::fs::set_permissions(&carol, std::fs::Permissions::from_mode(0o775)).unwrap();
    let out = client(
        "http://127.0.0.1:9",
        &profiles,
        "carol",
        &["account", "show", "--json"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UnsafeProfileDir"), "{err}");
    assert!(err.contains("group-writable"), "{err}");
}
