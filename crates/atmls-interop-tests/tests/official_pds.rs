//! Interop with the official atproto PDS (`@atproto/pds` through `@atproto/dev-env`, see
//! `tests/interop/official-pds/`), run on loopback next to `atmls serve` in attached mode
//! (the real binary). Docs: `docs/operators.md` (the same steps) and `docs/spec.md` §13.
//!
//! 1. `official_pds_group`: accounts created through the official PDS's XRPC API; every
//!    device publishes its declaration and KeyPackages into its official-PDS repo; another
//!    user's client fetches them and verifies the official `sync.getRecord` proofs;
//!    `createMailbox` goes through the official PDS's `atproto-proxy`, so our DS verifies
//!    a service-auth JWT the official PDS minted; three accounts (one with two devices)
//!    exchange messages, add and remove a member, and send an attachment stored as a blob
//!    on the official PDS.
//! 2. `embedded_and_official_in_one_group`: accounts on our embedded host (its DIDs
//!    registered in the official PLC directory, so every party resolves every DID there)
//!    and on the official PDS in one group on the same DS.
//!
//! Needs Node.js 20 and npm; fails (never skips) without them.

use std::sync::Arc;
use std::time::Duration;

use atmls_client::transport::http::{HttpDs, HttpPds};
use atmls_client::{Device, DeviceConfig, Did, Event, GroupId, Storage, content};
use atmls_identity::DidResolver;
use atmls_identity::resolve::{HttpResolver, ResolverConfig};
use atmls_interop_tests::{AttachedDs, OfficialPds};
use atmls_lexicon::chat::mls::content::Attachment;
use atmls_testkit::server::TestServer;

type Dev = Device<HttpPds, HttpDs>;

/// Longest wait for one client operation.
const WAIT: Duration = Duration::from_secs(30);
/// Longest time a whole scenario may take once the services are up.
const SCENARIO: Duration = Duration::from_secs(240);
const PASSWORD: &str = "correct horse battery";

/// The official network, our attached DS, and how every party resolves DIDs: did:plc in
/// the official PLC directory, did:web over plain http on loopback.
struct World {
    official: OfficialPds,
    _ds: AttachedDs,
    ds_did: Did,
    resolver: Arc<dyn DidResolver>,
    _data: tempfile::TempDir,
}

fn start_world() -> World {
    let official = OfficialPds::start().unwrap_or_else(|e| panic!("{e}"));
    println!("testing against the official PDS: {}", official.versions);
    let data = tempfile::tempdir().unwrap();
    let ds = AttachedDs::start(&official.pds_url, &official.plc_url, data.path())
        .unwrap_or_else(|e| panic!("{e}"));
    println!("{}", ds.banner.join("\n"));
    let resolver: Arc<dyn DidResolver> = Arc::new(HttpResolver::new(
        ResolverConfig::default()
            .allow_loopback_http(true)
            .with_plc_url(&official.plc_url),
    ));
    World {
        ds_did: Did::new(&ds.did).unwrap(),
        official,
        _ds: ds,
        resolver,
        _data: data,
    }
}

fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(1)
        .with_own_device_check_interval(Duration::ZERO)
}

impl World {
    /// Creates `<name>.test` on the PDS at `base` through its XRPC API.
    async fn account(&self, base: &str, name: &str) -> HttpPds {
        HttpPds::create_account(
            base,
            &format!("{name}.test"),
            &format!("{name}@example.com"),
            PASSWORD,
            self.resolver.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("createAccount {name} at {base}: {e}"))
    }

    async fn login(&self, base: &str, name: &str) -> HttpPds {
        HttpPds::login(
            base,
            &format!("{name}.test"),
            PASSWORD,
            self.resolver.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("createSession {name} at {base}: {e}"))
    }

    /// A device whose `createMailbox` calls go through its PDS's `atproto-proxy`.
    async fn device(&self, base: &str, name: &str, new_account: bool) -> Dev {
        let pds = if new_account {
            self.account(base, name).await
        } else {
            self.login(base, name).await
        };
        let proxy = Arc::new(self.login(base, name).await);
        let ds = HttpDs::new(self.resolver.clone()).with_pds_proxy(proxy);
        Device::create(Storage::Memory, pds, ds, self.ds_did.clone(), config())
            .await
            .unwrap_or_else(|e| panic!("device of {name} on {base}: {e}"))
    }
}

