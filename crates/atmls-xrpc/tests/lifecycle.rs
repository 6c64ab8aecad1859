//! Timeouts, connection limits and graceful shutdown through a real server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use atmls_xrpc::{Router, StatusCode, XrpcResponse};
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, timeout};

/// A `com.example.ping` handler that reports it has started, then waits to be released.
fn gated() -> (Router, mpsc::UnboundedReceiver<()>, Arc<Notify>) {
    let (entered_tx, entered_rx) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let router = Router::new(catalog()).query("com.example.ping", move |_req| {
        let entered = entered_tx.clone();
        let gate = gate.clone();
        async move {
            let released = gate.notified();
            let _ = entered.send(());
            released.await;
            Ok(XrpcResponse::json(json!({})))
        }
    });
    (router, entered_rx, release)
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_dropped() {
    let cfg = config().with_header_read_timeout(Duration::from_millis(300));
    let server = start(Router::new(catalog()), cfg).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /_health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // The server closes the connection (possibly after a 408) instead of waiting forever.
    let read = timeout(WAIT, stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "connection still open after {:?}",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    // Other clients are served.
    assert_eq!(
        get(server.local_addr(), "/_health").await.status,
        StatusCode::OK
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight() {
    let (router, mut entered, release) = gated();
    let mut server = start(router, config().with_shutdown_grace(WAIT)).await;
    let addr = server.local_addr();
    let in_flight = tokio::spawn(async move { get(addr, "/xrpc/com.example.ping").await });
    timeout(WAIT, entered.recv()).await.unwrap().unwrap();
    assert_eq!(server.metrics().requests_in_flight(), 1);

    server.start_shutdown();
    // Stop accepting: new connections are refused or closed unanswered (or, if one
    // slipped in before the listener closed, answered 503).
    let refused = timeout(WAIT, async {
        loop {
            match TcpStream::connect(addr).await {
                Err(_) => break,
                Ok(mut s) => {
                    let _ = s
                        .write_all(b"GET /_health HTTP/1.1\r\nhost: x\r\n\r\n")
                        .await;
                    let mut buf = Vec::new();
                    let _ = s.read_to_end(&mut buf).await;
                    let text = String::from_utf8_lossy(&buf);
                    if text.is_empty() || text.starts_with("HTTP/1.1 503") {
                        break;
                    }
                }
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(refused.is_ok(), "the server kept accepting during shutdown");

    release.notify_one();
    let r = timeout(WAIT, in_flight).await.unwrap().unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({}));
    timeout(WAIT, server.join()).await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_gives_up_on_requests_after_the_grace_period() {
    let (router, mut entered, _release) = gated();
    let cfg = config().with_shutdown_grace(Duration::from_millis(200));
    let server = start(router, cfg).await;
    let addr = server.local_addr();
    let in_flight = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /xrpc/com.example.ping HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    });
    timeout(WAIT, entered.recv()).await.unwrap().unwrap();
    let started = Instant::now();
    timeout(WAIT, server.shutdown()).await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    // The abandoned request's connection is closed, not left hanging.
    let buf = timeout(WAIT, in_flight).await.unwrap().unwrap();
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let (router, mut entered, release) = gated();
    let cfg = config().with_max_connections(1);
    let server = start(router, cfg).await;
    let addr = server.local_addr();
    let first = tokio::spawn(async move { get(addr, "/xrpc/com.example.ping").await });
    timeout(WAIT, entered.recv()).await.unwrap().unwrap();
    // The second connection is not served while the first holds the only slot.
    let mut second = tokio::spawn(async move { get(addr, "/_health").await });
    let early = timeout(Duration::from_millis(300), &mut second).await;
    assert!(early.is_err(), "served beyond max_connections");
    release.notify_one();
    assert_eq!(
        timeout(WAIT, first).await.unwrap().unwrap().status,
        StatusCode::OK
    );
    assert_eq!(
        timeout(WAIT, second).await.unwrap().unwrap().status,
        StatusCode::OK
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let cfg = config().with_header_read_timeout(Duration::from_millis(300));
    let server = start(Router::new(catalog()), cfg).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /_health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    // The response comes, then the idle connection is closed by the header timeout.
    let read = timeout(WAIT, stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "idle connection kept open");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.shutdown().await.unwrap();
}
