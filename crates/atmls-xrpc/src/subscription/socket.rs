//! The WebSocket side of a subscription: the upgrade handshake and the task that moves
//! frames from the handler's buffer to the socket, pings the peer and ends the stream.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use hyper::HeaderMap;
use hyper::header::HeaderValue;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::frame::Frame;
use super::sink::{EventSink, SinkShared};
use crate::error::XrpcError;
use crate::lifecycle::TaskGuard;
use crate::request::XrpcRequest;
use crate::router::SubscriptionHandler;
use crate::service::State;

/// Whether the request asks for a WebSocket upgrade.
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, "upgrade", "websocket")
}

/// Checks the handshake headers and computes `Sec-WebSocket-Accept`.
pub(crate) fn accept_key(headers: &HeaderMap) -> Result<HeaderValue, XrpcError> {
    if !has_token(headers, "connection", "upgrade") {
        return Err(XrpcError::invalid_request(
            "WebSocket upgrade without Connection: upgrade",
        ));
    }
    if headers
        .get("sec-websocket-version")
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(XrpcError::invalid_request(
            "unsupported Sec-WebSocket-Version (13 is required)",
        ));
    }
    let key = headers
        .get("sec-websocket-key")
        .ok_or_else(|| XrpcError::invalid_request("missing Sec-WebSocket-Key"))?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| XrpcError::internal("cannot compute Sec-WebSocket-Accept"))
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// How a stream ended, for the log line.
#[derive(Debug, Clone, Copy)]
enum End {
    Completed,
    HandlerError,
    ClientClosed,
    CutOff,
    Shutdown,
    PeerTimeout,
    WriteFailed,
}

/// Runs one subscription after the 101 response: waits for the upgrade, then runs the
/// handler and the socket loop until either ends.
pub(crate) async fn run(
    on_upgrade: OnUpgrade,
    req: XrpcRequest,
    handler: Arc<dyn SubscriptionHandler>,
    state: Arc<State>,
    _guards: (TaskGuard, OwnedSemaphorePermit),
) {
    let nsid = req.nsid().to_string();
    let remote = req.remote_addr();
    let upgraded = match on_upgrade.await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!(nsid, %remote, error = %e, "websocket upgrade failed");
            return;
        }
    };
    let cfg = &state.config.subscription;
    // Subscribers send only control frames, so a small read buffer suffices; tungstenite
    // zero-fills the whole buffer before each read, and its 128 KiB default cost a memset
    // per delivered frame and ~125 KiB of resident memory per connection (see
    // docs/performance.md, delivery service).
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(cfg.max_client_message_bytes))
        .max_frame_size(Some(cfg.max_client_message_bytes));
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(ws_config))
            .await;
    let _open = state.metrics.subscription();
    let started = Instant::now();

    let (tx, rx) = mpsc::channel(cfg.buffer_frames);
    let shared = Arc::new(SinkShared {
        cut_off: watch::channel(false).0,
        closed: watch::channel(false).0,
    });
    let sink = EventSink::new(tx, shared.clone(), cfg.send_timeout);
    let (done_tx, done_rx) = oneshot::channel();
    let handler_nsid = nsid.clone();
    let metrics = state.metrics.clone();
    let handler_task = tokio::spawn(async move {
        let result = AssertUnwindSafe(handler.call(req, sink))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!(nsid = handler_nsid, "subscription handler panicked");
                Err(XrpcError::internal("internal server error"))
            });
        // A subscription's error ends it as an error frame, not a response: count it
        // here as the request path counts error responses.
        if let Err(e) = &result {
            metrics.record_error(&handler_nsid, e.label(), e.limit());
        }
        let _ = done_tx.send(result);
    });

    let end = pump(ws, rx, done_rx, &shared, &state).await;
    shared.closed.send_replace(true);
    handler_task.abort();
    tracing::debug!(
        method = "WS",
        nsid,
        end = ?end,
        duration_ms = started.elapsed().as_millis() as u64,
        "subscription closed"
    );
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

async fn pump(
    mut ws: Ws,
    mut rx: mpsc::Receiver<Frame>,
    mut done_rx: oneshot::Receiver<Result<(), XrpcError>>,
    shared: &SinkShared,
    state: &State,
) -> End {
    let cfg = &state.config.subscription;
    let write_timeout = cfg.send_timeout;
    let mut cut_rx = shared.cut_off.subscribe();
    let cut = async move {
        let _ = cut_rx.wait_for(|c| *c).await;
    };
    tokio::pin!(cut);
    let draining = state.lifecycle.draining();
    tokio::pin!(draining);
    let mut ping = tokio::time::interval_at(Instant::now() + cfg.ping_interval, cfg.ping_interval);
    let mut unanswered = 0u32;
    let mut buffer_open = true;
    loop {
        tokio::select! {
            biased;
            _ = &mut cut => {
                state.metrics.cut_off();
                let frame = Frame::error(&cfg.too_slow_error, "the subscriber did not keep up");
                close_with(&mut ws, Some(frame), write_timeout).await;
                return End::CutOff;
            }
            _ = &mut draining => {
                let frame = Frame::error(&cfg.shutdown_error, "the server is shutting down");
                close_with(&mut ws, Some(frame), write_timeout).await;
                return End::Shutdown;
            }
            result = &mut done_rx => {
                // Frames queued before the handler returned still go out, then the end.
                while let Ok(frame) = rx.try_recv() {
                    if !write(&mut ws, &frame, write_timeout).await {
                        return End::WriteFailed;
                    }
                }
                let (frame, end) = match result {
                    Ok(Ok(())) => (None, End::Completed),
                    Ok(Err(e)) => (Some(Frame::error(e.name(), e.message())), End::HandlerError),
                    Err(_) => (
                        Some(Frame::error("InternalServerError", "internal server error")),
                        End::HandlerError,
                    ),
                };
                close_with(&mut ws, frame, write_timeout).await;
                return end;
            }
            frame = rx.recv(), if buffer_open => match frame {
                Some(frame) => {
                    if !write(&mut ws, &frame, write_timeout).await {
                        return End::WriteFailed;
                    }
                }
                None => buffer_open = false,
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::ClientClosed,
                // Any traffic shows the peer is alive; tungstenite answers pings itself.
                Some(Ok(_)) => unanswered = 0,
            },
            _ = ping.tick() => {
                if unanswered >= 2 {
                    return End::PeerTimeout;
                }
                unanswered += 1;
                let ping = ws.send(Message::Ping(Default::default()));
                if !matches!(timeout(write_timeout, ping).await, Ok(Ok(()))) {
                    return End::WriteFailed;
                }
            }
        }
    }
}

async fn write(ws: &mut Ws, frame: &Frame, limit: Duration) -> bool {
    let send = ws.send(Message::Binary(frame.bytes().clone()));
    matches!(timeout(limit, send).await, Ok(Ok(())))
}

/// Sends `frame` (if any), then a close frame, giving up after `limit`.
async fn close_with(ws: &mut Ws, frame: Option<Frame>, limit: Duration) {
    let _ = timeout(limit, async {
        if let Some(frame) = frame {
            ws.send(Message::Binary(frame.bytes().clone())).await?;
        }
        ws.close(None).await
    })
    .await;
}
