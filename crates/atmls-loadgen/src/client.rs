//! The HTTP/1.1 keep-alive client and the WebSocket subscriber every scenario and
//! baseline uses, and the request and answer shapes of the DS methods it calls.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use atmls_ds_proto::codec::client as codec;
use atmls_ds_proto::{MailboxId, OutgoingEnvelope};
use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::LoadgenError;

/// Upper bound of one request, connect to last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 connection kept alive across requests; reconnects when the server
/// closed it between requests (never retries a request that was sent).
#[derive(Debug)]
pub struct Conn {
    addr: SocketAddr,
    host: String,
    /// The local address connections are made from (a principal's source address in
    /// the attack suite: any `127.x.y.z` on loopback); `None`: the system's choice.
    source: Option<IpAddr>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// Connects to `addr`; requests carry `Host: host`.
    pub async fn connect(addr: SocketAddr, host: &str) -> Result<Self, LoadgenError> {
        Self::connect_from(addr, host, None).await
    }

    /// Like [`Conn::connect`], from the local address `source` (e.g. `127.0.0.2`: on
    /// loopback every `127/8` address is the machine's own, so one process can be many
    /// sources).
    pub async fn connect_from(
        addr: SocketAddr,
        host: &str,
        source: Option<IpAddr>,
    ) -> Result<Self, LoadgenError> {
        let mut conn = Self {
            addr,
            host: host.to_owned(),
            source,
            sender: None,
        };
        conn.ready().await?;
        Ok(conn)
    }

    async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, LoadgenError> {
        let usable = match self.sender.as_mut() {
            Some(s) if !s.is_closed() => s.ready().await.is_ok(),
            _ => false,
        };
        if !usable {
            let stream = tokio::time::timeout(REQUEST_TIMEOUT, tcp(self.addr, self.source))
                .await
                .map_err(|_| LoadgenError::Timeout(format!("connect to {}", self.addr)))??;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(LoadgenError::http)?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| LoadgenError::Http("no connection".into()))
    }

    /// Sends `req` and reads the whole answer.
    pub async fn request(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), LoadgenError> {
        let what = req.uri().path().to_owned();
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            let sender = self.ready().await?;
            let response = sender.send_request(req).await.map_err(LoadgenError::http)?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(LoadgenError::http)?
                .to_bytes();
            Ok((status, body))
        })
        .await
        .map_err(|_| LoadgenError::Timeout(what))?
    }

    /// `POST path` with a JSON body and an optional `Authorization` header.
    pub async fn post(
        &mut self,
        path: &str,
        body: Bytes,
        authorization: Option<&str>,
    ) -> Result<(StatusCode, Bytes), LoadgenError> {
        let mut req = Request::post(path)
            .header("host", &self.host)
            .header("content-type", "application/json");
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let req = req.body(Full::new(body)).map_err(LoadgenError::http)?;
        self.request(req).await
    }

    /// `sendEnvelopes` with a signed body: 200 and its receipt, or a typed error.
    pub async fn send_envelopes(
        &mut self,
        body: Vec<u8>,
        authorization: &str,
    ) -> Result<Receipt, LoadgenError> {
        let (status, answer) = self
            .post(
                "/xrpc/chat.mls.ds.sendEnvelopes",
                Bytes::from(body),
                Some(authorization),
            )
            .await?;
        if status != 200 {
            return Err(LoadgenError::status(
                "sendEnvelopes",
                status.as_u16(),
                &answer,
            ));
        }
        codec::send_envelopes_output(&answer).map_err(|e| bad_answer("sendEnvelopes", e))
    }

    /// `GET path_and_query` with an optional `Authorization` header.
    pub async fn get(
        &mut self,
        path_and_query: &str,
        authorization: Option<&str>,
    ) -> Result<(StatusCode, Bytes), LoadgenError> {
        let mut req = Request::get(path_and_query).header("host", &self.host);
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(LoadgenError::http)?;
        self.request(req).await
    }
}

/// The body of `sendEnvelopes` with one `message` envelope per payload, by the client
/// codec of `atmls-ds-proto` (the client signs exactly these bytes).
pub fn send_body(mailbox: &MailboxId, payloads: &[Vec<u8>]) -> Vec<u8> {
    let envelopes: Vec<OutgoingEnvelope> = payloads
        .iter()
        .map(|p| OutgoingEnvelope::message(p.clone()))
        .collect();
    codec::send_envelopes_body(mailbox, &envelopes)
}

