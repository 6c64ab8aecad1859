//! Test support: clients of the real servers on loopback (`atmls-testkit`'s embedded host
//! and DS over HTTP), the harness the end-to-end test files share.

use std::sync::Arc;
use std::time::Duration;

use atmls_client::transport::http::{HttpDs, HttpPds};
use atmls_client::{Device, DeviceConfig, Did, Event, Storage};
use atmls_identity::DidResolver;
use atmls_identity::resolve::{HttpResolver, ResolverConfig};
use atmls_testkit::server::TestServer;

/// A device talking HTTP to the test server.
pub(crate) type Dev = Device<HttpPds, HttpDs>;

/// How long one `sync` may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// The clients' view of one test server.
pub(crate) struct Net {
    /// The server's base URL (PDS host, PLC directory and DS).
    pub(crate) url: String,
    /// The DS's DID.
    pub(crate) ds_did: Did,
    /// The resolver the devices use (no cache: each step sees the directory as it is).
    pub(crate) resolver: Arc<dyn DidResolver>,
    /// The server.
    pub(crate) server: TestServer,
}

/// A resolver reaching the server's PLC directory on loopback, without a cache.
pub(crate) fn resolver_for(url: &str) -> HttpResolver {
    HttpResolver::new(
        ResolverConfig::default()
            .allow_loopback_http(true)
            .with_plc_url(url),
    )
}

impl Net {
    /// The clients' view of `server`.
    pub(crate) fn on(server: TestServer) -> Self {
        let url = server.url().to_owned();
        Net {
            resolver: Arc::new(resolver_for(&url)),
            ds_did: server.ds_did().clone(),
            url,
            server,
        }
    }

    /// The embedded composition in memory, on the system clock (the clients sign with it).
    pub(crate) async fn start() -> Self {
        Self::on(TestServer::builder().system_clock().start().await)
    }

    /// Creates the account `name` (`name.test`) and logs in with `resolver`.
    pub(crate) async fn account_with(&self, name: &str, resolver: Arc<dyn DidResolver>) -> HttpPds {
        HttpPds::create_account(
            &self.url,
            &format!("{name}.test"),
            &format!("{name}@example.com"),
            "correct horse",
            resolver,
        )
        .await
        .unwrap()
    }

    /// Creates the account `name` (`name.test`).
    pub(crate) async fn account(&self, name: &str) -> HttpPds {
        self.account_with(name, self.resolver.clone()).await
    }

    /// Logs in to the existing account `name` with `resolver` (another device of it).
    pub(crate) async fn login_with(&self, name: &str, resolver: Arc<dyn DidResolver>) -> HttpPds {
        HttpPds::login(
            &self.url,
            &format!("{name}.test"),
            "correct horse",
            resolver,
        )
        .await
        .unwrap()
    }

    /// Logs in to the existing account `name` (another device of it).
    pub(crate) async fn login(&self, name: &str) -> HttpPds {
        self.login_with(name, self.resolver.clone()).await
    }

    /// The DS client.
    pub(crate) fn ds(&self) -> HttpDs {
        HttpDs::new(self.resolver.clone())
    }

    /// A new device in memory of the account behind `pds`.
    pub(crate) async fn device_with(&self, pds: HttpPds, config: DeviceConfig) -> Dev {
        Device::create(Storage::Memory, pds, self.ds(), self.ds_did.clone(), config)
            .await
            .unwrap()
    }
}

/// The devices' configuration: two one-time KeyPackages, own devices checked at every sync.
pub(crate) fn config() -> DeviceConfig {
    DeviceConfig::default()
        .with_one_time_key_packages(2)
        .with_own_device_check_interval(Duration::ZERO)
}

/// One `sync`, bounded by [`WAIT`].
pub(crate) async fn sync(d: &Dev) -> Vec<Event> {
    tokio::time::timeout(WAIT, d.sync())
        .await
        .expect("sync in time")
        .unwrap()
}
