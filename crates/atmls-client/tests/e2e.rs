//! End to end through the real servers on loopback: the embedded PDS host and the DS over
//! HTTP/WebSocket in one process (as `atmls serve` runs them), clients over HTTP.

use std::sync::Arc;
use std::time::Duration;

use atmls_client::transport::Pds as _;
use atmls_client::transport::http::HttpPds;
use atmls_client::{Committed, Device, Event, GroupId, Storage, content};
use atmls_testkit::server::TestServer;

/// The device databases' passphrase, with the cheap KDF cost tests ask for by name.
fn passphrase() -> atmls_client::at_rest::Passphrase {
    atmls_client::at_rest::Passphrase::new("test passphrase")
        .with_kdf_params(atmls_client::at_rest::KdfParams::insecure_for_tests())
}

mod support;

use support::http::{Dev, Net, WAIT, config, sync};

async fn start() -> Net {
    start_with(atmls_ds::DsConfig::default()).await
}

/// The embedded composition in memory (`atmls-testkit`), on the system clock: the clients
/// sign with it.
async fn start_with(core: atmls_ds::DsConfig) -> Net {
    Net::on(
        TestServer::builder()
            .system_clock()
            .core(core)
            .start()
            .await,
    )
}

/// A device of the account behind `pds`, in memory or in an encrypted file at `path`.
async fn device(net: &Net, pds: HttpPds, path: Option<&std::path::Path>) -> Dev {
    let key = passphrase();
    let storage = path.map_or(Storage::Memory, |p| Storage::File(p, &key));
    Device::create(storage, pds, net.ds(), net.ds_did.clone(), config())
        .await
        .unwrap()
}

/// A device (in memory) of a new account `name` that knows the DS's envelope limit.
async fn limited_device(net: &Net, name: &str, max: usize) -> Dev {
    let pds = net.account(name).await;
    net.device_with(pds, config().with_max_envelope_bytes(max))
        .await
}

/// Three accounts, Alice with two devices: create, messages both ways, add later, rename
/// and admins, removal, restart of every client mid-conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_accounts_two_devices_restart() {
    let net = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(format!("{n}.sqlite"));
    let alice = device(&net, net.account("alice").await, Some(&path("alice"))).await;
    let bob = device(&net, net.account("bob").await, Some(&path("bob"))).await;
    let carol = device(&net, net.account("carol").await, Some(&path("carol"))).await;

    let g = alice.create_group("tea").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    alice.send(&g, content::text("hi bob")).await.unwrap();
    let ev = sync(&bob).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g));
    assert_eq!(Event::texts(&ev), ["hi bob"]);
    bob.send(&g, content::text("hi alice")).await.unwrap();
    assert_eq!(Event::texts(&sync(&alice).await), ["hi alice"]);

    // Alice's second device: added by her first device without being asked.
    let phone = device(&net, net.login("alice").await, Some(&path("phone"))).await;
    sync(&alice).await;
    assert_eq!(Event::joined(&sync(&phone).await), std::slice::from_ref(&g));
    sync(&bob).await;

    // Carol joins later and sees only what follows.
    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    sync(&bob).await;
    sync(&phone).await;
    alice
        .send(&g, content::text("welcome carol"))
        .await
        .unwrap();
    let ev = sync(&carol).await;
    assert_eq!(Event::joined(&ev), std::slice::from_ref(&g));
    assert_eq!(Event::texts(&ev), ["welcome carol"]);
    assert_eq!(Event::texts(&sync(&phone).await), ["welcome carol"]);

    // Restart every client.
    drop((alice, bob, carol, phone));
    let reopen = |file: &'static str, account: &'static str| {
        let (file, net) = (path(file), &net);
        async move {
            Device::open(
                &file,
                &passphrase(),
                net.login(account).await,
                net.ds(),
                config(),
            )
            .await
            .unwrap()
        }
    };
    let alice = reopen("alice", "alice").await;
    let phone = reopen("phone", "alice").await;
    let bob = reopen("bob", "bob").await;
    let carol = reopen("carol", "carol").await;
    sync(&bob).await;
    sync(&phone).await;
    carol
        .send(&g, content::text("after restart"))
        .await
        .unwrap();
    assert_eq!(Event::texts(&sync(&bob).await), ["after restart"]);
    assert_eq!(Event::texts(&sync(&alice).await), ["after restart"]);
    assert_eq!(Event::texts(&sync(&phone).await), ["after restart"]);

    // Rename and admin changes.
    alice.rename(&g, "coffee").await.unwrap();
    for d in [&bob, &carol, &phone] {
        sync(d).await;
    }
    alice.add_admin(&g, bob.did()).await.unwrap();
    for d in [&bob, &carol, &phone] {
        sync(d).await;
    }
    assert!(matches!(
        carol.rename(&g, "nope").await,
        Err(atmls_client::Error::NotAdmin)
    ));
    bob.rename(&g, "cocoa").await.unwrap();
    for d in [&alice, &carol, &phone] {
        sync(d).await;
    }
    for d in [&alice, &bob, &carol, &phone] {
        assert_eq!(d.group(&g).await.unwrap().name(), "cocoa");
    }

    // Carol removed: she learns it, cannot send, and sees nothing after.
    bob.remove_members(&g, &[carol.did().clone()])
        .await
        .unwrap();
    assert!(
        sync(&carol)
            .await
            .iter()
            .any(|e| matches!(e, Event::Removed { .. }))
    );
    assert!(carol.send(&g, content::text("hello?")).await.is_err());
    sync(&alice).await;
    sync(&phone).await;
    alice.send(&g, content::text("just us")).await.unwrap();
    assert!(Event::texts(&sync(&carol).await).is_empty());
    assert_eq!(Event::texts(&sync(&bob).await), ["just us"]);
    assert_eq!(Event::texts(&sync(&phone).await), ["just us"]);
    let states = [
        alice.group(&g).await.unwrap(),
        phone.group(&g).await.unwrap(),
        bob.group(&g).await.unwrap(),
    ];
    for s in &states {
        assert_eq!(s.epoch_authenticator, states[0].epoch_authenticator);
        assert_eq!(s.members.len(), 3);
    }
    net.server.shutdown().await;
}