/// The answer to `sendEnvelopes`.
pub type Receipt = atmls_ds_proto::SendReceipt;

/// The answer to `getEnvelopes`.
pub type Page = atmls_ds_proto::EnvelopePage;

/// A DS answer that does not decode.
pub fn bad_answer(what: &str, e: atmls_ds_proto::DecodeError) -> LoadgenError {
    LoadgenError::BadAnswer(format!("{what}: {e}"))
}

/// A `subscribeEnvelopes` WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// The subscriber's WebSocket read buffer. tungstenite zero-fills the whole read buffer
/// before every read attempt (snapview/tungstenite-rs#547), so its default of 128 KiB is
/// both resident per socket and a 128 KiB `memset` per poll; frames here are about
/// 1.2 KB, and a larger frame grows the buffer as needed.
pub const WS_READ_BUFFER: usize = 8 * 1024;

/// A TCP connection to `addr`, from `source` if given.
async fn tcp(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// Opens `subscribeEnvelopes?query` on `addr`.
pub async fn subscribe(addr: SocketAddr, host: &str, query: &str) -> Result<Ws, LoadgenError> {
    subscribe_from(addr, host, query, None).await
}

/// Like [`subscribe`], from the local address `source`.
pub async fn subscribe_from(
    addr: SocketAddr,
    host: &str,
    query: &str,
    source: Option<IpAddr>,
) -> Result<Ws, LoadgenError> {
    let url = format!("ws://{host}/xrpc/chat.mls.ds.subscribeEnvelopes?{query}");
    tokio::time::timeout(REQUEST_TIMEOUT, async {
        let stream = tcp(addr, source).await?;
        stream.set_nodelay(true)?;
        let config = WebSocketConfig::default().read_buffer_size(WS_READ_BUFFER);
        let (ws, _) = client_async_with_config(url, stream, Some(config))
            .await
            .map_err(|e| LoadgenError::WebSocket(format!("upgrade: {e}")))?;
        Ok(ws)
    })
    .await
    .map_err(|_| LoadgenError::Timeout("websocket upgrade".into()))?
}

/// What one frame said.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// An envelope: its seq and payload.
    Envelope {
        /// Sequence number.
        seq: u64,
        /// Payload.
        payload: Vec<u8>,
    },
    /// A heartbeat or another message type.
    Other,
}

/// The next frame of `ws`, waiting at most `wait`. An error frame or a closed stream is
/// an error.
pub async fn next_event(ws: &mut Ws, wait: Duration) -> Result<Event, LoadgenError> {
    let deadline = tokio::time::Instant::now() + wait;
    // Bounded: every iteration consumes a message, and the deadline ends the wait.
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| LoadgenError::Timeout("no frame in time".into()))?;
        let bytes = match msg {
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Text(t))) => {
                return Err(LoadgenError::WebSocket(format!("text message {t}")));
            }
            Some(Ok(Message::Close(c))) => {
                return Err(LoadgenError::WebSocket(format!("closed: {c:?}")));
            }
            Some(Err(e)) => return Err(LoadgenError::WebSocket(e.to_string())),
            None => return Err(LoadgenError::WebSocket("stream ended".into())),
        };
        return match codec::frame(&bytes).map_err(|e| bad_answer("frame", e))? {
            codec::Frame::Error(e) => Err(LoadgenError::WebSocket(format!(
                "error frame {}: {}",
                e.error,
                e.message.unwrap_or_default()
            ))),
            codec::Frame::Envelope { envelope, .. } => Ok(Event::Envelope {
                seq: envelope.seq,
                payload: envelope.payload,
            }),
            _ => Ok(Event::Other),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_body_is_the_lexicon_shape() {
        let m = MailboxId::from_bytes([1; 32]);
        let body = send_body(&m, &[b"hi".to_vec(), vec![0xff]]);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["mailbox"], m.to_string());
        assert_eq!(v["envelopes"][0]["payload"]["$bytes"], "aGk");
        assert_eq!(v["envelopes"][1]["kind"], "message");
        assert_eq!(v["envelopes"][1]["payload"]["$bytes"], "/w");
    }
}
