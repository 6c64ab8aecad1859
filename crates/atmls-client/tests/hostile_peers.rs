//! Client-side attacks through the real host and DS over HTTP on loopback (issue 14,
//! hole 2): poisoned inbox items from strangers, a member adding a DID that then
//! vanishes, a DID host that keeps failing. Each runs beside honest traffic and asserts
//! that the victim's other groups and inbox items keep working and that a typed event
//! names the refusal.
//!
//! The clients resolve DIDs through a small gate in front of the host's PLC directory,
//! so that a test can make a DID vanish (`410 Gone`, as a tombstoned did:plc) without
//! the server side noticing.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead as _, KeyInit as _};
use atmls_client::group::seal::{TreeRef, WelcomeInfo, seal_welcome};
use atmls_client::transport::http::{HttpDs, HttpPds};
use atmls_client::transport::{Ds as _, Pds as _};
use atmls_client::{Device, DeviceConfig, Did, Event, GroupId, Storage, content};
use atmls_ds_proto::MailboxId;
use atmls_ds_xrpc::KeyPackageConfig;
use atmls_identity::DidResolver;
use atmls_identity::plc::directory::DirectoryService;
use atmls_identity::resolve::{HttpResolver, ResolverConfig};
use atmls_testkit::server::TestServer;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use sha2::Digest as _;

type Dev = Device<HttpPds, HttpDs>;

const WAIT: Duration = Duration::from_secs(30);

struct Net {
    url: String,
    ds_did: Did,
    /// The clients' resolver: through the gate.
    resolver: Arc<dyn DidResolver>,
    /// DIDs the gate answers `410 Gone` for.
    vanished: Arc<Mutex<HashSet<String>>>,
    server: TestServer,
}

/// The embedded composition in memory (`atmls-testkit`), on the system clock.
async fn start() -> Net {
    // No getKeyPackages cache: a cached answer still lists a one-time package its device
    // consumed since (with the proof of the older revision, which a client that saw no
    // newer one accepts), and a welcome sealed to it cannot be opened. These tests fetch
    // the victim's packages after it joined.
    let server = TestServer::builder()
        .system_clock()
        .key_packages(KeyPackageConfig::default().with_cache_ttl(Duration::ZERO))
        .start()
        .await;
    let url = server.url().to_owned();
    let ds_did = server.ds_did().clone();
    let vanished = Arc::new(Mutex::new(HashSet::new()));
    let gate = gate(
        DirectoryService::new(server.host().directory().clone()),
        vanished.clone(),
    )
    .await;
    let resolver: Arc<dyn DidResolver> = Arc::new(HttpResolver::new(
        ResolverConfig::default()
            .allow_loopback_http(true)
            .with_plc_url(&gate),
    ));
    Net {
        url,
        ds_did,
        resolver,
        vanished,
        server,
    }
}

/// A PLC directory on loopback that answers `410 Gone` for the DIDs in `vanished` and
/// passes everything else to `directory`; returns its URL.
async fn gate(directory: DirectoryService, vanished: Arc<Mutex<HashSet<String>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let directory = directory.clone();
            let vanished = vanished.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<_>| {
                    let directory = directory.clone();
                    let gone = {
                        // The document and every log of the DID (`/log/audit` is what
                        // leaf proofs are checked against, §11.13).
                        let path = req.uri().path().trim_start_matches('/');
                        let did = path.split('/').next().unwrap_or_default();
                        vanished.lock().unwrap().contains(did)
                    };
                    async move {
                        if gone {
                            return Ok::<_, Infallible>(status(StatusCode::GONE));
                        }
                        Ok(directory.handle(req).await)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    url
}

/// A host on loopback that answers every request with `503` (a DID host that is down);
/// returns its `host:port`.
async fn failing_host() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req: Request<_>| async {
                    Ok::<_, Infallible>(status(StatusCode::SERVICE_UNAVAILABLE))
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    format!("127.0.0.1%3A{}", addr.port())
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}

impl Net {
    async fn account(&self, name: &str) -> HttpPds {
        HttpPds::create_account(
            &self.url,
            &format!("{name}.test"),
            &format!("{name}@example.com"),
            "correct horse",
            self.resolver.clone(),
        )
        .await
        .unwrap()
    }

    async fn device(&self, name: &str) -> Dev {
        let pds = self.account(name).await;
        Device::create(
            Storage::Memory,
            pds,
            HttpDs::new(self.resolver.clone()),
            self.ds_did.clone(),
            config(),
        )
        .await
        .unwrap()
    }

    fn vanish(&self, did: &Did) {
        self.vanished.lock().unwrap().insert(did.to_string());
    }
}

fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(2)
        .with_own_device_check_interval(Duration::from_secs(3600))
        .with_self_update_interval(None)
}

async fn sync(d: &Dev) -> Vec<Event> {
    tokio::time::timeout(WAIT, d.sync())
        .await
        .expect("sync in time")
        .expect("sync succeeds")
}

/// Alice's group "g" with the victim in it (joined), and Alice's message "hello" sent
/// after: the honest traffic the victim must still get.
async fn honest_group(net: &Net, victim: &Dev) -> (Dev, GroupId) {
    let alice = net.device("alice").await;
    let g = alice.create_group("g").await.unwrap();
    alice
        .add_members(&g, &[victim.did().clone()])
        .await
        .unwrap();
    let ev = sync(victim).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g));
    (alice, g)
}

