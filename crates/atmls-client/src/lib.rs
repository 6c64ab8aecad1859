//! The atmls client library: end-to-end encrypted direct and group messaging for AT
//! Protocol accounts on MLS (RFC 9420, openmls).
//!
//! A [`Device`] is one MLS client of an account. Its state (openmls' tables and ours) is
//! one SQLite file, encrypted at rest with a key that is not in it ([`at_rest`]). It publishes the account's `chat.mls.declaration` and its
//! `chat.mls.keyPackage` records through the account's PDS, verifies other accounts'
//! declarations and KeyPackages against their repos before adding them (and, as every
//! member, the proofs that travel inside each commit that adds leaves), creates groups
//! whose mailbox lives on a delivery service, commits changes (retrying on lost races),
//! sends and receives `chat.mls.content` messages (through an outbox that keeps what the
//! DS cannot take now and sends it later, in order and once: [`Device::send`],
//! [`Device::outbox`]), joins groups from sealed welcomes, and
//! adds the account's new devices to its groups. The network is two traits,
//! [`transport::Pds`] and [`transport::Ds`]: `transport::memory` (feature
//! `memory-network`, for tests) implements them in memory over the real DS core,
//! [`transport::http`] over HTTP(S) and WebSocket (`ws://`, `wss://`). The DS wire is the
//! crate `atmls-ds-proto`; the formats this crate fixes are in `docs/spec.md` §11.
//!
//! ```
//! use atmls_client::transport::memory::MemoryNetwork;
//! use atmls_client::{content, Device, DeviceConfig, Event, Storage};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let net = MemoryNetwork::new();
//! let alice = Device::create(Storage::Memory, net.account("alice"), net.ds(), net.ds_did(), DeviceConfig::default()).await?;
//! let bob = Device::create(Storage::Memory, net.account("bob"), net.ds(), net.ds_did(), DeviceConfig::default()).await?;
//!
//! let group = alice.create_group("tea").await?;
//! alice.add_members(&group, &[bob.did().clone()]).await?;
//! alice.send(&group, content::text("hello bob")).await?;
//!
//! let events = bob.sync().await?;
//! assert!(events.iter().any(|e| matches!(e, Event::Joined { name, .. } if name == "tea")));
//! let text = events.iter().find_map(|e| match e { Event::Message(m) => m.text(), _ => None });
//! assert_eq!(text, Some("hello bob"));
//! # Ok::<(), atmls_client::Error>(()) }).unwrap();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod at_rest;
pub mod attachment;
pub mod content;
mod decide;
mod device;
mod error;
mod event;
pub mod group;
pub mod keypackage;
mod lexicons;
pub mod suite;
pub mod transport;

pub use device::groups::Committed;
pub use device::outbox::{Outgoing, OutgoingState};
pub use device::resend::WelcomeGiveUp;
pub use device::vanish::Vanished;
pub use device::welcome::{UndeliveredWelcome, WelcomeError, open_tree};
pub use device::{Device, DeviceConfig, Storage};
pub use error::{
    ContentError, Error, FailureKind, KeyPackageRefusal, PolicyViolation, SendRefusal, StoreError,
    TransportError,
};
pub use event::{Event, Message};
pub use group::reentry::{BrokenReason, ReentryRefusal};
pub use group::{Group, GroupData, GroupId, Member};
pub use keypackage::VerifiedKeyPackage;

pub use atmls_identity::Did;
