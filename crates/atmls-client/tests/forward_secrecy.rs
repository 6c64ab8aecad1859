//! Deleted key material is really deleted: after a device joins through a one-time
//! KeyPackage, that package's private init key is nowhere in its database files — not
//! even for someone who later learns the database key (every page image, free pages and
//! the WAL included, decrypted).

mod support;

use atmls_client::at_rest::KeySource as _;
use atmls_client::transport::memory::MemoryNetwork;
use atmls_client::{Device, DeviceConfig, Storage};

/// The device databases' passphrase, with the cheap KDF cost tests ask for by name.
fn passphrase() -> atmls_client::at_rest::Passphrase {
    atmls_client::at_rest::Passphrase::new("test passphrase")
        .with_kdf_params(atmls_client::at_rest::KdfParams::insecure_for_tests())
}

fn private_init_keys(path: &std::path::Path) -> Vec<(Vec<u8>, String)> {
    let key = passphrase().key(path, false).unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\";",
        data_encoding::HEXLOWER.encode(key.as_bytes())
    ))
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT key_package_ref, key_package FROM openmls_key_packages")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
    })
    .unwrap()
    .map(|row| {
        let (r, blob) = row.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&blob).unwrap();
        let key = json["private_init_key"].to_string();
        assert!(key.len() > 40, "private key serialised: {key}");
        (r, key)
    })
    .collect()
}

fn file_bytes(path: &std::path::Path) -> Vec<u8> {
    let key = passphrase().key(path, false).unwrap();
    support::decrypted_images(path, key.as_bytes())
}

#[tokio::test]
async fn consumed_one_time_key_is_erased_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.sqlite");
    let net = MemoryNetwork::new();
    let config = DeviceConfig::default().with_one_time_key_packages(1);
    let alice = net.device("alice", config.clone()).await.unwrap();
    let bob = Device::create(
        Storage::File(&path, &passphrase()),
        net.account("bob"),
        net.ds(),
        net.ds_did(),
        config,
    )
    .await
    .unwrap();
    let before = private_init_keys(&path);
    assert_eq!(before.len(), 2);
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let after = private_init_keys(&path);
    let consumed: Vec<_> = before
        .iter()
        .filter(|b| !after.iter().any(|a| a.0 == b.0))
        .collect();
    assert_eq!(consumed.len(), 1, "exactly the one-time package was used");
    let bytes = file_bytes(&path);
    let needle = consumed[0].1.as_bytes();
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "the consumed private init key is still in the database files"
    );
    // The packages still published are there (the search can find what exists).
    let kept = after[0].1.as_bytes();
    assert!(bytes.windows(kept.len()).any(|w| w == kept));
}
