//! One HTTP client for the servers' tests: a request on a fresh connection, read whole,
//! with assertions on XRPC answers. Every request is bounded by [`REQUEST_WAIT`].

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// How long one request may take before the test fails.
pub const REQUEST_WAIT: Duration = Duration::from_secs(20);

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, whole.
    pub body: Bytes,
}

impl Resp {
    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Asserts 200 and returns the JSON body (`Null` when empty).
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {:?}", self.body);
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts the status, the XRPC error name and the JSON content type; returns the body.
    pub fn error(&self, status: u16, name: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {:?}", self.body);
        let body = self.json();
        assert_eq!(body["error"], name, "body: {body}");
        assert_eq!(
            self.headers["content-type"],
            "application/json; charset=utf-8"
        );
        body
    }

    /// [`Resp::error`], returning the message.
    pub fn assert_error(&self, status: u16, name: &str) -> String {
        let body = self.error(status, name);
        body["message"].as_str().expect("message").to_owned()
    }
}

/// One request on a fresh connection.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Resp {
    send_from(None, addr, req).await
}

/// One request on a fresh connection from the local address `from` (e.g. `127.0.0.2`:
/// another source on the same loopback interface), or any when `None`.
pub async fn send_from(
    from: Option<std::net::IpAddr>,
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Resp {
    tokio::time::timeout(REQUEST_WAIT, async {
        let stream = match from {
            None => TcpStream::connect(addr).await.expect("connect"),
            Some(ip) => {
                let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                socket.bind(SocketAddr::new(ip, 0)).expect("bind source");
                socket.connect(addr).await.expect("connect")
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let response = sender.send_request(req).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    })
    .await
    .expect("request timed out")
}

/// One request on a fresh connection, waiting at most `wait`; `Err` (never a panic) when
/// the server is gone, refuses the connection or does not answer in time — for tests
/// that kill servers while requests are in flight.
pub async fn try_send(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
    wait: Duration,
) -> Result<(StatusCode, Bytes), String> {
    tokio::time::timeout(wait, async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    })
    .await
    .map_err(|_| "timeout".to_owned())?
}
