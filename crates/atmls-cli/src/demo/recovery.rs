//! The demo's recovery step (docs/spec.md §11.17): Bob's phone loses its database; the
//! application kept its identity (account and device id), a new database asks Bob's
//! laptop to re-add it, and it reads a new message.

use std::time::Duration;

use atmls_client::transport::http::{HttpDs, HttpPds};
use atmls_client::{Device, DeviceConfig, Event, GroupId, Storage, content};

use super::transcript::{Failed, Transcript};
use super::{Net, PASSWORD, Person, demo_passphrase, step, sync};

/// Deletes `phone`'s database, restores the device under the same id, and checks that
/// `laptop` (the same account) re-adds it to `g` and that it reads what `alice` sends.
pub(super) async fn run(
    tr: &mut Transcript,
    net: &Net,
    g: &GroupId,
    alice: &Person,
    laptop: &Person,
    phone: Person,
) -> Result<(), Failed> {
    tr.section("bob's phone loses its database and recovers");
    let device_id = phone.dev.device_id().to_owned();
    let handle = phone.handle.clone();
    let path = net
        .dir
        .join(format!("{}.sqlite", phone.label.replace(' ', "-")));
    drop(phone);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let _ = std::fs::remove_file(atmls_client::at_rest::kdf_path(&path));
    tr.check(
        !path.exists(),
        "bob phone's database file deleted (its account and device id are kept, as a CLI profile keeps them)",
        || path.display().to_string(),
    )?;
    let pds = step(HttpPds::login(
        &net.url,
        &handle,
        PASSWORD,
        net.resolver.clone(),
    ))
    .await?;
    let ds_did = net
        .ds_did
        .clone()
        .ok_or_else(|| Failed("no delivery service DID".into()))?;
    let key = demo_passphrase();
    let dev = step(Device::restore(
        Storage::File(&path, &key),
        pds,
        HttpDs::new(net.resolver.clone()),
        ds_did,
        &device_id,
        DeviceConfig::default()
            .with_suite_policy(atmls_client::suite::SuitePolicy::Prefer)
            .with_own_device_check_interval(Duration::ZERO),
    ))
    .await?;
    let phone = Person {
        label: "bob phone".into(),
        handle,
        dev,
    };
    let groups = step(phone.dev.groups()).await?;
    tr.check(
        groups.is_empty(),
        "the new database knows no group; it asks bob's other devices (a sealed re-entry request)",
        || format!("{} group(s)", groups.len()),
    )?;
    sync(&phone).await?;
    sync(laptop).await?;
    let joined = Event::joined(&sync(&phone).await?);
    tr.equal(
        joined,
        vec![g.clone()],
        "bob laptop re-added bob phone: stale leaf removed and new KeyPackage added in one commit",
    )?;
    sync(alice).await?;
    let text = "welcome back, bob's phone";
    step(alice.dev.send(g, content::text(text))).await?;
    let got = Event::texts(&sync(&phone).await?);
    tr.equal(
        got,
        vec![text.to_owned()],
        "bob phone (restored) decrypted the new message",
    )
}
