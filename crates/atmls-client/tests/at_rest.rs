//! The device database is encrypted at rest (docs/spec.md §11.11, decision 0021): its
//! files hold no key material, no group id and no message text; a wrong key is a typed
//! error; what is deleted cannot be read back even with the key; the right key restores
//! everything.
//!
//! Each scan has its control: the same needles are found in the page images decrypted
//! with the key (`support::decrypted_images`), so a scan that finds nothing in the raw
//! files is not blind.

mod support;

use std::path::Path;
use std::time::Duration;

use atmls_client::at_rest::{DatabaseKey, KdfParams, KeyError, KeySource as _, Passphrase};
use atmls_client::transport::memory::{MemoryDs, MemoryNetwork, MemoryPds};
use atmls_client::{Device, DeviceConfig, Error, Event, Storage, StoreError, content};
use support::{contains, decrypted_images, raw_files};

type Dev = Device<MemoryPds, MemoryDs>;

const PASSPHRASE: &str = "at rest passphrase";
const TEXT: &str = "meet at the north gate 7Q4K";
const QUEUED: &str = "queued while offline 3VZX";
const GROUP_NAME: &str = "council-of-8RW2";

fn passphrase(phrase: &str) -> Passphrase {
    Passphrase::new(phrase).with_kdf_params(KdfParams::insecure_for_tests())
}

fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(1)
        .with_retry_backoff(Duration::ZERO, Duration::ZERO)
}

async fn file_device(net: &MemoryNetwork, name: &str, path: &Path) -> Dev {
    Device::create(
        Storage::File(path, &passphrase(PASSPHRASE)),
        net.account(name),
        net.ds(),
        net.ds_did(),
        config(),
    )
    .await
    .expect("device")
}

async fn memory_device(net: &MemoryNetwork, name: &str) -> Dev {
    net.device(name, config()).await.expect("device")
}

/// The database key, derived as the owner (or a thief who learnt the passphrase) would.
fn key_of(path: &Path) -> DatabaseKey {
    passphrase(PASSPHRASE).key(path, false).unwrap()
}

/// Secrets read from the database through SQLCipher with the key, as they are stored:
/// the inbox owner key (a raw blob) and the leaf signature private keys (openmls' JSON
/// codec writes them as an array of numbers), each with its raw bytes.
fn secrets(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\";",
        data_encoding::HEXLOWER.encode(key_of(path).as_bytes())
    ))
    .unwrap();
    let inbox: Vec<u8> = conn
        .query_row("SELECT inbox_key FROM atmls_device", [], |r| r.get(0))
        .unwrap();
    let mut out = vec![(inbox.clone(), inbox)];
    let mut stmt = conn
        .prepare("SELECT signature_key FROM openmls_signature_keys")
        .unwrap();
    for blob in stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
        let json: serde_json::Value = serde_json::from_slice(&blob.unwrap()).unwrap();
        let private: Vec<u8> = json["private"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
            .collect();
        assert_eq!(private.len(), 32, "an Ed25519 private key");
        out.push((private, serde_json::to_vec(&json["private"]).unwrap()));
    }
    assert!(out.len() >= 2);
    out
}

#[tokio::test]
async fn the_files_hold_no_key_material_group_id_or_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite");
    let net = MemoryNetwork::new();
    let alice = file_device(&net, "alice", &path).await;
    let bob = memory_device(&net, "bob").await;
    let g = alice.create_group(GROUP_NAME).await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    alice.send(&g, content::text(TEXT)).await.unwrap();
    bob.send(&g, content::text(TEXT)).await.unwrap();
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), [TEXT]);
    // A message that stays in the outbox: its text is in the database.
    net.set_offline(true);
    assert!(alice.send(&g, content::text(QUEUED)).await.is_err());

    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("group id".into(), g.as_bytes().to_vec()),
        ("queued text".into(), QUEUED.as_bytes().to_vec()),
        ("DID".into(), alice.did().as_str().as_bytes().to_vec()),
    ];
    let mut raw_forms = Vec::new();
    for (i, (bytes, stored)) in secrets(&path).into_iter().enumerate() {
        needles.push((format!("secret key {i}"), stored));
        raw_forms.push((format!("secret key {i} (raw bytes)"), bytes));
    }
    let raw = raw_files(&path);
    let plain = decrypted_images(&path, key_of(&path).as_bytes());
    for (what, needle) in &needles {
        assert!(!contains(&raw, needle), "{what} readable in the files");
        assert!(
            contains(&plain, needle),
            "control: {what} is in the database"
        );
    }
    for (what, needle) in &raw_forms {
        assert!(!contains(&raw, needle), "{what} readable in the files");
    }
    assert!(!contains(&raw, TEXT.as_bytes()));
    assert!(
        !contains(&raw, b"SQLite format 3"),
        "not a plain SQLite file"
    );
    // The KDF file beside it holds the salt and cost, nothing secret.
    let kdf = std::fs::read(atmls_client::at_rest::kdf_path(&path)).unwrap();
    assert!(!contains(&kdf, PASSPHRASE.as_bytes()));
    for (what, needle) in &needles {
        assert!(!contains(&kdf, needle), "{what} in the .kdf file");
    }
}

