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
//! database = "postgres://atmls:secret@db.internal/atmls"
//! db-pool-size = 16
//! db-writer-lanes = 1
//! db-schema = "atmls_ds"
//! group-retention-days = 30
//! inbox-retention-days = 30
//! only-pds-accounts = true
//! allow-loopback = false
//! web-dir = "/opt/atmls/web/dist"
//!
//! # Per-principal limits of the delivery service (docs/security.md); any subset.
//! [limits]
//! max-envelope-bytes = 1048576
//! max-mailboxes-per-account = 1000
//! max-mailbox-bytes = 268435456
//! inbox-deposits-per-minute = 60
//! inbox-deposit-bytes-per-minute = 16777216
//! replay-cache-capacity = 262144
//! replay-share-per-key = 16384
//! replay-share-per-mailbox = 16384
//! replay-share-per-source = 16384
//! subscriptions-per-source = 100
//! subscribers-per-mailbox = 1000
//! welcomes-per-source-per-minute = 120
//! welcome-bytes-per-source-per-minute = 33554432
//! inbox-share-divisor = 4
//! tokens-per-account = 1000
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
    pub(crate) database: Option<String>,
    pub(crate) db_pool_size: Option<u16>,
    pub(crate) db_writer_lanes: Option<u16>,
    pub(crate) db_schema: Option<String>,
    pub(crate) group_retention_days: Option<u32>,
    pub(crate) inbox_retention_days: Option<u32>,
    pub(crate) only_pds_accounts: Option<bool>,
    pub(crate) allow_loopback: Option<bool>,
    pub(crate) web_dir: Option<PathBuf>,
    /// The `[limits]` table.
    #[serde(default)]
    pub(crate) limits: Limits,
}

/// The `[limits]` table: the DS's per-principal limits (docs/security.md says what each
/// protects). Unset keys keep their defaults.
#[derive(Debug, Default, Deserialize, PartialEq, Clone, Copy)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Limits {
    pub(crate) max_envelope_bytes: Option<usize>,
    pub(crate) max_mailboxes_per_account: Option<u64>,
    pub(crate) max_mailbox_bytes: Option<u64>,
    pub(crate) inbox_deposits_per_minute: Option<u32>,
    pub(crate) inbox_deposit_bytes_per_minute: Option<u64>,
    pub(crate) replay_cache_capacity: Option<usize>,
    pub(crate) replay_share_per_key: Option<usize>,
    pub(crate) replay_share_per_mailbox: Option<usize>,
    pub(crate) replay_share_per_source: Option<usize>,
    pub(crate) subscriptions_per_source: Option<usize>,
    pub(crate) subscribers_per_mailbox: Option<usize>,
    pub(crate) welcomes_per_source_per_minute: Option<u64>,
    pub(crate) welcome_bytes_per_source_per_minute: Option<u64>,
    pub(crate) inbox_share_divisor: Option<u64>,
    pub(crate) tokens_per_account: Option<usize>,
}

impl Limits {
    /// `core` with every core limit that is set.
    pub(crate) fn apply_core(&self, mut core: atmls_ds::DsConfig) -> atmls_ds::DsConfig {
        macro_rules! set {
            ($($field:ident => $with:ident),* $(,)?) => {$(
                if let Some(v) = self.$field {
                    core = core.$with(v);
                }
            )*};
        }
        set!(
            max_envelope_bytes => with_max_envelope_bytes,
            max_mailboxes_per_account => with_max_mailboxes_per_account,
            max_mailbox_bytes => with_max_mailbox_bytes,
            inbox_deposits_per_minute => with_inbox_deposits_per_minute,
            inbox_deposit_bytes_per_minute => with_inbox_deposit_bytes_per_minute,
            replay_cache_capacity => with_replay_cache_capacity,
            replay_share_per_key => with_replay_share_per_key,
            replay_share_per_mailbox => with_replay_share_per_mailbox,
            replay_share_per_source => with_replay_share_per_source,
        );
        core
    }

    /// The service's shares that are set.
    pub(crate) fn shares(&self) -> atmls_server::embedded::DsShares {
        let mut s = atmls_server::embedded::DsShares::default();
        s.subscriptions_per_source = self.subscriptions_per_source;
        s.subscribers_per_mailbox = self.subscribers_per_mailbox;
        s.welcomes_per_source_per_minute = self.welcomes_per_source_per_minute;
        s.welcome_bytes_per_source_per_minute = self.welcome_bytes_per_source_per_minute;
        s.inbox_share_divisor = self.inbox_share_divisor;
        s.tokens_per_account = self.tokens_per_account;
        s
    }
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
    fn limits_reach_the_ds_config() {
        let c = FileConfig::parse(
            r#"
            [limits]
            max-mailbox-bytes = 1024
            replay-share-per-source = 7
            subscriptions-per-source = 3
            inbox-share-divisor = 2
            "#,
        )
        .unwrap();
        let core = c.limits.apply_core(atmls_ds::DsConfig::default());
        assert_eq!(core.max_mailbox_bytes(), 1024);
        assert_eq!(core.replay_share_per_source(), 7);
        let shares = c.limits.shares();
        assert_eq!(shares.subscriptions_per_source, Some(3));
        assert_eq!(shares.inbox_share_divisor, Some(2));
        assert!(FileConfig::parse("[limits]\nmax-bytes = 1").is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let e = FileConfig::parse("pds_url = \"x\"").unwrap_err();
        assert!(e.contains("pds_url"), "{e}");
        assert!(FileConfig::parse("listen = \"not an address\"").is_err());
    }
}
