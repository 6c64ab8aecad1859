//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The repository's `tests/fixtures` folder.
pub(crate) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A file of `tests/fixtures/official-pds/`.
pub(crate) fn official(name: &str) -> Vec<u8> {
    let path = fixtures().join("official-pds").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use atmls_crypto::PublicKey;
use atmls_identity::resolve::ResolveFuture;
use atmls_identity::{Did, DidDocument, DidResolver, ResolveError, VerificationMethod};

/// A resolver over an in-memory map that tests can change, counting fetches.
#[derive(Default)]
pub(crate) struct MapResolver {
    docs: Mutex<HashMap<Did, DidDocument>>,
    fetches: AtomicUsize,
}

impl MapResolver {
    pub(crate) fn insert(&self, doc: DidDocument) {
        self.docs.lock().unwrap().insert(doc.id.clone(), doc);
    }

    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl DidResolver for MapResolver {
    fn resolve<'a>(&'a self, did: &'a Did) -> ResolveFuture<'a> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let found = self.docs.lock().unwrap().get(did).cloned();
        Box::pin(async move { found.map(Arc::new).ok_or(ResolveError::NotFound) })
    }
}

/// A minimal document for `did` with `key` as `#atproto` (Multikey form).
pub(crate) fn doc_with_key(did: &str, key: &PublicKey) -> DidDocument {
    let did = Did::new(did).unwrap();
    DidDocument {
        context: None,
        verification_method: vec![VerificationMethod::multikey(&did, "atproto", key)],
        id: did,
        also_known_as: Vec::new(),
        service: Vec::new(),
    }
}

/// What the tiny test server answers for a path.
#[derive(Clone)]
pub(crate) enum Reply {
    /// Status and body, with Content-Length.
    Body(u16, Vec<u8>),
    /// 200 with a chunked body of this many bytes and no Content-Length.
    Chunked(usize),
    /// Headers, then nothing for this long.
    Stall(std::time::Duration),
}

/// A raw HTTP/1.1 server on 127.0.0.1 answering every request with `route(path)`;
/// returns its address and a hit counter.
pub(crate) async fn tiny_server(
    route: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let route = Arc::new(route);
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let route = route.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&buf);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                match route(&path) {
                    Reply::Body(status, body) => {
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes()).await;
                        let _ = stream.write_all(&body).await;
                    }
                    Reply::Chunked(total) => {
                        let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                        let piece = vec![b'x'; 8192];
                        let mut sent = 0;
                        while sent < total {
                            let frame = format!("{:x}\r\n", piece.len());
                            if stream.write_all(frame.as_bytes()).await.is_err()
                                || stream.write_all(&piece).await.is_err()
                                || stream.write_all(b"\r\n").await.is_err()
                            {
                                return;
                            }
                            sent += piece.len();
                        }
                        let _ = stream.write_all(b"0\r\n\r\n").await;
                    }
                    Reply::Stall(d) => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                        tokio::time::sleep(d).await;
                    }
                }
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, hits)
}
