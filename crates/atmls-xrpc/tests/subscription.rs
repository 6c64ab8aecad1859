//! WebSocket event streams through a real server: frames, errors, slow consumers,
//! shutdown and pings.

mod common;

use std::time::Duration;

use atmls_xrpc::subscription::{ErrorBody, FrameHeader};
use atmls_xrpc::{EventSink, Frame, Router, SinkError, SubscriptionConfig, XrpcError, XrpcRequest};
use common::*;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Tick {
    n: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pad: String,
}

/// The stream handler; `mode` (an undeclared parameter) picks its behaviour, and it
/// reports events (how many frames it queued before being cut off) on `events`.
fn router(events: mpsc::UnboundedSender<i64>) -> Router {
    Router::new(catalog()).subscription(
        "com.example.stream",
        move |req: XrpcRequest, sink: EventSink| {
            let events = events.clone();
            async move {
                let count = req.param_i64("count").unwrap_or(0);
                for n in 0..count {
                    sink.send(
                        "#tick",
                        &Tick {
                            n,
                            pad: String::new(),
                        },
                    )
                    .await
                    .map_err(|e| XrpcError::internal(e.to_string()))?;
                }
                match req.param_str("mode").unwrap_or("") {
                    "fail" => Err(XrpcError::bad_request("Boom", "it broke")),
                    "panic" => panic!("subscription handler panicked on purpose"),
                    "wait" => {
                        sink.closed().await;
                        Ok(())
                    }
                    "flood" => {
                        let pad = "x".repeat(64 * 1024);
                        for n in 0.. {
                            let tick = Frame::message(
                                "tick",
                                &Tick {
                                    n,
                                    pad: pad.clone(),
                                },
                            )
                            .map_err(|e| XrpcError::internal(e.to_string()))?;
                            match sink.try_send_frame(tick) {
                                Ok(()) => {}
                                Err(SinkError::ConsumerTooSlow) => {
                                    let _ = events.send(n);
                                    assert_eq!(
                                        sink.try_send(
                                            "tick",
                                            &Tick {
                                                n,
                                                pad: String::new()
                                            }
                                        ),
                                        Err(SinkError::ConsumerTooSlow)
                                    );
                                    return Ok(());
                                }
                                Err(e) => return Err(XrpcError::internal(e.to_string())),
                            }
                            if n % 16 == 0 {
                                tokio::task::yield_now().await;
                            }
                        }
                        Ok(())
                    }
                    _ => Ok(()),
                }
            }
        },
    )
}

type Client = WebSocketStream<TcpStream>;

async fn connect(addr: std::net::SocketAddr, query: &str) -> Client {
    let url = format!("ws://{addr}/xrpc/com.example.stream?{query}");
    let stream = TcpStream::connect(addr).await.unwrap();
    let (ws, response) = timeout(WAIT, client_async(url, stream))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 101);
    ws
}

#[derive(Debug, PartialEq)]
enum Event {
    Tick(i64),
    Error(String),
    Ping,
    Closed,
}

