//! Shared by the `host_*` tests: the embedded host on 127.0.0.1 with an OS-chosen port and
//! a manual clock, and a small JSON-over-HTTP client. Every wait is bounded.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atmls_crypto::PublicKey;
use atmls_host::ManualClock;
use atmls_host_xrpc::Host;
use atmls_identity::DidDocument;
use atmls_testkit::server::{ServerBuilder, TestServer};
use atmls_xrpc::ServerConfig;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

pub use atmls_testkit::http::{Resp, send};

/// Upper bound of any single wait.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running host, started by `atmls-testkit`.
pub struct TestHost {
    pub addr: SocketAddr,
    pub url: String,
    pub host: Host,
    pub clock: Arc<ManualClock>,
    server: TestServer,
}

impl TestHost {
    /// A host kept in memory, with the development allowance (proxy targets on loopback).
    pub async fn start() -> Self {
        Self::start_with(None, Arc::new(ManualClock::starting_now()), |c| c).await
    }

    /// A host kept in memory with the default outbound policy: public addresses only.
    pub async fn start_public_only() -> Self {
        Self::start_configured(
            None,
            Arc::new(ManualClock::starting_now()),
            |c| c,
            |b| b.public_only(),
        )
        .await
    }

    /// A host over the files in `dir`.
    pub async fn start_in(dir: &Path, clock: Arc<ManualClock>) -> Self {
        Self::start_with(Some(dir), clock, |c| c).await
    }

    /// A host with a server config adjusted by `server`.
    pub async fn start_with(
        dir: Option<&Path>,
        clock: Arc<ManualClock>,
        server: impl FnOnce(ServerConfig) -> ServerConfig,
    ) -> Self {
        Self::start_configured(dir, clock, server, |b| b).await
    }

    /// A host with the server config adjusted by `server` and the starter by `host`.
    pub async fn start_configured(
        dir: Option<&Path>,
        clock: Arc<ManualClock>,
        server: impl FnOnce(ServerConfig) -> ServerConfig,
        host: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> Self {
        let mut builder = TestServer::builder()
            .host_only()
            .clock(ManualClock::clone(&clock))
            .server(server(ServerConfig::default().with_validate_output(true)));
        if let Some(dir) = dir {
            builder = builder.data_dir(dir);
        }
        let server = host(builder).start().await;
        TestHost {
            addr: server.addr(),
            url: server.url().to_owned(),
            host: server.host().clone(),
            clock,
            server,
        }
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }

    /// A raw request.
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        let mut builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        send(
            self.addr,
            builder.body(Full::new(body.into())).expect("request"),
        )
        .await
    }

    /// `GET /xrpc/<nsid>?<params>`.
    pub async fn query(&self, nsid: &str, params: &[(&str, &str)], token: Option<&str>) -> Resp {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        self.request(
            Method::GET,
            &format!("/xrpc/{nsid}?{}", query.join("&")),
            &headers,
            Bytes::new(),
        )
        .await
    }

    /// `POST /xrpc/<nsid>` with a JSON body (none when `body` is null).
    pub async fn procedure(&self, nsid: &str, body: &Value, token: Option<&str>) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let bytes = if body.is_null() {
            Bytes::new()
        } else {
            headers.push(("content-type", "application/json"));
            Bytes::from(body.to_string())
        };
        self.request(Method::POST, &format!("/xrpc/{nsid}"), &headers, bytes)
            .await
    }

    /// Creates `handle` with password `password`; returns the session JSON.
    pub async fn account(&self, handle: &str) -> Session {
        let r = self
            .procedure(
                "com.atproto.server.createAccount",
                &json!({ "handle": handle, "password": "correct horse", "email": format!("{handle}@example.com") }),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "createAccount: {:?}", r.body);
        Session::from(r.json())
    }

    /// Creates `n` example `chat.mls.keyPackage` records (`key_package(0..n)`) in the
    /// account's repo, one `createRecord` each; their record keys, in order.
    pub async fn create_key_packages(&self, account: &Session, n: u32) -> Vec<String> {
        let mut rkeys = Vec::new();
        for i in 0..n {
            let r = self
                .procedure(
                    "com.atproto.repo.createRecord",
                    &json!({ "repo": account.did, "collection": "chat.mls.keyPackage",
                             "record": key_package(i) }),
                    Some(&account.access),
                )
                .await
                .ok();
            rkeys.push(rkey_of(r["uri"].as_str().expect("uri")));
        }
        rkeys
    }

    /// The current head commit of `did`.
    pub async fn head(&self, did: &str) -> String {
        let r = self
            .query("com.atproto.sync.getLatestCommit", &[("did", did)], None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.json()["cid"].as_str().expect("cid").to_owned()
    }

    /// The DID document served by the dev PLC directory.
    pub async fn did_doc(&self, did: &str) -> DidDocument {
        let r = self
            .request(Method::GET, &format!("/{did}"), &[], Bytes::new())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        DidDocument::from_json(&r.body).expect("DID document")
    }

    /// The `#atproto` key of `did`, from the directory over HTTP.
    pub async fn repo_key(&self, did: &str) -> PublicKey {
        self.did_doc(did).await.atproto_key().expect("atproto key")
    }

    /// Every record of a collection, following cursors (oldest first).
    pub async fn all_records(&self, did: &str, collection: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..1000 {
            let mut params = vec![
                ("repo", did),
                ("collection", collection),
                ("limit", "100"),
                ("reverse", "true"),
            ];
            if let Some(c) = &cursor {
                params.push(("cursor", c.as_str()));
            }
            let r = self
                .query("com.atproto.repo.listRecords", &params, None)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            let page = r.json();
            out.extend(page["records"].as_array().expect("records").iter().cloned());
            match page["cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
        panic!("listRecords did not end");
    }
}

/// The parts of a session the tests use.
#[derive(Debug, Clone)]
pub struct Session {
    pub did: String,
    pub handle: String,
    pub access: String,
    pub refresh: String,
}

impl From<Value> for Session {
    fn from(v: Value) -> Self {
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {v}"))
                .to_owned()
        };
        Session {
            did: s("did"),
            handle: s("handle"),
            access: s("accessJwt"),
            refresh: s("refreshJwt"),
        }
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The record key at the end of an `at://` URI.
pub fn rkey_of(uri: &str) -> String {
    uri.rsplit('/').next().unwrap_or_default().to_owned()
}

/// A valid `chat.mls.keyPackage` record.
pub fn key_package(n: u32) -> Value {
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/lexicon-examples/chat.mls.keyPackage");
    let mut files: Vec<_> = std::fs::read_dir(&examples)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("valid-"))
        })
        .collect();
    files.sort();
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(&f).expect("read")).expect("json");
        let record = v.get("record").cloned().unwrap_or(v);
        if record["$type"] == "chat.mls.keyPackage" {
            let mut record = record;
            record["deviceId"] = json!(format!("device-{n}"));
            return record;
        }
    }
    panic!("no keyPackage example in {}", examples.display());
}
