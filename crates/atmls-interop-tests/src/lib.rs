//! Harness for the interop scenarios in `tests/`: the official atproto PLC directory and
//! PDS (`tests/interop/official-pds/`, installed with npm at pinned versions into a cache
//! directory outside the clone), and `atmls serve` in attached mode, each as a child
//! process on loopback that is stopped when its handle is dropped.
//!
//! Nothing here skips: a missing Node.js, a failed `npm ci` or a service that does not
//! come up is an error that says so.

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// Longest time `npm ci` may take (a cold install takes about 90 s here).
const INSTALL_LIMIT: Duration = Duration::from_secs(480);
/// Longest time a child process may take to print its start-up lines.
const START_LIMIT: Duration = Duration::from_secs(120);
/// How long a child is given to stop by itself before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// Why the harness could not provide a service.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A required program is not installed.
    #[error(
        "`{0}` is required for the official-PDS interop test (Node.js 20 with npm); \
         install it: this test does not skip"
    )]
    Missing(&'static str),
    /// No cache directory could be chosen.
    #[error("no cache directory: set ATMLS_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `npm ci` failed or took too long.
    #[error("installing the official PDS with `npm ci` in {dir} failed: {output}")]
    Install {
        /// The install directory.
        dir: PathBuf,
        /// What npm printed, or why it was stopped.
        output: String,
    },
    /// A child process did not start or did not report in time.
    #[error("{what} did not start: {why}")]
    Start {
        /// Which service.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// Building the `atmls` binary failed.
    #[error("building the atmls binary failed: {0}")]
    Build(String),
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError {
    let path = path.to_owned();
    move |source| HarnessError::Io { what, path, source }
}

/// The workspace root of this clone.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `tests/interop/official-pds/` of this clone: `package.json`, `package-lock.json`,
/// `start.mjs`.
pub fn harness_dir() -> PathBuf {
    workspace_root().join("tests/interop/official-pds")
}

/// `$ATMLS_CACHE_DIR`, else `$XDG_CACHE_HOME/atmls`, else `$HOME/.cache/atmls`.
fn cache_root() -> Result<PathBuf, HarnessError> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = nonempty("ATMLS_CACHE_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = nonempty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(d).join("atmls"));
    }
    nonempty("HOME")
        .map(|h| PathBuf::from(h).join(".cache/atmls"))
        .ok_or(HarnessError::NoCacheDir)
}

fn require(tool: &'static str) -> Result<String, HarnessError> {
    let out = Command::new(tool)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .map_err(|_| HarnessError::Missing(tool))?;
    if !out.status.success() {
        return Err(HarnessError::Missing(tool));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `cmd` to completion within `limit`, returning (success, stdout + stderr).
fn run_bounded(mut cmd: Command, limit: Duration) -> std::io::Result<(bool, String)> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    Ok(match status {
        Some(s) => (s.success(), text),
        None => (false, format!("stopped after {limit:?}\n{text}")),
    })
}

/// The install directory for the current lockfile: `<cache>/official-pds/<hash>`, where
/// the hash covers `package.json` and `package-lock.json`.
fn install_dir() -> Result<PathBuf, HarnessError> {
    let mut hash = Sha256::new();
    for name in ["package.json", "package-lock.json"] {
        let path = harness_dir().join(name);
        hash.update(std::fs::read(&path).map_err(io("cannot read", &path))?);
    }
    let hex: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(cache_root()?.join("official-pds").join(hex))
}

/// Installs the pinned packages with `npm ci` unless this lockfile's install is already
/// in the cache; returns the install directory. Installs into a temporary directory
/// and renames it into place, so a broken install is never reused.
pub fn install() -> Result<PathBuf, HarnessError> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    require("node")?;
    require("npm")?;
    let dir = install_dir()?;
    let marker = dir.join("node_modules/.atmls-installed");
    if marker.exists() {
        return Ok(dir);
    }
    let parent = dir.parent().unwrap_or(&dir).to_owned();
    std::fs::create_dir_all(&parent).map_err(io("cannot create", &parent))?;
    let tmp = parent.join(format!(
        "{}.tmp-{}",
        dir.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("install"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io("cannot create", &tmp))?;
    for name in ["package.json", "package-lock.json"] {
        let to = tmp.join(name);
        std::fs::copy(harness_dir().join(name), &to).map_err(io("cannot copy to", &to))?;
    }
    eprintln!(
        "installing @atproto/pds + @atproto/dev-env with npm ci into {}",
        dir.display()
    );
    let mut cmd = Command::new("npm");
    cmd.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&tmp)
        .stdin(Stdio::null());
    let (ok, output) = run_bounded(cmd, INSTALL_LIMIT).map_err(|e| HarnessError::Install {
        dir: tmp.clone(),
        output: e.to_string(),
    })?;
    if !ok {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(HarnessError::Install { dir, output });
    }
    let done = tmp.join("node_modules/.atmls-installed");
    std::fs::write(&done, b"").map_err(io("cannot write", &done))?;
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process installed the same lockfile meanwhile.
        let _ = std::fs::remove_dir_all(&tmp);
        if !marker.exists() {
            return Err(HarnessError::Install {
                dir,
                output: "cannot move the finished install into place".into(),
            });
        }
    }
    Ok(dir)
}

/// A child process that is stopped when dropped: stdin closed (the official network's
/// script exits on that) or SIGTERM, then killed after [`STOP_LIMIT`].
#[derive(Debug)]
struct Guard {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Guard {
    /// Spawns `cmd` (stdin and stdout piped) and waits for its first stdout lines until
    /// `done` accepts them.
    fn start(
        what: &'static str,
        mut cmd: Command,
        mut done: impl FnMut(&[String]) -> bool + Send + 'static,
    ) -> Result<(Self, Vec<String>), HarnessError> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| HarnessError::Start {
                what,
                why: e.to_string(),
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let guard = Guard { child, stdin };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut reader = BufReader::new(stdout.expect("piped stdout"));
            let mut sent = false;
            let mut line = String::new();
            // Keep reading to the end so the child never blocks on a full pipe.
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if !sent {
                    lines.push(line.trim_end().to_owned());
                    if done(&lines) {
                        let _ = tx.send(std::mem::take(&mut lines));
                        sent = true;
                    }
                } else {
                    println!("{}", line.trim_end());
                }
                line.clear();
            }
            if !sent {
                let _ = tx.send(lines);
            }
        });
        let lines = rx
            .recv_timeout(START_LIMIT)
            .map_err(|_| HarnessError::Start {
                what,
                why: format!("no start-up line within {START_LIMIT:?}"),
            })?;
        Ok((guard, lines))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The official PLC directory and PDS, running (`start.mjs`).
#[derive(Debug)]
pub struct OfficialPds {
    /// The PLC directory's base URL.
    pub plc_url: String,
    /// The PDS's base URL (`http://localhost:<port>`).
    pub pds_url: String,
    /// The package versions tested against (`@atproto/pds`, `@atproto/dev-env`, node).
    pub versions: serde_json::Value,
    _guard: Guard,
}

impl OfficialPds {
    /// Installs (or reuses) the pinned packages and starts PLC + PDS on loopback.
    pub fn start() -> Result<Self, HarnessError> {
        let dir = install()?;
        let script = dir.join("start.mjs");
        std::fs::copy(harness_dir().join("start.mjs"), &script)
            .map_err(io("cannot copy to", &script))?;
        let mut cmd = Command::new("node");
        cmd.arg("start.mjs").current_dir(&dir);
        let (guard, lines) = Guard::start("the official PDS", cmd, |l| !l.is_empty())?;
        let line = lines.last().cloned().unwrap_or_default();
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| HarnessError::Start {
                what: "the official PDS",
                why: format!("{e} in start-up line {line:?}"),
            })?;
        let url = |k: &str| {
            v[k].as_str()
                .map(str::to_owned)
                .ok_or_else(|| HarnessError::Start {
                    what: "the official PDS",
                    why: format!("no {k} in {line}"),
                })
        };
        Ok(Self {
            plc_url: url("plcUrl")?,
            pds_url: url("pdsUrl")?,
            versions: v["versions"].clone(),
            _guard: guard,
        })
    }
}