#[tokio::test]
async fn a_wrong_key_is_a_typed_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite");
    let net = MemoryNetwork::new();
    let alice = file_device(&net, "alice", &path).await;
    drop(alice);
    let before = raw_files(&path);

    let wrong = Device::open(
        &path,
        &passphrase("not the passphrase"),
        net.account("alice"),
        net.ds(),
        config(),
    )
    .await;
    assert!(
        matches!(wrong, Err(Error::Store(StoreError::WrongKey))),
        "{wrong:?}"
    );
    let raw_key = Device::open(
        &path,
        &DatabaseKey::random(),
        net.account("alice"),
        net.ds(),
        config(),
    )
    .await;
    assert!(matches!(raw_key, Err(Error::Store(StoreError::WrongKey))));
    assert_eq!(raw_files(&path), before, "a wrong key wrote nothing");

    // Without the salt and cost the passphrase cannot be stretched: a typed error too.
    let moved = dir.path().join("moved.sqlite");
    std::fs::copy(&path, &moved).unwrap();
    let no_params = Device::open(
        &moved,
        &passphrase(PASSPHRASE),
        net.account("alice"),
        net.ds(),
        config(),
    )
    .await;
    assert!(matches!(
        no_params,
        Err(Error::Store(StoreError::Key(KeyError::MissingParams(_))))
    ));

    // The right passphrase still opens it.
    Device::open(
        &path,
        &passphrase(PASSPHRASE),
        net.account("alice"),
        net.ds(),
        config(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn deleted_messages_and_keys_cannot_be_read_back_even_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite");
    let net = MemoryNetwork::new();
    let alice = file_device(&net, "alice", &path).await;
    let bob = memory_device(&net, "bob").await;
    let g = alice.create_group(GROUP_NAME).await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    // The text is stored while the DS is down...
    net.set_offline(true);
    assert!(alice.send(&g, content::text(QUEUED)).await.is_err());
    let inbox_and_signers = secrets(&path);
    assert!(contains(
        &decrypted_images(&path, key_of(&path).as_bytes()),
        QUEUED.as_bytes()
    ));
    // ...and deleted once sent, then the device is closed (SQLite checkpoints the WAL
    // into the file). Deleted key material: `tests/forward_secrecy.rs` (the consumed
    // one-time KeyPackage's private key, same decrypted scan).
    net.set_offline(false);
    alice.flush_outbox().await.unwrap();
    assert!(alice.outbox().await.unwrap().is_empty());
    assert_eq!(Event::texts(&bob.sync().await.unwrap()), [QUEUED]);
    drop(alice);

    let plain = decrypted_images(&path, key_of(&path).as_bytes());
    assert!(
        !contains(&plain, QUEUED.as_bytes()),
        "the sent message's text is still in the pages"
    );
    // The device's own secrets stay (it still is the device): the scan can see them.
    assert!(contains(&plain, &inbox_and_signers[0].1));
}

#[tokio::test]
async fn the_right_key_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite");
    let net = MemoryNetwork::new();
    let alice = file_device(&net, "alice", &path).await;
    let bob = memory_device(&net, "bob").await;
    let g = alice.create_group(GROUP_NAME).await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    net.set_offline(true);
    assert!(alice.send(&g, content::text(QUEUED)).await.is_err());
    let epoch = alice.group(&g).await.unwrap().epoch_authenticator;
    drop(alice);
    net.set_offline(false);

    let alice = Device::open(
        &path,
        &passphrase(PASSPHRASE),
        net.account("alice"),
        net.ds(),
        config(),
    )
    .await
    .unwrap();
    assert_eq!(alice.group(&g).await.unwrap().epoch_authenticator, epoch);
    alice.flush_outbox().await.unwrap();
    bob.send(&g, content::text(TEXT)).await.unwrap();
    assert_eq!(Event::texts(&alice.sync().await.unwrap()), [TEXT]);
    assert_eq!(Event::texts(&bob.sync().await.unwrap()), [QUEUED]);
}
