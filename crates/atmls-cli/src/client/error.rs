//! What the client commands report when they fail: one human sentence and a typed name,
//! e.g. `error: bob.test has no published KeyPackages (NoKeyPackages)`.

use atmls_client::{Error, TransportError};

/// A failed client command.
#[derive(Debug)]
pub(crate) struct CliError {
    /// The typed name scripts dispatch on.
    pub(crate) name: &'static str,
    /// One sentence for a person.
    pub(crate) message: String,
}

impl CliError {
    pub(crate) fn new(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
        }
    }

    /// Replaces DIDs in the message by the handles the person typed.
    pub(crate) fn with_names(mut self, names: &[(String, String)]) -> Self {
        for (did, handle) in names {
            self.message = self.message.replace(did.as_str(), handle);
        }
        self
    }

    /// The JSON form: `{"error": Name, "message": …}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.name, "message": self.message })
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.name)
    }
}

impl From<TransportError> for CliError {
    fn from(e: TransportError) -> Self {
        match &e {
            TransportError::Xrpc { error, message, .. } => Self {
                name: known_name(error),
                message: if message.is_empty() {
                    format!("the service answered {error}")
                } else {
                    message.clone()
                },
            },
            TransportError::EpochConflict { .. } => Self::new("EpochConflict", e.to_string()),
            TransportError::Network(m) => {
                Self::new("NetworkError", format!("cannot reach the service: {m}"))
            }
            TransportError::Malformed(m) => Self::new(
                "MalformedAnswer",
                format!("the service answered something unexpected: {m}"),
            ),
            _ => Self::new("TransportError", e.to_string()),
        }
    }
}

/// XRPC error names are open-ended; the ones a person meets here keep their name,
/// others are reported as `XrpcError` with the service's text.
fn known_name(error: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "AuthenticationRequired",
        "AuthFactorTokenRequired",
        "AccountTakedown",
        "ExpiredToken",
        "InvalidToken",
        "InvalidRequest",
        "InvalidHandle",
        "InvalidPassword",
        "HandleNotAvailable",
        "UnsupportedDomain",
        "RecordNotFound",
        "RepoNotFound",
        "MailboxNotFound",
        "RateLimitExceeded",
        "ServiceUnavailable",
        "PayloadTooLarge",
        "MethodNotImplemented",
        "NotFound",
    ];
    KNOWN
        .iter()
        .find(|k| **k == error)
        .copied()
        .unwrap_or("XrpcError")
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let name = match e {
            Error::Transport(t) => return t.into(),
            Error::Store(atmls_client::StoreError::WrongKey) => "WrongPassphrase",
            Error::Store(atmls_client::StoreError::Key(_)) => "PassphraseError",
            Error::Store(_) => "DeviceStoreError",
            Error::KeyPackageRefused { .. } => "KeyPackageRefused",
            Error::NoDeclaration(did) => {
                return Self::new(
                    "NoDeclaration",
                    format!(
                        "{did} has not published a chat.mls declaration, so it cannot be invited"
                    ),
                );
            }
            Error::InviteRefused { .. } => "InviteRefused",
            Error::NoKeyPackage { did, last } => {
                let why = last
                    .map(|r| format!(" (last refusal: {r})"))
                    .unwrap_or_default();
                return Self::new(
                    "NoKeyPackages",
                    format!("{did} has no published KeyPackages that verify{why}"),
                );
            }
            Error::NotAdmin => "NotAdmin",
            Error::UnknownGroup => "UnknownGroup",
            Error::NotMember => "NotMember",
            Error::NotAMember(_) => "NotAMember",
            Error::RetriesExhausted(_) => "RetriesExhausted",
            Error::Mls { .. } => "MlsError",
            Error::Content(_) => "ContentError",
            Error::Attachment(_) => "AttachmentError",
            Error::Protocol(_) => "ProtocolError",
            Error::Queued { .. } => "Queued",
            Error::MessageLifetime(_) => "BadLifetime",
            Error::SuiteMissing { .. } => "SuiteMissing",
            Error::NoSuite(_) => "NoSuite",
            _ => "ClientError",
        };
        Self { name, message }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new("IoError", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sentences() {
        let did = atmls_client::Did::new("did:plc:abcdefghijklmnopqrstuvwx").unwrap();
        let e = CliError::from(Error::NoKeyPackage {
            did: did.clone(),
            last: None,
        })
        .with_names(&[(did.to_string(), "bob.test".into())]);
        assert_eq!(
            e.to_string(),
            "bob.test has no published KeyPackages that verify (NoKeyPackages)"
        );
        let e = CliError::from(TransportError::Xrpc {
            status: 401,
            error: "AuthenticationRequired".into(),
            message: "bad password".into(),
        });
        assert_eq!(e.name, "AuthenticationRequired");
        let e = CliError::from(TransportError::Xrpc {
            status: 400,
            error: "SomethingNew".into(),
            message: String::new(),
        });
        assert_eq!(
            e.to_string(),
            "the service answered SomethingNew (XrpcError)"
        );
    }
}
