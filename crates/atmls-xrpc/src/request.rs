//! What a handler is given (the request context) and what it returns.

use std::net::SocketAddr;

use atmls_lexicon::syntax::Nsid;
use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::XrpcError;

/// One XRPC call as a handler sees it: the route's NSID, the query parameters validated
/// against the lexicon, the raw body and (for JSON inputs) the parsed and validated body,
/// the headers and the peer's address.
#[derive(Debug, Clone)]
pub struct XrpcRequest {
    nsid: Nsid,
    method: Method,
    params: Map<String, Value>,
    query: String,
    body: Bytes,
    input: Option<Value>,
    headers: HeaderMap,
    remote_addr: SocketAddr,
}

impl XrpcRequest {
    /// A request built by hand, for testing a handler without a server. `input` is the
    /// JSON body (serialized into [`XrpcRequest::body`] too).
    pub fn new(
        nsid: Nsid,
        params: Map<String, Value>,
        input: Option<Value>,
        headers: HeaderMap,
        remote_addr: SocketAddr,
    ) -> Self {
        let body = input
            .as_ref()
            .map(|v| Bytes::from(v.to_string()))
            .unwrap_or_default();
        let method = if input.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        XrpcRequest {
            nsid,
            method,
            params,
            query: String::new(),
            body,
            input,
            headers,
            remote_addr,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        nsid: Nsid,
        method: Method,
        params: Map<String, Value>,
        query: String,
        body: Bytes,
        input: Option<Value>,
        headers: HeaderMap,
        remote_addr: SocketAddr,
    ) -> Self {
        XrpcRequest {
            nsid,
            method,
            params,
            query,
            body,
            input,
            headers,
            remote_addr,
        }
    }

    /// The NSID of the route.
    pub fn nsid(&self) -> &Nsid {
        &self.nsid
    }

    /// The HTTP method (`GET` for queries and subscriptions, `POST` for procedures).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The query parameters as JSON values, typed by the lexicon (integers as numbers,
    /// booleans as booleans, repeated parameters as arrays) and validated. Undeclared
    /// parameters are kept as strings. For a [`Router::proxy`](crate::Router::proxy)
    /// handler they are all strings and unvalidated.
    pub fn params(&self) -> &Map<String, Value> {
        &self.params
    }

    /// A string parameter.
    pub fn param_str(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    /// An integer parameter.
    pub fn param_i64(&self, name: &str) -> Option<i64> {
        self.params.get(name).and_then(Value::as_i64)
    }

    /// A boolean parameter.
    pub fn param_bool(&self, name: &str) -> Option<bool> {
        self.params.get(name).and_then(Value::as_bool)
    }

    /// The raw query string (without `?`), e.g. for forwarding a request.
    pub fn query_string(&self) -> &str {
        &self.query
    }

    /// The raw request body (empty for queries).
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The parsed JSON body, when the lexicon's input encoding is `application/json`.
    pub fn input(&self) -> Option<&Value> {
        self.input.as_ref()
    }

    /// The JSON body deserialized into `T`; `InvalidRequest` if there is none or it does
    /// not fit `T`.
    pub fn input_as<T: DeserializeOwned>(&self) -> Result<T, XrpcError> {
        let input = self
            .input
            .as_ref()
            .ok_or_else(|| XrpcError::invalid_request("a JSON request body is required"))?;
        T::deserialize(input).map_err(|e| XrpcError::invalid_request(format!("input: {e}")))
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// One header as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
            .filter(|t| !t.is_empty())
    }

    /// The `Content-Type` header, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }
}

/// A request to a path outside `/xrpc/`, given to the [`Router::fallback`](crate::Router::fallback)
/// handler (e.g. `/.well-known/did.json`, or a DID directory's `/:did`). The body is read
/// under the same size limit as XRPC bodies.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) remote_addr: SocketAddr,
}

impl HttpRequest {
    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, still percent-encoded, e.g. `/did:plc:abc`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string (without `?`).
    pub fn query_string(&self) -> &str {
        &self.query
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The raw body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote_addr
    }
}

/// What a handler answers: a status (200 unless set), headers and a body.
#[derive(Debug, Clone)]
pub struct XrpcResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: ResponseBody,
}

/// The body of an [`XrpcResponse`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ResponseBody {
    /// A JSON value (validated against the lexicon's output when output validation is on).
    Json(Value),
    /// Bytes of a given content type (CAR files, blobs, CBOR).
    Bytes {
        /// The `Content-Type`.
        content_type: HeaderValue,
        /// The bytes.
        bytes: Bytes,
    },
    /// No body.
    Empty,
}

impl XrpcResponse {
    /// 200 with a JSON body.
    pub fn json(value: Value) -> Self {
        Self::with_body(ResponseBody::Json(value))
    }

    /// 200 with `value` serialized as JSON.
    pub fn json_from<T: Serialize + ?Sized>(value: &T) -> Result<Self, XrpcError> {
        let value = serde_json::to_value(value)
            .map_err(|e| XrpcError::internal(format!("cannot serialize the response: {e}")))?;
        Ok(Self::json(value))
    }

    /// 200 with bytes of `content_type` (e.g. `application/vnd.ipld.car`). An invalid
    /// content type becomes `application/octet-stream`.
    pub fn bytes(content_type: &str, bytes: impl Into<Bytes>) -> Self {
        let content_type = HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        Self::with_body(ResponseBody::Bytes {
            content_type,
            bytes: bytes.into(),
        })
    }

    /// 200 with no body (procedures without output).
    pub fn empty() -> Self {
        Self::with_body(ResponseBody::Empty)
    }

    fn with_body(body: ResponseBody) -> Self {
        XrpcResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body,
        }
    }

    /// Sets the status (for fallback routes; XRPC successes are 200).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a header. `Content-Type` is set from the body and cannot be overridden here.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        if name != CONTENT_TYPE {
            self.headers.append(name, value);
        }
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &ResponseBody {
        &self.body
    }
}