/// A stranger's item in `victim`'s inbox: `info` sealed to the victim's published init
/// key (so that the victim opens it), padded; returns its inbox seq.
async fn deposit(net: &Net, stranger: &Dev, victim: &Dev, info: &WelcomeInfo) -> u64 {
    let kp = stranger
        .key_packages_of(victim.did())
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let sealed = seal_welcome(
        &crypto,
        kp.key_package.ciphersuite(),
        kp.key_package.hpke_init_key().as_slice(),
        info,
    )
    .unwrap();
    deposit_bytes(net, victim, content::pad(sealed, 1 << 20)).await
}

/// Raw bytes in `victim`'s inbox (anyone may send to a public inbox, no account needed).
async fn deposit_bytes(net: &Net, victim: &Dev, payload: Vec<u8>) -> u64 {
    let (ds, inbox) = victim.inbox().await;
    HttpDs::new(net.resolver.clone())
        .send_welcome(&ds, &inbox, payload)
        .await
        .unwrap()
}

/// A welcome plaintext for a group that does not exist, with `tree` out of band.
fn welcome_with_tree(net: &Net, tree: Option<TreeRef>) -> WelcomeInfo {
    WelcomeInfo {
        welcome: vec![0; 64],
        ds: net.ds_did.clone(),
        mailbox: MailboxId::from_bytes(rand::random()),
        from_seq: 1,
        ratchet_tree: tree,
    }
}

/// A tree reference naming `did`'s blob `cid`, with an unrelated key.
fn tree_ref(did: Did, cid: cid::Cid, size: u64) -> TreeRef {
    TreeRef {
        did,
        cid,
        key: [7; 32],
        nonce: [8; 12],
        digest: [9; 32],
        size,
    }
}

/// Encrypts `plain` as an out-of-band tree (§11.4) and uploads it to `d`'s PDS.
async fn upload_tree(d: &Dev, plain: &[u8]) -> TreeRef {
    let key: [u8; 32] = rand::random();
    let nonce: [u8; 12] = rand::random();
    let mut padded = plain.to_vec();
    padded.resize(content::padded_len(plain.len(), usize::MAX), 0);
    let ct = aes_gcm::Aes256Gcm::new(&key.into())
        .encrypt(aes_gcm::Nonce::from_slice(&nonce), padded.as_slice())
        .unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(&ct).into();
    let blob = d
        .pds()
        .upload_blob(ct, "application/octet-stream")
        .await
        .unwrap();
    TreeRef {
        did: d.did().clone(),
        cid: blob.cid,
        key,
        nonce,
        digest,
        size: plain.len() as u64,
    }
}

fn rejected_seqs(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected {
                group: None, seq, ..
            } => Some(*seq),
            _ => None,
        })
        .collect()
}

