//! Fan-out across processes: a reader in one process, woken by notifications, reads from
//! its last delivered seq what a writer in another process appended: every envelope, in
//! order, once, also when its listening connection is killed in between.

use std::time::Duration;

use atmls_ds::store::Store;
use atmls_ds::{EnvelopeKind, MailboxId};
use atmls_ds_postgres::{Listener, Notices, PgConfig, PgStore, SchemaName};
use atmls_testkit::ds_store::{EVERYTHING, batch, group};

use crate::common::{count, fresh_schema, store_in, url};

const ENVELOPES: u64 = 200;

fn config(schema: &SchemaName) -> PgConfig {
    PgConfig::new(&url())
        .unwrap()
        .with_schema(schema.clone())
        .with_pool_size(2)
}

/// Reads everything after `delivered` and returns the seqs.
fn catch_up(s: &PgStore, id: &MailboxId, delivered: &mut Vec<u64>) {
    let after = delivered.last().copied().unwrap_or(0);
    for e in s.envelopes(id, after, EVERYTHING).unwrap() {
        delivered.push(e.seq);
    }
}

/// Writes `ENVELOPES` envelopes from another store (process), in small batches; if
/// `kill_listener_at` is set, kills the listeners' connections once that many are in.
fn write_all(schema: SchemaName, id: MailboxId, kill_listener_at: Option<u64>) {
    let mut w = store_in(&schema);
    let mut m = w.mailbox(&id).unwrap().unwrap();
    while m.head < ENVELOPES {
        let n = (ENVELOPES - m.head).min(1 + m.head % 3);
        let b = batch(&m, EnvelopeKind::Message, n, 1);
        w.append(std::slice::from_ref(&b)).unwrap();
        if kill_listener_at.is_some_and(|k| m.head < k && b.mailbox.head >= k) {
            let killed = count(
                &schema,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = 'atmls-ds-listen'",
            );
            assert!(killed >= 1, "a listener connection was there to kill");
        }
        m = b.mailbox;
    }
}

fn fan_out(kill_listener_at: Option<u64>) -> (Vec<u64>, usize) {
    let schema = fresh_schema();
    let g = group(1);
    let mut reader = store_in(&schema);
    reader.create_mailbox("a", 10, &g).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut listener = rt.block_on(Listener::start(&config(&schema))).unwrap();
    let writer = {
        let schema = schema.clone();
        std::thread::spawn(move || write_all(schema, g.id, kill_listener_at))
    };
    let mut delivered = Vec::new();
    let mut resyncs = 0;
    // Bounded: each wait at most 10 s, at most 10,000 wake-ups.
    for _ in 0..10_000 {
        if delivered.len() as u64 == ENVELOPES {
            break;
        }
        let notices = rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(10), listener.next()).await
            })
            .expect("a notice within 10 s");
        match notices {
            Notices::Resync => {
                resyncs += 1;
                catch_up(&reader, &g.id, &mut delivered);
            }
            Notices::Appended(moved) => {
                assert!(moved.iter().all(|a| a.mailbox == g.id));
                let head = moved.iter().map(|a| a.head).max().unwrap_or(0);
                if delivered.last().copied().unwrap_or(0) < head {
                    catch_up(&reader, &g.id, &mut delivered);
                }
            }
            _ => unreachable!("no other notices"),
        }
    }
    writer.join().expect("writer finished");
    (delivered, resyncs)
}

#[test]
fn a_reader_in_another_process_gets_everything_in_order() {
    let (delivered, _) = fan_out(None);
    assert_eq!(delivered, (1..=ENVELOPES).collect::<Vec<_>>());
}

#[test]
fn a_killed_listener_connection_loses_nothing() {
    let (delivered, resyncs) = fan_out(Some(ENVELOPES / 2));
    assert_eq!(delivered, (1..=ENVELOPES).collect::<Vec<_>>());
    assert!(resyncs >= 1, "the listener reported its lost connection");
}
