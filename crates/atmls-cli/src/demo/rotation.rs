//! The demo's signature-key rotation (docs/spec.md §11.16): bob's phone renews its leaf
//! signature key; the credential identity and the device stay, the other members check
//! the new key's device binding against bob's `chat.mls.device` record and merge it, and
//! the phone goes on talking with the new key.

use atmls_client::transport::Pds as _;
use atmls_client::{Event, GroupId, Member};

use super::transcript::{Failed, Transcript};
use super::{Person, committed, expect_texts, say_and_send, step, sync};

/// The phone's leaf as `viewer` sees it.
async fn leaf_of(viewer: &Person, phone: &Person, g: &GroupId) -> Result<Member, Failed> {
    step(viewer.dev.group(g))
        .await?
        .members
        .into_iter()
        .find(|m| m.device_id.as_deref() == Some(phone.dev.device_id()))
        .ok_or_else(|| Failed(format!("{} has no leaf of {}", viewer.label, phone.label)))
}

fn short(key: &[u8]) -> String {
    key.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Rotates `phone`'s leaf key in `g`; `alice` and `laptop` verify and merge it.
pub(super) async fn show(
    tr: &mut Transcript,
    alice: &Person,
    laptop: &Person,
    phone: &Person,
    g: &GroupId,
) -> Result<(), Failed> {
    tr.section("bob's phone rotates its leaf signature key (device binding checked)");
    let records = step(
        alice
            .dev
            .pds()
            .list_records(phone.dev.did(), atmls_client::group::DEVICE_COLLECTION),
    )
    .await?;
    tr.check(
        records.iter().any(|r| r.rkey == phone.dev.device_id()),
        format!(
            "bob's repo holds chat.mls.device/{}: the phone's device key",
            phone.dev.device_id()
        ),
        || format!("{} device records", records.len()),
    )?;
    let before = leaf_of(alice, phone, g).await?;
    committed(
        tr,
        step(phone.dev.self_update(g, true)).await?,
        "rotate the phone's leaf signature key",
    )?;
    let ev = sync(alice).await?;
    let refused = ev
        .iter()
        .filter(|e| matches!(e, Event::CommitRefused { .. } | Event::Rejected { .. }))
        .count();
    let after = leaf_of(alice, phone, g).await?;
    tr.check(
        refused == 0 && after.signature_key != before.signature_key,
        format!(
            "alice checked the new key's binding (signed by the phone's device key, record proven from bob's repo) and merged it: leaf {} key {} → {}",
            after.leaf,
            short(&before.signature_key),
            short(&after.signature_key)
        ),
        || format!("{refused} refused; key before {before:?}, after {after:?}"),
    )?;
    tr.check(
        after.did == before.did && after.device_id == before.device_id,
        format!(
            "same identity ({}) and device ({}) after the rotation",
            after.did,
            after.device_id.as_deref().unwrap_or("-")
        ),
        || format!("before {before:?}, after {after:?}"),
    )?;
    sync(laptop).await?;
    let mut sent = Vec::new();
    say_and_send(phone, g, "signed with my new key", &mut sent).await?;
    expect_texts(tr, alice, &["signed with my new key"]).await?;
    expect_texts(tr, laptop, &["signed with my new key"]).await
}
