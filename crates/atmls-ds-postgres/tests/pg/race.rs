//! Two stores with their own connections (as two DS processes) race commits on one group
//! mailbox: per round exactly one wins, the loser re-reads and applies its intent on top;
//! no fork (two commits on one epoch), no gap, no duplicate.

use std::sync::{Arc, Barrier, Mutex};

use atmls_ds::store::{Append, Mailbox, MailboxKeys, Store};
use atmls_ds::{Envelope, EnvelopeKind, StoreError, Timestamp};
use atmls_ds_postgres::PgStore;
use atmls_testkit::ds_store::{EVERYTHING, group, mailbox_key};

use crate::common::{fresh_schema, store_in};

const ROUNDS: u64 = 100;

/// A commit built on `m`'s epoch, moving it one on, tagged with who wanted it.
fn commit(m: &Mailbox, writer: u8, round: u64) -> Append {
    let MailboxKeys::Group { epoch, .. } = m.keys else {
        panic!("a group mailbox");
    };
    let mut after = *m;
    after.head = m.head + 1;
    after.keys = MailboxKeys::Group {
        epoch: epoch + 1,
        current: mailbox_key(10 + writer),
        previous: None,
    };
    Append {
        expected_head: m.head,
        mailbox: after,
        envelopes: vec![Envelope {
            seq: m.head + 1,
            kind: EnvelopeKind::Commit,
            epoch: Some(epoch),
            payload: format!("writer {writer} round {round}").into_bytes(),
            received_at: Timestamp::from_millis(round),
        }],
    }
}

/// Appends `writer`'s intent for `round` until it is in, re-reading after each loss.
/// Returns whether the first try won.
fn apply(s: &mut PgStore, m: Mailbox, writer: u8, round: u64) -> bool {
    let mut first = commit(&m, writer, round);
    let mut won_first = true;
    loop {
        match s.append(std::slice::from_ref(&first)) {
            Ok(()) => return won_first,
            Err(StoreError::HeadMoved { .. }) => {
                won_first = false;
                let now = s.mailbox(&m.id).unwrap().unwrap();
                first = commit(&now, writer, round);
            }
            Err(e) => panic!("writer {writer}: {e}"),
        }
    }
}

#[test]
fn two_processes_race_commits_on_one_mailbox() {
    let schema = fresh_schema();
    let g = group(1);
    store_in(&schema).create_mailbox("a", 10, &g).unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let wins = Arc::new(Mutex::new(vec![[false; 2]; ROUNDS as usize]));
    let handles: Vec<_> = (0..2u8)
        .map(|writer| {
            let (schema, barrier, wins) = (schema.clone(), barrier.clone(), wins.clone());
            std::thread::spawn(move || {
                let mut s = store_in(&schema);
                for round in 0..ROUNDS {
                    // Both read the same state, then both append against it.
                    barrier.wait();
                    let m = s.mailbox(&g.id).unwrap().unwrap();
                    barrier.wait();
                    let won = apply(&mut s, m, writer, round);
                    wins.lock().unwrap()[round as usize][usize::from(writer)] = won;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer finished");
    }
    // Per round exactly one writer won the race on the head both read.
    for (round, w) in wins.lock().unwrap().iter().enumerate() {
        assert_eq!(w.iter().filter(|&&x| x).count(), 1, "round {round}: {w:?}");
    }
    let s = store_in(&schema);
    let m = s.mailbox(&g.id).unwrap().unwrap();
    let all = s.envelopes(&g.id, 0, EVERYTHING).unwrap();
    assert_eq!(m.head, 2 * ROUNDS);
    assert_eq!(m.epoch(), Some(2 * ROUNDS));
    // No gap, and every commit on the epoch before it: no fork.
    for (i, e) in all.iter().enumerate() {
        let i = i as u64;
        assert_eq!(e.seq, i + 1);
        assert_eq!(e.epoch, Some(i));
    }
    // Both intents of every round, each exactly once.
    let mut payloads: Vec<Vec<u8>> = all.into_iter().map(|e| e.payload).collect();
    payloads.sort();
    let mut want: Vec<Vec<u8>> = (0..ROUNDS)
        .flat_map(|r| (0..2).map(move |w| format!("writer {w} round {r}").into_bytes()))
        .collect();
    want.sort();
    assert_eq!(payloads, want);
    // The ended epochs were recorded by whichever process ended them.
    let ended = s
        .ended_epoch(&g.id, mailbox_key(1).as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!((ended.epoch, ended.end_seq), (0, 1));
}
