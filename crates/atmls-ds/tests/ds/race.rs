//! Two committers racing on one epoch: exactly one wins, every round.

use atmls_ds::auth::{DsMethod, RequestAuth};
use atmls_ds::{EnvelopeKind, OutgoingEnvelope, SendEnvelopesError, Store};
use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use crate::harness::{Harness, key, public};
use crate::on_both_stores;

const ROUNDS: u64 = 150;

/// The key of `epoch`, as every member would derive it.
fn epoch_key(epoch: u64) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&epoch.to_be_bytes());
    seed[31] = 0xee;
    SigningKey::from_bytes(&seed)
}

fn two_committers_race<S: Store>(store: S) {
    let mut h = Harness::new(store);
    let mut coin = StdRng::seed_from_u64(9);
    let mb = h.group("did:plc:a", &epoch_key(0), 0);
    let mut epoch = 0u64;
    let mut wins = [0u32; 2];
    for round in 0..ROUNDS {
        let k = epoch_key(epoch);
        // Both sign their request before either is processed (both are in flight),
        // building on the same epoch with different proposed next keys.
        let mut requests = Vec::new();
        for who in 0..2u8 {
            let body = format!("round {round} committer {who}").into_bytes();
            let token = h.token(&k, DsMethod::SendEnvelopes, &mb, &body);
            let next = public(&key(100 + who));
            let mut batch = vec![OutgoingEnvelope::commit(epoch, body.clone(), next)];
            if coin.gen_bool(0.5) {
                batch.insert(0, OutgoingEnvelope::message(b"chatter".to_vec()));
            }
            requests.push((who, token.authorization_header(), body, batch));
        }
        if coin.gen_bool(0.5) {
            requests.swap(0, 1);
        }
        let head_before = h.info(&k, &mb).unwrap().seq;
        let mut results = Vec::new();
        for (who, header, body, batch) in requests {
            let n = batch.len() as u64;
            let now = h.now;
            let r = h.ds.send_envelopes(
                &mb,
                &RequestAuth::from_header(Some(&header), &body),
                batch,
                now,
            );
            results.push((who, n, r));
        }
        let (winner, n, first) = &results[0];
        let receipt = first.as_ref().expect("the first to arrive wins");
        assert_eq!(receipt.epoch, epoch + 1);
        assert_eq!(receipt.first_seq, head_before + 1);
        assert_eq!(receipt.last_seq, head_before + n);
        match &results[1].2 {
            Err(SendEnvelopesError::EpochConflict {
                current_epoch,
                current_seq,
            }) => {
                assert_eq!(*current_epoch, epoch + 1);
                assert_eq!(*current_seq, receipt.last_seq);
            }
            other => panic!("round {round}: loser got {other:?}"),
        }
        wins[usize::from(*winner)] += 1;
        // Everyone moves to the winner's epoch; the winner's proposed key is the new one.
        epoch += 1;
        let winner_key = key(100 + winner);
        // Re-key: the next round signs with the key the winner registered.
        h.send(
            &winner_key,
            &mb,
            vec![OutgoingEnvelope::commit(
                epoch,
                b"rekey".to_vec(),
                public(&epoch_key(epoch + 1)),
            )],
        )
        .expect("rekey");
        epoch += 1;
    }
    assert!(
        wins[0] > 0 && wins[1] > 0,
        "both committers won some rounds: {wins:?}"
    );
    // The log: gap-free, and exactly one commit per epoch, in epoch order.
    let all = h.read_all(&epoch_key(epoch), &mb);
    assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
    let commit_epochs: Vec<u64> = all
        .iter()
        .filter(|e| e.kind == EnvelopeKind::Commit)
        .map(|e| e.epoch.expect("commit epoch"))
        .collect();
    assert_eq!(commit_epochs, (0..epoch).collect::<Vec<_>>());
}

on_both_stores!(two_committers_race);
