//! The directory's HTTP face: `GET /:did`, `GET /:did/log`, `GET /:did/log/audit`,
//! `GET /:did/log/last`, `GET /:did/data`, `POST /:did`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use atmls_syntax::{Clock, SystemClock};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Body;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;

use super::Directory;
use crate::PlcDid;
use crate::plc::{PlcError, SignedOperation};

/// Largest request body `POST /:did` reads.
const MAX_REQUEST_BODY: usize = 32 * 1024;

/// A hyper service answering the PLC directory API from a [`Directory`]; mount it in
/// a larger server or run it alone with [`DirectoryService::serve`].
#[derive(Debug, Clone)]
pub struct DirectoryService {
    directory: Arc<Directory>,
    clock: Arc<dyn Clock>,
}

impl DirectoryService {
    /// A service over `directory`, timing operations with the system clock.
    pub fn new(directory: Arc<Directory>) -> Self {
        DirectoryService {
            directory,
            clock: Arc::new(SystemClock),
        }
    }

    /// Times accepted operations with `clock` instead (read once per request).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The directory served.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Accepts HTTP/1 connections on `listener` until the task is dropped or accepting
    /// fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let service = self.clone();
            tokio::spawn(async move {
                let io = TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!("directory connection ended: {e}");
                }
            });
        }
    }

    /// Answers one request. Unknown paths get 404, failures a JSON `{"message": …}`.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let path = req.uri().path().to_owned();
        let mut segments = path.trim_start_matches('/').split('/');
        let did_segment = segments.next().unwrap_or_default();
        let rest: Vec<&str> = segments.collect();
        let Some(did) = percent_decode(did_segment) else {
            return message(StatusCode::BAD_REQUEST, "malformed path");
        };
        let did = match PlcDid::new(did) {
            Ok(did) => did,
            Err(_) if did_segment.is_empty() => {
                return message(StatusCode::NOT_FOUND, "not found");
            }
            Err(e) => return message(StatusCode::BAD_REQUEST, &format!("invalid DID: {e}")),
        };
        let dir = &self.directory;
        match (req.method(), rest.as_slice()) {
            (&Method::GET, []) => match dir.document(&did) {
                Ok(doc) => json(StatusCode::OK, "application/did+ld+json", &doc),
                Err(e) => error(&did, &e),
            },
            (&Method::GET, ["data"]) => match dir.state(&did) {
                Ok(state) => json(StatusCode::OK, "application/json", &state),
                Err(e) => error(&did, &e),
            },
            (&Method::GET, ["log"]) => match dir.log(&did) {
                Ok(log) => json(StatusCode::OK, "application/json", &log),
                Err(e) => error(&did, &e),
            },
            (&Method::GET, ["log", "audit"]) => match dir.audit_log(&did) {
                Ok(log) => json(StatusCode::OK, "application/json", &log),
                Err(e) => error(&did, &e),
            },
            (&Method::GET, ["log", "last"]) => match dir.last_operation(&did) {
                Ok((op, _)) => json(StatusCode::OK, "application/json", &op),
                Err(e) => error(&did, &e),
            },
            (&Method::POST, []) => {
                let body = match Limited::new(req.into_body(), MAX_REQUEST_BODY)
                    .collect()
                    .await
                {
                    Ok(body) => body.to_bytes(),
                    Err(_) => {
                        return message(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
                    }
                };
                let result = SignedOperation::from_json(&body)
                    .and_then(|op| dir.submit(&did, op, self.clock.now()));
                match result {
                    Ok(()) => Response::new(Full::new(Bytes::new())),
                    Err(e @ PlcError::Storage(_)) => {
                        message(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
                    }
                    Err(e) => message(StatusCode::BAD_REQUEST, &e.to_string()),
                }
            }
            (_, [] | ["data"] | ["log"] | ["log", "audit"] | ["log", "last"]) => {
                message(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            }
            _ => message(StatusCode::NOT_FOUND, "not found"),
        }
    }
}

impl<B> hyper::service::Service<Request<B>> for DirectoryService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move { Ok(service.handle(req).await) })
    }
}

fn error(did: &PlcDid, e: &PlcError) -> Response<Full<Bytes>> {
    match e {
        PlcError::NotFound => message(StatusCode::NOT_FOUND, &format!("DID not registered: {did}")),
        PlcError::Tombstoned => message(StatusCode::GONE, &format!("DID not available: {did}")),
        other => message(StatusCode::INTERNAL_SERVER_ERROR, &other.to_string()),
    }
}

fn message(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    json(
        status,
        "application/json",
        &serde_json::json!({ "message": text }),
    )
}

fn json<T: Serialize>(
    status: StatusCode,
    content_type: &'static str,
    value: &T,
) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Decodes `%XX` escapes (clients send `did%3Aplc%3A…`); `None` on a bad escape.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
