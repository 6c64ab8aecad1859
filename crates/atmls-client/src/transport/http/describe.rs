//! Questions a client asks a service before it has an account there.

use std::time::Duration;

use atmls_lexicon::chat::mls::ds::describe_server;
use hyper::Method;

use super::client::XrpcClient;
use crate::error::TransportError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// `chat.mls.ds.describeServer` at `base` (a DS, or a PDS whose host also serves one),
/// without a session: lets a client check which delivery service a PDS offers before it
/// creates anything there. A body that is not the lexicon's output is
/// [`TransportError::Malformed`].
pub async fn describe_server(base: &str) -> Result<describe_server::Output, TransportError> {
    let url = format!(
        "{}/xrpc/chat.mls.ds.describeServer",
        base.trim_end_matches('/')
    );
    let value = XrpcClient::new(TIMEOUT)
        .json(Method::GET, &url, &[], None)
        .await?;
    serde_json::from_value(value)
        .map_err(|e| TransportError::Malformed(format!("describeServer: {e}")))
}
