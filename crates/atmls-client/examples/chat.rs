//! A conversation between three devices of two accounts on an in-memory network (the real
//! DS core and real signed repos), printed as it happens.
//!
//! Run: `cargo run -p atmls-client --example chat`
//!
//! Against real servers, build the devices with `transport::http::{HttpPds, HttpDs}`
//! instead (see `tests/e2e.rs`); everything else stays the same.

use atmls_client::transport::memory::MemoryNetwork;
use atmls_client::{Device, DeviceConfig, Event, Storage, content};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), atmls_client::Error> {
    let net = MemoryNetwork::new();
    let config = DeviceConfig::default().with_own_device_check_interval(std::time::Duration::ZERO);
    let alice = Device::create(
        Storage::Memory,
        net.account("alice"),
        net.ds(),
        net.ds_did(),
        config.clone(),
    )
    .await?;
    let bob = Device::create(
        Storage::Memory,
        net.account("bob"),
        net.ds(),
        net.ds_did(),
        config.clone(),
    )
    .await?;
    println!("alice is {} (device {})", alice.did(), alice.device_id());
    println!("bob   is {} (device {})", bob.did(), bob.device_id());

    let group = alice.create_group("tea time").await?;
    alice.add_members(&group, &[bob.did().clone()]).await?;
    alice
        .send(&group, content::text("Shall we have tea?"))
        .await?;
    show("bob", &bob.sync().await?);

    let reply = bob.send(&group, content::text("Yes, at five.")).await?;
    alice
        .send(&group, content::reaction(reply.id.clone(), "👍"))
        .await?;
    show("alice", &alice.sync().await?);
    show("bob", &bob.sync().await?);

    // Bob's second device: his first device adds it to the group on its next sync.
    let laptop = Device::create(
        Storage::Memory,
        net.account("bob"),
        net.ds(),
        net.ds_did(),
        config,
    )
    .await?;
    bob.sync().await?;
    show("bob's laptop", &laptop.sync().await?);
    alice.rename(&group, "tea at five").await?;
    alice.send(&group, content::text("See you both.")).await?;
    show("bob's laptop", &laptop.sync().await?);

    let g = alice.group(&group).await?;
    println!(
        "\n{:?}: epoch {}, {} member devices of {} accounts",
        g.name(),
        g.epoch,
        g.members.len(),
        g.member_dids().len()
    );
    Ok(())
}

fn show(who: &str, events: &[Event]) {
    for e in events {
        match e {
            Event::Joined { name, .. } => println!("[{who}] joined {name:?}"),
            Event::Message(m) => println!(
                "[{who}] {}: {}",
                m.sender,
                m.text()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{:?}", m.content.body))
            ),
            Event::GroupChanged { epoch, by, .. } => println!("[{who}] epoch {epoch} (by {by})"),
            other => println!("[{who}] {other:?}"),
        }
    }
}
