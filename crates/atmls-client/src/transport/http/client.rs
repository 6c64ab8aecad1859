//! A small XRPC client: JSON in and out, typed errors, a total timeout per request.

use std::time::Duration;

use atmls_net::{AddressPolicy, HttpClient, OutboundConfig};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request, StatusCode};

use atmls_ds_proto::ErrorBody;

use crate::error::TransportError;

/// Largest response body read (blobs included).
const MAX_BODY: usize = 64 << 20;

/// Where a client may connect: public addresses and this machine's loopback (the user's
/// own development host), never private, link-local or metadata addresses a DID document
/// could point it at (`atmls_net`).
const CLIENT_POLICY: AddressPolicy = AddressPolicy::development();

#[derive(Clone, Debug)]
pub(crate) struct XrpcClient {
    client: HttpClient<Full<Bytes>>,
    timeout: Duration,
}

/// A response: status, content type, body.
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl XrpcClient {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self::with_config(timeout, OutboundConfig::new())
    }

    /// A client whose HTTPS connections trust what `tls` trusts.
    pub(crate) fn with_tls(timeout: Duration, tls: rustls::ClientConfig) -> Self {
        Self::with_config(timeout, OutboundConfig::new().with_tls(tls))
    }

    fn with_config(timeout: Duration, config: OutboundConfig) -> Self {
        Self {
            client: config
                .with_policy(CLIENT_POLICY)
                .with_connect_timeout(timeout)
                .client(),
            timeout,
        }
    }

    /// Sends a request; non-2xx answers become [`TransportError`]s.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, TransportError> {
        let mut builder = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                builder = builder.header("content-type", content_type);
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder
            .body(body)
            .map_err(|e| TransportError::Network(e.to_string()))?;
        let fut = async {
            let response = self.client.request(request).await.map_err(|e| {
                if atmls_net::is_refused(&e) {
                    // A non-public address: the same answer every time, whatever the port,
                    // so the failure is permanent (spec §11.14).
                    TransportError::Unresolvable("destination refused".into())
                } else {
                    TransportError::Network(e.to_string())
                }
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    // An answer over the limit is refused for good, not retried.
                    if e.is::<http_body_util::LengthLimitError>() {
                        TransportError::Malformed(format!("answer larger than {MAX_BODY} bytes"))
                    } else {
                        TransportError::Network(e.to_string())
                    }
                })?
                .to_bytes();
            Ok::<_, TransportError>(Response { status, body })
        };
        let response = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| TransportError::Network(format!("{url}: timed out")))??;
        if response.status.is_success() {
            return Ok(response);
        }
        Err(error_of(response.status, &response.body))
    }

    /// Sends and parses a JSON answer.
    pub(crate) async fn json(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<serde_json::Value, TransportError> {
        let r = self.send(method, url, headers, body).await?;
        serde_json::from_slice(&r.body).map_err(|e| TransportError::Malformed(e.to_string()))
    }
}

/// A TCP connection to `authority` (`host:port`, `[v6]:port`) under the client's address
/// policy, for the WebSocket subscriptions.
pub(crate) async fn connect_tcp(authority: &str) -> Result<tokio::net::TcpStream, TransportError> {
    let (host, port) = authority
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| TransportError::Network(format!("{authority}: no port")))?;
    atmls_net::connect_tcp(CLIENT_POLICY, host, port)
        .await
        .map_err(|e| TransportError::Network(e.to_string()))
}

/// The typed error of an XRPC failure body (decoded by `atmls-ds-proto`). A body that is
/// not an XRPC error is named by its HTTP status; an `EpochConflict` without its
/// `currentEpoch` and `currentSeq` is malformed.
fn error_of(status: StatusCode, body: &[u8]) -> TransportError {
    let fallback = || status.canonical_reason().unwrap_or("HttpError").to_owned();
    match atmls_ds_proto::codec::client::error_body(body) {
        Err(e) => TransportError::Malformed(format!("{status} error answer: {e}")),
        Ok(Some(ErrorBody {
            conflict: Some(c), ..
        })) => TransportError::EpochConflict {
            current_epoch: c.current_epoch,
            current_seq: c.current_seq,
        },
        Ok(Some(body)) => TransportError::Xrpc {
            status: status.as_u16(),
            error: if body.error.is_empty() {
                fallback()
            } else {
                body.error
            },
            message: body.message.unwrap_or_default(),
        },
        Ok(None) => TransportError::Xrpc {
            status: status.as_u16(),
            error: fallback(),
            message: String::new(),
        },
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DID document can point a client anywhere: private, link-local and metadata
    /// addresses are refused before connecting, with one message whatever the address.
    #[tokio::test]
    async fn non_public_destinations_are_refused() {
        let client = XrpcClient::new(Duration::from_secs(5));
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1:2583/xrpc/com.atproto.sync.getRecord",
            "http://[fd00:ec2::254]/",
            "https://192.168.1.1/",
        ] {
            let Err(err) = client.send(Method::GET, url, &[], None).await else {
                panic!("{url} was reached");
            };
            assert!(
                matches!(&err, TransportError::Unresolvable(m) if m == "destination refused")
                    && !err.is_transient(),
                "{url}: {err}"
            );
        }
    }
}
