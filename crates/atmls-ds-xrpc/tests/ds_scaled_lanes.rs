//! Several writer lanes per DS process over one PostgreSQL database (issue 16): each
//! process runs four lanes (four group commits in flight), a mailbox always served by
//! the same lane. Concurrent senders on many mailboxes through two processes leave every
//! mailbox gap-free and every sender's envelopes in its order; one subscription naming
//! mailboxes served by different lanes gets each mailbox in order, without gap or
//! duplicate, from its own process and from the other; a refused subscription names its
//! first failing mailbox, as one writer deciding in order does.
//!
//! Needs `ATMLS_TEST_DATABASE_URL` (`scripts/test` starts a throw-away cluster with
//! `scripts/pg-cluster`); without it every test here fails.

mod ds_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use atmls_ds::MailboxId;
use atmls_ds::auth::DsMethod;
use atmls_ds_postgres::{PgConfig, PgStore, SchemaName};
use atmls_server::scaled::PgDs;
use ds_support::{
    Harness, envelope, frame, mailbox_key, message, server_config, small_limits, start_with_store,
    subscribe, unb64,
};
use ed25519_dalek::SigningKey;
use tokio::task::JoinHandle;

/// Writer lanes per process in these tests.
const LANES: usize = 4;

fn fresh_schema() -> SchemaName {
    atmls_testkit::database::fresh_schema_name("l")
        .parse()
        .expect("valid schema name")
}

/// One DS process of a deployment, with [`LANES`] writer lanes.
struct Process {
    h: Arc<Harness>,
    _follow: JoinHandle<()>,
}

async fn process(schema: &SchemaName) -> Process {
    let config = PgConfig::new(&atmls_testkit::database::database_url())
        .expect("valid URL")
        .with_schema(schema.clone())
        .with_writer_lanes(LANES)
        .with_pool_size(2);
    let pg = config.clone();
    let store = tokio::task::spawn_blocking(move || PgStore::connect(&pg))
        .await
        .expect("connect task")
        .expect("connect to the test database");
    let limits = small_limits().with_max_mailboxes_per_account(200);
    let h = start_with_store(store, limits, |c| c, server_config()).await;
    assert_eq!(h.ds.writer_lanes(), LANES);
    let follow = PgDs::follow(&config, h.ds.clone())
        .await
        .expect("listen to the test database");
    Process {
        h: Arc::new(h),
        _follow: follow,
    }
}

/// `n` mailboxes created through `h`, served by at least `lanes` different lanes.
async fn mailboxes(h: &Harness, n: usize, lanes: usize) -> Vec<(MailboxId, SigningKey)> {
    let mut out: Vec<(MailboxId, SigningKey)> = Vec::new();
    for _ in 0..100 {
        let key = mailbox_key();
        out.push((h.mailbox("group", &key).await, key));
        let used: BTreeSet<usize> = out.iter().map(|(m, _)| h.ds.lane_of(m)).collect();
        if out.len() >= n && used.len() >= lanes {
            return out;
        }
    }
    panic!("100 random mailboxes all on fewer than {lanes} lanes");
}

