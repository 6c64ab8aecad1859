//! The demo's disappearing message (docs/spec.md §11.18): alice sets a one-minute
//! lifetime, a message is read on bob's two devices, a minute passes on the devices'
//! clock and every device has deleted what it kept of it; then the DS's own retention,
//! run as at lifetime + its one-hour margin after the message arrived, deletes it from
//! the DS's database while the group's commits stay.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atmls_client::GroupId;
use atmls_ds::store::{PageLimit, Store as _};
use atmls_ds::{EnvelopeKind, MailboxId, SqliteStore};
use atmls_syntax::{Clock, SystemClock, Timestamp};

use super::transcript::{Failed, Transcript};
use super::{Person, committed, expect_texts, say_and_send, step, sync};

const MINUTE: Duration = Duration::from_secs(60);
/// The DS's margin past a group's lifetime (`atmls_ds::MAX_MESSAGE_LIFETIME_MARGIN`).
const MARGIN: Duration = atmls_ds::MAX_MESSAGE_LIFETIME_MARGIN;

/// The demo devices' clock: the system's, plus an offset this step sets (to let a minute
/// pass without waiting) and takes back.
#[derive(Debug, Default)]
pub(super) struct DemoClock {
    ahead_ms: AtomicU64,
}

impl DemoClock {
    fn set_ahead(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ahead_ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for DemoClock {
    fn now(&self) -> Timestamp {
        SystemClock
            .now()
            .saturating_add(Duration::from_millis(self.ahead_ms.load(Ordering::SeqCst)))
    }
}

/// The step; `ds_db` is the DS's database when the demo can read it. It leaves the group
/// without a lifetime and the clock back on time.
#[allow(clippy::too_many_arguments)]
pub(super) async fn disappearing_message(
    tr: &mut Transcript,
    clock: &DemoClock,
    ds_db: Option<&Path>,
    alice: &Person,
    bob: &Person,
    phone: &Person,
    g: &GroupId,
    mailbox: &MailboxId,
) -> Result<(), Failed> {
    tr.section("disappearing messages: alice sets a one-minute lifetime");
    committed(
        tr,
        step(alice.dev.set_message_lifetime(g, Some(MINUTE))).await?,
        "message lifetime 60 s (group data, admin commit)",
    )?;
    for p in [bob, phone] {
        sync(p).await?;
        let lifetime = step(p.dev.group(g)).await?.data.message_lifetime;
        tr.equal(
            lifetime.map(|l| l.seconds()),
            Some(60),
            format!("{} sees the lifetime in the group data", p.label),
        )?;
    }
    let mut sent = Vec::new();
    say_and_send(alice, g, "this message disappears in a minute", &mut sent).await?;
    for p in [bob, phone] {
        expect_texts(tr, p, &["this message disappears in a minute"]).await?;
    }
    sync(alice).await?;
    let sent_at = SystemClock.now();
    let messages = |db: &Path| -> Result<(usize, usize), Failed> {
        let store = SqliteStore::open(db)?;
        let all = store.envelopes(
            mailbox,
            0,
            PageLimit {
                envelopes: usize::MAX,
                bytes: usize::MAX,
            },
        )?;
        let m = all
            .iter()
            .filter(|e| e.kind == EnvelopeKind::Message)
            .count();
        Ok((m, all.len() - m))
    };
    if let Some(db) = ds_db {
        let (m, _) = messages(db)?;
        tr.check(
            m > 0,
            format!("the DS holds {m} message envelope(s) of the group (within lifetime + 1 h)"),
            || "no message envelope".into(),
        )?;
    }

    // The devices' clock, a minute ahead: the message is older than its lifetime for them.
    clock.set_ahead(MINUTE + Duration::from_secs(1));
    tr.info("a minute passes on the devices' clock");
    for p in [alice, bob, phone] {
        sync(p).await?;
        let left = step(p.dev.stored_message_records()).await?;
        tr.equal(
            left,
            0,
            format!("{} deleted every record of the expired message", p.label),
        )?;
    }

    clock.set_ahead(Duration::ZERO);

    if let Some(db) = ds_db {
        // The DS's own retention, run on its database as at receivedAt + 60 s + 1 h.
        let mut store = SqliteStore::open(db)?;
        let at = sent_at.saturating_add(MINUTE + MARGIN + Duration::from_secs(1));
        let gone = store.expire_messages(at, MARGIN)?;
        drop(store);
        let (m, commits) = messages(db)?;
        tr.check(
            gone > 0 && m == 0 && commits > 0,
            format!(
                "DS retention as at lifetime + 1 h: {gone} message envelope(s) deleted, {commits} commit(s) kept"
            ),
            || format!("deleted {gone}, left {m} messages and {commits} commits"),
        )?;
    } else {
        tr.info("(the DS's database is not readable here: its retention is not shown)");
    }

    // The group goes on without a lifetime.
    committed(
        tr,
        step(alice.dev.set_message_lifetime(g, None)).await?,
        "message lifetime off again",
    )?;
    for p in [bob, phone] {
        sync(p).await?;
    }
    Ok(())
}
