//! A transaction that fails in the database leaves nothing behind.

use atmls_ds::store::{CreateOutcome, Store};
use atmls_ds::{EnvelopeKind, StoreError};
use atmls_testkit::ds_store::{EVERYTHING, batch, group, inbox};

use crate::common::{count, fresh_schema, sql, store_in};

/// Two batches in one call; the server refuses the second's envelopes (a trigger raises
/// on its payload) after the first's rows were written: none of it stays.
#[test]
fn a_failing_statement_rolls_back_every_batch() {
    let schema = fresh_schema();
    let mut s = store_in(&schema);
    let (a, b) = (group(1), inbox(2));
    s.create_mailbox("x", 10, &a).unwrap();
    s.create_mailbox("x", 10, &b).unwrap();
    sql(
        &schema,
        "CREATE FUNCTION refuse_welcome() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.kind = 2 THEN RAISE EXCEPTION 'refused by the test'; END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_welcome BEFORE INSERT ON envelopes
             FOR EACH ROW EXECUTE FUNCTION refuse_welcome();",
    );
    let good = batch(&a, EnvelopeKind::Message, 3, 1);
    let doomed = batch(&b, EnvelopeKind::Welcome, 1, 1);
    let err = s.append(&[good.clone(), doomed]).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Database {
                transient: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(s.mailbox(&a.id).unwrap(), Some(a));
    assert_eq!(s.mailbox(&b.id).unwrap(), Some(b));
    assert!(s.envelopes(&a.id, 0, EVERYTHING).unwrap().is_empty());
    assert_eq!(count(&schema, "SELECT count(*) FROM envelopes"), 0);
    // The store works on afterwards, and the first batch alone goes through.
    s.append(std::slice::from_ref(&good)).unwrap();
    assert_eq!(s.envelopes(&a.id, 0, EVERYTHING).unwrap(), good.envelopes);
}

/// A quota refusal rolls the mailbox row back: nothing of the refused mailbox remains.
#[test]
fn a_refused_creation_leaves_no_row() {
    let schema = fresh_schema();
    let mut s = store_in(&schema);
    assert_eq!(
        s.create_mailbox("x", 1, &group(1)).unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        s.create_mailbox("x", 1, &group(2)).unwrap(),
        CreateOutcome::QuotaExceeded
    );
    assert_eq!(count(&schema, "SELECT count(*) FROM mailboxes"), 1);
    assert_eq!(
        count(
            &schema,
            "SELECT mailboxes FROM account_quota WHERE account = 'x'"
        ),
        1
    );
}

/// An unreachable server is a transient failure, not a panic or a hang.
#[test]
fn an_unreachable_server_is_transient() {
    // Port 9 on loopback (discard): nothing listens there in the test environment.
    let config = atmls_ds_postgres::PgConfig::new("postgres://u:p@127.0.0.1:9/none")
        .unwrap()
        .with_timeout(std::time::Duration::from_secs(2));
    let err = atmls_ds_postgres::PgStore::connect(&config).unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

/// The connection is killed while `COMMIT` runs (a deferred trigger holds it there): the
/// store looks on a new connection whether the append landed, finds it did not, and
/// reports a transient failure; nothing of it is stored, and the next append works.
#[test]
fn a_connection_killed_during_commit_is_resolved() {
    let schema = fresh_schema();
    let mut s = store_in(&schema);
    let g = group(1);
    s.create_mailbox("x", 10, &g).unwrap();
    sql(
        &schema,
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.payload = 'payload 1' THEN PERFORM pg_sleep(30); END IF;
             RETURN NULL;
         END $$;
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON envelopes
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();",
    );
    let killer = {
        let schema = schema.clone();
        std::thread::spawn(move || {
            // Bounded: 200 polls of 50 ms.
            for _ in 0..200 {
                let killed = count(
                    &schema,
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE application_name = 'atmls-ds' AND wait_event = 'PgSleep'",
                );
                if killed > 0 {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            false
        })
    };
    let err = s
        .append(&[batch(&g, EnvelopeKind::Message, 1, 1)])
        .unwrap_err();
    assert!(killer.join().unwrap(), "the committing backend was found");
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(s.mailbox(&g.id).unwrap(), Some(g));
    assert_eq!(count(&schema, "SELECT count(*) FROM envelopes"), 0);
    sql(&schema, "DROP TRIGGER slow_commit ON envelopes");
    s.append(&[batch(&g, EnvelopeKind::Message, 1, 1)]).unwrap();
    assert_eq!(s.mailbox(&g.id).unwrap().unwrap().head, 1);
}

/// Mailboxes locked before deciding: another process's append waits for the lock; and a
/// store dropped while it holds the lock (its thread died between the lock and the
/// write) releases it, without leaving its transaction open in a pooled connection that
/// a clone of the store (a health probe) still uses.
#[test]
fn a_lock_is_released_when_its_store_goes() {
    let schema = fresh_schema();
    let mut a = store_in(&schema);
    let g = group(1);
    a.create_mailbox("x", 10, &g).unwrap();
    let probe = a.clone();
    let locked = a.lock_mailboxes(&[g.id]).unwrap();
    assert_eq!(locked.len(), 1);
    let (done, finished) = std::sync::mpsc::channel();
    let other = {
        let schema = schema.clone();
        std::thread::spawn(move || {
            let mut b = store_in(&schema);
            let r = b.append(&[batch(&g, EnvelopeKind::Message, 1, 1)]);
            done.send(r).unwrap();
        })
    };
    // The other process waits while the lock is held.
    assert!(
        finished
            .recv_timeout(std::time::Duration::from_millis(500))
            .is_err(),
        "an append went past a held lock"
    );
    drop(a);
    finished
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the lock is released when its store goes")
        .expect("the other process appends");
    other.join().unwrap();
    probe.ping().unwrap();
    assert_eq!(probe.mailbox(&g.id).unwrap().unwrap().head, 1);
    assert_eq!(count(&schema, "SELECT count(*) FROM envelopes"), 1);
}