async fn sync(d: &Dev) -> Vec<Event> {
    tokio::time::timeout(WAIT, d.sync())
        .await
        .expect("sync in time")
        .unwrap()
}

fn attachment(events: &[Event]) -> Attachment {
    events
        .iter()
        .find_map(|e| match e {
            Event::Message(m) => match &m.content.body {
                atrium_api::types::Union::Refs(content::Body::Attachment(a)) => Some((**a).clone()),
                _ => None,
            },
            _ => None,
        })
        .expect("an attachment message")
}

/// Every member device ends in the same epoch with the same authenticator and roster.
async fn same_state(g: &GroupId, devices: &[&Dev], members: usize) {
    let first = devices[0].group(g).await.unwrap();
    for d in devices {
        let s = d.group(g).await.unwrap();
        assert_eq!(s.epoch, first.epoch);
        assert_eq!(s.epoch_authenticator, first.epoch_authenticator);
        assert_eq!(s.members.len(), members);
    }
}

/// Starts the services, then runs `scenario` within [`SCENARIO`].
async fn with_world(scenario: impl AsyncFnOnce(&World)) {
    let w = tokio::task::spawn_blocking(start_world).await.unwrap();
    tokio::time::timeout(SCENARIO, scenario(&w))
        .await
        .expect("scenario within its time bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_pds_group() {
    with_world(official_scenario).await;
}

async fn official_scenario(w: &World) {
    let pds = w.official.pds_url.as_str();
    // Accounts and devices; each device publishes into its official-PDS repo.
    let alice = w.device(pds, "alice", true).await;
    let bob = w.device(pds, "bob", true).await;
    let carol = w.device(pds, "carol", true).await;
    for d in [&alice, &bob, &carol] {
        assert!(d.did().as_str().starts_with("did:plc:"), "{}", d.did());
    }

    // Bob's client fetches Alice's KeyPackages and verifies the official proofs.
    let kps = bob.key_packages_of(alice.did()).await.unwrap();
    // One device, its one-time package offered before the last-resort one.
    assert_eq!(kps.len(), 1);
    assert_eq!(&kps[0].did, alice.did());
    assert_eq!(kps[0].inbox_ds, w.ds_did);
    assert!(!kps[0].last_resort);

    // Our attached DS gathers them itself from the official PDS (on loopback, over
    // http, under --allow-loopback): `ok`, not `unreachable`.
    {
        use atmls_client::transport::Ds as _;
        let gathered = HttpDs::new(w.resolver.clone())
            .key_packages(&w.ds_did, &[alice.did().clone()])
            .await
            .unwrap();
        assert_eq!(gathered.len(), 1);
        assert_eq!(
            gathered[0].status,
            atmls_ds::proto::DidStatus::Ok,
            "{gathered:?}"
        );
        assert_eq!(gathered[0].key_packages.len(), 2, "{gathered:?}");
    }

    service_auth_paths(w).await;

    // A group on our DS; the mailbox was created through the official PDS's proxy.
    let g = alice.create_group("official").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    alice.send(&g, content::text("hi bob")).await.unwrap();
    let ev = sync(&bob).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g));
    assert_eq!(Event::texts(&ev), ["hi bob"]);
    bob.send(&g, content::text("hi alice")).await.unwrap();
    assert_eq!(Event::texts(&sync(&alice).await), ["hi alice"]);

    // Alice's second device joins: her first device adds it on its own.
    let phone = w.device(pds, "alice", false).await;
    sync(&alice).await;
    assert_eq!(Event::joined(&sync(&phone).await), std::slice::from_ref(&g));
    sync(&bob).await;

    // Carol is added, reads, then is removed and reads nothing more.
    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    for d in [&bob, &phone] {
        sync(d).await;
    }
    phone
        .send(&g, content::text("welcome carol"))
        .await
        .unwrap();
    let ev = sync(&carol).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g));
    assert_eq!(Event::texts(&ev), ["welcome carol"]);
    for d in [&alice, &bob] {
        assert_eq!(Event::texts(&sync(d).await), ["welcome carol"]);
    }
    same_state(&g, &[&alice, &phone, &bob, &carol], 4).await;
    alice
        .remove_members(&g, &[carol.did().clone()])
        .await
        .unwrap();
    assert!(
        sync(&carol)
            .await
            .iter()
            .any(|e| matches!(e, Event::Removed { .. }))
    );
    for d in [&bob, &phone] {
        sync(d).await;
    }
    bob.send(&g, content::text("just us")).await.unwrap();
    assert!(Event::texts(&sync(&carol).await).is_empty());
    assert_eq!(Event::texts(&sync(&alice).await), ["just us"]);
    assert_eq!(Event::texts(&sync(&phone).await), ["just us"]);
    same_state(&g, &[&alice, &phone, &bob], 3).await;

    // An attachment: an encrypted blob on the official PDS, fetched by the others.
    let file: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    bob.send_attachment(&g, &file, "application/pdf", Some("notes.pdf".into()))
        .await
        .unwrap();
    for d in [&alice, &phone] {
        let a = attachment(&sync(d).await);
        assert_eq!(a.name.as_deref(), Some("notes.pdf"));
        assert_eq!(d.fetch_attachment(&a).await.unwrap(), file);
    }
}

