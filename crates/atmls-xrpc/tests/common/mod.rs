//! Helpers shared by the end-to-end tests: a catalog of test lexicons, a server on
//! 127.0.0.1 with a port chosen by the OS, and HTTP clients (hyper, and raw TCP for
//! malformed requests). Everything is bounded in time.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use atmls_xrpc::{Catalog, Router, Server, ServerConfig, ServerHandle};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use atmls_testkit::http::{Resp, send};

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
