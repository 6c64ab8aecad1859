//! Retention: per-kind TTLs, sequence numbers never reused.

use std::time::Duration;

use atmls_ds::{Expired, Store};

use crate::harness::{Harness, config, key};
use crate::on_both_stores;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn expiry_per_kind<S: Store>(store: S) {
    let cfg = config()
        .with_group_retention(Some(DAY))
        .with_inbox_retention(Some(DAY * 7));
    let mut h = Harness::with_config(store, cfg);
    let k = key(1);
    let group = h.group("did:plc:a", &k, 0);
    let inbox = h.inbox("did:plc:a", &k);
    h.send_message(&k, &group, b"old").unwrap();
    h.welcome(&inbox, b"old").unwrap();
    h.advance(DAY - Duration::from_millis(1));
    h.send_message(&k, &group, b"newer").unwrap();
    // Exactly one TTL old is not yet expired.
    h.advance(Duration::from_millis(1));
    assert_eq!(h.ds.expire(h.now).unwrap(), Expired::default());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.ds.expire(h.now).unwrap(),
        Expired {
            group_envelopes: 1,
            inbox_items: 0
        }
    );
    let left = h.read_all(&k, &group);
    assert_eq!(left.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);
    // Sequence numbers continue after the head, never reused.
    assert_eq!(h.send_message(&k, &group, b"x").unwrap().first_seq, 3);
    assert_eq!(h.read(&k, &group, 0, 10).unwrap().head_seq, 3);
    h.advance(DAY * 6);
    let ex = h.ds.expire(h.now).unwrap();
    assert_eq!(
        ex,
        Expired {
            group_envelopes: 2,
            inbox_items: 1
        }
    );
    assert!(h.list(&k, &inbox, 0).unwrap().items.is_empty());
    assert_eq!(h.welcome(&inbox, b"w").unwrap(), 2);
}

fn no_retention_keeps_everything<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let k = key(1);
    let group = h.group("did:plc:a", &k, 0);
    h.send_message(&k, &group, b"x").unwrap();
    h.advance(DAY * 3650);
    assert_eq!(h.ds.expire(h.now).unwrap(), Expired::default());
    assert_eq!(h.read_all(&k, &group).len(), 1);
}

on_both_stores!(expiry_per_kind, no_retention_keeps_everything);