/// The next frame, decoded; pings are reported, pongs skipped.
async fn next(ws: &mut Client) -> Event {
    loop {
        let msg = timeout(WAIT, ws.next()).await.expect("no frame in time");
        match msg {
            Some(Ok(Message::Binary(bytes))) => {
                let (header, _): (FrameHeader, serde::de::IgnoredAny) =
                    Frame::decode(&bytes).expect("frame decodes");
                return match header.op {
                    1 => {
                        assert_eq!(header.t.as_deref(), Some("#tick"));
                        let (_, tick): (FrameHeader, Tick) = Frame::decode(&bytes).unwrap();
                        Event::Tick(tick.n)
                    }
                    -1 => {
                        let (_, body): (FrameHeader, ErrorBody) = Frame::decode(&bytes).unwrap();
                        Event::Error(body.error)
                    }
                    op => panic!("unexpected op {op}"),
                };
            }
            Some(Ok(Message::Ping(_))) => return Event::Ping,
            Some(Ok(Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Event::Closed,
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
        }
    }
}

#[tokio::test]
async fn frames_are_header_and_body_then_close() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let server = start(router(tx), config()).await;
    let mut ws = connect(server.local_addr(), "count=3").await;
    for n in 0..3 {
        assert_eq!(next(&mut ws).await, Event::Tick(n));
    }
    assert_eq!(next(&mut ws).await, Event::Closed);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handler_error_becomes_an_error_frame() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let server = start(router(tx), config()).await;
    let mut ws = connect(server.local_addr(), "count=1&mode=fail").await;
    assert_eq!(next(&mut ws).await, Event::Tick(0));
    assert_eq!(next(&mut ws).await, Event::Error("Boom".into()));
    assert_eq!(next(&mut ws).await, Event::Closed);

    let mut ws = connect(server.local_addr(), "mode=panic").await;
    assert_eq!(
        next(&mut ws).await,
        Event::Error("InternalServerError".into())
    );
    assert_eq!(next(&mut ws).await, Event::Closed);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn params_are_validated_before_the_upgrade() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let server = start(router(tx), config()).await;
    let addr = server.local_addr();
    let url = format!("ws://{addr}/xrpc/com.example.stream?count=-1");
    let stream = TcpStream::connect(addr).await.unwrap();
    let err = timeout(WAIT, client_async(url, stream))
        .await
        .unwrap()
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
        panic!("expected an HTTP error, got {err:?}");
    };
    assert_eq!(response.status(), 400);
    let body: serde_json::Value =
        serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    assert_eq!(body["error"], "InvalidRequest");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("params/count")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slow_consumer_is_cut_off_with_an_error_frame() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cfg = config().with_subscription(
        SubscriptionConfig::default()
            .with_buffer_frames(4)
            .with_send_timeout(WAIT),
    );
    let server = start(router(tx), cfg).await;
    // Connect and read nothing until the handler reports the cut.
    let mut ws = connect(server.local_addr(), "mode=flood").await;
    let queued = timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    assert!(queued >= 4);
    let mut expected = 0;
    loop {
        match next(&mut ws).await {
            Event::Tick(n) => {
                assert_eq!(n, expected, "frames arrive in order, without gaps");
                expected += 1;
            }
            Event::Error(name) => {
                assert_eq!(name, "ConsumerTooSlow");
                break;
            }
            other => panic!("unexpected {other:?} after {expected} frames"),
        }
    }
    assert!(
        expected <= queued,
        "sent {expected} of {queued} queued frames"
    );
    assert_eq!(next(&mut ws).await, Event::Closed);
    assert!(
        server
            .metrics()
            .render()
            .contains("atmls_xrpc_subscriptions_cut_off_total 1")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_subscriptions_with_an_error_frame() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut server = start(router(tx), config().with_shutdown_grace(WAIT)).await;
    let mut ws = connect(server.local_addr(), "count=1&mode=wait").await;
    assert_eq!(next(&mut ws).await, Event::Tick(0));
    assert_eq!(server.metrics().open_subscriptions(), 1);
    server.start_shutdown();
    assert_eq!(
        next(&mut ws).await,
        Event::Error("ServerShuttingDown".into())
    );
    assert_eq!(next(&mut ws).await, Event::Closed);
    timeout(WAIT, server.join()).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_server_pings_idle_subscribers() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let cfg = config().with_subscription(
        SubscriptionConfig::default().with_ping_interval(Duration::from_millis(50)),
    );
    let server = start(router(tx), cfg).await;
    let mut ws = connect(server.local_addr(), "count=1&mode=wait").await;
    assert_eq!(next(&mut ws).await, Event::Tick(0));
    // Reading answers the pings (tungstenite replies), so the stream stays open.
    for _ in 0..3 {
        assert_eq!(next(&mut ws).await, Event::Ping);
    }
    ws.close(None).await.unwrap();
    let metrics = server.metrics().clone();
    // Shutdown waits for every subscription task, so the gauge is back to zero.
    server.shutdown().await.unwrap();
    assert_eq!(metrics.open_subscriptions(), 0);
}