/// Strangers fill the victim's inbox with poison: garbage, a welcome sealed to another
/// key, welcomes whose out-of-band tree names a DID that does not exist, a blob that
/// does not exist, a size no blob can have, and a tree that decrypts to garbage. The
/// victim refuses each one (typed event, cursor on, items deleted), still joins the
/// honest welcome deposited after them, and still reads its group — in the same sync.
/// (Before: the welcome naming a missing DID failed the whole `sync()` with a network
/// error, before any group was read, at every sync.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poisoned_inbox_items_are_refused_one_by_one() {
    let net = start().await;
    let victim = net.device("victim").await;
    let mallory = net.device("mallory").await;
    let carol = net.device("carol").await;
    let (alice, g) = honest_group(&net, &victim).await;

    let missing = Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let garbage_tree = upload_tree(&mallory, &[0xff; 300]).await;
    let mut poison = Vec::new();
    poison.push(deposit_bytes(&net, &victim, vec![0x01; 512]).await);
    poison.push(deposit_bytes(&net, &victim, vec![0; 256]).await);
    // Sealed to a key the victim does not have (Carol's).
    let other = mallory
        .key_packages_of(carol.did())
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let sealed = seal_welcome(
        &crypto,
        other.key_package.ciphersuite(),
        other.key_package.hpke_init_key().as_slice(),
        &welcome_with_tree(&net, None),
    )
    .unwrap();
    poison.push(deposit_bytes(&net, &victim, content::pad(sealed, 1 << 20)).await);
    let cid = atmls_repo::cid::raw(b"no such blob");
    for tree in [
        tree_ref(missing.clone(), cid, 1000),
        tree_ref(mallory.did().clone(), cid, 1000),
        TreeRef {
            size: u64::MAX,
            ..garbage_tree.clone()
        },
        garbage_tree,
    ] {
        poison.push(
            deposit(
                &net,
                &mallory,
                &victim,
                &welcome_with_tree(&net, Some(tree)),
            )
            .await,
        );
    }
    // Honest traffic after the poison: a welcome to Carol's group, a message in Alice's.
    let g2 = carol.create_group("g2").await.unwrap();
    carol
        .add_members(&g2, &[victim.did().clone()])
        .await
        .unwrap();
    alice.send(&g, content::text("hello")).await.unwrap();

    let ev = sync(&victim).await;
    assert_eq!(rejected_seqs(&ev), poison, "{ev:?}");
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g2));
    assert_eq!(Event::texts(&ev), ["hello"]);
    // Nothing is decided again.
    let again = sync(&victim).await;
    assert!(again.is_empty(), "{again:?}");
    carol.send(&g2, content::text("in g2")).await.unwrap();
    assert_eq!(Event::texts(&sync(&victim).await), ["in g2"]);
    net.server.shutdown().await;
}

/// A member adds an account whose DID then vanishes (the directory answers `410 Gone`):
/// the other members refuse that commit (a typed refusal naming the DID document) and
/// move on instead of retrying it forever, and their other groups are read in the same
/// sync. (Before: `Unreachable` at every sync, the group stuck at that commit for good.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_adding_a_did_that_vanishes_does_not_stop_the_others() {
    let net = start().await;
    let victim = net.device("victim").await;
    let carol = net.device("carol").await;
    let dave = net.device("dave").await;
    let (alice, g) = honest_group(&net, &victim).await;
    let g2 = carol.create_group("g2").await.unwrap();
    carol
        .add_members(&g2, &[victim.did().clone()])
        .await
        .unwrap();
    sync(&victim).await;

    alice.add_members(&g, &[dave.did().clone()]).await.unwrap();
    net.vanish(dave.did());
    carol.send(&g2, content::text("in g2")).await.unwrap();

    let ev = sync(&victim).await;
    assert_eq!(Event::texts(&ev), ["in g2"], "{ev:?}");
    let refused = ev.iter().any(|e| {
        matches!(e, Event::CommitRefused { group, violation: atmls_client::PolicyViolation::LeafProofRefused {
                    did,
                    reason: atmls_client::KeyPackageRefusal::DidDocument(_),
                }, .. } if *group == g && did == dave.did().as_str())
    });
    assert!(refused, "{ev:?}");
    // Decided once: the next sync does not try that commit again.
    let again = sync(&victim).await;
    assert!(
        !again
            .iter()
            .any(|e| matches!(e, Event::Unreachable { .. } | Event::CommitRefused { .. })),
        "{again:?}"
    );
    carol.send(&g2, content::text("still here")).await.unwrap();
    assert_eq!(Event::texts(&sync(&victim).await), ["still here"]);
    net.server.shutdown().await;
}

/// A stranger's welcome names an out-of-band tree on a did:web host that answers `503`
/// (transient): the item is set aside and the rest of the inbox and the groups are read
/// in the same sync. (Before: `sync()` failed with a network error at every sync.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_whose_tree_host_keeps_failing_does_not_block_the_rest() {
    let net = start().await;
    let victim = net.device("victim").await;
    let mallory = net.device("mallory").await;
    let carol = net.device("carol").await;
    let (alice, g) = honest_group(&net, &victim).await;

    let host = failing_host().await;
    let web = Did::new(format!("did:web:{host}")).unwrap();
    let tree = tree_ref(web, atmls_repo::cid::raw(b"t"), 1000);
    let deferred = deposit(
        &net,
        &mallory,
        &victim,
        &welcome_with_tree(&net, Some(tree)),
    )
    .await;
    let g2 = carol.create_group("g2").await.unwrap();
    carol
        .add_members(&g2, &[victim.did().clone()])
        .await
        .unwrap();
    alice.send(&g, content::text("hello")).await.unwrap();

    let ev = sync(&victim).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g2), "{ev:?}");
    assert_eq!(Event::texts(&ev), ["hello"]);
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::InboxItemDeferred { seq, attempts: 1, error }
            if *seq == deferred && error.is_transient())
        ),
        "{ev:?}"
    );
    net.server.shutdown().await;
}
