//! Delivery services over HTTP (signed requests, docs/spec.md §9.4, §10) and their event
//! streams over WebSocket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls_ds::auth::{DsMethod, RequestToken, subscription_content};
use atmls_ds::{
    Envelope, EnvelopeKind, MailboxId, MailboxKind, OutgoingEnvelope, SendReceipt, Timestamp,
};
use atmls_identity::{Did, DidResolver};
use ed25519_dalek::SigningKey;
use futures_util::StreamExt as _;
use hyper::Method;
use ipld_core::ipld::Ipld;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::client::{XrpcClient, bytes_of, encode, json_bytes};
use crate::error::TransportError;
use crate::transport::{
    Delivery, Ds, GatheredRecords, Page, ProvenRecord, SubscribeTo, nonce, now,
};

/// Total time for one request (and for connecting a subscription).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The DS service fragment of a DID document.
const SERVICE: &str = "chat_mls_ds";

/// Delivery services reached through their DID documents' `#chat_mls_ds` endpoint.
#[derive(Clone)]
pub struct HttpDs {
    xrpc: XrpcClient,
    resolver: Arc<dyn DidResolver>,
    endpoints: Arc<Mutex<HashMap<Did, String>>>,
    /// Roots trusted besides the webpki ones (DER).
    extra_roots: Vec<Vec<u8>>,
    /// When set, `createMailbox` goes through this PDS's `atproto-proxy`.
    proxy_via: Option<Arc<super::HttpPds>>,
}

impl std::fmt::Debug for HttpDs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDs").finish_non_exhaustive()
    }
}

impl HttpDs {
    /// A client resolving DS DIDs with `resolver`.
    pub fn new(resolver: Arc<dyn DidResolver>) -> Self {
        Self {
            xrpc: XrpcClient::new(REQUEST_TIMEOUT),
            resolver,
            endpoints: Arc::new(Mutex::new(HashMap::new())),
            extra_roots: Vec::new(),
            proxy_via: None,
        }
    }

    /// Also trusts the certificate `der` (DER) as a root for `https://` requests and
    /// `wss://` subscriptions (a private CA, or a test's self-signed certificate).
    pub fn with_root_certificate(mut self, der: &[u8]) -> Result<Self, TransportError> {
        self.extra_roots.push(der.to_vec());
        let tls = super::tls::client_config(&self.extra_roots)?;
        self.xrpc = XrpcClient::with_tls(REQUEST_TIMEOUT, tls);
        Ok(self)
    }

    /// Sends `createMailbox` through the account's PDS (`atproto-proxy:
    /// <ds-did>#chat_mls_ds`) instead of to the DS directly: the PDS mints the service-auth
    /// token itself, and the token handed to [`Ds::create_mailbox`] is not used. Every
    /// other method still goes to the DS directly (spec §13).
    pub fn with_pds_proxy(mut self, pds: Arc<super::HttpPds>) -> Self {
        self.proxy_via = Some(pds);
        self
    }

    /// Uses `endpoint` for `ds` without resolving its DID.
    pub fn with_endpoint(self, ds: Did, endpoint: &str) -> Self {
        if let Ok(mut m) = self.endpoints.lock() {
            m.insert(ds, endpoint.trim_end_matches('/').to_owned());
        }
        self
    }

    async fn endpoint(&self, ds: &Did) -> Result<String, TransportError> {
        if let Some(e) = self.endpoints.lock().ok().and_then(|m| m.get(ds).cloned()) {
            return Ok(e);
        }
        let doc = self
            .resolver
            .resolve(ds)
            .await
            .map_err(|e| TransportError::Network(e.to_string()))?;
        let endpoint = doc
            .service_endpoint(SERVICE)
            .map_err(|e| TransportError::Malformed(e.to_string()))?
            .trim_end_matches('/')
            .to_owned();
        if let Ok(mut m) = self.endpoints.lock() {
            m.insert(ds.clone(), endpoint.clone());
        }
        Ok(endpoint)
    }

