//! TLS for HTTPS requests and `wss://` subscriptions: rustls with the ring provider,
//! the webpki roots, plus roots an application (or a test) adds.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use crate::error::TransportError;

/// A rustls client configuration trusting the webpki roots and `extra` (DER
/// certificates), without ALPN (each user sets its own).
pub(crate) fn client_config(extra: &[Vec<u8>]) -> Result<rustls::ClientConfig, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| TransportError::Network(format!("trusted root: {e}")))?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TransportError::Network(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Opens a TLS connection to `host` (`name:port` or `ip:port`) over `tcp`.
pub(crate) async fn connect(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, TransportError> {
    let name = host_name(host);
    let server_name = rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|e| TransportError::Network(format!("{host}: {e}")))?;
    tokio_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| TransportError::Network(format!("TLS with {host}: {e}")))
}

/// The host name of `host:port` (IPv6 literals keep no brackets).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_names() {
        assert_eq!(super::host_name("ds.example.com:443"), "ds.example.com");
        assert_eq!(super::host_name("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(super::host_name("[::1]:8443"), "::1");
        assert_eq!(super::host_name("example.com"), "example.com");
    }
}
