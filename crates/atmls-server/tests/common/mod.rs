//! Helpers shared by the end-to-end tests: a catalog of test lexicons, a server on
//! 127.0.0.1 with a port chosen by the OS, and HTTP clients (hyper, and raw TCP for
//! malformed requests). Everything is bounded in time.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use atmls_server::{Catalog, Router, Server, ServerConfig, ServerHandle};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound of any single wait in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lexicons")
}

pub fn catalog() -> Catalog {
    Catalog::load_dir(fixtures()).expect("test lexicons load")
}

pub fn config() -> ServerConfig {
    ServerConfig::default()
        .with_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .with_version("test-1")
        .with_validate_output(true)
}

pub async fn start(router: Router, config: ServerConfig) -> ServerHandle {
    Server::bind(config, router).await.expect("bind").spawn()
}

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Asserts the status and the XRPC error name, and returns the message.
    pub fn assert_error(&self, status: u16, name: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {:?}", self.body);
        let body = self.json();
        assert_eq!(body["error"], name, "body: {body}");
        assert_eq!(
            self.headers["content-type"],
            "application/json; charset=utf-8"
        );
        body["message"].as_str().expect("message").to_owned()
    }
}

/// One request on a fresh connection.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Resp {
    tokio::time::timeout(WAIT, async {
        let stream = TcpStream::connect(addr).await.expect("connect");
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

pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(addr, req).await
}

pub async fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Resp {
    let req = Request::post(path)
        .header("host", "localhost")
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap();
    send(addr, req).await
}

pub async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Resp {
    post(addr, path, "application/json", body.to_string()).await
}

/// Writes raw bytes and reads until the server closes the connection.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    tokio::time::timeout(WAIT, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .expect("raw request timed out")
}
