//! Deposits per inbox per minute: a fixed 60-second window per inbox, in memory.

use std::collections::HashMap;
use std::time::Duration;

use crate::id::MailboxId;
use crate::time::Timestamp;

const WINDOW: Duration = Duration::from_secs(60);

/// Purge ended windows once the map holds this many inboxes.
const PURGE_AT: usize = 1 << 16;

/// Counts accepted deposits per inbox in fixed windows that start at the first deposit
/// after the previous window ended.
#[derive(Debug)]
pub(crate) struct DepositLimiter {
    windows: HashMap<MailboxId, (Timestamp, u32)>,
    per_window: u32,
}

impl DepositLimiter {
    pub(crate) fn new(per_window: u32) -> Self {
        Self {
            windows: HashMap::new(),
            per_window,
        }
    }

    /// `Err(retry_after_ms)` if `inbox` already had its deposits in the current window.
    pub(crate) fn check(&self, inbox: &MailboxId, now: Timestamp) -> Result<(), u64> {
        match self.windows.get(inbox) {
            Some(&(start, count)) if now < start.saturating_add(WINDOW) => {
                if count >= self.per_window {
                    Err(start.saturating_add(WINDOW).as_millis() - now.as_millis())
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts one accepted deposit.
    pub(crate) fn record(&mut self, inbox: &MailboxId, now: Timestamp) {
        if self.windows.len() >= PURGE_AT {
            self.purge(now);
        }
        let entry = self.windows.entry(*inbox).or_insert((now, 0));
        if now >= entry.0.saturating_add(WINDOW) || now < entry.0 {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets windows that have ended.
    pub(crate) fn purge(&mut self, now: Timestamp) {
        self.windows
            .retain(|_, (start, _)| now < start.saturating_add(WINDOW));
    }
}
