//! A small metrics registry rendered in the Prometheus text format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The label of requests to a path that is not a mounted route.
pub(crate) const UNROUTED: &str = "_unrouted";

#[derive(Debug, Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    sum_seconds: f64,
    count: u64,
}

/// Request counts by route and status, a latency histogram by route, and gauges of
/// in-flight requests, open subscriptions and open connections.
///
/// Route labels are mounted NSIDs or fixed names (`_health`, `_metrics`, `_fallback`,
/// `_proxy`, `_unrouted`), never a client's string, so the label set stays bounded.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
    in_flight: AtomicI64,
    subscriptions: AtomicI64,
    connections: AtomicI64,
    subscriptions_cut_off: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub(crate) fn record(&self, route: &str, status: u16, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let stats = match routes.get_mut(route) {
            Some(s) => s,
            None => routes.entry(route.to_owned()).or_default(),
        };
        *stats.by_status.entry(status).or_default() += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                stats.buckets[i] += 1;
            }
        }
        stats.sum_seconds += seconds;
        stats.count += 1;
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
        self.subscriptions_cut_off.fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests of `route` ended with `status` so far.
    pub fn requests(&self, route: &str, status: u16) -> u64 {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .get(route)
            .and_then(|s| s.by_status.get(&status).copied())
            .unwrap_or(0)
    }

    /// Requests being handled now.
    pub fn requests_in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Subscriptions open now.
    pub fn open_subscriptions(&self) -> i64 {
        self.subscriptions.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> i64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP atmls_xrpc_requests_total Requests answered, by route and status.\n");
        out.push_str("# TYPE atmls_xrpc_requests_total counter\n");
        for (route, stats) in routes.iter() {
            for (status, n) in &stats.by_status {
                let _ = writeln!(
                    out,
                    "atmls_xrpc_requests_total{{nsid=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP atmls_xrpc_request_duration_seconds Time from request head to response head.\n",
        );
        out.push_str("# TYPE atmls_xrpc_request_duration_seconds histogram\n");
        for (route, stats) in routes.iter() {
            let route = escape(route);
            for (bound, n) in BUCKETS.iter().zip(stats.buckets) {
                let _ = writeln!(
                    out,
                    "atmls_xrpc_request_duration_seconds_bucket{{nsid=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "atmls_xrpc_request_duration_seconds_bucket{{nsid=\"{route}\",le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "atmls_xrpc_request_duration_seconds_sum{{nsid=\"{route}\"}} {}",
                stats.sum_seconds
            );
            let _ = writeln!(
                out,
                "atmls_xrpc_request_duration_seconds_count{{nsid=\"{route}\"}} {}",
                stats.count
            );
        }
        drop(routes);
        let gauges = [
            (
                "atmls_xrpc_requests_in_flight",
                "Requests being handled.",
                &self.in_flight,
            ),
            (
                "atmls_xrpc_subscriptions_open",
                "WebSocket subscriptions open.",
                &self.subscriptions,
            ),
            (
                "atmls_http_connections_open",
                "TCP connections open.",
                &self.connections,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let name = "atmls_xrpc_subscriptions_cut_off_total";
        let _ = writeln!(
            out,
            "# HELP {name} Subscribers cut off for not keeping up.\n# TYPE {name} counter"
        );
        let _ = writeln!(
            out,
            "{name} {}",
            self.subscriptions_cut_off.load(Ordering::Relaxed)
        );
        out
    }
}

/// A gauge held up while this value lives.
pub(crate) struct Gauge<'m>(&'m AtomicI64);

impl<'m> Gauge<'m> {
    fn up(g: &'m AtomicI64) -> Self {
        g.fetch_add(1, Ordering::Relaxed);
        Gauge(g)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_buckets_and_gauges() {
        let m = Metrics::default();
        m.record("com.example.q", 200, Duration::from_millis(3));
        m.record("com.example.q", 400, Duration::from_millis(300));
        let _g = m.in_flight();
        let text = m.render();
        assert!(
            text.contains("atmls_xrpc_requests_total{nsid=\"com.example.q\",status=\"200\"} 1")
        );
        assert!(text.contains(
            "atmls_xrpc_request_duration_seconds_bucket{nsid=\"com.example.q\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "atmls_xrpc_request_duration_seconds_bucket{nsid=\"com.example.q\",le=\"0.5\"} 2"
        ));
        assert!(text.contains("atmls_xrpc_requests_in_flight 1"));
        assert_eq!(m.requests("com.example.q", 400), 1);
    }
}
