//! The `--database` path at a tiny scale: two DS processes over one PostgreSQL database,
//! connections spread over both. Checks correctness, not speed: every acknowledged
//! envelope is stored once at its seq with its payload (senders at both processes, read
//! back through the first); every subscriber, at either process, receives every envelope
//! sent at the first, in order; catch-up filled through the first (and then through both
//! at once) and read through the second returns every seq once; the raw baselines commit.
//!
//! Needs `ATMLS_TEST_DATABASE_URL` (`eval "$(scripts/pg-cluster start)"`); without it the
//! test fails.

use std::sync::Arc;
use std::time::Duration;

use atmls_loadgen::scenario::catchup::{self, CatchupConfig};
use atmls_loadgen::scenario::fanout::{self, FanoutConfig};
use atmls_loadgen::scenario::ingest::{self, IngestConfig};
use atmls_loadgen::scenario::pg_baseline::pg_inserts;
use atmls_loadgen::{Database, Target};

const BOUND: Duration = Duration::from_secs(90);

fn database() -> Database {
    let url = std::env::var("ATMLS_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "ATMLS_TEST_DATABASE_URL is not set: this test needs a PostgreSQL server. \
             Start a throw-away one with `eval \"$(scripts/pg-cluster start)\"`."
        )
    });
    Database::new(&url)
        .expect("a valid URL")
        .with_processes(2)
        .with_pool_size(2)
        // Two group commits in flight per process (the pool grows to cover them).
        .with_writer_lanes(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_over_one_database_lose_nothing() {
    let db = database();
    tokio::time::timeout(BOUND, async {
        let t = Arc::new(Target::start(Some(&db)).await.expect("start on PostgreSQL"));
        assert_eq!(t.processes(), 2);
        assert_ne!(t.addr_of(0), t.addr_of(1), "two listeners");

        // Ingest: senders 0 and 2 at process 0, 1 and 3 at process 1.
        for batch in [1, 4] {
            let cfg = IngestConfig {
                senders: 4,
                mailboxes: 4,
                batch,
                payload_bytes: 512,
                duration: Duration::from_secs(30),
                max_requests_per_sender: 24 / batch as u64,
                verify: true,
            };
            let r = ingest::run(&t, &cfg).await.expect("ingest");
            assert_eq!(r.envelopes, 4 * 24, "batch {batch}");
        }

        // Fan-out: subscribers 0, 2 at the sender's process, 1, 3 at the other.
        let cfg = FanoutConfig {
            subscribers: 4,
            envelopes: 15,
            interval: Duration::from_millis(2),
            payload_bytes: 256,
            connect_concurrency: 4,
            wait: Duration::from_secs(20),
        };
        let f = fanout::run(&t, &cfg).await.expect("fanout");
        assert_eq!(f.deliveries, 4 * 15);
        assert_eq!(f.processes, 2);
        let cross = f.cross_latency.expect("cross-process latency");
        assert_eq!(
            cross.count,
            2 * 15,
            "the two subscribers at the other process"
        );

        // Catch-up: filled through the first, read through the second.
        let cfg = CatchupConfig {
            envelopes: 300,
            page: 64,
            fill_batch: 20,
            fill_senders: 2,
            payload_bytes: 128,
            timeout: Duration::from_secs(30),
            fill_all_processes: false,
        };
        let c = catchup::run(&t, &cfg).await.expect("catchup");
        assert_eq!(c.envelopes, 300);
        // The same, filled through both processes at once (senders at each, one mailbox).
        let cfg = CatchupConfig {
            fill_senders: 4,
            fill_all_processes: true,
            ..cfg
        };
        let c = catchup::run(&t, &cfg)
            .await
            .expect("catchup filled through both processes");
        assert_eq!(c.envelopes, 300);

        if let Ok(t) = Arc::try_unwrap(t) {
            t.close().await;
        }

        // The raw baselines commit, on one connection and on several.
        let one = pg_inserts(&db, Duration::from_millis(200), 1, 1, 64)
            .await
            .expect("raw single-row");
        assert!(one.txns > 0 && one.rows_per_txn == 1);
        let many = pg_inserts(&db, Duration::from_millis(200), 3, 8, 64)
            .await
            .expect("raw batched");
        assert!(many.txns > 0 && many.rows_per_s >= many.txns_per_s * 7.9);
    })
    .await
    .expect("in time");
}
