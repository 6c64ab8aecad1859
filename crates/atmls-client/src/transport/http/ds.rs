//! Delivery services over HTTP (signed requests, docs/spec.md §9.4, §10) and their event
//! streams over WebSocket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls_ds_proto::codec::client as codec;
use atmls_ds_proto::token::subscription_content;
use atmls_ds_proto::{
    DecodeError, DsMethod, MailboxId, MailboxKind, OutgoingEnvelope, RequestToken, SendReceipt,
};
use atmls_identity::{Did, DidResolver};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use futures_util::StreamExt as _;
use hyper::Method;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::client::{XrpcClient, encode};
use crate::error::TransportError;
use crate::transport::{Delivery, Ds, GatheredRecords, Page, SubscribeTo, nonce, now};

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
        // A DS whose DID is tombstoned (410) or does not exist is a permanent failure,
        // never retried as unreachable (§11.14).
        let doc = self
            .resolver
            .resolve(ds)
            .await
            .map_err(crate::transport::resolve_failure)?;
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
        body: Vec<u8>,
    ) -> Result<Bytes, TransportError> {
        let base = self.endpoint(ds).await?;
        let auth =
            RequestToken::sign(key, method, mailbox, now(), nonce(), &body).authorization_header();
        let r = self
            .xrpc
            .send(
                Method::POST,
                &format!("{base}/xrpc/{}", method.nsid()),
                &[("authorization", &auth)],
                Some(("application/json", body)),
            )
            .await?;
        Ok(r.body)
    }

    async fn signed_get(
        &self,
        ds: &Did,
        method: DsMethod,
        mailbox: &MailboxId,
        key: &SigningKey,
        query: &str,
    ) -> Result<Bytes, TransportError> {
        let base = self.endpoint(ds).await?;
        let auth = RequestToken::sign(key, method, mailbox, now(), nonce(), query.as_bytes())
            .authorization_header();
        let r = self
            .xrpc
            .send(
                Method::GET,
                &format!("{base}/xrpc/{}?{query}", method.nsid()),
                &[("authorization", &auth)],
                None,
            )
            .await?;
        Ok(r.body)
    }
}

/// A DS answer that does not decode: malformed, refused for good (never a default).
fn malformed(e: DecodeError) -> TransportError {
    TransportError::Malformed(e.to_string())
}

impl Ds for HttpDs {
    async fn describe(&self, ds: &Did) -> Result<atmls_ds_proto::Limits, TransportError> {
        let base = self.endpoint(ds).await?;
        let answer = self
            .xrpc
            .send(
                Method::GET,
                &format!("{base}/xrpc/chat.mls.ds.describeServer"),
                &[],
                None,
            )
            .await?;
        let description = codec::describe_server_output(&answer.body).map_err(malformed)?;
        if description.did != ds.as_str() {
            return Err(TransportError::Malformed(
                "describeServer names another DID".into(),
            ));
        }
        Ok(description.limits)
    }

    async fn create_mailbox(
        &self,
        ds: &Did,
        token: &str,
        kind: MailboxKind,
        key: [u8; 32],
        epoch: u64,
    ) -> Result<MailboxId, TransportError> {
        let body = codec::create_mailbox_body(kind, &key, epoch);
        let answer = if let Some(pds) = &self.proxy_via {
            let proxy = format!("{ds}#{SERVICE}");
            pds.proxied_procedure_bytes(&proxy, "chat.mls.ds.createMailbox", body)
                .await?
        } else {
            let base = self.endpoint(ds).await?;
            self.xrpc
                .send(
                    Method::POST,
                    &format!("{base}/xrpc/chat.mls.ds.createMailbox"),
                    &[("authorization", &format!("Bearer {token}"))],
                    Some(("application/json", body)),
                )
                .await?
                .body
        };
        Ok(codec::create_mailbox_output(&answer)
            .map_err(malformed)?
            .mailbox)
    }

