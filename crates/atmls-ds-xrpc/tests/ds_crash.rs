//! Crash safety: the DS runs as its own process on a SQLite file, eight senders load it
//! with real signed requests, the process is killed with SIGKILL mid-load and restarted
//! on the same file. Every acknowledged envelope must be there, at the sequence number it
//! was acknowledged with, gap-free; every stored envelope must be one a sender sent,
//! whole; every batch is there entirely or not at all.
//!
//! The DS process is this test binary run again with [`CHILD`] set (see [`crash_child`]),
//! started by `atmls-testkit` like every other test server.

mod ds_support;

use std::collections::HashMap;
use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atmls_ds::auth::{DsMethod, RequestToken};
use atmls_ds::{DeliveryService, DsConfig, MailboxId, MailboxKind, SqliteStore};
use atmls_ds_xrpc::{Clock as _, SystemClock};
use atmls_testkit::child;
use atmls_testkit::server::TestServer;
use bytes::Bytes;
use ds_support::{b64, mailbox_key, public, unb64};
use ed25519_dalek::SigningKey;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

/// The request age (and so the startup guard) of the test server, in ms.
const MAX_AGE_MS: u64 = 1000;
const MAILBOXES: usize = 4;
const SENDERS: usize = 8;
/// Acknowledged batches before the kill.
const KILL_AFTER: usize = 150;

/// Set (to the data directory) in the child process that serves the DS.
const CHILD: &str = "ATMLS_DS_CRASH_CHILD";

/// The DS process: does nothing unless [`CHILD`] is set. Then it serves a DS on the
/// data directory's `ds.sqlite`, prints `listening on http://<addr>`, and stops when its
/// stdin closes (the parent went away without killing it).
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let server = TestServer::builder()
            .ds_only()
            .without_plc()
            .system_clock()
            .data_dir(Path::new(&dir))
            .core(DsConfig::default().with_request_max_age(Duration::from_millis(MAX_AGE_MS)))
            .start()
            .await;
        println!("{}{}", child::LISTENING, server.addr());
        std::io::stdout().flush().expect("flush");
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin()
                .lock()
                .read_line(&mut line)
                .is_ok_and(|n| n > 0)
            {
                line.clear();
            }
        })
        .await
        .expect("stdin reader");
        server.shutdown().await;
    });
}

/// Starts the DS process over `db`'s directory; its address.
fn spawn_server(db: &Path) -> (child::Child, SocketAddr) {
    let dir = db.parent().expect("the database's directory");
    let dir = dir.to_str().expect("a UTF-8 temporary directory");
    child::spawn("crash_child", CHILD, dir, Duration::from_secs(10))
}

/// One request on a fresh connection; `Err` when the server is gone.
async fn request(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    atmls_testkit::http::try_send(addr, req, Duration::from_secs(5)).await
}

