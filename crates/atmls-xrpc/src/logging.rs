//! What the operator sees: a `tracing` subscriber for the binaries, and refusals logged at
//! a bounded rate.
//!
//! Privacy holds in logs too (spec §9, threat model): no event of this crate carries a
//! DID, a mailbox id, a token or a payload. Requests are logged by route label and status
//! only (the per-request line is at `debug`); server faults (5xx) at `error` with the
//! server's own message; refusals (4xx) at `warn`, at most one line per route and error
//! name per [`REFUSAL_LOG_INTERVAL`], with the number suppressed since the last line.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;

/// At most one refusal line per (route, error name) in this interval.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Human,
    /// One JSON object per line (for log shippers).
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "human" | "text" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            other => Err(format!("log format {other:?}: expected human or json")),
        }
    }
}

/// Installs the process-wide subscriber, writing to standard error. The level comes
/// from `filter` (the `RUST_LOG` syntax, e.g. `info` or `atmls_xrpc=debug`), else from
/// `RUST_LOG`, else `default_level`. Returns an error if the filter does not parse or a
/// subscriber was already installed.
pub fn init(format: LogFormat, filter: Option<&str>, default_level: &str) -> Result<(), String> {
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).map_err(|e| format!("log filter {f:?}: {e}"))?,
        None => EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(default_level))
            .map_err(|e| format!("log filter: {e}"))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

/// Refusals logged at a bounded rate: per (route label, error name), one `warn` line per
/// [`REFUSAL_LOG_INTERVAL`]. The keys are labels and names of the server's own (bounded
/// sets), so the table stays small.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    seen: Mutex<HashMap<(String, &'static str), Window>>,
}

#[derive(Debug)]
struct Window {
    logged_at: Instant,
    suppressed: u64,
}

impl RefusalLog {
    /// Notes one refusal; logs it unless this (route, name) was logged within the
    /// interval.
    pub(crate) fn note(&self, route: &str, name: &'static str, limit: Option<&'static str>) {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let suppressed = match seen.get_mut(&(route.to_owned(), name)) {
            Some(w) if now.duration_since(w.logged_at) < REFUSAL_LOG_INTERVAL => {
                w.suppressed += 1;
                return;
            }
            Some(w) => {
                let n = w.suppressed;
                *w = Window {
                    logged_at: now,
                    suppressed: 0,
                };
                n
            }
            None => {
                seen.insert(
                    (route.to_owned(), name),
                    Window {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
                0
            }
        };
        drop(seen);
        tracing::warn!(
            nsid = route,
            error = name,
            limit = limit.unwrap_or("-"),
            suppressed,
            "request refused"
        );
    }

    /// Lines that would be suppressed now for (route, name) (tests).
    #[cfg(test)]
    fn suppressed(&self, route: &str, name: &'static str) -> u64 {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&(route.to_owned(), name))
            .map_or(0, |w| w.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_once_per_interval() {
        let log = RefusalLog::default();
        for _ in 0..5 {
            log.note("chat.mls.ds.sendEnvelopes", "RateLimitExceeded", None);
        }
        log.note("chat.mls.ds.sendEnvelopes", "EpochConflict", None);
        assert_eq!(
            log.suppressed("chat.mls.ds.sendEnvelopes", "RateLimitExceeded"),
            4
        );
        assert_eq!(
            log.suppressed("chat.mls.ds.sendEnvelopes", "EpochConflict"),
            0
        );
    }

    #[test]
    fn formats_parse() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("Human".parse::<LogFormat>(), Ok(LogFormat::Human));
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