async fn wait_for(events: &mut tokio::sync::broadcast::Receiver<Event>, want: &str) {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(Event::Message(m)) if m.text() == Some(want) => return,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => panic!("events closed"),
                _ => {}
            }
        }
    })
    .await
    .expect("message in time");
}

/// `getKeyPackages` over HTTP from the real DS: the gathered proofs verify at the client,
/// and adding a member works from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_key_packages_over_http() {
    let net = start().await;
    let alice = device(&net, net.account("alice").await, None).await;
    let bob = device(&net, net.account("bob").await, None).await;
    let gathered = atmls_client::transport::Ds::key_packages(
        &net.ds(),
        &net.ds_did,
        std::slice::from_ref(bob.did()),
    )
    .await
    .unwrap();
    assert_eq!(gathered.len(), 1);
    assert_eq!(
        gathered[0].status,
        atmls_ds_proto::DidStatus::Ok,
        "{:?}",
        gathered[0]
    );
    assert!(gathered[0].declaration.is_some());
    // One last-resort package and two one-time ones (config()).
    assert_eq!(gathered[0].key_packages.len(), 3);
    let kps = alice.key_packages_of(bob.did()).await.unwrap();
    assert_eq!(kps.len(), 1);
    let g = alice.create_group("bulk").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    assert_eq!(Event::joined(&sync(&bob).await), vec![g.clone()]);
    net.server.shutdown().await;
}

/// A TLS front on loopback for the real server (as a reverse proxy terminating TLS would
/// be): a self-signed certificate for 127.0.0.1, generated here. Returns its `https://`
/// URL and the certificate (DER) to trust.
async fn tls_front(backend: &str) -> (String, Vec<u8>) {
    let backend = backend.trim_start_matches("http://").to_owned();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = cert.der().to_vec();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (url, der)
}

/// `https://` requests and a `wss://` subscription through a TLS front with a generated
/// certificate, trusted through `HttpDs::with_root_certificate`; without it the
/// certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_subscription_through_tls() {
    use atmls_client::transport::Ds as _;
    let net = start().await;
    let (https, der) = tls_front(&net.url).await;
    let untrusted = net.ds().with_endpoint(net.ds_did.clone(), &https);
    let tls_ds = || {
        net.ds()
            .with_endpoint(net.ds_did.clone(), &https)
            .with_root_certificate(&der)
            .unwrap()
    };
    let alice = device(&net, net.account("alice").await, None).await;
    let bob = Device::create(
        Storage::Memory,
        net.account("bob").await,
        tls_ds(),
        net.ds_did.clone(),
        config(),
    )
    .await
    .unwrap();
    // Bob's device talks to the DS only over TLS; an untrusted certificate is refused.
    let (inbox_ds, inbox) = bob.inbox().await;
    let refused = untrusted.send_welcome(&inbox_ds, &inbox, vec![0; 8]).await;
    assert!(
        matches!(refused, Err(atmls_client::TransportError::Network(_))),
        "{refused:?}"
    );
    let g = alice.create_group("tls").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    assert_eq!(Event::joined(&sync(&bob).await), vec![g.clone()]);
    // Live: Bob's run loop subscribes over wss:// (polling would take 30 s, longer than
    // WAIT).
    let mut events = bob.events();
    let live = tokio::spawn({
        let bob = bob.clone();
        async move { bob.run().await }
    });
    live_round(&alice, &g, &mut events).await;
    live.abort();
    net.server.shutdown().await;
}

