//! Every scenario at a tiny scale against an in-process DS, checking correctness, not
//! speed: every acknowledged envelope is stored once at its seq with its payload; every
//! subscriber receives every acknowledged envelope, in order; catch-up returns every seq
//! once; every subscription of the memory scenario is live. Seconds, debug-build friendly.

use std::sync::Arc;
use std::time::Duration;

use atmls_loadgen::scenario::baseline;
use atmls_loadgen::scenario::catchup::{self, CatchupConfig};
use atmls_loadgen::scenario::fanout::{self, FanoutConfig};
use atmls_loadgen::scenario::ingest::{self, IngestConfig};
use atmls_loadgen::scenario::rss::{self, RssConfig};
use atmls_loadgen::{Plan, Scenario, Target};

const BOUND: Duration = Duration::from_secs(60);

fn tiny_ingest(batch: usize) -> IngestConfig {
    IngestConfig {
        senders: 2,
        mailboxes: 2,
        batch,
        payload_bytes: 1024,
        duration: Duration::from_secs(20),
        max_requests_per_sender: 50 / batch as u64,
        verify: true,
    }
}

async fn local() -> Arc<Target> {
    Arc::new(Target::start_local().await.expect("start the DS"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_acknowledged_envelopes_are_stored_in_order() {
    let t = local().await;
    for batch in [1, 5] {
        let r = tokio::time::timeout(BOUND, ingest::run(&t, &tiny_ingest(batch)))
            .await
            .expect("in time")
            .expect("ingest");
        assert_eq!(r.envelopes, 100, "2 senders x 50 envelopes, batch {batch}");
        assert_eq!(r.requests, 100 / batch as u64);
        assert_eq!(r.latency.count, 100 / batch);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_every_subscriber_gets_every_envelope_in_order() {
    let t = local().await;
    let cfg = FanoutConfig {
        subscribers: 5,
        envelopes: 20,
        interval: Duration::from_millis(2),
        payload_bytes: 1024,
        connect_concurrency: 5,
        wait: Duration::from_secs(20),
    };
    let r = tokio::time::timeout(BOUND, fanout::run(&t, &cfg))
        .await
        .expect("in time")
        .expect("fanout");
    assert_eq!(r.deliveries, 5 * 20);
    assert_eq!(r.latency.count, 5 * 20);
    assert!(r.latency.p50_ms <= r.latency.p99_ms && r.latency.p99_ms <= r.latency.max_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catchup_reads_every_seq_once() {
    let t = local().await;
    let cfg = CatchupConfig {
        envelopes: 500,
        page: 64,
        fill_batch: 30,
        fill_senders: 3,
        payload_bytes: 256,
        timeout: BOUND,
        fill_all_processes: false,
    };
    let r = catchup::run(&t, &cfg).await.expect("catchup");
    assert_eq!(r.envelopes, 500);
    // 500 / 64 = 8 full pages, then an empty one.
    assert_eq!(r.pages, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rss_subscriptions_are_all_live() {
    let t = local().await;
    let cfg = RssConfig {
        mailboxes: 20,
        connections: 5,
        concurrency: 4,
        server_pid: None,
        wait: Duration::from_secs(20),
    };
    let r = tokio::time::timeout(BOUND, rss::run(&t, &cfg))
        .await
        .expect("in time")
        .expect("rss");
    assert_eq!((r.mailboxes, r.connections, r.subscriptions), (20, 5, 20));
    assert!(r.includes_client);
    assert!(r.delivered_kib.is_some_and(|k| k > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_and_report() {
    let noop = baseline::noop_http(&tiny_ingest(1)).await.expect("noop");
    assert_eq!(noop.requests, 100);
    let raw = baseline::sqlite_inserts(Duration::from_millis(50), 4, 1024).expect("sqlite");
    assert!(raw.txns > 0 && raw.rows_per_s > 0.0);

    // A whole plan at a tiny scale, through the report.
    let mut plan = Plan {
        scenarios: vec![Scenario::Baseline, Scenario::Ingest],
        batch: 4,
        sqlite_duration: Duration::from_millis(50),
        ..Plan::default()
    };
    plan.ingest = IngestConfig {
        duration: Duration::from_millis(200),
        max_requests_per_sender: 20,
        ..tiny_ingest(1)
    };
    let report = atmls_loadgen::run(&plan, false).await.expect("run");
    let table = report.table();
    assert!(table.contains("no-op hyper handler"), "{table}");
    assert!(report.figures.iter().any(|f| f.ratio.is_some()));
    let json = atmls_loadgen::to_json(&report);
    assert!(
        json["details"]["ingest_batched"]["envelopes"]
            .as_u64()
            .is_some()
    );
}
