//! Helpers of the delivery-service end-to-end tests: a dev PLC directory and a DS on
//! 127.0.0.1 with a manual clock, HTTP and WebSocket clients, request signing and
//! service-auth tokens. Every wait is bounded.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use atmls_ds::auth::{DsMethod, RequestToken};
use atmls_ds::{DsConfig, MailboxId, MemoryStore, Store};
use atmls_ds_xrpc::{Clock, DsService, DsServiceConfig, ManualClock};
use atmls_identity::service_auth::{Claims, issue};
use atmls_testkit::server::TestServer;
use atmls_xrpc::subscription::FrameHeader;
use atmls_xrpc::{Frame, ServerConfig};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use http_body_util::Full;
use hyper::Request;
use ipld_core::ipld::Ipld;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};

pub use atmls_testkit::http::{Resp, send};
pub use atmls_testkit::server::{Account, Plc};

/// Upper bound of any single wait.
pub const WAIT: Duration = Duration::from_secs(10);

/// A DS (memory store, manual clock) behind a real server on loopback, started by
/// `atmls-testkit`, with a dev PLC directory and one account in it.
pub struct Harness {
    pub addr: SocketAddr,
    pub clock: ManualClock,
    pub ds: DsService,
    pub alice: Account,
    pub ds_did: String,
    pub server: TestServer,
}

impl Harness {
    /// The PLC directory the DS resolves accounts in.
    pub fn plc(&self) -> &Plc {
        self.server.plc()
    }
}

/// The core limits the tests use: small, so that every limit is reachable.
pub fn small_limits() -> DsConfig {
    DsConfig::default()
        .with_max_batch_envelopes(10)
        .with_max_envelope_bytes(1024)
        .with_max_mailboxes_per_account(4)
        .with_inbox_deposits_per_minute(2)
}

pub async fn start(
    core: DsConfig,
    tune: impl FnOnce(DsServiceConfig) -> DsServiceConfig + Send + 'static,
    server: ServerConfig,
) -> Harness {
    start_with_store(MemoryStore::new(), core, tune, server).await
}

/// As [`start`], over `store`.
pub async fn start_with_store<S: Store + Send + 'static>(
    store: S,
    core: DsConfig,
    tune: impl FnOnce(DsServiceConfig) -> DsServiceConfig + Send + 'static,
    server: ServerConfig,
) -> Harness {
    let server = TestServer::builder()
        .ds_only()
        .core(core)
        .ds(tune)
        .server(server)
        .start_on(store)
        .await;
    let alice = server.plc().account("https://pds.example.com");
    Harness {
        addr: server.addr(),
        clock: server.clock().clone(),
        ds: server.ds().clone(),
        alice,
        ds_did: server.ds_did().to_string(),
        server,
    }
}

pub fn server_config() -> ServerConfig {
    ServerConfig::default()
        .with_validate_output(true)
        .with_max_body_bytes(64 * 1024)
}

/// A fresh Ed25519 mailbox key.
pub fn mailbox_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random())
}

pub fn public(key: &SigningKey) -> [u8; 32] {
    key.verifying_key().to_bytes()
}

pub fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)
}

pub fn unb64(v: &Value) -> Vec<u8> {
    use base64::Engine as _;
    let s = v["$bytes"].as_str().expect("$bytes");
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(s)
        .expect("base64")
}

pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = Request::get(path).header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(addr, req.body(Full::new(Bytes::new())).unwrap()).await
}

