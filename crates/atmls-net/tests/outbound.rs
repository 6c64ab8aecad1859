//! The outbound client against a real listener on loopback: refused without the
//! development allowance (by IP literal and by name, with no connection made), reached
//! with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atmls_net::{AddressPolicy, OutboundConfig, is_refused};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

/// A listener answering every connection with a fixed HTTP response; counts connections.
async fn secret_service() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nsecret",
                    )
                    .await;
            });
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn loopback_is_refused_unless_allowed() {
    let (port, accepted) = secret_service().await;
    let strict = OutboundConfig::new().client::<Full<Bytes>>();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("https://127.0.0.1:{port}/"),
    ] {
        let err = tokio::time::timeout(WAIT, strict.get(url.parse().unwrap()))
            .await
            .expect("refused without waiting")
            .expect_err(&url);
        assert!(is_refused(&err), "{url}: {err:?}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "no connection was made");

    let dev = OutboundConfig::new()
        .with_policy(AddressPolicy::development())
        .client::<Full<Bytes>>();
    let url = format!("http://127.0.0.1:{port}/");
    let response = tokio::time::timeout(WAIT, dev.get(url.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"secret");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn private_and_metadata_are_refused_even_in_development() {
    let dev = OutboundConfig::new()
        .with_policy(AddressPolicy::development())
        .client::<Full<Bytes>>();
    for url in [
        "http://10.255.255.1/",
        "http://192.168.0.1:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
    ] {
        // Refused before any connection attempt: no connect timeout is waited out.
        let err = tokio::time::timeout(WAIT, dev.get(url.parse().unwrap()))
            .await
            .expect("refused without waiting")
            .expect_err(url);
        assert!(is_refused(&err), "{url}: {err:?}");
        assert!(!format!("{err}").contains("10.255"), "{err}");
    }
}
