//! Attacks on the embedded host and on what the DS fetches for others, each beside
//! honest senders.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls_loadgen::Target;
use atmls_loadgen::client::Conn;
use bytes::Bytes;

use crate::harness::{HONEST, Honest, Serve, assert_unharmed, attacker, deadline};

const HONEST_PRINCIPALS: usize = 2;

/// Creates an account with a device (declaration, KeyPackages, inbox) through the CLI;
/// returns its DID.
fn device_account(url: &str, profiles: &Path, name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .args(["--profile", name, "account", "create", "--json"])
        .args(["--handle", &format!("{name}.test")])
        .args(["--email", &format!("{name}@example.com")])
        .env("ATMLS_PROFILE_DIR", profiles)
        .env("ATMLS_PASSWORD", "correct horse")
        .env("ATMLS_PASSPHRASE", "test passphrase")
        .env("ATMLS_KDF_INSECURE_FOR_TESTS", "1")
        .env("ATMLS_PDS", url)
        .env_remove("ATMLS_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run atmls");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["did"].as_str().expect("did").to_owned()
}

fn status_name(status: u16, body: &[u8]) -> (u16, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    (status, v["error"].as_str().unwrap_or_default().to_owned())
}

/// Hole 3: `getKeyPackages` with one DID repeated used to make the DS encode the same
/// proofs again and again (about 4 KB of request → close to 1 GB of responses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_package_amplification_is_bounded() {
    let serve = Serve::start();
    let target = Arc::new(Target::connect(&serve.url, None).await.expect("target"));
    let profiles = tempfile::tempdir().unwrap();
    let did = device_account(&serve.url, profiles.path(), "kpvictim");
    let honest = Honest::start(&target, HONEST_PRINCIPALS).await;

    let mut conn = Conn::connect_from(target.addr(), target.host(), Some(HONEST))
        .await
        .unwrap();
    let (s, one) = conn
        .get(
            &format!("/xrpc/chat.mls.ds.getKeyPackages?dids={did}"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&one));
    let single = one.len();
    assert!(
        single > 500,
        "one account's KeyPackages with proofs: {}",
        String::from_utf8_lossy(&one)
    );

    let rss_before = serve.rss_kib();
    let repeated = vec![format!("dids={did}"); 100].join("&");
    let mut attackers = Vec::new();
    for n in 0..4u8 {
        let target = target.clone();
        let path = format!("/xrpc/chat.mls.ds.getKeyPackages?{repeated}");
        attackers.push(tokio::spawn(async move {
            let mut conn = Conn::connect_from(target.addr(), target.host(), Some(attacker(50 + n)))
                .await
                .unwrap();
            let until = deadline(4);
            let (mut bytes, mut requests, mut largest) = (0usize, 0u32, 0usize);
            while Instant::now() < until && requests < 2_000 {
                let (s, b) = conn.get(&path, None).await.expect("answer");
                assert!(
                    s == 200 || (400..500).contains(&s.as_u16()),
                    "{s}: {}",
                    String::from_utf8_lossy(&b)
                );
                requests += 1;
                bytes += b.len();
                largest = largest.max(b.len());
            }
            (bytes, requests, largest)
        }));
    }
    for a in attackers {
        let (bytes, requests, largest) = a.await.unwrap();
        // A DID named 100 times is answered once: never 100 copies of its proofs.
        assert!(
            largest <= single * 2,
            "a response to one DID named 100 times was {largest} B (one copy: {single} B)"
        );
        assert!(requests > 0 && bytes > 0);
    }
    let grown = serve.rss_kib().saturating_sub(rss_before);
    assert!(grown < 128 * 1024, "the server grew by {grown} KiB");
    let report = honest.finish(&target).await;
    assert_unharmed(&report, "getKeyPackages amplification");
    serve.assert_logs_keep(&[did]);
}