/// Alice sends, renames (new epoch, new mailbox key: the live loop resubscribes) and
/// sends again; both messages must reach the event stream in time.
async fn live_round(
    alice: &Dev,
    g: &GroupId,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
) {
    alice.send(g, content::text("one")).await.unwrap();
    wait_for(events, "one").await;
    alice.rename(g, "renamed").await.unwrap();
    alice.send(g, content::text("two")).await.unwrap();
    wait_for(events, "two").await;
}

/// Live delivery through the WebSocket subscription: wait on the event stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_delivery_over_the_subscription() {
    let net = start().await;
    let alice = device(&net, net.account("alice").await, None).await;
    let bob = device(&net, net.account("bob").await, None).await;
    let mut events = bob.events();
    let live = tokio::spawn({
        let bob = bob.clone();
        async move { bob.run().await }
    });
    let g = alice.create_group("live").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    live_round(&alice, &g, &mut events).await;
    live.abort();
    net.server.shutdown().await;
}

/// Two admins commit at the same moment, 100 rounds, through the real DS: both intents
/// apply every round and both end in the same epoch with the same authenticator. A third
/// member reads only every tenth round, 20 commits behind, so it catches up with keys of
/// ended epochs (spec §9.3) and must reach the same epoch and authenticator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_race_100_rounds_over_http() {
    let net = start().await;
    let alice = device(&net, net.account("alice").await, None).await;
    let bob = device(&net, net.account("bob").await, None).await;
    let carol = device(&net, net.account("carol").await, None).await;
    let g = alice.create_group("race").await.unwrap();
    alice
        .add_members(&g, &[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    alice.add_admin(&g, bob.did()).await.unwrap();
    sync(&bob).await;
    sync(&carol).await;
    let mut conflicts = 0;
    for round in 0..100 {
        let name = format!("name {round}");
        let desc = format!("description {round}");
        let (a, b) = tokio::time::timeout(WAIT, async {
            tokio::join!(alice.rename(&g, &name), bob.set_description(&g, &desc))
        })
        .await
        .expect("round in time");
        for r in [a.unwrap(), b.unwrap()] {
            if let Committed::Accepted { attempts, .. } = r {
                conflicts += attempts - 1;
            } else {
                panic!("round {round}: {r:?}");
            }
        }
        sync(&alice).await;
        sync(&bob).await;
        let (sa, sb) = (alice.group(&g).await.unwrap(), bob.group(&g).await.unwrap());
        assert_eq!(sa.epoch, sb.epoch, "round {round}");
        assert_eq!(sa.epoch_authenticator, sb.epoch_authenticator);
        assert_eq!(
            (sa.data.name.as_str(), sa.data.description.as_str()),
            (name.as_str(), desc.as_str())
        );
        if round % 10 == 9 {
            sync(&carol).await;
            let sc = carol.group(&g).await.unwrap();
            assert_eq!(sc.epoch, sa.epoch, "carol, round {round}");
            assert_eq!(sc.epoch_authenticator, sa.epoch_authenticator);
        }
    }
    eprintln!("epoch conflicts over 100 rounds: {conflicts}");
    net.server.shutdown().await;
}

/// A DS that takes envelopes of at most 16 KiB: the welcome of a 40-member group does not
/// fit with its ratchet tree, which goes as an encrypted blob on the committer's PDS; the
/// joiner fetches it over `com.atproto.sync.getBlob`, joins and reads. (Each add commit
/// carries a leaf proof whose size varies with the invitee's MST, up to ~4.1 KiB here,
/// and the added KeyPackage's device binding with the proof of its device record,
/// §11.16: the limit leaves room for both.)
#[tokio::test]
async fn large_group_welcome_with_out_of_band_tree() {
    const MAX: usize = 16384;
    let net = start_with(atmls_ds::DsConfig::default().with_max_envelope_bytes(MAX)).await;
    let alice = limited_device(&net, "alice", MAX).await;
    let g = alice.create_group("big").await.unwrap();
    for i in 0..40 {
        let m = limited_device(&net, &format!("m{i}"), MAX).await;
        let r = alice.add_members(&g, &[m.did().clone()]).await.unwrap();
        assert!(matches!(r, Committed::Accepted { ref undelivered, .. } if undelivered.is_empty()));
    }
    let joiner = limited_device(&net, "joiner", MAX).await;
    let r = alice
        .add_members(&g, &[joiner.did().clone()])
        .await
        .unwrap();
    assert!(matches!(r, Committed::Accepted { ref undelivered, .. } if undelivered.is_empty()));
    // The tree is referenced from alice's repo (chat.mls.attachmentRef).
    let refs = alice
        .pds()
        .list_records(
            alice.did(),
            atmls_client::attachment::ATTACHMENT_REF_COLLECTION,
        )
        .await
        .unwrap();
    assert!(!refs.is_empty());
    alice.send(&g, content::text("hello joiner")).await.unwrap();
    let events = tokio::time::timeout(WAIT, joiner.sync())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Event::joined(&events), vec![g.clone()], "{events:?}");
    assert_eq!(Event::texts(&events), vec!["hello joiner".to_owned()]);
    net.server.shutdown().await;
}

