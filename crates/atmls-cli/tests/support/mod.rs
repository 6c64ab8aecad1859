//! Test support for the CLI tests that run `atmls serve` and the `atmls` client as
//! processes: a server on loopback and one command of a profile, `--json`.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub(crate) const WAIT: Duration = Duration::from_secs(30);

pub(crate) struct Serve {
    /// Held for its `Drop`, which kills the server.
    _server: Lines,
    pub(crate) url: String,
}

impl Serve {
    /// `atmls serve` on a free loopback port over `data`.
    pub(crate) fn start(data: &Path) -> Self {
        Self::start_with(data, &[])
    }

    /// [`Self::start`] with more flags.
    pub(crate) fn start_with(data: &Path, flags: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atmls"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(flags)
            .env("ATMLS_DATA_DIR", data)
            .stderr(Stdio::null());
        let mut server = Lines::spawn(cmd);
        let line = server.wait_for("the start-up line with the address", WAIT, |l| {
            listening_url(l).is_some()
        });
        let url = listening_url(&line).expect("url");
        Self {
            _server: server,
            url,
        }
    }
}

/// The `atmls` command of `profile` (profiles under `profiles`, PDS at `pds`), with the
/// test password and passphrase and the cheap KDF; standard input closed.
pub(crate) fn command(profiles: &Path, profile: &str, pds: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atmls"));
    cmd.args(["--profile", profile])
        .args(args)
        .env("ATMLS_PROFILE_DIR", profiles)
        .env("ATMLS_PASSWORD", "correct horse")
        .env("ATMLS_PASSPHRASE", "test passphrase")
        .env("ATMLS_KDF_INSECURE_FOR_TESTS", "1")
        .env("ATMLS_PDS", pds)
        .env_remove("ATMLS_DATA_DIR")
        .env_remove("ATMLS_DS")
        .env_remove("ATMLS_PLC")
        .env_remove("ATMLS_XWING")
        .stdin(Stdio::null());
    cmd
}

/// Runs one command of `profile` with `--json`.
pub(crate) fn atmls(profiles: &Path, profile: &str, pds: &str, args: &[&str]) -> Output {
    command(profiles, profile, pds, args)
        .arg("--json")
        .output()
        .expect("run atmls")
}

/// The `http://…` URL on a start-up line that says where the server listens.
pub(crate) fn listening_url(line: &str) -> Option<String> {
    if !line.contains("listening") {
        return None;
    }
    let start = line.find("http://")?;
    let url = line[start..].split_whitespace().next()?;
    Some(url.trim_end_matches('/').to_owned())
}

/// A child process whose standard output arrives line by line on a channel; killed when
/// dropped.
pub(crate) struct Lines {
    child: Child,
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    pub(crate) fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn atmls");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line that `want` accepts within `limit`; panics (with the output so far)
    /// after it.
    pub(crate) fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        want: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no {what} within {limit:?}; output so far: {:#?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// The process's standard input (it must have been spawned with `Stdio::piped()`).
    pub(crate) fn stdin(&mut self) -> &mut ChildStdin {
        self.child.stdin.as_mut().expect("stdin piped")
    }

    /// Kills the process (SIGKILL: a crash, nothing is flushed on the way out).
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn ok(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

pub(crate) fn err(out: &Output) -> Value {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stderr)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
}
