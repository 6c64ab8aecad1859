//! The scenarios and the pieces they share: payloads that carry their send time, and
//! mailbox creation.

pub mod baseline;
pub mod catchup;
pub mod fanout;
pub mod ingest;
pub mod pg_baseline;
pub mod rss;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::LoadgenError;
use crate::target::{GroupMailbox, Target};

/// Mailboxes one account creates before the next account is used (the DS's default
/// quota is 1000 per account).
const MAILBOXES_PER_ACCOUNT: usize = 900;

/// The instant all send times in payloads are measured from.
pub(crate) fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// A payload of `size` bytes (at least 20): nanoseconds since [`origin`] (u64 BE), the
/// sender (u32 BE) and its counter (u64 BE), then filler.
pub(crate) fn payload(size: usize, sender: u32, counter: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(size.max(20));
    let nanos = u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX);
    p.extend_from_slice(&nanos.to_be_bytes());
    p.extend_from_slice(&sender.to_be_bytes());
    p.extend_from_slice(&counter.to_be_bytes());
    p.extend((p.len()..size).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)));
    p
}

/// What a payload made by [`payload`] says: (sent at, sender, counter).
pub(crate) fn read_payload(p: &[u8]) -> Option<(Duration, u32, u64)> {
    let nanos = u64::from_be_bytes(p.get(..8)?.try_into().ok()?);
    let sender = u32::from_be_bytes(p.get(8..12)?.try_into().ok()?);
    let counter = u64::from_be_bytes(p.get(12..20)?.try_into().ok()?);
    Some((Duration::from_nanos(nanos), sender, counter))
}

/// How long ago (since [`origin`]) a payload was made.
pub(crate) fn age(sent: Duration) -> Duration {
    origin().elapsed().saturating_sub(sent)
}

/// Creates `n` group mailboxes with `concurrency` workers, each registering its own
/// accounts (a new one every 900 mailboxes).
pub async fn create_group_mailboxes(
    target: &Arc<Target>,
    n: usize,
    concurrency: usize,
) -> Result<Vec<GroupMailbox>, LoadgenError> {
    let workers = concurrency.clamp(1, n.max(1));
    let mut set = JoinSet::new();
    for w in 0..workers {
        let count = n / workers + usize::from(w < n % workers);
        let target = target.clone();
        set.spawn(async move {
            let mut conn = target.conn().await?;
            let mut out = Vec::with_capacity(count);
            let mut account = None;
            for i in 0..count {
                if i % MAILBOXES_PER_ACCOUNT == 0 {
                    account = Some(target.account().await?);
                }
                let Some(a) = account.as_ref() else { break };
                out.push(target.group_mailbox(&mut conn, a).await?);
            }
            Ok::<_, LoadgenError>(out)
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        all.extend(r.map_err(|e| LoadgenError::Start(e.to_string()))??);
    }
    Ok(all)
}

/// Waits for every task of `set`, returning the first error after all ended.
pub(crate) async fn join_all<T: 'static>(
    mut set: JoinSet<Result<T, LoadgenError>>,
) -> Result<Vec<T>, LoadgenError> {
    let mut out = Vec::with_capacity(set.len());
    let mut first_err = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(LoadgenError::Check(format!("task failed: {e}")));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let p = payload(1024, 7, 42);
        assert_eq!(p.len(), 1024);
        let (_, sender, counter) = read_payload(&p).expect("parses");
        assert_eq!((sender, counter), (7, 42));
    }
}
