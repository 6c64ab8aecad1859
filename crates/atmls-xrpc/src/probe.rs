//! What a service behind the router adds to `GET /_health` and `GET /metrics`: the state
//! of something it depends on (a database), and figures of its own.

use futures_util::future::BoxFuture;

/// One dependency's state, as `/_health` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeState {
    /// The key it is reported under (e.g. `database`).
    pub name: &'static str,
    /// Whether it works now. Any failing probe makes `/_health` answer 503.
    pub ok: bool,
}

/// A health and metrics source mounted with [`crate::Router::probe`].
pub trait Probe: Send + Sync {
    /// Checks the dependency now (bounded in time by the implementation).
    fn check(&self) -> BoxFuture<'static, ProbeState>;

    /// Extra lines in the OpenMetrics text format (`# TYPE`, `# HELP` and samples; no
    /// `# EOF`), appended to `/metrics`.
    fn metrics(&self) -> String {
        String::new()
    }
}
