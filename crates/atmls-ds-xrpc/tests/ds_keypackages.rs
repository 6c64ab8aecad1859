//! `chat.mls.ds.getKeyPackages` against a tiny fake PDS on loopback that serves real
//! repo proofs, with DIDs resolved through the dev PLC directory. The proofs the DS
//! returns must verify with `atmls_repo::proof`; failures are reported per DID; answers
//! are cached.

mod ds_support;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atmls_crypto::{Algorithm, PublicKey, SigningKey as AccountKey};
use atmls_ds_xrpc::{Clock as _, KeyPackageConfig, SystemClock};
use atmls_identity::plc::GenesisBuilder;
use atmls_repo::{MemoryBlockStore, Repo, RepoPath, Write};
use bytes::Bytes;
use ds_support::*;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the fake PDS serves: `listRecords` pages and `getRecord` CARs.
#[derive(Default)]
struct PdsData {
    lists: HashMap<(String, String), Value>,
    proofs: HashMap<(String, String, String), Vec<u8>>,
    requests: AtomicUsize,
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn answer(data: &PdsData, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    data.requests.fetch_add(1, Ordering::SeqCst);
    let q: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let not_found = || {
        Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Full::new(Bytes::from(
                r#"{"error":"RecordNotFound","message":"no"}"#,
            )))
            .unwrap()
    };
    match req.uri().path() {
        "/xrpc/com.atproto.repo.listRecords" => {
            let page = data
                .lists
                .get(&(get("repo"), get("collection")))
                .cloned()
                .unwrap_or(json!({ "records": [] }));
            Response::new(Full::new(Bytes::from(page.to_string())))
        }
        "/xrpc/com.atproto.sync.getRecord" => {
            match data
                .proofs
                .get(&(get("did"), get("collection"), get("rkey")))
            {
                Some(car) => Response::new(Full::new(Bytes::from(car.clone()))),
                None => not_found(),
            }
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    }
}

fn serve_pds(listener: TcpListener, data: Arc<PdsData>) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let data = data.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let r = answer(&data, &req);
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// Registers a did:plc with `pds` and returns it with its `#atproto` key.
fn register(plc: &Plc, pds: &str) -> (String, AccountKey) {
    let rotation = AccountKey::generate(Algorithm::Es256k);
    let key = AccountKey::generate(Algorithm::Es256k);
    let op = GenesisBuilder::new(&rotation.public_key(), &key.public_key())
        .pds(pds)
        .sign(&rotation);
    let did = op.did().unwrap();
    plc.directory().submit(&did, op, SystemClock.now()).unwrap();
    (did.as_str().to_owned(), key)
}

/// Builds `did`'s repo with the given records and publishes them in `data`.
fn publish(data: &mut PdsData, did: &str, key: &AccountKey, records: &[(&str, &str)]) {
    let store = MemoryBlockStore::new();
    let mut repo = Repo::create(&store, did.parse().unwrap(), key.clone()).unwrap();
    let writes = records
        .iter()
        .map(|(collection, rkey)| {
            let path = RepoPath::parse(&format!("{collection}/{rkey}")).unwrap();
            let value = json!({ "$type": collection, "createdAt": "2026-01-01T00:00:00.000Z" });
            Write::create(path, atmls_repo::json::record_to_ipld(&value).unwrap())
        })
        .collect();
    repo.apply_writes(writes, None).unwrap();
    for (collection, rkey) in records {
        let path = RepoPath::parse(&format!("{collection}/{rkey}")).unwrap();
        let cid = repo.record_cid(&path).unwrap().unwrap();
        let uri = format!("at://{did}/{collection}/{rkey}");
        let list = data
            .lists
            .entry((did.to_owned(), (*collection).to_owned()))
            .or_insert_with(|| json!({ "records": [] }));
        list["records"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "uri": uri, "cid": cid.to_string(), "value": {} }));
        data.proofs.insert(
            (did.to_owned(), (*collection).to_owned(), (*rkey).to_owned()),
            repo.record_proof(&path).unwrap(),
        );
    }
}

fn verify(record: &Value, did: &str, key: &PublicKey) {
    let uri = record["uri"].as_str().unwrap();
    let path = RepoPath::parse(uri.strip_prefix(&format!("at://{did}/")).unwrap()).unwrap();
    let proof = atmls_repo::proof::verify_record_proof(
        &unb64(&record["proof"]),
        &did.parse().unwrap(),
        key,
        &path,
    )
    .expect("proof verifies");
    let (cid, _) = proof.record().expect("record present");
    assert_eq!(cid.to_string(), record["cid"].as_str().unwrap());
}

