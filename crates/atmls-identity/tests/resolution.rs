//! Resolution against real HTTP servers on loopback: the dev PLC directory, a did:web
//! server, handle resolution, timeouts, size limits and the cache.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls_crypto::{Algorithm, SigningKey};
use atmls_identity::plc::directory::{Directory, DirectoryService};
use atmls_identity::plc::{GenesisBuilder, Tombstone};
use atmls_identity::resolve::{CacheConfig, CachingResolver, HttpResolver, ResolverConfig};
use atmls_identity::{Did, DidResolver, Handle, HandleResolver, ResolveError};
use atmls_syntax::Timestamp;

use common::{Reply, doc_with_key, tiny_server};

async fn directory() -> (String, Arc<Directory>) {
    let dir = Arc::new(Directory::in_memory());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(DirectoryService::new(dir.clone()).serve(listener));
    (url, dir)
}

fn resolver(config: ResolverConfig) -> HttpResolver {
    HttpResolver::new(
        config
            .with_timeout(Duration::from_secs(5))
            .allow_loopback_http(true),
    )
}

#[tokio::test]
async fn plc_create_resolve_update_tombstone_over_http() {
    let (url, dir) = directory().await;
    let http = resolver(ResolverConfig::default().with_plc_url(&url));
    let rotation = SigningKey::generate(Algorithm::Es256k);
    let signing = SigningKey::generate(Algorithm::Es256);
    let genesis = GenesisBuilder::new(&rotation.public_key(), &signing.public_key())
        .handle("alice.test")
        .pds("http://127.0.0.1:2583")
        .service(
            "chat_mls_ds",
            "ChatMlsDeliveryService",
            "http://127.0.0.1:2585",
        )
        .sign(&rotation);
    let did = genesis.did().unwrap();
    http.submit_plc_operation(&did, &genesis).await.unwrap();
    assert_eq!(dir.len(), 1);

    let doc = http.resolve(did.as_did()).await.unwrap();
    assert_eq!(doc.id, *did.as_did());
    assert_eq!(doc.atproto_key().unwrap(), signing.public_key());
    assert_eq!(doc.handle().unwrap().as_str(), "alice.test");
    assert_eq!(doc.pds_endpoint().unwrap(), "http://127.0.0.1:2583");
    assert_eq!(
        doc.service_endpoint("chat_mls_ds").unwrap(),
        "http://127.0.0.1:2585"
    );

    // An update signed by the rotation key, built from the directory's state.
    let (state, prev) = http.plc_state(&did).await.unwrap();
    let mut update = state.to_update(&prev);
    update.also_known_as = vec!["at://alice2.test".into()];
    http.submit_plc_operation(&did, &update.sign(&rotation))
        .await
        .unwrap();
    let doc = http.resolve(did.as_did()).await.unwrap();
    assert_eq!(doc.handle().unwrap().as_str(), "alice2.test");
    assert_eq!(http.plc_audit_log(&did).await.unwrap().len(), 2);

    // An update signed by the atproto (non-rotation) key is refused with 400.
    let (state, prev) = http.plc_state(&did).await.unwrap();
    let forged = state.to_update(&prev).sign(&signing);
    assert_eq!(
        http.submit_plc_operation(&did, &forged).await,
        Err(ResolveError::Status(400))
    );

    // Tombstone: the DID is gone.
    let (_, prev) = http.plc_state(&did).await.unwrap();
    http.submit_plc_operation(&did, &Tombstone { prev }.sign(&rotation))
        .await
        .unwrap();
    assert_eq!(http.resolve(did.as_did()).await, Err(ResolveError::Gone));

    let unknown = Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    assert_eq!(http.resolve(&unknown).await, Err(ResolveError::NotFound));
}

#[tokio::test]
async fn did_web_and_handle_resolution() {
    let key = SigningKey::generate(Algorithm::Es256k).public_key();
    let served = Arc::new(Mutex::new(Vec::new()));
    let handle_did = "did:plc:fh5jrlbsm47qlufaem7aasei";
    let body = served.clone();
    let (addr, hits) = tiny_server(move |path| match path {
        "/.well-known/did.json" => Reply::Body(200, body.lock().unwrap().clone()),
        "/.well-known/atproto-did" => Reply::Body(200, format!("{handle_did}\n").into_bytes()),
        _ => Reply::Body(404, Vec::new()),
    })
    .await;
    let did = Did::new(format!("did:web:localhost%3A{}", addr.port())).unwrap();
    *served.lock().unwrap() = doc_with_key(did.as_str(), &key).to_json();

    let http = resolver(
        ResolverConfig::default().with_host_override("alice.test", format!("http://{addr}")),
    );
    assert_eq!(
        http.document_url(&did).unwrap(),
        format!("http://localhost:{}/.well-known/did.json", addr.port())
    );
    let doc = http.resolve(&did).await.unwrap();
    assert_eq!(doc.atproto_key().unwrap(), key);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A server answering with another DID's document is refused.
    *served.lock().unwrap() = doc_with_key("did:web:evil.example.com", &key).to_json();
    assert!(matches!(
        http.resolve(&did).await,
        Err(ResolveError::IdMismatch { .. })
    ));

    let handle = Handle::new("alice.test").unwrap();
    assert_eq!(
        http.resolve_handle(&handle).await.unwrap().as_str(),
        handle_did
    );

    // Plain http is used only for loopback hosts, and only when allowed.
    let strict = HttpResolver::new(ResolverConfig::default());
    assert!(
        strict
            .document_url(&did)
            .unwrap()
            .starts_with("https://localhost:")
    );
    let remote = Did::new("did:web:example.com").unwrap();
    assert_eq!(
        http.document_url(&remote).unwrap(),
        "https://example.com/.well-known/did.json"
    );
    let did_key = Did::new("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme").unwrap();
    assert!(matches!(
        http.resolve(&did_key).await,
        Err(ResolveError::UnsupportedDid(_))
    ));
}

