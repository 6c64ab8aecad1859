//! The TOML file of `atmls serve --config`: the same settings as the flags, under the
//! same names. A flag or environment variable wins over the file; the file wins over the
//! built-in default.
//!
//! ```toml
//! listen = "127.0.0.1:2584"
//! data-dir = "/var/lib/atmls"
//! public-url = "https://ds.example.com"
//! service-did = "did:web:ds.example.com"
//! pds-url = "https://pds.example.com"
//! plc-url = "https://plc.directory"
//! group-retention-days = 30
//! inbox-retention-days = 30
//! only-pds-accounts = true
//! allow-loopback = false
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Settings read from the config file; every key is optional.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FileConfig {
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) public_url: Option<String>,
    pub(crate) handle_domains: Option<Vec<String>>,
    pub(crate) service_did: Option<String>,
    pub(crate) pds_url: Option<String>,
    pub(crate) plc_url: Option<String>,
    pub(crate) group_retention_days: Option<u32>,
    pub(crate) inbox_retention_days: Option<u32>,
    pub(crate) only_pds_accounts: Option<bool>,
    pub(crate) allow_loopback: Option<bool>,
}

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

impl FileConfig {
    /// Reads and parses `path`; unknown keys are an error (a typo must not be ignored).
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::FileConfig;

    #[test]
    fn every_key_parses() {
        let c = FileConfig::parse(
            r#"
            listen = "127.0.0.1:2584"
            data-dir = "/var/lib/atmls"
            public-url = "https://ds.example.com"
            handle-domains = [".test"]
            service-did = "did:web:ds.example.com"
            pds-url = "https://pds.example.com"
            plc-url = "https://plc.directory"
            group-retention-days = 30
            inbox-retention-days = 7
            allow-loopback = true
            "#,
        )
        .unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:2584".parse().unwrap()));
        assert_eq!(c.service_did.as_deref(), Some("did:web:ds.example.com"));
        assert_eq!(c.pds_url.as_deref(), Some("https://pds.example.com"));
        assert_eq!(
            (c.group_retention_days, c.inbox_retention_days),
            (Some(30), Some(7))
        );
        assert_eq!(c.allow_loopback, Some(true));
        assert_eq!(FileConfig::parse("").unwrap(), FileConfig::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = FileConfig::parse("pds_url = \"x\"").unwrap_err();
        assert!(e.contains("pds_url"), "{e}");
        assert!(FileConfig::parse("listen = \"not an address\"").is_err());
    }
}
