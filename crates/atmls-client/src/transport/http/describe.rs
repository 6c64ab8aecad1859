//! Questions a client asks a service before it has an account there.

use std::time::Duration;

use hyper::Method;

use super::client::XrpcClient;
use crate::error::TransportError;

const TIMEOUT: Duration = Duration::from_secs(30);

/// `chat.mls.ds.describeServer` at `base` (a DS, or a PDS whose host also serves one),
/// without a session: lets a client check which delivery service a PDS offers before it
/// creates anything there.
pub async fn describe_server(base: &str) -> Result<serde_json::Value, TransportError> {
    let url = format!(
        "{}/xrpc/chat.mls.ds.describeServer",
        base.trim_end_matches('/')
    );
    XrpcClient::new(TIMEOUT)
        .json(Method::GET, &url, &[], None)
        .await
}
