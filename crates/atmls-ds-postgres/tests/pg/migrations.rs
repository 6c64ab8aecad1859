//! Versioned migrations: once each, also when processes start together; a newer schema
//! is refused.

use std::sync::{Arc, Barrier};

use atmls_ds::store::Store;
use atmls_ds::{EnvelopeKind, StoreError};
use atmls_ds_postgres::SCHEMA_VERSION;
use atmls_testkit::ds_store::{EVERYTHING, batch, group};

use crate::common::{count, fresh_schema, sql, store_in};

#[test]
fn processes_starting_together_migrate_once() {
    let schema = fresh_schema();
    let start = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (schema, start) = (schema.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                store_in(&schema)
            })
        })
        .collect();
    for h in handles {
        h.join().expect("every process connects");
    }
    assert_eq!(
        count(&schema, "SELECT count(*) FROM atmls_ds_migrations"),
        SCHEMA_VERSION
    );
    assert_eq!(
        count(&schema, "SELECT max(version) FROM atmls_ds_migrations"),
        SCHEMA_VERSION
    );
}

#[test]
fn data_survives_reconnecting() {
    let schema = fresh_schema();
    let g = group(1);
    {
        let mut s = store_in(&schema);
        s.create_mailbox("a", 10, &g).unwrap();
        s.append(&[batch(&g, EnvelopeKind::Message, 3, 1)]).unwrap();
    }
    let s = store_in(&schema);
    assert_eq!(s.mailbox(&g.id).unwrap().unwrap().head, 3);
    assert_eq!(s.envelopes(&g.id, 0, EVERYTHING).unwrap().len(), 3);
    assert_eq!(s.account_mailboxes("a").unwrap(), 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let schema = fresh_schema();
    drop(store_in(&schema));
    sql(
        &schema,
        &format!(
            "INSERT INTO atmls_ds_migrations (version) VALUES ({})",
            SCHEMA_VERSION + 1
        ),
    );
    let config = atmls_ds_postgres::PgConfig::new(&crate::common::url())
        .unwrap()
        .with_schema(schema);
    let err = atmls_ds_postgres::PgStore::connect(&config).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}
