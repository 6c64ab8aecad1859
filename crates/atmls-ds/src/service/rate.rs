//! Deposits per inbox per minute: a fixed 60-second window per inbox, in memory, counting
//! deposits and their payload bytes.

use std::collections::HashMap;
use std::time::Duration;

use atmls_ds_proto::MailboxId;
use atmls_syntax::Timestamp;

pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// Purge ended windows once the map holds this many inboxes.
const PURGE_AT: usize = 1 << 16;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Timestamp,
    count: u32,
    bytes: u64,
    /// The start of the window of a store shared by several processes in which the last
    /// deposit was counted (to give it back if its write fails).
    shared_start: Option<Timestamp>,
}

/// Counts accepted deposits and their bytes per inbox in fixed windows that start at the
/// first deposit after the previous window ended.
#[derive(Debug)]
pub(crate) struct DepositLimiter {
    windows: HashMap<MailboxId, Window>,
    per_window: u32,
    bytes_per_window: u64,
}

impl DepositLimiter {
    pub(crate) fn new(per_window: u32, bytes_per_window: u64) -> Self {
        Self {
            windows: HashMap::new(),
            per_window,
            bytes_per_window,
        }
    }

    /// `Err(retry_after_ms)` if `inbox` already had its deposits, or would pass its bytes,
    /// in the current window with a deposit of `len` bytes.
    pub(crate) fn check(&self, inbox: &MailboxId, len: usize, now: Timestamp) -> Result<(), u64> {
        let len = len as u64;
        let (count, bytes, retry) = match self.windows.get(inbox) {
            Some(w) if now < w.start.saturating_add(WINDOW) && now >= w.start => (
                w.count,
                w.bytes,
                w.start.saturating_add(WINDOW).as_millis() - now.as_millis(),
            ),
            _ => (0, 0, WINDOW.as_millis() as u64),
        };
        if count >= self.per_window || bytes.saturating_add(len) > self.bytes_per_window {
            Err(retry)
        } else {
            Ok(())
        }
    }

    /// The allowance per window, for a store that counts across processes.
    pub(crate) fn allowance(&self) -> crate::store::RateAllowance {
        crate::store::RateAllowance {
            window: WINDOW,
            count: u64::from(self.per_window),
            bytes: self.bytes_per_window,
        }
    }

    /// Counts one accepted deposit of `len` bytes (`shared_start`: the shared window it
    /// was also counted in, if any).
    pub(crate) fn record(
        &mut self,
        inbox: &MailboxId,
        len: usize,
        now: Timestamp,
        shared_start: Option<Timestamp>,
    ) {
        if self.windows.len() >= PURGE_AT {
            self.purge(now);
        }
        let w = self.windows.entry(*inbox).or_insert(Window {
            start: now,
            count: 0,
            bytes: 0,
            shared_start: None,
        });
        if now >= w.start.saturating_add(WINDOW) || now < w.start {
            *w = Window {
                start: now,
                count: 0,
                bytes: 0,
                shared_start: None,
            };
        }
        w.count = w.count.saturating_add(1);
        w.bytes = w.bytes.saturating_add(len as u64);
        w.shared_start = shared_start;
    }

    /// Takes back one deposit of `len` bytes (its write failed); returns the shared
    /// window it was counted in, if any.
    pub(crate) fn forget(&mut self, inbox: &MailboxId, len: usize) -> Option<Timestamp> {
        let w = self.windows.get_mut(inbox)?;
        w.count = w.count.saturating_sub(1);
        w.bytes = w.bytes.saturating_sub(len as u64);
        w.shared_start
    }

    /// Forgets windows that have ended.
    pub(crate) fn purge(&mut self, now: Timestamp) {
        self.windows
            .retain(|_, w| now < w.start.saturating_add(WINDOW));
    }
}
