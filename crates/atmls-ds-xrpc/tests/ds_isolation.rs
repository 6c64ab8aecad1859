//! Issue 14, hole 1: one account's requests must not fail anyone else's. An attacker
//! creates a group mailbox at an epoch the SQLite store cannot move past and sends
//! commits on it while honest senders send on their own mailboxes, all through the same
//! writer. Before the fix the attacker's commit made every group commit it was part of
//! fail, and honest senders got 500.

mod ds_support;

use std::sync::Arc;

use atmls_ds::auth::DsMethod;
use atmls_ds::{MAX_EPOCH, MailboxId, SqliteStore};
use ds_support::*;
use ed25519_dalek::SigningKey;
use serde_json::json;

const HONEST_MAILBOXES: usize = 4;
const HONEST_SENDS: usize = 40;
const ATTACKER_SENDS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unstorable_epoch_fails_no_one_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("ds.sqlite")).expect("sqlite");
    let h = Arc::new(
        start_with_store(
            store,
            small_limits().with_max_mailboxes_per_account(100),
            |c| c,
            server_config(),
        )
        .await,
    );

    // The attacker's mailbox: at 2^63 - 1 if the DS takes it (it did before the fix),
    // else at the largest epoch it allows.
    let attacker_key = mailbox_key();
    let huge = (1u64 << 63) - 1;
    let created = h.create("group", &attacker_key, huge).await;
    let refused_huge = created.status.as_u16() == 400;
    let epoch = if refused_huge { MAX_EPOCH } else { huge };
    let created = if refused_huge {
        h.create("group", &attacker_key, epoch).await.ok()
    } else {
        created.ok()
    };
    let attacker: MailboxId = created["mailbox"].as_str().unwrap().parse().unwrap();

    let mut honest = Vec::new();
    for _ in 0..HONEST_MAILBOXES {
        let key = mailbox_key();
        let id = h.mailbox("group", &key).await;
        honest.push((id, key));
    }

    // Attack and honest traffic at once.
    let mut tasks = Vec::new();
    for i in 0..ATTACKER_SENDS {
        let h = h.clone();
        let key = attacker_key.clone();
        tasks.push(tokio::spawn(async move {
            let next = SigningKey::from_bytes(&[i as u8 + 1; 32]);
            let r = h
                .send(&attacker, &key, json!([commit(epoch, b"evil", &next)]))
                .await;
            (
                false,
                r.status.as_u16(),
                r.json()["error"].as_str().map(str::to_owned),
            )
        }));
    }
    for (id, key) in &honest {
        for n in 0..HONEST_SENDS {
            let h = h.clone();
            let (id, key) = (*id, key.clone());
            tasks.push(tokio::spawn(async move {
                let r = h
                    .send(&id, &key, json!([message(format!("m{n}").as_bytes())]))
                    .await;
                (
                    true,
                    r.status.as_u16(),
                    r.json()["error"].as_str().map(str::to_owned),
                )
            }));
        }
    }
    let mut honest_failed = Vec::new();
    let mut attacker_statuses = Vec::new();
    for t in tasks {
        let (is_honest, status, error) = t.await.expect("task");
        if is_honest && status != 200 {
            honest_failed.push((status, error));
        } else if !is_honest {
            attacker_statuses.push((status, error));
        }
    }
    assert!(
        honest_failed.is_empty(),
        "{} of {} honest sends failed: {:?}",
        honest_failed.len(),
        HONEST_MAILBOXES * HONEST_SENDS,
        &honest_failed[..honest_failed.len().min(5)]
    );
    // The attacker gets typed 4xx refusals, never a 5xx.
    for (status, error) in &attacker_statuses {
        assert!(
            (400..500).contains(status),
            "attacker got {status} {error:?}"
        );
    }
    // Every acknowledged honest envelope is there, gap-free.
    for (id, key) in &honest {
        let page = h.read(id, key, 0).await.ok();
        assert_eq!(page["headSeq"], HONEST_SENDS as u64);
        assert_eq!(page["envelopes"].as_array().unwrap().len(), HONEST_SENDS);
    }

    // The bounds themselves: an epoch past 2^53 - 1 is refused at creation, a commit
    // that would move past it is refused, and the mailbox stays where it was.
    assert!(refused_huge, "createMailbox accepted epoch 2^63 - 1");
    h.create("group", &attacker_key, MAX_EPOCH + 1)
        .await
        .error(400, "InvalidRequest");
    let next = mailbox_key();
    h.send(
        &attacker,
        &attacker_key,
        json!([commit(MAX_EPOCH, b"c", &next)]),
    )
    .await
    .error(400, "InvalidEnvelope");
    let query = format!("mailbox={attacker}");
    let info = h
        .signed_get(DsMethod::GetMailbox, &attacker, &attacker_key, &query)
        .await
        .ok();
    assert_eq!(info["epoch"], MAX_EPOCH);
    assert_eq!(info["seq"], 0);
}
