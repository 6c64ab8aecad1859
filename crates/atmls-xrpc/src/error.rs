//! The XRPC error every failure becomes on the wire, and the errors of starting a server.

use std::borrow::Cow;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Map, Value};
use thiserror::Error;

/// An XRPC failure: an HTTP status and the body `{"error": name, "message": …}`, plus any
/// extra JSON fields the method documents (e.g. `currentEpoch` on the DS's
/// `EpochConflict`).
///
/// Handlers return it; the server also produces it for routing, validation, limit,
/// timeout, panic and shutdown failures.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{} {name}: {message}", status.as_u16())]
pub struct XrpcError {
    status: StatusCode,
    name: Cow<'static, str>,
    message: String,
    /// Boxed: most errors have none, and results stay small.
    extra: Option<Box<Map<String, Value>>>,
    /// The limit that refused the request, if one did (counted in `/metrics`, never sent).
    limit: Option<&'static str>,
}

impl XrpcError {
    /// An error with any status and name. Names are the lexicon's error names
    /// (`UpperCamelCase`, no whitespace).
    pub fn new(
        status: StatusCode,
        name: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        XrpcError {
            status,
            name: name.into(),
            message: message.into(),
            extra: None,
            limit: None,
        }
    }

    /// 400 `InvalidRequest`: the request is malformed or fails its lexicon.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    /// 400 with a method-specific error name from the lexicon's `errors` list.
    pub fn bad_request(name: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, name, message)
    }

    /// 401 `AuthRequired`: no credentials, or credentials the method does not accept.
    pub fn auth_required(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "AuthRequired", message)
    }

    /// 401 `ExpiredToken`: the token was valid but has expired. (The official PDS answers
    /// 400 with this name; `@atproto/api` refreshes its session on either.)
    pub fn expired_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "ExpiredToken", message)
    }

    /// 401 `InvalidToken`: the token is malformed, revoked or signed wrongly.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "InvalidToken", message)
    }

    /// 401 with a method-specific error name (e.g. `BadSignature`).
    pub fn unauthorized(name: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, name, message)
    }

    /// 403 with an error name: authenticated, but not allowed.
    pub fn forbidden(name: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, name, message)
    }

    /// 404 with an error name (e.g. `RecordNotFound`, `MailboxNotFound`).
    pub fn not_found(name: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, name, message)
    }

    /// 405 `InvalidRequest`: the path exists but not for this HTTP method.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "InvalidRequest", message)
    }

    /// 409 with an error name (e.g. `EpochConflict`); add fields with
    /// [`XrpcError::with_field`].
    pub fn conflict(name: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, name, message)
    }

    /// 413 `PayloadTooLarge`: the request body is larger than allowed.
    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 429 `RateLimitExceeded`.
    pub fn rate_limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "RateLimitExceeded", message)
    }

    /// 500 `InternalServerError`. The message goes to the client: keep internals out of it
    /// and log them instead.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            message,
        )
    }

    /// 501 `MethodNotImplemented`: no method of this NSID is served here.
    pub fn method_not_implemented(nsid: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "MethodNotImplemented",
            format!("method {nsid} is not implemented"),
        )
    }

    /// 503 `ServiceUnavailable`: the server is shutting down or cannot take the request.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        )
    }

    /// 504 `RequestTimeout`: the handler did not answer within the request timeout.
    pub fn timeout(after: Duration) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "RequestTimeout",
            format!(
                "the request did not complete within {} ms",
                after.as_millis()
            ),
        )
    }

    /// Adds a JSON field to the body beside `error` and `message` (which it cannot
    /// replace: those keys are ignored).
    pub fn with_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        if key != "error" && key != "message" {
            self.extra
                .get_or_insert_with(Box::default)
                .insert(key, value.into());
        }
        self
    }

    /// Names the limit that refused the request (e.g. `replay_share`): counted per limit
    /// in `/metrics` as `atmls_limit_refusals_total{limit}`; not part of the body.
    pub fn with_limit(mut self, limit: &'static str) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The limit that refused the request, if one did.
    pub fn limit(&self) -> Option<&'static str> {
        self.limit
    }

    /// The error name as a metrics label: the server's own names are static strings; a
    /// name built at run time (none today) is counted as `_other`.
    pub(crate) fn label(&self) -> &'static str {
        match &self.name {
            Cow::Borrowed(name) => name,
            Cow::Owned(_) => "_other",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error name, e.g. `InvalidRequest`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An extra field.
    pub fn field(&self, key: &str) -> Option<&Value> {
        self.extra.as_ref()?.get(key)
    }

    /// The response body: `{"error", "message", …extra}`.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.name.to_string()));
        body.insert("message".into(), Value::String(self.message.clone()));
        for (k, v) in self.extra.iter().flat_map(|m| m.iter()) {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }
}

/// A route table that cannot be served: found when the server starts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RouterError {
    /// A route's NSID is not a valid NSID.
    #[error("route {nsid:?}: {reason}")]
    InvalidNsid {
        /// The string given.
        nsid: String,
        /// Why it is not an NSID.
        reason: String,
    },
    /// Two routes have the same NSID.
    #[error("route {0} is mounted more than once")]
    Duplicate(String),
    /// A setting names a route that is not mounted.
    #[error("route {0} is not mounted")]
    NotMounted(String),
    /// The catalog has no lexicon for a route.
    #[error("route {0} has no lexicon in the catalog")]
    MissingLexicon(String),
    /// A route's kind differs from its lexicon's (e.g. a query mounted as a procedure).
    #[error("route {nsid} is mounted as a {mounted} but its lexicon defines a {defined}")]
    WrongKind {
        /// The route.
        nsid: String,
        /// How it was mounted.
        mounted: &'static str,
        /// What the lexicon defines.
        defined: &'static str,
    },
}

/// The server could not start or stopped on an error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listening socket could not be bound or read.
    #[error("cannot listen: {0}")]
    Listen(#[source] std::io::Error),
    /// The route table is inconsistent with the catalog.
    #[error(transparent)]
    Router(#[from] RouterError),
    /// The server task ended abnormally (it panicked or was cancelled).
    #[error("server task failed: {0}")]
    Task(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_has_name_message_and_fields() {
        let e = XrpcError::conflict("EpochConflict", "stale epoch")
            .with_field("currentEpoch", 7)
            .with_field("error", "ignored");
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(
            e.to_json(),
            json!({"error": "EpochConflict", "message": "stale epoch", "currentEpoch": 7})
        );
        assert_eq!(e.to_string(), "409 EpochConflict: stale epoch");
    }
}