/// `createMailbox` both ways with tokens the official PDS minted, its proxy's error
/// pass-through, replay refusal, and its blob rules (unreferenced blobs, size limit).
async fn service_auth_paths(w: &World) {
    use atmls_client::TransportError;
    use atmls_client::transport::{Ds as _, Pds as _};
    use atmls_ds::MailboxKind;
    let pds = w.login(&w.official.pds_url, "bob").await;
    let ds = HttpDs::new(w.resolver.clone());
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
        .verifying_key()
        .to_bytes();
    // Directly: a token from the official getServiceAuth (bare-DID audience, ES256K).
    let token = pds
        .service_auth(&w.ds_did, "chat.mls.ds.createMailbox")
        .await
        .unwrap();
    ds.create_mailbox(&w.ds_did, &token, MailboxKind::Inbox, key, 0)
        .await
        .unwrap();
    // The same token again: refused as a replay.
    match ds
        .create_mailbox(&w.ds_did, &token, MailboxKind::Inbox, key, 0)
        .await
    {
        Err(TransportError::Xrpc {
            status,
            error,
            message,
        }) => {
            assert_eq!((status, error.as_str()), (401, "InvalidToken"), "{message}");
            assert!(message.starts_with("Replayed"), "{message}");
        }
        other => panic!("replayed token: {other:?}"),
    }
    // Through the proxy, the request docs/operators.md §9 gives as the check (the key is
    // the Ed25519 base point), then one our DS refuses: status and error name come back.
    let proxy = format!("{}#chat_mls_ds", w.ds_did);
    let check = serde_json::json!({
        "kind": "inbox",
        "key": { "$bytes": "WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY" },
    });
    let answer = pds
        .proxied_procedure(&proxy, "chat.mls.ds.createMailbox", &check)
        .await
        .unwrap();
    assert!(answer["mailbox"].is_string(), "{answer}");
    let bad = serde_json::json!({ "kind": "nonsense", "key": { "$bytes": "AAAA" } });
    match pds
        .proxied_procedure(&proxy, "chat.mls.ds.createMailbox", &bad)
        .await
    {
        Err(TransportError::Xrpc { status, error, .. }) => {
            assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
        }
        other => panic!("proxied bad request: {other:?}"),
    }
    // A blob no record references is not served (hence chat.mls.attachmentRef).
    let loose = pds
        .upload_blob(
            b"no record points here".to_vec(),
            "application/octet-stream",
        )
        .await
        .unwrap();
    match pds.blob(&pds.did(), &loose.cid).await {
        Err(TransportError::Xrpc { status, error, .. }) => {
            println!("official PDS, unreferenced blob: {status} {error}");
            assert_eq!(status, 400);
        }
        other => panic!("unreferenced blob served: {other:?}"),
    }
    // A blob over the official PDS's default upload limit (5 MiB) is refused.
    let too_big = vec![0u8; 5 * 1024 * 1024 + 1];
    match pds.upload_blob(too_big, "application/octet-stream").await {
        Err(TransportError::Xrpc { status, error, .. }) => {
            println!("official PDS, blob over 5 MiB: {status} {error}");
            assert!(status == 400 || status == 413, "{status} {error}");
        }
        other => panic!("oversized blob: {other:?}"),
    }
}