/// The `atmls` binary of this workspace, built now (same target directory and profile
/// as this test binary) so that the test runs the real `atmls serve`.
pub fn atmls_binary() -> Result<PathBuf, HarnessError> {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return Ok(p.clone());
    }
    // <target>/<profile>/deps/<this test binary>
    let exe = std::env::current_exe().map_err(|e| HarnessError::Build(e.to_string()))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| HarnessError::Build(format!("unexpected test path {}", exe.display())))?;
    let target_dir = profile_dir.parent().unwrap_or(profile_dir);
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // The variables cargo sets for this test binary would reach build scripts that watch
    // them (`rerun-if-env-changed`) and make both builds redo each other's work.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let per_test = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*key);
        if per_test {
            cmd.env_remove(&*key);
        }
    }
    cmd.args(["build", "--quiet", "-p", "atmls-cli", "--bin", "atmls"])
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null());
    if release {
        cmd.arg("--release");
    }
    let (ok, output) = run_bounded(cmd, Duration::from_secs(600))
        .map_err(|e| HarnessError::Build(e.to_string()))?;
    if !ok {
        return Err(HarnessError::Build(output));
    }
    let bin = profile_dir.join(format!("atmls{}", std::env::consts::EXE_SUFFIX));
    *built = Some(bin.clone());
    Ok(bin)
}

/// `atmls serve` in attached mode, running.
#[derive(Debug)]
pub struct AttachedDs {
    /// The DS's public URL (`http://localhost:<port>`).
    pub url: String,
    /// The DS's DID (`did:web:localhost%3A<port>`).
    pub did: String,
    /// The start-up lines it printed.
    pub banner: Vec<String>,
    _guard: Guard,
}

impl AttachedDs {
    /// Runs `atmls serve --pds-url <pds_url> --plc-url <plc_url>` on a free loopback port
    /// with its data in `data_dir`.
    pub fn start(pds_url: &str, plc_url: &str, data_dir: &Path) -> Result<Self, HarnessError> {
        let mut cmd = Command::new(atmls_binary()?);
        // The official PDS and PLC directory run on loopback: the development allowance.
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--pds-url", pds_url])
            .arg("--allow-loopback")
            .args(["--plc-url", plc_url])
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("ATMLS_CONFIG")
            .env_remove("ATMLS_PUBLIC_URL")
            .env_remove("ATMLS_SERVICE_DID");
        let (guard, banner) = Guard::start("atmls serve (attached mode)", cmd, |l| {
            l.iter()
                .any(|l| l.trim_start().starts_with("PLC directory:"))
        })?;
        let field = |name: &str| {
            banner
                .iter()
                .find_map(|l| l.trim_start().strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
                .ok_or_else(|| HarnessError::Start {
                    what: "atmls serve (attached mode)",
                    why: format!("no {name:?} line in {banner:?}"),
                })
        };
        Ok(Self {
            url: field("public URL:")?,
            did: field("service DID:")?,
            banner: banner.clone(),
            _guard: guard,
        })
    }
}