pub async fn post(addr: SocketAddr, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Resp {
    let mut req = Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(addr, req.body(Full::new(Bytes::from(body))).unwrap()).await
}

impl Harness {
    /// A request token signed now with a fresh nonce.
    pub fn token(
        &self,
        key: &SigningKey,
        method: DsMethod,
        mailbox: &MailboxId,
        content: &[u8],
    ) -> RequestToken {
        RequestToken::sign(
            key,
            method,
            mailbox,
            self.clock.now(),
            rand::random(),
            content,
        )
    }

    /// A service-auth token of alice for `lxm`, valid 60 s from now.
    pub fn service_token(&self, lxm: &str, aud: &str) -> String {
        issue(
            &self.alice.key,
            &Claims::new(
                &self.alice.did,
                aud,
                lxm,
                self.clock.now(),
                Duration::from_secs(60),
            ),
        )
    }

    pub fn audience(&self) -> String {
        format!("{}#chat_mls_ds", self.ds_did)
    }

    pub async fn create(&self, kind: &str, key: &SigningKey, epoch: u64) -> Resp {
        let token = self.service_token("chat.mls.ds.createMailbox", &self.audience());
        let body = json!({ "kind": kind, "key": { "$bytes": b64(&public(key)) }, "epoch": epoch });
        let auth = format!("Bearer {token}");
        post(
            self.addr,
            "/xrpc/chat.mls.ds.createMailbox",
            body.to_string().into_bytes(),
            &[("authorization", &auth)],
        )
        .await
    }

    /// Creates a mailbox and returns its id.
    pub async fn mailbox(&self, kind: &str, key: &SigningKey) -> MailboxId {
        let body = self.create(kind, key, 0).await.ok();
        body["mailbox"].as_str().unwrap().parse().unwrap()
    }

    /// POSTs `body` to `nsid`, signed with `key` for `mailbox`.
    pub async fn signed_post(
        &self,
        method: DsMethod,
        mailbox: &MailboxId,
        key: &SigningKey,
        body: &Value,
    ) -> Resp {
        let body = body.to_string().into_bytes();
        let auth = self
            .token(key, method, mailbox, &body)
            .authorization_header();
        let path = format!("/xrpc/{}", method.nsid());
        post(self.addr, &path, body, &[("authorization", &auth)]).await
    }

    /// `sendEnvelopes` of `envelopes` (JSON objects), signed with `key`.
    pub async fn send(&self, mailbox: &MailboxId, key: &SigningKey, envelopes: Value) -> Resp {
        let body = json!({ "mailbox": mailbox.to_string(), "envelopes": envelopes });
        self.signed_post(DsMethod::SendEnvelopes, mailbox, key, &body)
            .await
    }

    /// GETs `method` with `query`, signed with `key` over the query string.
    pub async fn signed_get(
        &self,
        method: DsMethod,
        mailbox: &MailboxId,
        key: &SigningKey,
        query: &str,
    ) -> Resp {
        let auth = self
            .token(key, method, mailbox, query.as_bytes())
            .authorization_header();
        let path = format!("/xrpc/{}?{query}", method.nsid());
        get(self.addr, &path, &[("authorization", &auth)]).await
    }

    /// `getEnvelopes` from `cursor`.
    pub async fn read(&self, mailbox: &MailboxId, key: &SigningKey, cursor: u64) -> Resp {
        let query = format!("mailbox={mailbox}&cursor={cursor}&limit=1000");
        self.signed_get(DsMethod::GetEnvelopes, mailbox, key, &query)
            .await
    }

    /// The query of a subscription to `mailbox` (optionally from `cursor`), signed with
    /// `key`.
    pub fn subscription_query(
        &self,
        mailbox: &MailboxId,
        key: &SigningKey,
        cursor: Option<u64>,
    ) -> String {
        let mut query = format!("mailbox={mailbox}");
        if let Some(c) = cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let token = self.token(key, DsMethod::SubscribeEnvelopes, mailbox, query.as_bytes());
        format!("{query}&auth={}", token.encode())
    }
}

/// A message payload.
pub fn message(payload: &[u8]) -> Value {
    json!({ "kind": "message", "payload": { "$bytes": b64(payload) } })
}

/// A commit payload built on `epoch` registering `next`.
pub fn commit(epoch: u64, payload: &[u8], next: &SigningKey) -> Value {
    json!({ "kind": "commit", "epoch": epoch, "payload": { "$bytes": b64(payload) },
            "nextKey": { "$bytes": b64(&public(next)) } })
}

pub type Ws = WebSocketStream<TcpStream>;

/// Opens `subscribeEnvelopes` with `query`.
pub async fn subscribe(addr: SocketAddr, query: &str) -> Ws {
    let url = format!("ws://{addr}/xrpc/chat.mls.ds.subscribeEnvelopes?{query}");
    tokio::time::timeout(WAIT, async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        client_async(url, stream).await.expect("websocket").0
    })
    .await
    .expect("subscribe timed out")
}

/// One frame: its header and body. Panics on timeout or close.
pub async fn frame(ws: &mut Ws) -> (FrameHeader, Ipld) {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => return Frame::decode::<Ipld>(&b).expect("frame"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("stream ended: {other:?}"),
            }
        }
    })
    .await
    .expect("no frame in time")
}

/// A field of a map.
pub fn field<'a>(ipld: &'a Ipld, key: &str) -> &'a Ipld {
    match ipld {
        Ipld::Map(m) => m.get(key).unwrap_or_else(|| panic!("no {key} in {ipld:?}")),
        _ => panic!("not a map: {ipld:?}"),
    }
}

/// `(mailbox, seq, payload)` of an `#envelope` frame body.
pub fn envelope(body: &Ipld) -> (String, u64, Vec<u8>) {
    let Ipld::String(mailbox) = field(body, "mailbox") else {
        panic!("mailbox")
    };
    let env = field(body, "envelope");
    let Ipld::Integer(seq) = field(env, "seq") else {
        panic!("seq")
    };
    let Ipld::Bytes(payload) = field(env, "payload") else {
        panic!("payload")
    };
    (
        mailbox.clone(),
        u64::try_from(*seq).unwrap(),
        payload.clone(),
    )
}

/// The error name of an error frame body.
pub fn error_name(body: &Ipld) -> String {
    match field(body, "error") {
        Ipld::String(s) => s.clone(),
        other => panic!("error: {other:?}"),
    }
}
