//! The server's metrics, kept in a [`prometheus_client`] registry and rendered in the
//! OpenMetrics text format at `GET /metrics` (which Prometheus reads natively).
//!
//! Every label value is a mounted NSID, a fixed name (`_health`, `_metrics`, `_fallback`,
//! `_proxy`, `_unrouted`), a status code, an error name chosen by the server's own code,
//! or a limit name: never a client's string, so the label sets stay bounded.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The label of requests to a path that is not a mounted route.
pub(crate) const UNROUTED: &str = "_unrouted";

/// The content type of [`Metrics::render`].
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    nsid: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    nsid: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteError {
    nsid: String,
    error: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Limit {
    limit: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Request counts by route and status, refusals by error name and by limit, a latency
/// histogram by route, and gauges of in-flight requests, open subscriptions and open
/// connections.
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    errors: Family<RouteError, Counter>,
    refusals: Family<Limit, Counter>,
    durations: Family<Route, Histogram, fn() -> Histogram>,
    in_flight: PromGauge<i64, AtomicI64>,
    subscriptions: PromGauge<i64, AtomicI64>,
    connections: PromGauge<i64, AtomicI64>,
    subscriptions_cut_off: Counter<u64, AtomicU64>,
    /// Serialises rendering (the registry encodes through `&self`, but one scrape at a
    /// time keeps the output consistent).
    render_lock: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register(
            "atmls_xrpc_requests",
            "Requests answered, by route and status",
            requests.clone(),
        );
        let errors = Family::<RouteError, Counter>::default();
        registry.register(
            "atmls_xrpc_errors",
            "Error responses, by route and XRPC error name",
            errors.clone(),
        );
        let refusals = Family::<Limit, Counter>::default();
        registry.register(
            "atmls_limit_refusals",
            "Requests refused by a per-principal or global limit, by limit",
            refusals.clone(),
        );
        let durations =
            Family::<Route, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "atmls_xrpc_request_duration_seconds",
            "Time from request head to response head",
            durations.clone(),
        );
        let in_flight = PromGauge::<i64, AtomicI64>::default();
        registry.register(
            "atmls_xrpc_requests_in_flight",
            "Requests being handled",
            in_flight.clone(),
        );
        let subscriptions = PromGauge::<i64, AtomicI64>::default();
        registry.register(
            "atmls_xrpc_subscriptions_open",
            "WebSocket subscriptions open",
            subscriptions.clone(),
        );
        let connections = PromGauge::<i64, AtomicI64>::default();
        registry.register(
            "atmls_http_connections_open",
            "TCP connections open",
            connections.clone(),
        );
        let subscriptions_cut_off = Counter::<u64, AtomicU64>::default();
        registry.register(
            "atmls_xrpc_subscriptions_cut_off",
            "Subscribers cut off for not keeping up",
            subscriptions_cut_off.clone(),
        );
        Metrics {
            registry,
            requests,
            errors,
            refusals,
            durations,
            in_flight,
            subscriptions,
            connections,
            subscriptions_cut_off,
            render_lock: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// Records one finished request.
    pub(crate) fn record(&self, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RouteStatus {
                nsid: route.to_owned(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&Route {
                nsid: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Records one error response of `route` by its XRPC error name, and the limit that
    /// refused it, if one did.
    pub(crate) fn record_error(&self, route: &str, error: &str, limit: Option<&str>) {
        self.errors
            .get_or_create(&RouteError {
                nsid: route.to_owned(),
                error: error.to_owned(),
            })
            .inc();
        if let Some(limit) = limit {
            self.refusal(limit);
        }
    }

    /// Records one refusal by `limit` (also for refusals that are not whole responses,
    /// e.g. a connection turned away).
    pub fn refusal(&self, limit: &str) {
        self.refusals
            .get_or_create(&Limit {
                limit: limit.to_owned(),
            })
            .inc();
    }

    pub(crate) fn in_flight(&self) -> Gauge<'_> {
        Gauge::up(&self.in_flight)
    }

    pub(crate) fn subscription(&self) -> Gauge<'_> {
        Gauge::up(&self.subscriptions)
    }

    pub(crate) fn connection(&self) -> Gauge<'_> {
        Gauge::up(&self.connections)
    }

    pub(crate) fn cut_off(&self) {
        self.subscriptions_cut_off.inc();
    }

    /// How many requests of `route` ended with `status` so far.
    pub fn requests(&self, route: &str, status: u16) -> u64 {
        self.requests
            .get(&RouteStatus {
                nsid: route.to_owned(),
                status,
            })
            .map_or(0, |c| c.get())
    }

    /// How many error responses of `route` carried the XRPC error `error` so far.
    pub fn errors(&self, route: &str, error: &str) -> u64 {
        self.errors
            .get(&RouteError {
                nsid: route.to_owned(),
                error: error.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// How many requests `limit` refused so far.
    pub fn refusals(&self, limit: &str) -> u64 {
        self.refusals
            .get(&Limit {
                limit: limit.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// Requests being handled now.
    pub fn requests_in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// Subscriptions open now.
    pub fn open_subscriptions(&self) -> i64 {
        self.subscriptions.get()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.connections.get()
    }

    /// Everything, in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let _one = self.render_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

/// A gauge held up while this value lives.
pub(crate) struct Gauge<'m>(&'m PromGauge<i64, AtomicI64>);

impl<'m> Gauge<'m> {
    fn up(g: &'m PromGauge<i64, AtomicI64>) -> Self {
        g.inc();
        Gauge(g)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_buckets_gauges_and_refusals() {
        let m = Metrics::default();
        m.record("com.example.q", 200, Duration::from_millis(3));
        m.record("com.example.q", 400, Duration::from_millis(300));
        m.record_error("com.example.q", "RateLimitExceeded", Some("replay_share"));
        let _g = m.in_flight();
        let text = m.render();
        assert!(
            text.contains("atmls_xrpc_requests_total{nsid=\"com.example.q\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "atmls_xrpc_request_duration_seconds_bucket{le=\"0.005\",nsid=\"com.example.q\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("atmls_xrpc_requests_in_flight 1"), "{text}");
        assert!(
            text.contains(
                "atmls_xrpc_errors_total{nsid=\"com.example.q\",error=\"RateLimitExceeded\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("atmls_limit_refusals_total{limit=\"replay_share\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(m.requests("com.example.q", 400), 1);
        assert_eq!(m.refusals("replay_share"), 1);
        drop(_g);
        assert_eq!(m.requests_in_flight(), 0);
    }
}