async fn send_batch(
    addr: SocketAddr,
    mailbox: &MailboxId,
    key: &SigningKey,
    payloads: &[Vec<u8>],
) -> Result<(StatusCode, Value), String> {
    let envelopes: Vec<Value> = payloads
        .iter()
        .map(|p| json!({ "kind": "message", "payload": { "$bytes": b64(p) } }))
        .collect();
    let body = json!({ "mailbox": mailbox.to_string(), "envelopes": envelopes })
        .to_string()
        .into_bytes();
    let token = RequestToken::sign(
        key,
        DsMethod::SendEnvelopes,
        mailbox,
        SystemClock.now(),
        rand::random(),
        &body,
    );
    let req = Request::post("/xrpc/chat.mls.ds.sendEnvelopes")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("authorization", token.authorization_header())
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let (status, body) = request(addr, req).await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

async fn read_page(
    addr: SocketAddr,
    mailbox: &MailboxId,
    key: &SigningKey,
    cursor: u64,
) -> Result<(StatusCode, Value), String> {
    let query = format!("mailbox={mailbox}&cursor={cursor}&limit=1000");
    let token = RequestToken::sign(
        key,
        DsMethod::GetEnvelopes,
        mailbox,
        SystemClock.now(),
        rand::random(),
        query.as_bytes(),
    );
    let req = Request::get(format!("/xrpc/chat.mls.ds.getEnvelopes?{query}"))
        .header("host", "localhost")
        .header("authorization", token.authorization_header())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = request(addr, req).await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// One batch a sender sent, and what the DS answered.
#[derive(Debug, Clone)]
struct Sent {
    mailbox: usize,
    payloads: Vec<Vec<u8>>,
    acked: Option<u64>,
}

/// Sends until the server goes away; the 503 of the startup guard is retried.
async fn sender(
    id: usize,
    addr: SocketAddr,
    mailbox: (usize, MailboxId, SigningKey),
    log: Arc<Mutex<Vec<Sent>>>,
    acks: Arc<AtomicUsize>,
    deadline: Instant,
) {
    let (index, mb, key) = mailbox;
    for n in 0.. {
        if Instant::now() > deadline {
            return;
        }
        // 1 to 3 envelopes of 100 to 400 bytes, each naming its sender, batch and place.
        let payloads: Vec<Vec<u8>> = (0..n % 3 + 1)
            .map(|j| {
                let mut p = format!("sender {id} batch {n} envelope {j} ").into_bytes();
                p.resize(100 + (n * 37 + j * 11) % 300, b'a' + (id as u8));
                p
            })
            .collect();
        let slot = {
            let mut log = log.lock().unwrap();
            log.push(Sent {
                mailbox: index,
                payloads: payloads.clone(),
                acked: None,
            });
            log.len() - 1
        };
        match send_batch(addr, &mb, &key, &payloads).await {
            Ok((StatusCode::OK, body)) => {
                log.lock().unwrap()[slot].acked = body["firstSeq"].as_u64();
                acks.fetch_add(1, Ordering::SeqCst);
            }
            Ok((StatusCode::SERVICE_UNAVAILABLE, _)) => {
                // The startup guard: not sent. Try again shortly.
                log.lock().unwrap()[slot].payloads.clear();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok((status, body)) => panic!("sender {id}: {status} {body}"),
            // The server was killed: this batch may or may not have been committed.
            Err(_) => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_envelopes_survive_sigkill() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ds.sqlite");

    // The mailboxes, created through the core on the same file.
    let mut mailboxes = Vec::new();
    {
        let store = SqliteStore::open(&db).expect("open");
        let mut core = DeliveryService::new(store, rand::rngs::OsRng, DsConfig::default());
        for _ in 0..MAILBOXES {
            let key = mailbox_key();
            let info = core
                .create_mailbox("did:plc:crashtest", MailboxKind::Group, &public(&key), 0)
                .expect("create");
            mailboxes.push((info.mailbox, key));
        }
    }

    let (proc, addr) = spawn_server(&db);
    let log = Arc::new(Mutex::new(Vec::new()));
    let acks = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(15);
    let tasks: Vec<_> = (0..SENDERS)
        .map(|id| {
            let (mb, key) = mailboxes[id % MAILBOXES].clone();
            tokio::spawn(sender(
                id,
                addr,
                (id % MAILBOXES, mb, key),
                log.clone(),
                acks.clone(),
                deadline,
            ))
        })
        .collect();
    while acks.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "too few acknowledgements before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL, in the middle of the load.
    drop(proc);
    for t in tasks {
        t.await.expect("sender");
    }
    let sent = log.lock().unwrap().clone();

    let (_proc, addr) = spawn_server(&db);
    let mut stored: Vec<Vec<(u64, Vec<u8>)>> = Vec::new();
    for (mb, key) in &mailboxes {
        let mut envelopes = Vec::new();
        loop {
            let cursor = envelopes.last().map_or(0, |(s, _)| *s);
            let (status, page) = read_page(addr, mb, key, cursor).await.expect("read");
            if status == StatusCode::SERVICE_UNAVAILABLE {
                // The restarted server's replay guard; it ends MAX_AGE_MS after the start.
                assert!(
                    started.elapsed() < Duration::from_secs(25),
                    "guard never ended"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            assert_eq!(status, StatusCode::OK, "{page}");
            let page = page["envelopes"].as_array().expect("envelopes").clone();
            if page.is_empty() {
                break;
            }
            envelopes.extend(
                page.iter()
                    .map(|e| (e["seq"].as_u64().unwrap(), unb64(&e["payload"]))),
            );
        }
        stored.push(envelopes);
    }

    let (mut acked, mut in_flight_kept, mut in_flight_lost) = (0, 0, 0);
    let mut owner: HashMap<&[u8], usize> = HashMap::new();
    for (i, s) in sent.iter().enumerate() {
        for p in &s.payloads {
            owner.insert(p, i);
        }
    }
    for (m, envelopes) in stored.iter().enumerate() {
        // Gap-free from 1, in order.
        let seqs: Vec<u64> = envelopes.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            seqs,
            (1..=envelopes.len() as u64).collect::<Vec<_>>(),
            "mailbox {m}: gap"
        );
        // Every stored envelope is one a sender sent to this mailbox, whole.
        for (seq, payload) in envelopes {
            let i = owner
                .get(payload.as_slice())
                .unwrap_or_else(|| panic!("mailbox {m} seq {seq}: a payload nobody sent"));
            assert_eq!(sent[*i].mailbox, m, "seq {seq} in the wrong mailbox");
        }
    }
    for s in &sent {
        if s.payloads.is_empty() {
            continue;
        }
        let envelopes = &stored[s.mailbox];
        let at = envelopes.iter().position(|(_, p)| *p == s.payloads[0]);
        if let Some(first) = s.acked {
            acked += 1;
            let at = at.unwrap_or_else(|| panic!("acknowledged batch at {first} lost"));
            assert_eq!(envelopes[at].0, first, "acknowledged at another seq");
        }
        match at {
            Some(at) => {
                // The whole batch, consecutive, in order.
                let got: Vec<&Vec<u8>> = envelopes[at..]
                    .iter()
                    .take(s.payloads.len())
                    .map(|(_, p)| p)
                    .collect();
                assert_eq!(
                    got,
                    s.payloads.iter().collect::<Vec<_>>(),
                    "batch half-written"
                );
                if s.acked.is_none() {
                    in_flight_kept += 1;
                }
            }
            None => {
                assert!(
                    s.payloads
                        .iter()
                        .all(|p| envelopes.iter().all(|(_, q)| q != p)),
                    "batch half-written"
                );
                in_flight_lost += 1;
            }
        }
    }
    assert!(acked >= KILL_AFTER);
    eprintln!(
        "crash test: {acked} acknowledged batches all present; {in_flight_kept} unacknowledged \
         batches committed whole, {in_flight_lost} absent; {} envelopes stored; {:?}",
        stored.iter().map(Vec::len).sum::<usize>(),
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