/// A client configured for 1 MiB envelopes against a DS that takes 12 KiB (docs/spec.md
/// §11.5): the client takes `maxEnvelopeBytes` from the DS's `describeServer`, so a
/// welcome that no longer fits with its tree sends the tree out of band, and a message
/// padded past 12 KiB is capped at it. (Before: the client padded and sealed for 1 MiB;
/// the DS refused the welcome with 413 and the member was in the group without one, and
/// a ~9 KiB message padded to 16 KiB was refused.) 12 KiB, not less: an add commit
/// carries two record proofs (§11.13, §11.16) and is about 8 KiB.
#[tokio::test]
async fn client_takes_the_envelope_limit_from_describe_server() {
    const MAX: usize = 12288;
    let net = start_with(atmls_ds::DsConfig::default().with_max_envelope_bytes(MAX)).await;
    let alice = limited_device(&net, "alice", 1 << 20).await;
    let g = alice.create_group("big").await.unwrap();
    let mut last = None;
    for i in 0..80 {
        let m = limited_device(&net, &format!("m{i}"), 1 << 20).await;
        let r = alice.add_members(&g, &[m.did().clone()]).await.unwrap();
        assert!(
            matches!(r, Committed::Accepted { ref undelivered, .. } if undelivered.is_empty()),
            "{r:?}"
        );
        let refs = alice
            .pds()
            .list_records(
                alice.did(),
                atmls_client::attachment::ATTACHMENT_REF_COLLECTION,
            )
            .await
            .unwrap();
        if !refs.is_empty() {
            last = Some(m);
            break;
        }
    }
    let m = last.expect("a welcome that needed its tree out of band");
    let long = "x".repeat(9000);
    alice.send(&g, content::text(long.clone())).await.unwrap();
    let events = tokio::time::timeout(WAIT, m.sync()).await.unwrap().unwrap();
    assert_eq!(Event::joined(&events), vec![g.clone()], "{events:?}");
    assert_eq!(Event::texts(&events), vec![long]);
    net.server.shutdown().await;
}

/// The outbox over HTTP (docs/spec.md §11.15): the server stops, Alice's messages wait on
/// her device, the server comes back on the same address (same host and DS state), and
/// her next sync sends them; Bob reads each once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_over_http_rides_out_a_stopped_server() {
    let dir = tempfile::tempdir().unwrap();
    let on_disk = || TestServer::builder().system_clock().data_dir(dir.path());
    let net = Net::on(on_disk().start().await);
    let config = config().with_retry_backoff(Duration::ZERO, Duration::ZERO);
    let alice = Device::create(
        Storage::Memory,
        net.account("alice").await,
        net.ds(),
        net.ds_did.clone(),
        config.clone(),
    )
    .await
    .unwrap();
    let bob = device(&net, net.account("bob").await, None).await;
    let g = alice.create_group("g").await.unwrap();
    alice.add_members(&g, &[bob.did().clone()]).await.unwrap();
    sync(&bob).await;
    let Net { server, .. } = net;
    let addr = server.addr();
    server.shutdown().await;
    for text in ["one", "two"] {
        let e = alice.send(&g, content::text(text)).await.unwrap_err();
        assert!(
            matches!(
                &e,
                atmls_client::Error::Queued {
                    error: atmls_client::TransportError::Network(_),
                    ..
                }
            ),
            "{e}"
        );
    }
    sync(&alice).await;
    assert_eq!(alice.outbox().await.unwrap().len(), 2);
    let server = on_disk().listen(addr).start().await;
    assert_eq!(Event::texts(&sync(&alice).await), ["one", "two"]);
    assert!(alice.outbox().await.unwrap().is_empty());
    alice.send(&g, content::text("three")).await.unwrap();
    assert_eq!(Event::texts(&sync(&bob).await), ["one", "two", "three"]);
    assert!(Event::texts(&sync(&bob).await).is_empty());
    server.shutdown().await;
}
