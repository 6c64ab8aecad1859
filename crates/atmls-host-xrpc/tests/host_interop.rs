//! The official TypeScript client (`@atproto/api`) works against our host unchanged, and
//! the official `@atproto/repo` verifies our proofs and CARs. Driven through
//! `tests/interop/atproto-api/interop.mjs`. This test FAILS (it does not skip) when npm or
//! node is missing or the install fails.

mod host_util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use host_util::{TestHost, key_package};
use serde_json::Value;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/atproto-api")
}

/// Runs `cmd` on a blocking thread, killing it after `limit`.
async fn run(mut cmd: Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (is Node.js/npm installed?)"));
    let id = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    match tokio::time::timeout(limit, waiting).await {
        Ok(out) => out.expect("join").expect("output"),
        Err(_) => {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("{what} took longer than {limit:?}");
        }
    }
}

fn require(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "`{tool}` is required for the official-client interop test (Node.js 20 with npm); \
         install it, this test does not skip"
    );
}

async fn npm_ci(dir: &Path) {
    let mut cmd = Command::new("npm");
    cmd.args([
        "ci",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "--cache",
    ])
    .arg(dir.join(".npm-cache"))
    .current_dir(dir);
    let out = run(cmd, Duration::from_secs(600)).await;
    assert!(
        out.status.success(),
        "npm ci in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_and_repo_library_interoperate() {
    require("node");
    require("npm");
    let dir = interop_dir();
    let installed = dir.join("node_modules/@atproto/api/package.json").exists()
        && dir.join("node_modules/@atproto/repo/package.json").exists();
    if !installed {
        npm_ci(&dir).await;
    }

    let t = TestHost::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let record = tmp.path().join("keyPackage.json");
    std::fs::write(&record, key_package(0).to_string()).unwrap();

    let mut cmd = Command::new("node");
    cmd.arg("interop.mjs")
        .arg(&t.url)
        .arg(&record)
        .current_dir(&dir);
    let out = run(cmd, Duration::from_secs(120)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "interop.mjs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");

    let did = seen["created"].as_str().unwrap();
    assert!(did.starts_with("did:plc:"));
    assert_eq!(seen["loggedIn"], did);
    assert_eq!(seen["validationStatus"], "valid");
    assert_eq!(seen["listedBefore"], 2);
    assert_eq!(seen["listedAfter"].as_array().unwrap().len(), 1);
    assert_eq!(seen["gotDeviceId"], "interop-device-2");
    let proof = seen["proofRecords"].as_array().unwrap();
    assert_eq!(proof.len(), 1);
    assert_eq!(proof[0]["deviceId"], "interop-device-2");
    let creates = seen["carCreates"].as_array().unwrap();
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert!(
        creates[0]
            .as_str()
            .unwrap()
            .starts_with("chat.mls.keyPackage/")
    );
    assert_eq!(seen["carCommit"], seen["latestCommit"]);
    assert_eq!(seen["wrongKeyRefused"], true);

    // Our own reading of the same repo agrees.
    assert_eq!(t.head(did).await, seen["latestCommit"].as_str().unwrap());
    t.stop().await;
}
