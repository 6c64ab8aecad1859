//! The official PLC server (`@did-plc/server`) accepts genesis operations, updates and
//! tombstones made by atmls-identity, and serves the document we expect. Driven through
//! `tests/interop/plc/accept-ops.mjs`; skipped only when `npm` is not installed.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atmls_crypto::{Algorithm, SigningKey};
use atmls_identity::DidDocument;
use atmls_identity::plc::{GenesisBuilder, Tombstone};
use serde_json::{Value, json};

/// Runs `cmd` in `dir`, killing it after `limit`.
fn run(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{cmd:?} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn npm_available() -> bool {
    Command::new("npm")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn official_plc_server_accepts_our_operations() {
    if !npm_available() {
        eprintln!("SKIPPED: npm is not installed, cannot run @did-plc/server");
        return;
    }
    let dir = common::fixtures().join("../interop/plc");
    if !dir.join("node_modules/@did-plc/server").exists() {
        let out = run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            Duration::from_secs(300),
        );
        assert!(
            out.status.success(),
            "npm install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // One secp256k1 DID with an update, one P-256 DID that is then tombstoned.
    let k256 = SigningKey::generate(Algorithm::Es256k);
    let atproto = SigningKey::generate(Algorithm::Es256k);
    let genesis = GenesisBuilder::new(&k256.public_key(), &atproto.public_key())
        .rotation_key(&SigningKey::generate(Algorithm::Es256).public_key())
        .handle("alice.test")
        .pds("http://localhost:2583")
        .service(
            "chat_mls_ds",
            "ChatMlsDeliveryService",
            "http://localhost:2585",
        )
        .sign(&k256);
    let did = genesis.did().unwrap();
    let state = genesis.state(&did).unwrap();
    let mut update = state.to_update(&genesis.cid().unwrap().to_string());
    update.also_known_as = vec!["at://alice2.test".into()];
    let update = update.sign(&k256);

    let p256 = SigningKey::generate(Algorithm::Es256);
    let genesis2 = GenesisBuilder::new(&p256.public_key(), &atproto.public_key())
        .handle("bob.test")
        .pds("http://localhost:2583")
        .sign(&p256);
    let did2 = genesis2.did().unwrap();
    let tomb = Tombstone {
        prev: genesis2.cid().unwrap().to_string(),
    }
    .sign(&p256);

    let ops = json!([
        {"did": did.as_str(), "op": genesis.to_json()},
        {"did": did.as_str(), "op": update.to_json()},
        {"did": did2.as_str(), "op": genesis2.to_json()},
        {"did": did2.as_str(), "op": tomb.to_json()},
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("ops.json");
    std::fs::write(&input, ops.to_string()).unwrap();
    let out = run(
        Command::new("node")
            .arg(Path::new("accept-ops.mjs"))
            .arg(&input)
            .current_dir(&dir),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "official PLC server refused an operation:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();

    // Its document for our DID parses with our code and says what we wrote.
    let doc =
        DidDocument::from_json(result["documents"][did.as_str()].to_string().as_bytes()).unwrap();
    assert_eq!(doc.id, *did.as_did());
    assert_eq!(doc.atproto_key().unwrap(), atproto.public_key());
    assert_eq!(doc.handle().unwrap().as_str(), "alice2.test");
    assert_eq!(doc.pds_endpoint().unwrap(), "http://localhost:2583");
    assert_eq!(
        doc.service_endpoint("chat_mls_ds").unwrap(),
        "http://localhost:2585"
    );
    // Its CIDs are ours.
    let audit = &result["audit"][did.as_str()];
    assert_eq!(audit[0]["cid"], genesis.cid().unwrap().to_string());
    assert_eq!(audit[1]["cid"], update.cid().unwrap().to_string());
    // The tombstoned DID is gone.
    assert_eq!(result["audit"][did2.as_str()].as_array().unwrap().len(), 2);
}
