//! Issue 14, hole 4: `atproto-proxy` as a way into the operator's network. A caller
//! publishes a DID document of its own whose service endpoint points at loopback, a
//! private range or cloud metadata, and asks the host to forward a call there. The host
//! must refuse before connecting, answer the same `UpstreamFailure` whatever the address
//! (no port-scan oracle), and never return the internal service's body.

mod host_util;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use atmls_crypto::{Algorithm, SigningKey};
use atmls_host::Clock as _;
use atmls_identity::plc::GenesisBuilder;
use bytes::Bytes;
use host_util::{Resp, TestHost};
use hyper::Method;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const SECRET: &str = "operator-secret-7f3a";

/// An internal service on loopback that answers every request with [`SECRET`]; counts
/// the connections it accepted.
async fn internal_service() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{SECRET}",
                    SECRET.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, accepted)
}

/// Registers a new did:plc in the host's directory whose `#evil_svc` endpoint is
/// `endpoint`; the `atproto-proxy` header value naming it.
fn self_made_did(t: &TestHost, endpoint: &str) -> (String, String) {
    let rotation = SigningKey::generate(Algorithm::Es256k);
    let genesis = GenesisBuilder::new(&rotation.public_key(), &rotation.public_key())
        .service("evil_svc", "EvilService", endpoint)
        .sign(&rotation);
    let did = genesis.did().unwrap();
    t.host
        .directory()
        .submit(&did, genesis, t.clock.now())
        .unwrap();
    (
        did.as_str().to_owned(),
        format!("{}#evil_svc", did.as_str()),
    )
}

async fn proxied(t: &TestHost, access: &str, target: &str) -> Resp {
    let bearer = format!("Bearer {access}");
    t.request(
        Method::GET,
        "/xrpc/com.example.internal.read?path=/latest/meta-data/",
        &[("authorization", &bearer), ("atproto-proxy", target)],
        Bytes::new(),
    )
    .await
}

/// The refusal, with the target's DID blanked out so answers can be compared.
fn refusal(r: &Resp, did: &str) -> String {
    assert!(
        !String::from_utf8_lossy(&r.body).contains(SECRET),
        "the internal service's body was returned: {:?}",
        r.body
    );
    r.assert_error(502, "UpstreamFailure").replace(did, "<did>")
}

/// Without the development allowance (the host's default), a service endpoint on
/// loopback — by IP, by name, or as an IPv4-mapped IPv6 address — is never connected to.
#[tokio::test]
async fn proxy_to_a_loopback_endpoint_is_refused() {
    let t = TestHost::start_public_only().await;
    let caller = t.account("mallory.test").await;
    let (addr, accepted) = internal_service().await;
    let port = addr.port();
    let mut answers = Vec::new();
    for endpoint in [
        format!("http://{addr}"),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("https://127.0.0.1:{port}"),
    ] {
        let (did, target) = self_made_did(&t, &endpoint);
        let r = proxied(&t, &caller.access, &target).await;
        answers.push(refusal(&r, &did));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no connection was made");
    answers.dedup();
    assert_eq!(
        answers.len(),
        1,
        "one answer for every address: {answers:?}"
    );
    t.stop().await;
}

/// With the development allowance (loopback admitted), private, link-local, shared and
/// metadata addresses are still refused, with the very answer a closed loopback port gets.
#[tokio::test]
async fn private_and_metadata_endpoints_get_the_answer_of_a_closed_port() {
    let t = TestHost::start().await;
    let caller = t.account("mallory.test").await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut answers = Vec::new();
    for endpoint in [
        format!("http://{closed}"),
        "http://169.254.169.254".to_owned(),
        "http://[fd00:ec2::254]".to_owned(),
        "http://10.255.255.1:8080".to_owned(),
        "http://192.168.0.1:22".to_owned(),
        "http://100.64.0.1".to_owned(),
        "http://[fe80::1]:80".to_owned(),
        "http://[::ffff:10.0.0.1]".to_owned(),
        format!("http://0.0.0.0:{}", closed.port()),
    ] {
        let (did, target) = self_made_did(&t, &endpoint);
        let r = proxied(&t, &caller.access, &target).await;
        answers.push(refusal(&r, &did));
    }
    answers.dedup();
    assert_eq!(
        answers.len(),
        1,
        "one answer for every address: {answers:?}"
    );
    t.stop().await;
}