/// Our embedded host on loopback (`atmls-testkit`), without a DS of its own. The
/// attached DS its proxy reaches is on loopback: the development allowance (the
/// starter's default).
async fn embedded_host(resolver: Arc<dyn DidResolver>) -> TestServer {
    TestServer::builder()
        .host_only()
        .system_clock()
        .host(move |h| h.with_resolver(resolver))
        .start()
        .await
}

/// Copies `did`'s operation log from the embedded host's directory into the official
/// PLC directory (which checks every signature), so that every party resolves it there.
async fn register_in_official_plc(host: &str, plc: &str, did: &Did) {
    let log = http_json(hyper::Method::GET, &format!("{host}/{did}/log"), None).await;
    let ops = log.as_array().expect("an operation log").clone();
    assert!(!ops.is_empty());
    for op in ops {
        http_json(hyper::Method::POST, &format!("{plc}/{did}"), Some(op)).await;
    }
}

/// A plain JSON request; panics on a non-2xx answer.
async fn http_json(
    method: hyper::Method,
    url: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    use http_body_util::{BodyExt as _, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let req = hyper::Request::builder()
        .method(method.clone())
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .unwrap();
    let res = tokio::time::timeout(WAIT, client.request(req))
        .await
        .expect("answer in time")
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{method} {url}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    // The PLC directory answers a POST with an empty or plain-text body.
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_and_official_in_one_group() {
    with_world(reverse_scenario).await;
}

async fn reverse_scenario(w: &World) {
    let host = embedded_host(w.resolver.clone()).await;
    let official = w.official.pds_url.as_str();
    // Accounts on our host, registered in the official PLC before any device publishes.
    let dave_pds = w.account(host.url(), "dave").await;
    let frank_pds = w.account(host.url(), "frank").await;
    for p in [&dave_pds, &frank_pds] {
        register_in_official_plc(
            host.url(),
            &w.official.plc_url,
            &atmls_client::transport::Pds::did(p),
        )
        .await;
    }
    drop((dave_pds, frank_pds));
    let dave = w.device(host.url(), "dave", false).await;
    let frank = w.device(host.url(), "frank", false).await;
    let erin = w.device(official, "erin", true).await;

    // Each side verifies the other's KeyPackages: official proofs and ours.
    assert!(!dave.key_packages_of(erin.did()).await.unwrap().is_empty());
    assert!(!erin.key_packages_of(dave.did()).await.unwrap().is_empty());

    let g = dave.create_group("mixed").await.unwrap();
    dave.add_members(&g, &[erin.did().clone()]).await.unwrap();
    dave.send(&g, content::text("from our host")).await.unwrap();
    let ev = sync(&erin).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g));
    assert_eq!(Event::texts(&ev), ["from our host"]);
    erin.send(&g, content::text("from the official PDS"))
        .await
        .unwrap();
    assert_eq!(Event::texts(&sync(&dave).await), ["from the official PDS"]);

    dave.add_members(&g, &[frank.did().clone()]).await.unwrap();
    sync(&erin).await;
    let file = b"a small file from the official PDS".to_vec();
    erin.send_attachment(&g, &file, "text/plain", None)
        .await
        .unwrap();
    let ev = sync(&frank).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g));
    assert_eq!(
        frank.fetch_attachment(&attachment(&ev)).await.unwrap(),
        file
    );
    let a = attachment(&sync(&dave).await);
    assert_eq!(dave.fetch_attachment(&a).await.unwrap(), file);
    same_state(&g, &[&dave, &erin, &frank], 3).await;
    host.shutdown().await;
}