/// Hole 7: `createSession` runs Argon2 for every attempt; a password-guessing flood from
/// one source must be throttled (typed 429) without locking the account's owner out
/// from another source, and without starving the DS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_throttled_and_the_owner_still_logs_in() {
    let serve = Serve::start();
    let target = Arc::new(Target::connect(&serve.url, None).await.expect("target"));
    let profiles = tempfile::tempdir().unwrap();
    let did = device_account(&serve.url, profiles.path(), "loginvictim");
    let honest = Honest::start(&target, HONEST_PRINCIPALS).await;

    let login = |password: &str| {
        Bytes::from(format!(
            r#"{{"identifier":"loginvictim.test","password":"{password}"}}"#
        ))
    };
    let mut guessers = Vec::new();
    for n in 0..3u8 {
        let target = target.clone();
        let body = login(&format!("guess-{n}"));
        guessers.push(tokio::spawn(async move {
            let mut conn = Conn::connect_from(target.addr(), target.host(), Some(attacker(60 + n)))
                .await
                .unwrap();
            let until = deadline(4);
            let mut seen = Vec::new();
            let mut i = 0;
            while Instant::now() < until && i < 2_000 {
                i += 1;
                let (s, b) = conn
                    .post("/xrpc/com.atproto.server.createSession", body.clone(), None)
                    .await
                    .expect("answer");
                seen.push(status_name(s.as_u16(), &b));
            }
            seen
        }));
    }
    // The owner logs in from their own address while the guessing goes on.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut owner = Conn::connect_from(target.addr(), target.host(), Some(HONEST))
        .await
        .unwrap();
    let t0 = Instant::now();
    let (s, b) = owner
        .post(
            "/xrpc/com.atproto.server.createSession",
            login("correct horse"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        s,
        200,
        "the owner could not log in during the flood: {}",
        String::from_utf8_lossy(&b)
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    let mut throttled = 0;
    for g in guessers {
        for (status, name) in g.await.unwrap() {
            assert!(
                (400..500).contains(&status),
                "a guess was answered {status} {name}"
            );
            if status == 429 {
                throttled += 1;
            }
        }
    }
    assert!(throttled > 0, "password guessing was never throttled");
    let report = honest.finish(&target).await;
    assert_unharmed(&report, "login flood");
    serve.assert_logs_keep(&[did]);
}

/// Hole 4: `atproto-proxy` and DID resolution must not reach private or metadata
/// addresses, and the refusal must not tell a port scanner anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_does_not_reach_private_or_metadata_addresses() {
    let serve = Serve::start();
    let target = Arc::new(Target::connect(&serve.url, None).await.expect("target"));
    let profiles = tempfile::tempdir().unwrap();
    let did = device_account(&serve.url, profiles.path(), "proxyuser");
    // A session of the account.
    let mut conn = target.conn().await.unwrap();
    let (s, b) = conn
        .post(
            "/xrpc/com.atproto.server.createSession",
            Bytes::from_static(br#"{"identifier":"proxyuser.test","password":"correct horse"}"#),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    let session: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let access = session["accessJwt"].as_str().unwrap().to_owned();

    let mut answers = Vec::new();
    for service in [
        "did:web:169.254.169.254#x",
        "did:web:10.0.0.1#x",
        "did:web:192.168.1.1%3A8080#x",
        "did:web:[fd00:ec2::254]#x",
        "did:web:metadata.google.internal#x",
    ] {
        let req = hyper::Request::get("/xrpc/com.example.anything?x=1")
            .header("host", target.host())
            .header("authorization", format!("Bearer {access}"))
            .header("atproto-proxy", service)
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let t0 = Instant::now();
        let (s, b) = conn.request(req).await.expect("answer");
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{service}: the refusal took {:?} (a connection was attempted)",
            t0.elapsed()
        );
        let (status, name) = status_name(s.as_u16(), &b);
        assert!(
            (400..600).contains(&status) && status != 500,
            "{service}: {status} {name}"
        );
        answers.push((status, name, String::from_utf8_lossy(&b).into_owned()));
    }
    // No refusal tells a port scanner anything: no "connection refused" versus
    // "timed out".
    for a in &answers {
        for leak in [
            "refused",
            "timed out",
            "timeout",
            "reset",
            "unreachable host",
        ] {
            assert!(!a.2.to_lowercase().contains(leak), "{answers:#?}");
        }
    }
    serve.assert_logs_keep(&[did, access]);
}