    async fn signed_post(
        &self,
        ds: &Did,
        method: DsMethod,
        mailbox: &MailboxId,
        key: &SigningKey,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, TransportError> {
        let base = self.endpoint(ds).await?;
        let body = body.to_string().into_bytes();
        let auth =
            RequestToken::sign(key, method, mailbox, now(), nonce(), &body).authorization_header();
        self.xrpc
            .json(
                Method::POST,
                &format!("{base}/xrpc/{}", method.nsid()),
                &[("authorization", &auth)],
                Some(("application/json", body)),
            )
            .await
    }

    async fn signed_get(
        &self,
        ds: &Did,
        method: DsMethod,
        mailbox: &MailboxId,
        key: &SigningKey,
        query: &str,
    ) -> Result<serde_json::Value, TransportError> {
        let base = self.endpoint(ds).await?;
        let auth = RequestToken::sign(key, method, mailbox, now(), nonce(), query.as_bytes())
            .authorization_header();
        self.xrpc
            .json(
                Method::GET,
                &format!("{base}/xrpc/{}?{query}", method.nsid()),
                &[("authorization", &auth)],
                None,
            )
            .await
    }
}

fn kind_of(s: &str) -> Result<EnvelopeKind, TransportError> {
    s.parse()
        .map_err(|_| TransportError::Malformed(format!("envelope kind {s}")))
}

fn timestamp(datetime: &str) -> Timestamp {
    let ms = chrono::DateTime::parse_from_rfc3339(datetime)
        .map(|t| t.timestamp_millis())
        .unwrap_or_default();
    Timestamp::from_millis(u64::try_from(ms).unwrap_or_default())
}

fn envelope_of_json(v: &serde_json::Value) -> Result<Envelope, TransportError> {
    Ok(Envelope {
        seq: v["seq"]
            .as_u64()
            .ok_or_else(|| TransportError::Malformed("envelope without seq".into()))?,
        kind: kind_of(v["kind"].as_str().unwrap_or_default())?,
        epoch: v["epoch"].as_u64(),
        payload: bytes_of(&v["payload"])?,
        received_at: timestamp(v["receivedAt"].as_str().unwrap_or_default()),
    })
}

fn envelope_of_ipld(v: &Ipld) -> Result<Envelope, TransportError> {
    let Ipld::Map(m) = v else {
        return Err(TransportError::Malformed("envelope is not a map".into()));
    };
    let int = |k: &str| match m.get(k) {
        Some(Ipld::Integer(i)) => u64::try_from(*i).ok(),
        _ => None,
    };
    let text = |k: &str| match m.get(k) {
        Some(Ipld::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let Some(Ipld::Bytes(payload)) = m.get("payload") else {
        return Err(TransportError::Malformed("envelope without payload".into()));
    };
    Ok(Envelope {
        seq: int("seq").ok_or_else(|| TransportError::Malformed("envelope without seq".into()))?,
        kind: kind_of(text("kind").unwrap_or_default())?,
        epoch: int("epoch"),
        payload: payload.clone(),
        received_at: timestamp(text("receivedAt").unwrap_or_default()),
    })
}

fn page_of(v: &serde_json::Value, field: &str, cursor: u64) -> Result<Page, TransportError> {
    let envelopes = v[field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(envelope_of_json)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let cursor = v["cursor"].as_u64().unwrap_or(cursor);
    // `epoch` is present only for the current epoch's key (an ended epoch's `headSeq` is
    // the commit that ended it, with more to read after it under the next key).
    let at_head = v["epoch"].is_u64() && v["headSeq"].as_u64().is_some_and(|h| cursor >= h);
    Ok(Page {
        cursor,
        envelopes,
        at_head,
    })
}

impl Ds for HttpDs {
    async fn create_mailbox(
        &self,
        ds: &Did,
        token: &str,
        kind: MailboxKind,
        key: [u8; 32],
        epoch: u64,
    ) -> Result<MailboxId, TransportError> {
        let mut body = serde_json::json!({ "kind": kind.as_str(), "key": json_bytes(&key) });
        if kind == MailboxKind::Group {
            body["epoch"] = epoch.into();
        }
        let v = if let Some(pds) = &self.proxy_via {
            let proxy = format!("{ds}#{SERVICE}");
            pds.proxied_procedure(&proxy, "chat.mls.ds.createMailbox", &body)
                .await?
        } else {
            let base = self.endpoint(ds).await?;
            self.xrpc
                .json(
                    Method::POST,
                    &format!("{base}/xrpc/chat.mls.ds.createMailbox"),
                    &[("authorization", &format!("Bearer {token}"))],
                    Some(("application/json", body.to_string().into_bytes())),
                )
                .await?
        };
        v["mailbox"]
            .as_str()
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| TransportError::Malformed("createMailbox answer without mailbox".into()))
    }

    async fn send_envelopes(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> Result<SendReceipt, TransportError> {
        let list: Vec<serde_json::Value> = envelopes
            .iter()
            .map(|e| {
                let mut v = serde_json::json!({ "kind": e.kind.as_str(), "payload": json_bytes(&e.payload) });
                if let Some(epoch) = e.epoch {
                    v["epoch"] = epoch.into();
                }
                if let Some(k) = &e.next_key {
                    v["nextKey"] = json_bytes(k);
                }
                v
            })
            .collect();
        let body = serde_json::json!({ "mailbox": mailbox.to_string(), "envelopes": list });
        let v = self
            .signed_post(ds, DsMethod::SendEnvelopes, mailbox, key, body)
            .await?;
        match (
            v["firstSeq"].as_u64(),
            v["lastSeq"].as_u64(),
            v["epoch"].as_u64(),
        ) {
            (Some(first_seq), Some(last_seq), Some(epoch)) => Ok(SendReceipt {
                first_seq,
                last_seq,
                epoch,
            }),
            _ => Err(TransportError::Malformed("sendEnvelopes answer".into())),
        }
    }

    async fn envelopes(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> Result<Page, TransportError> {
        let query = format!("mailbox={mailbox}&cursor={cursor}&limit=1000");
        let v = self
            .signed_get(ds, DsMethod::GetEnvelopes, mailbox, key, &query)
            .await?;
        page_of(&v, "envelopes", cursor)
    }

    async fn key_packages(
        &self,
        ds: &Did,
        dids: &[Did],
    ) -> Result<Vec<GatheredRecords>, TransportError> {
        let base = self.endpoint(ds).await?;
        let query: Vec<String> = dids
            .iter()
            .map(|d| format!("dids={}", encode(d.as_str())))
            .collect();
        let v = self
            .xrpc
            .json(
                Method::GET,
                &format!("{base}/xrpc/chat.mls.ds.getKeyPackages?{}", query.join("&")),
                &[],
                None,
            )
            .await?;
        let malformed = |what: &str| TransportError::Malformed(format!("getKeyPackages: {what}"));
        let proven = |r: &serde_json::Value| -> Result<ProvenRecord, TransportError> {
            Ok(ProvenRecord {
                uri: r["uri"]
                    .as_str()
                    .ok_or_else(|| malformed("uri"))?
                    .to_owned(),
                proof: bytes_of(&r["proof"])?,
            })
        };
        let mut out = Vec::new();
        for r in v["results"]
            .as_array()
            .ok_or_else(|| malformed("results"))?
        {
            let did = r["did"].as_str().ok_or_else(|| malformed("did"))?;
            out.push(GatheredRecords {
                did: Did::new(did).map_err(|_| malformed("did"))?,
                status: r["status"].as_str().unwrap_or_default().to_owned(),
                declaration: match &r["declaration"] {
                    serde_json::Value::Null => None,
                    d => Some(proven(d)?),
                },
                key_packages: r["keyPackages"]
                    .as_array()
                    .map(|a| a.iter().map(proven).collect::<Result<Vec<_>, _>>())
                    .transpose()?
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }

    async fn send_welcome(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        payload: Vec<u8>,
    ) -> Result<u64, TransportError> {
        let base = self.endpoint(ds).await?;
        let body =
            serde_json::json!({ "inbox": inbox.to_string(), "payload": json_bytes(&payload) });
        let v = self
            .xrpc
            .json(
                Method::POST,
                &format!("{base}/xrpc/chat.mls.ds.sendWelcome"),
                &[],
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await?;
        v["seq"]
            .as_u64()
            .ok_or_else(|| TransportError::Malformed("sendWelcome answer".into()))
    }

    async fn list_inbox(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> Result<Page, TransportError> {
        let query = format!("inbox={inbox}&cursor={cursor}&limit=1000");
        let v = self
            .signed_get(ds, DsMethod::ListInbox, inbox, key, &query)
            .await?;
        page_of(&v, "items", cursor)
    }

    async fn delete_inbox_items(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        seqs: Vec<u64>,
    ) -> Result<(), TransportError> {
        let body = serde_json::json!({ "inbox": inbox.to_string(), "seqs": seqs });
        self.signed_post(ds, DsMethod::DeleteInboxItems, inbox, key, body)
            .await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        ds: &Did,
        mailboxes: Vec<SubscribeTo>,
    ) -> Result<mpsc::UnboundedReceiver<Delivery>, TransportError> {
        let base = self.endpoint(ds).await?;
        let mut query: Vec<String> = mailboxes
            .iter()
            .map(|m| format!("mailbox={}", m.mailbox))
            .collect();
        query.extend(mailboxes.iter().map(|m| format!("cursor={}", m.cursor)));
        let content = subscription_content(&query.join("&"));
        for m in &mailboxes {
            let token = RequestToken::sign(
                &m.key,
                DsMethod::SubscribeEnvelopes,
                &m.mailbox,
                now(),
                nonce(),
                content.as_bytes(),
            );
            query.push(format!("auth={}", encode(&token.encode())));
        }
        let (secure, rest) = if let Some(rest) = base.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = base.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(TransportError::Network(format!(
                "{base}: not an http(s) endpoint"
            )));
        };
        let host = rest.split('/').next().unwrap_or(rest).to_owned();
        let url = format!(
            "{}://{host}/xrpc/chat.mls.ds.subscribeEnvelopes?{}",
            if secure { "wss" } else { "ws" },
            query.join("&")
        );
        let connect = async {
            let port = if host
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                host.clone()
            } else if secure {
                format!("{host}:443")
            } else {
                format!("{host}:80")
            };
            let tcp = super::client::connect_tcp(&port).await?;
            let ws_error =
                |e: tokio_tungstenite::tungstenite::Error| TransportError::Network(e.to_string());
            let (tx, rx) = mpsc::unbounded_channel();
            if secure {
                let tls = Arc::new(super::tls::client_config(&self.extra_roots)?);
                let stream = super::tls::connect(tls, &host, tcp).await?;
                let (socket, _) = tokio_tungstenite::client_async(url, stream)
                    .await
                    .map_err(ws_error)?;
                tokio::spawn(pump(socket, tx));
            } else {
                let (socket, _) = tokio_tungstenite::client_async(url, tcp)
                    .await
                    .map_err(ws_error)?;
                tokio::spawn(pump(socket, tx));
            }
            Ok::<_, TransportError>(rx)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, connect)
            .await
            .map_err(|_| TransportError::Network("subscription connect timed out".into()))?
    }
}

/// Forwards a subscription's frames as deliveries until it ends.
async fn pump<S>(
    mut socket: tokio_tungstenite::WebSocketStream<S>,
    tx: mpsc::UnboundedSender<Delivery>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut end = None;
    while let Some(frame) = socket.next().await {
        let bytes = match frame {
            Ok(WsMessage::Binary(b)) => b,
            Ok(WsMessage::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        match decode_frame(&bytes) {
            Ok(Some(d)) => {
                if tx.send(d).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(name) => {
                end = Some(name);
                break;
            }
        }
    }
    let _ = tx.send(Delivery::Closed(end));
}

/// One frame: `Ok(Some)` an envelope, `Ok(None)` a heartbeat or info, `Err` an error
/// frame's name (or a malformed frame).
fn decode_frame(bytes: &[u8]) -> Result<Option<Delivery>, String> {
    let mut reader = bytes;
    let header: Ipld = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
        .map_err(|e| format!("malformed frame: {e}"))?;
    let body: Ipld = serde_ipld_dagcbor::de::from_reader_once(&mut reader)
        .map_err(|e| format!("malformed frame: {e}"))?;
    let Ipld::Map(h) = header else {
        return Err("malformed frame header".into());
    };
    match (h.get("op"), h.get("t")) {
        (Some(Ipld::Integer(1)), Some(Ipld::String(t))) if t == "#envelope" => {
            let Ipld::Map(b) = &body else {
                return Err("malformed envelope frame".into());
            };
            let mailbox = match b.get("mailbox") {
                Some(Ipld::String(m)) => m.parse::<MailboxId>().map_err(|e| e.to_string())?,
                _ => return Err("envelope frame without mailbox".into()),
            };
            let envelope = b
                .get("envelope")
                .ok_or("envelope frame without envelope")
                .map_err(str::to_owned)
                .and_then(|e| envelope_of_ipld(e).map_err(|e| e.to_string()))?;
            Ok(Some(Delivery::Envelope { mailbox, envelope }))
        }
        (Some(Ipld::Integer(1)), _) => Ok(None),
        _ => match body {
            Ipld::Map(b) => match b.get("error") {
                Some(Ipld::String(name)) => Err(name.clone()),
                _ => Err("error frame".into()),
            },
            _ => Err("error frame".into()),
        },
    }
}