#[tokio::test]
async fn slow_and_oversized_responses_are_cut_off() {
    let (addr, _) = tiny_server(|_| Reply::Body(500, Vec::new())).await;
    let base = format!("http://{addr}");
    // The PLC URL is `{base}/{suffix}/{did}`: route on the first segment.
    let (addr, _) = tiny_server(|path| match path.split('/').nth(1).unwrap_or_default() {
        "slow" => Reply::Stall(Duration::from_secs(10)),
        "big" => Reply::Body(200, vec![b'x'; 1 << 20]),
        "chunked" => Reply::Chunked(1 << 20),
        "bad" => Reply::Body(200, b"{not json".to_vec()),
        "teapot" => Reply::Body(418, Vec::new()),
        _ => Reply::Body(500, Vec::new()),
    })
    .await;
    let base2 = format!("http://{addr}");
    let with = |suffix: &str| {
        HttpResolver::new(
            ResolverConfig::default()
                .with_plc_url(format!("{base2}/{suffix}"))
                .with_timeout(Duration::from_millis(300))
                .with_max_body(64 * 1024)
                .allow_loopback_http(true),
        )
    };
    let did = Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let started = std::time::Instant::now();
    assert_eq!(with("slow").resolve(&did).await, Err(ResolveError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        with("big").resolve(&did).await,
        Err(ResolveError::TooLarge { limit: 64 * 1024 })
    );
    assert_eq!(
        with("chunked").resolve(&did).await,
        Err(ResolveError::TooLarge { limit: 64 * 1024 })
    );
    assert!(matches!(
        with("bad").resolve(&did).await,
        Err(ResolveError::InvalidDocument(_))
    ));
    assert_eq!(
        with("teapot").resolve(&did).await,
        Err(ResolveError::Status(418))
    );

    let handles = HttpResolver::new(
        ResolverConfig::default()
            .with_host_override("bob.test", format!("{base}/handle"))
            .with_timeout(Duration::from_millis(300))
            .allow_loopback_http(true),
    );
    // `bob.test` is served by a server that answers 500 to everything.
    let err = handles
        .resolve_handle(&Handle::new("bob.test").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err, ResolveError::Status(500));

    // Nothing listening: a transport error, quickly.
    let closed = HttpResolver::new(
        ResolverConfig::default()
            .with_plc_url("http://127.0.0.1:9")
            .with_timeout(Duration::from_millis(500))
            .allow_loopback_http(true),
    );
    assert!(matches!(
        closed.resolve(&did).await,
        Err(ResolveError::Transport(_) | ResolveError::Timeout)
    ));
}

/// Without the development allowance nothing on loopback is fetched (a did:web or PLC
/// URL pointing there is refused before connecting), and with it private, link-local and
/// metadata addresses stay refused.
#[tokio::test]
async fn non_public_destinations_are_refused() {
    let (addr, hits) = tiny_server(|_| Reply::Body(200, b"{}".to_vec())).await;
    let did = Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let strict = |plc: String| {
        HttpResolver::new(
            ResolverConfig::default()
                .with_plc_url(plc)
                .with_timeout(Duration::from_secs(5)),
        )
    };
    for plc in [
        format!("http://{addr}"),
        format!("http://localhost:{}", addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}", addr.port()),
    ] {
        assert_eq!(strict(plc).resolve(&did).await, Err(ResolveError::Refused));
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no request reached the server"
    );
    assert_eq!(
        ResolveError::Refused.to_string(),
        "destination refused",
        "the text names no address or port"
    );
    for plc in [
        "http://169.254.169.254",
        "http://10.0.0.1:2582",
        "http://[fd00:ec2::254]",
    ] {
        let dev = HttpResolver::new(
            ResolverConfig::default()
                .with_plc_url(plc)
                .allow_loopback_http(true),
        );
        assert_eq!(dev.resolve(&did).await, Err(ResolveError::Refused), "{plc}");
    }
    // did:web on a loopback host name, without the allowance: https, and refused.
    let web = Did::new(format!("did:web:localhost%3A{}", addr.port())).unwrap();
    assert_eq!(
        strict(format!("http://{addr}")).resolve(&web).await,
        Err(ResolveError::Refused)
    );
}

#[tokio::test]
async fn cache_serves_hits_caches_misses_and_is_bounded() {
    let (url, dir) = directory().await;
    let rotation = SigningKey::generate(Algorithm::Es256k);
    let mut dids = Vec::new();
    for i in 0..3 {
        let op = GenesisBuilder::new(&rotation.public_key(), &rotation.public_key())
            .handle(&format!("u{i}.test"))
            .sign(&rotation);
        let did = op.did().unwrap();
        dir.submit(&did, op, Timestamp::EPOCH).unwrap();
        dids.push(did.as_did().clone());
    }
    let http = resolver(ResolverConfig::default().with_plc_url(&url));
    let cache = CachingResolver::new(
        http,
        CacheConfig::default()
            .with_capacity(2)
            .with_ttl(Duration::from_millis(200))
            .with_negative_ttl(Duration::from_secs(60)),
    );
    let a = cache.resolve(&dids[0]).await.unwrap();
    let again = cache.resolve(&dids[0]).await.unwrap();
    assert!(Arc::ptr_eq(&a, &again), "second lookup served from cache");
    cache.resolve(&dids[1]).await.unwrap();
    cache.resolve(&dids[2]).await.unwrap();
    assert_eq!(cache.len(), 2, "bounded");

    // Negative caching: a 404 is remembered even once the DID appears.
    let late = GenesisBuilder::new(&rotation.public_key(), &rotation.public_key())
        .handle("late.test")
        .sign(&rotation);
    let late_did = late.did().unwrap();
    let counting = CachingResolver::new(
        resolver(ResolverConfig::default().with_plc_url(&url)),
        CacheConfig::default().with_negative_ttl(Duration::from_secs(60)),
    );
    assert_eq!(
        counting.resolve(late_did.as_did()).await,
        Err(ResolveError::NotFound)
    );
    dir.submit(&late_did, late, Timestamp::EPOCH).unwrap();
    assert_eq!(
        counting.resolve(late_did.as_did()).await,
        Err(ResolveError::NotFound)
    );
    counting.invalidate(late_did.as_did());
    assert!(counting.resolve(late_did.as_did()).await.is_ok());

    // TTL: after expiry the document is fetched again (a new Arc).
    tokio::time::sleep(Duration::from_millis(250)).await;
    let b = cache.resolve(&dids[2]).await.unwrap();
    let c = cache.resolve(&dids[2]).await.unwrap();
    assert!(Arc::ptr_eq(&b, &c));
}

/// The key in force at an instant, from the directory's `GET /:did/log/audit` over HTTP
/// (docs/spec.md §11.13): an `#atproto` key rotated at T1 leaves the old key in force
/// before T1; the cache does not hide the rotation; a tombstone is in force after it.
#[tokio::test]
async fn key_history_from_the_audit_log_over_http() {
    let (url, dir) = directory().await;
    let http = resolver(ResolverConfig::default().with_plc_url(&url));
    let rotation = SigningKey::generate(Algorithm::Es256k);
    let old = SigningKey::generate(Algorithm::Es256k);
    let new = SigningKey::generate(Algorithm::Es256k);
    let genesis = GenesisBuilder::new(&rotation.public_key(), &old.public_key())
        .handle("alice.test")
        .pds("http://127.0.0.1:2583")
        .sign(&rotation);
    let did = genesis.did().unwrap();
    let t0 = Timestamp::from_millis(1_800_000_000_000);
    let t1 = Timestamp::from_millis(1_800_000_600_000);
    dir.submit(&did, genesis.clone(), t0).unwrap();
    let cached = CachingResolver::new(http.clone(), CacheConfig::default());
    assert_eq!(
        cached
            .resolve(did.as_did())
            .await
            .unwrap()
            .atproto_key()
            .unwrap(),
        old.public_key()
    );
    let mut update = genesis
        .state(&did)
        .unwrap()
        .to_update(&genesis.cid().unwrap().to_string());
    update
        .verification_methods
        .insert("atproto".into(), new.public_key().to_did_key());
    let update = update.sign(&rotation);
    dir.submit(&did, update.clone(), t1).unwrap();

    let history = cached.resolve_history(did.as_did()).await.unwrap();
    let key_at = |ms: u64| {
        history
            .at(Timestamp::from_millis(ms))
            .map(|d| d.atproto_key().unwrap())
    };
    assert_eq!(key_at(t0.as_millis()), Ok(old.public_key()));
    assert_eq!(key_at(t1.as_millis() - 1), Ok(old.public_key()));
    assert_eq!(key_at(t1.as_millis()), Ok(new.public_key()));
    assert_eq!(
        key_at(t0.as_millis() - 1),
        Err(atmls_identity::HistoryError::NotYetCreated)
    );

    let t2 = Timestamp::from_millis(1_800_001_200_000);
    dir.submit(
        &did,
        Tombstone {
            prev: update.cid().unwrap().to_string(),
        }
        .sign(&rotation),
        t2,
    )
    .unwrap();
    let history = http.resolve_history(did.as_did()).await.unwrap();
    assert_eq!(
        history.at(t2).map(|d| d.id.clone()),
        Err(atmls_identity::HistoryError::Tombstoned)
    );
    assert!(history.at(t1).is_ok());
}