    async fn send_envelopes(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> Result<SendReceipt, TransportError> {
        let body = codec::send_envelopes_body(mailbox, &envelopes);
        let answer = self
            .signed_post(ds, DsMethod::SendEnvelopes, mailbox, key, body)
            .await?;
        codec::send_envelopes_output(&answer).map_err(malformed)
    }

    async fn envelopes(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> Result<Page, TransportError> {
        let query = format!("mailbox={mailbox}&cursor={cursor}&limit=1000");
        let answer = self
            .signed_get(ds, DsMethod::GetEnvelopes, mailbox, key, &query)
            .await?;
        let page = codec::get_envelopes_output(&answer).map_err(malformed)?;
        Ok(Page {
            at_head: page.at_head(),
            cursor: page.cursor,
            envelopes: page.envelopes,
        })
    }

    async fn mailbox_info(
        &self,
        ds: &Did,
        mailbox: &MailboxId,
        key: &SigningKey,
    ) -> Result<atmls_ds_proto::MailboxInfo, TransportError> {
        let query = format!("mailbox={mailbox}");
        let answer = self
            .signed_get(ds, DsMethod::GetMailbox, mailbox, key, &query)
            .await?;
        codec::get_mailbox_output(&answer).map_err(malformed)
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
        let answer = self
            .xrpc
            .send(
                Method::GET,
                &format!("{base}/xrpc/chat.mls.ds.getKeyPackages?{}", query.join("&")),
                &[],
                None,
            )
            .await?;
        codec::get_key_packages_output(&answer.body)
            .map_err(malformed)?
            .into_iter()
            .map(|r| {
                Ok(GatheredRecords {
                    did: Did::new(r.did).map_err(|_| {
                        TransportError::Malformed("getKeyPackages: did is not a DID".into())
                    })?,
                    status: r.status,
                    declaration: r.declaration,
                    key_packages: r.key_packages,
                })
            })
            .collect()
    }

    async fn send_welcome(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        payload: Vec<u8>,
    ) -> Result<u64, TransportError> {
        let base = self.endpoint(ds).await?;
        let body = codec::send_welcome_body(inbox, &payload);
        let answer = self
            .xrpc
            .send(
                Method::POST,
                &format!("{base}/xrpc/chat.mls.ds.sendWelcome"),
                &[],
                Some(("application/json", body)),
            )
            .await?;
        codec::send_welcome_output(&answer.body).map_err(malformed)
    }

    async fn list_inbox(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        cursor: u64,
    ) -> Result<Page, TransportError> {
        let query = format!("inbox={inbox}&cursor={cursor}&limit=1000");
        let answer = self
            .signed_get(ds, DsMethod::ListInbox, inbox, key, &query)
            .await?;
        let page = codec::list_inbox_output(&answer).map_err(malformed)?;
        Ok(Page {
            envelopes: page.items,
            cursor: page.cursor,
            at_head: false,
        })
    }

    async fn delete_inbox_items(
        &self,
        ds: &Did,
        inbox: &MailboxId,
        key: &SigningKey,
        seqs: Vec<u64>,
    ) -> Result<(), TransportError> {
        let body = codec::delete_inbox_items_body(inbox, &seqs);
        let answer = self
            .signed_post(ds, DsMethod::DeleteInboxItems, inbox, key, body)
            .await?;
        codec::delete_inbox_items_output(&answer).map_err(malformed)?;
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
/// frame's name (or why the frame is malformed).
fn decode_frame(bytes: &[u8]) -> Result<Option<Delivery>, String> {
    match codec::frame(bytes) {
        Ok(codec::Frame::Envelope { mailbox, envelope }) => {
            Ok(Some(Delivery::Envelope { mailbox, envelope }))
        }
        Ok(codec::Frame::Error(e)) => Err(e.error),
        Ok(_) => Ok(None),
        Err(e) => Err(format!("malformed frame: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use atmls_identity::ResolveError;
    use atmls_identity::resolve::ResolveFuture;

    use super::*;

    /// A resolver whose every answer is `how`.
    struct Answers(ResolveError);

    impl DidResolver for Answers {
        fn resolve<'a>(&'a self, _did: &'a Did) -> ResolveFuture<'a> {
            let e = self.0.clone();
            Box::pin(async move { Err(e) })
        }
    }

    /// A DS whose DID is tombstoned (410) is a permanent failure; one whose directory
    /// times out is transient. (Before: every resolution failure of a DS DID was
    /// `Network`, transient, retried for good.)
    #[tokio::test]
    async fn a_tombstoned_ds_did_is_permanent() {
        let ds = Did::new("did:web:ds.example.com").unwrap();
        for (e, transient) in [(ResolveError::Gone, false), (ResolveError::Timeout, true)] {
            let client = HttpDs::new(Arc::new(Answers(e.clone())));
            let err = client.describe(&ds).await.unwrap_err();
            assert_eq!(err.is_transient(), transient, "{e:?}: {err:?}");
        }
    }
}