/// Every envelope of `mailbox`: (seq, payload).
async fn read_all(h: &Harness, mailbox: &MailboxId, key: &SigningKey) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        let page = h.read(mailbox, key, cursor).await.ok();
        let items = page["envelopes"].as_array().expect("envelopes").clone();
        if items.is_empty() {
            return out;
        }
        for e in items {
            let seq = e["seq"].as_u64().expect("seq");
            out.push((seq, unb64(&e["payload"])));
            cursor = seq;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_on_many_mailboxes_keep_each_mailbox_in_order_without_gap() {
    const MAILBOXES: usize = 12;
    const SENDERS_PER_MAILBOX: usize = 4;
    const REQUESTS: usize = 8;
    let schema = fresh_schema();
    let (a, b) = (process(&schema).await, process(&schema).await);
    let boxes = mailboxes(&a.h, MAILBOXES, LANES).await;

    // Every sender sends REQUESTS requests (1 or 2 envelopes) one after the other; half
    // of a mailbox's senders go through each process.
    let mut tasks = Vec::new();
    for (m, (mailbox, key)) in boxes.iter().enumerate() {
        for s in 0..SENDERS_PER_MAILBOX {
            let h = if s % 2 == 0 { a.h.clone() } else { b.h.clone() };
            let (mailbox, key) = (*mailbox, key.clone());
            tasks.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                for r in 0..REQUESTS {
                    let n = 1 + (r % 2);
                    let envelopes: Vec<_> = (0..n)
                        .map(|j| message(format!("m{m}-s{s}-r{r}-{j}").as_bytes()))
                        .collect();
                    let resp = h
                        .send(&mailbox, &key, serde_json::Value::Array(envelopes))
                        .await;
                    statuses.push(resp.status);
                }
                statuses
            }));
        }
    }
    for t in tasks {
        let statuses = t.await.expect("sender");
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }

    let per_request: usize = (0..REQUESTS).map(|r| 1 + (r % 2)).sum();
    for (m, (mailbox, key)) in boxes.iter().enumerate() {
        let stored = read_all(&b.h, mailbox, key).await;
        let seqs: Vec<u64> = stored.iter().map(|(s, _)| *s).collect();
        let expected: Vec<u64> = (1..=(SENDERS_PER_MAILBOX * per_request) as u64).collect();
        assert_eq!(seqs, expected, "mailbox {m}: gap-free, each envelope once");
        // Each sender's envelopes in the order it sent them.
        let mut by_sender: HashMap<usize, Vec<String>> = HashMap::new();
        for (_, payload) in &stored {
            let text = String::from_utf8(payload.clone()).expect("utf-8");
            let sender: usize = text
                .split('-')
                .nth(1)
                .and_then(|s| s.strip_prefix('s'))
                .and_then(|s| s.parse().ok())
                .expect("sender");
            by_sender.entry(sender).or_default().push(text);
        }
        for s in 0..SENDERS_PER_MAILBOX {
            let sent: Vec<String> = (0..REQUESTS)
                .flat_map(|r| (0..1 + (r % 2)).map(move |j| format!("m{m}-s{s}-r{r}-{j}")))
                .collect();
            assert_eq!(by_sender.get(&s), Some(&sent), "mailbox {m} sender {s}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_of_mailboxes_on_several_lanes_gets_each_in_order_once() {
    const MAILBOXES: usize = 6;
    const SENDS: usize = 12;
    let schema = fresh_schema();
    let (a, b) = (process(&schema).await, process(&schema).await);
    let boxes = mailboxes(&b.h, MAILBOXES, 3).await;

    // One subscription at B naming every mailbox, from the start; each token signs the
    // whole query without its auth parameters.
    let mut query = boxes
        .iter()
        .map(|(m, _)| format!("mailbox={m}"))
        .collect::<Vec<_>>()
        .join("&");
    query.push_str("&cursor=0");
    let tokens: Vec<String> = boxes
        .iter()
        .map(|(m, k)| {
            b.h.token(k, DsMethod::SubscribeEnvelopes, m, query.as_bytes())
                .encode()
        })
        .collect();
    for t in &tokens {
        query.push_str(&format!("&auth={t}"));
    }
    let mut ws = subscribe(b.h.addr, &query).await;

    // Senders on every mailbox at once, through both processes (mostly the other one).
    let mut tasks = Vec::new();
    for (m, (mailbox, key)) in boxes.iter().enumerate() {
        let (mailbox, key) = (*mailbox, key.clone());
        let (ha, hb) = (a.h.clone(), b.h.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..SENDS {
                let via = if i % 3 == 0 { &hb } else { &ha };
                let n = if i % 4 == 0 { 3 } else { 1 };
                let envelopes: Vec<_> = (0..n)
                    .map(|j| message(format!("m{m}-{i}-{j}").as_bytes()))
                    .collect();
                let resp = via
                    .send(&mailbox, &key, serde_json::Value::Array(envelopes))
                    .await;
                assert_eq!(resp.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }

    let per_mailbox: usize = (0..SENDS).map(|i| if i % 4 == 0 { 3 } else { 1 }).sum();
    let names: HashMap<String, usize> = boxes
        .iter()
        .enumerate()
        .map(|(i, (m, _))| (m.to_string(), i))
        .collect();
    let mut got: BTreeMap<usize, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    let mut total = 0;
    while total < MAILBOXES * per_mailbox {
        let (header, body) = frame(&mut ws).await;
        if header.t.as_deref() != Some("#envelope") {
            continue;
        }
        let (id, seq, payload) = envelope(&body);
        let m = *names.get(&id).expect("a subscribed mailbox");
        got.entry(m).or_default().push((seq, payload));
        total += 1;
    }
    for (m, (mailbox, key)) in boxes.iter().enumerate() {
        let received = got.remove(&m).unwrap_or_default();
        let seqs: Vec<u64> = received.iter().map(|(s, _)| *s).collect();
        let expected: Vec<u64> = (1..=per_mailbox as u64).collect();
        assert_eq!(
            seqs, expected,
            "mailbox {m}: in order, no gap, no duplicate"
        );
        // What was received is what was stored.
        assert_eq!(received, read_all(&a.h, mailbox, key).await, "mailbox {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_over_several_lanes_names_its_first_failing_mailbox() {
    let schema = fresh_schema();
    let p = process(&schema).await;
    let h = &p.h;
    // m0 and m2 on one lane, m1 on another.
    let mut made: Vec<(MailboxId, SigningKey)> = Vec::new();
    let picked = loop {
        assert!(made.len() < 100, "100 random mailboxes all on one lane");
        let key = mailbox_key();
        made.push((h.mailbox("group", &key).await, key));
        let lane = |i: usize| h.ds.lane_of(&made[i].0);
        let found = (0..made.len()).find_map(|a| {
            let b = (0..made.len()).find(|&b| lane(b) != lane(a))?;
            let c = (0..made.len()).find(|&c| c != a && lane(c) == lane(a))?;
            Some([a, b, c])
        });
        if let Some(found) = found {
            break found;
        }
    };
    let [m0, m1, m2] = picked.map(|i| made[i].0);
    let (k0, k1) = (made[picked[0]].1.clone(), made[picked[1]].1.clone());

    // m1: a cursor past its head (FutureCursor, position 1); m2: a key it never had
    // (KeyExpired, position 2, on the lane that also serves m0). One writer deciding in
    // order reports position 1; so must the lanes.
    let query = format!("mailbox={m0}&mailbox={m1}&mailbox={m2}&cursor=0&cursor=5&cursor=0");
    let auth = [
        h.token(&k0, DsMethod::SubscribeEnvelopes, &m0, query.as_bytes()),
        h.token(&k1, DsMethod::SubscribeEnvelopes, &m1, query.as_bytes()),
        h.token(
            &mailbox_key(),
            DsMethod::SubscribeEnvelopes,
            &m2,
            query.as_bytes(),
        ),
    ]
    .map(|t| t.encode());
    let query = format!("{query}&auth={}&auth={}&auth={}", auth[0], auth[1], auth[2]);
    let mut ws = subscribe(h.addr, &query).await;
    let (header, body) = frame(&mut ws).await;
    assert_eq!(header.op, -1, "{body:?}");
    assert_eq!(ds_support::error_name(&body), "FutureCursor");
    let message = match ds_support::field(&body, "message") {
        ipld_core::ipld::Ipld::String(s) => s.clone(),
        other => panic!("message: {other:?}"),
    };
    assert!(message.starts_with("mailbox 1:"), "{message}");
}