#[tokio::test]
async fn key_packages_per_did_with_verifiable_proofs() {
    let h = start(
        small_limits(),
        |c| {
            c.with_key_packages(
                KeyPackageConfig::default()
                    .with_allow_http(true)
                    .with_request_timeout(Duration::from_secs(2)),
            )
        },
        server_config(),
    )
    .await;
    let mut data = PdsData::default();
    // The PDS URL must be known before the DIDs are registered: bind first.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pds_addr = listener.local_addr().unwrap();
    drop(listener);
    let pds = format!("http://{pds_addr}");
    let (alice, alice_key) = register(h.plc(), &pds);
    let (bob, bob_key) = register(h.plc(), &pds);
    let (carol, _) = register(h.plc(), "http://127.0.0.1:1");
    let dave = "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz";
    publish(
        &mut data,
        &alice,
        &alice_key,
        &[
            ("chat.mls.declaration", "self"),
            ("chat.mls.keyPackage", "3jzfcijpj2z2a"),
            ("chat.mls.keyPackage", "3jzfcijpj2z2b"),
        ],
    );
    publish(
        &mut data,
        &bob,
        &bob_key,
        &[("chat.mls.keyPackage", "3jzfcijpj2z2a")],
    );
    let data = Arc::new(data);
    // Serve on the port the DIDs name.
    serve_pds(TcpListener::bind(pds_addr).await.unwrap(), data.clone());

    let path = format!(
        "/xrpc/chat.mls.ds.getKeyPackages?dids={alice}&dids={bob}&dids={carol}&dids={dave}"
    );
    let body = get(h.addr, &path, &[]).await.ok();
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["ok", "noDeclaration", "unreachable", "notFound"],
        "{body}"
    );
    assert_eq!(results[0]["did"], alice);
    for r in &results[1..] {
        assert!(r["message"].is_string(), "{r}");
        assert_eq!(r["keyPackages"], json!([]));
    }

    let alice_result = &results[0];
    let declaration = &alice_result["declaration"];
    assert_eq!(
        declaration["uri"],
        format!("at://{alice}/chat.mls.declaration/self")
    );
    verify(declaration, &alice, &alice_key.public_key());
    let kps = alice_result["keyPackages"].as_array().unwrap();
    assert_eq!(kps.len(), 2);
    for kp in kps {
        verify(kp, &alice, &alice_key.public_key());
    }
    // A proof does not verify under another DID's key.
    let wrong = atmls_repo::proof::verify_record_proof(
        &unb64(&kps[0]["proof"]),
        &alice.parse().unwrap(),
        &bob_key.public_key(),
        &RepoPath::parse("chat.mls.keyPackage/3jzfcijpj2z2a").unwrap(),
    );
    assert!(wrong.is_err());

    // Answered from the cache the second time: the PDS sees no request.
    let before = data.requests.load(Ordering::SeqCst);
    let again = get(
        h.addr,
        &format!("/xrpc/chat.mls.ds.getKeyPackages?dids={alice}"),
        &[],
    )
    .await
    .ok();
    assert_eq!(again["results"][0], *alice_result);
    assert_eq!(data.requests.load(Ordering::SeqCst), before);
}

/// Issue 14, hole 3: before, each repetition of a DID was answered in full (re-encoded
/// from the cache each time): ~4 KB of request made ~1 GB of answer. Now a DID is
/// answered once, and what one source can make the DS look up is budgeted.
#[tokio::test]
async fn repeated_dids_do_not_amplify() {
    let h = start(
        small_limits(),
        |c| {
            c.with_key_packages(
                KeyPackageConfig::default()
                    .with_allow_http(true)
                    .with_request_timeout(Duration::from_secs(2))
                    .with_lookups_per_source_per_minute(3),
            )
        },
        server_config(),
    )
    .await;
    let mut data = PdsData::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pds_addr = listener.local_addr().unwrap();
    drop(listener);
    let pds = format!("http://{pds_addr}");
    let (alice, alice_key) = register(h.plc(), &pds);
    publish(
        &mut data,
        &alice,
        &alice_key,
        &[
            ("chat.mls.declaration", "self"),
            ("chat.mls.keyPackage", "3jzfcijpj2z2a"),
            ("chat.mls.keyPackage", "3jzfcijpj2z2b"),
        ],
    );
    let data = Arc::new(data);
    serve_pds(TcpListener::bind(pds_addr).await.unwrap(), data.clone());

    let once = get(
        h.addr,
        &format!("/xrpc/chat.mls.ds.getKeyPackages?dids={alice}"),
        &[],
    )
    .await;
    let single = once.body.len();
    assert_eq!(once.ok()["results"][0]["status"], "ok");
    let repeated: Vec<String> = (0..100).map(|_| format!("dids={alice}")).collect();
    let path = format!("/xrpc/chat.mls.ds.getKeyPackages?{}", repeated.join("&"));
    let r = get(h.addr, &path, &[]).await;
    let body = r.ok();
    assert_eq!(
        body["results"].as_array().unwrap().len(),
        1,
        "one result per DID"
    );
    assert!(
        r.body.len() <= single,
        "{} bytes for 100 repetitions, {single} for one",
        r.body.len()
    );

    // The lookup budget of this source: 3 DIDs a minute, alice took one; refused requests
    // and cached DIDs cost nothing.
    let fresh: Vec<String> = (0..4)
        .map(|i| format!("dids=did:plc:{}", format!("{i}").repeat(24)))
        .collect();
    get(
        h.addr,
        &format!("/xrpc/chat.mls.ds.getKeyPackages?{}", fresh.join("&")),
        &[],
    )
    .await
    .error(429, "RateLimitExceeded");
    get(
        h.addr,
        &format!(
            "/xrpc/chat.mls.ds.getKeyPackages?{}&dids={alice}",
            fresh[..2].join("&")
        ),
        &[],
    )
    .await
    .ok();
}
