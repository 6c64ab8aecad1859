//! `atmls serve`, in one of two modes:
//!
//! - **embedded** (the default): the PDS-compatible host, the development PLC directory
//!   and the delivery service on one listener, with SQLite files in a data directory.
//!   Restarting over the same data directory keeps every account, record, session,
//!   mailbox and envelope.
//! - **attached** (`--pds-url`): the delivery service alone, beside an existing PDS (the
//!   official one included). It serves its own `did:web` document at
//!   `/.well-known/did.json` with the `#chat_mls_ds` entry, so the PDS can forward
//!   `atproto-proxy` calls to it, and resolves account DIDs through `--plc-url`.
//!
//! Every flag is also an environment variable (`ATMLS_*`) and a key of the `--config`
//! TOML file ([`config::FileConfig`]); flag or variable first, then the file, then the
//! default.

mod config;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use atmls_ds::DsConfig;
use atmls_server::attached::{Attached, AttachedConfig, AttachedError};
use atmls_server::embedded::{Embedded, EmbeddedConfig, EmbeddedError, WEB_PATH};
use atmls_server::scaled::{PgConfig, SchemaName};
use clap::Args;

use config::{ConfigError, FileConfig};

/// Where `atmls serve` listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:2583";
/// The public PLC directory.
const DEFAULT_PLC_URL: &str = "https://plc.directory";

/// Options of `atmls serve`; each can also be set by its environment variable or in the
/// `--config` file.
#[derive(Debug, Args)]
#[command(
    after_help = "Options marked (embedded mode) or (attached mode) apply to that mode only;
the others to both. Attached mode is chosen by --pds-url. Boolean flags and their variables
take 1/0, true/false, yes/no or on/off, in any case.

Examples:
  atmls serve                                   embedded host + DS on 127.0.0.1:2583
  atmls serve --pds-url https://pds.example.com --service-did did:web:ds.example.com \\
      --public-url https://ds.example.com --listen 127.0.0.1:2584 --data-dir /var/lib/atmls
                                                DS attached to an existing PDS
  atmls serve --config /etc/atmls/serve.toml    the same settings from a TOML file"
)]
pub(crate) struct ServeArgs {
    /// A TOML file with any of these settings (keys as the flag names: `pds-url = "…"`).
    #[arg(long, env = "ATMLS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:2583].
    #[arg(long, env = "ATMLS_LISTEN")]
    listen: Option<SocketAddr>,
    /// Where the SQLite files live [default: $XDG_DATA_HOME/atmls or ~/.local/share/atmls].
    #[arg(long, env = "ATMLS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The URL clients reach this server at, written into DID documents [default:
    /// http://<listen address>; attached mode on loopback: http://localhost:<port>].
    #[arg(long, env = "ATMLS_PUBLIC_URL")]
    public_url: Option<String>,
    /// (embedded mode) Handle suffixes accounts may be created under, comma-separated
    /// [default: .test].
    #[arg(long, env = "ATMLS_HANDLE_DOMAINS", value_delimiter = ',')]
    handle_domains: Option<Vec<String>>,
    /// The delivery service's DID [default: did:web of the public URL's host and port].
    #[arg(long, env = "ATMLS_SERVICE_DID")]
    service_did: Option<String>,
    /// Older name of --service-did.
    #[arg(long, env = "ATMLS_DS_DID", hide = true)]
    ds_did: Option<String>,
    /// (attached mode) The URL of the PDS this delivery service is attached to; setting
    /// it chooses attached mode: only the DS is served (no host, no DID directory).
    #[arg(long, env = "ATMLS_PDS_URL")]
    pds_url: Option<String>,
    /// (attached mode) Run the delivery service on PostgreSQL at this URL
    /// (`postgres://user:password@host:port/database`), as one of any number of DS
    /// processes sharing the database, instead of the SQLite file in the data directory
    /// [default: SQLite].
    #[arg(long, env = "ATMLS_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// (with --database) Most PostgreSQL connections this process holds [default: 8, or
    /// more if the writer lanes need them].
    #[arg(long, env = "ATMLS_DB_POOL_SIZE", value_parser = clap::value_parser!(u16).range(1..=1000))]
    db_pool_size: Option<u16>,
    /// (with --database) How many groups of appends this process commits at once, a
    /// mailbox always in the same lane [default: 1; more helps only where the database has
    /// cores to spare, docs/performance.md].
    #[arg(long, env = "ATMLS_DB_WRITER_LANES", value_parser = clap::value_parser!(u16).range(1..=64))]
    db_writer_lanes: Option<u16>,
    /// (with --database) Keep the DS's tables in this PostgreSQL schema, created if missing
    /// (1 to 47 of a-z, 0-9, _; not starting with a digit or `pg_`) [default: the role's
    /// default schema, usually `public`].
    #[arg(long, env = "ATMLS_DB_SCHEMA")]
    db_schema: Option<String>,
    /// The PLC directory account DIDs (did:plc) are resolved in [default:
    /// https://plc.directory; embedded mode looks in its own directory first].
    #[arg(long, env = "ATMLS_PLC_URL")]
    plc_url: Option<String>,
    /// Delete group envelopes older than this many days [default: keep forever].
    #[arg(long, env = "ATMLS_GROUP_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    group_retention_days: Option<u32>,
    /// Delete inbox items (welcomes) older than this many days [default: keep forever].
    #[arg(long, env = "ATMLS_INBOX_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    inbox_retention_days: Option<u32>,
    /// (attached mode) Create mailboxes only for accounts whose DID document names
    /// --pds-url as their PDS (others get 403 AccountNotServed). Compared in a normal
    /// form: scheme and host case, default ports and trailing slashes do not matter, and
    /// localhost, 127.0.0.1 and [::1] are the same host [default: any account with a
    /// valid service-auth token].
    #[arg(long, env = "ATMLS_ONLY_PDS_ACCOUNTS", num_args = 0..=1, default_missing_value = "true",
          value_parser = boolish)]
    only_pds_accounts: Option<bool>,
    /// Development: let outbound fetches (DID and did:web resolution, atproto-proxy,
    /// PDS fetches) reach loopback addresses, and fetch did:web documents on localhost
    /// over plain http. Private, link-local and metadata addresses are refused either way
    /// [default: on in embedded mode when the public URL is on loopback, else off].
    #[arg(long, env = "ATMLS_ALLOW_LOOPBACK", num_args = 0..=1, default_missing_value = "true",
          value_parser = boolish)]
    allow_loopback: Option<bool>,
    /// Serve the browser device's page from this build folder (`web/dist` after `cd web &&
    /// npm ci && npm run build`) at /web/; the files are read once at start [default: no
    /// page].
    #[arg(long, env = "ATMLS_WEB_DIR")]
    web_dir: Option<PathBuf>,
}

/// A boolean flag's value (or its variable's): 1/0, true/false, yes/no, on/off, any case.
fn boolish(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean: use 1/0, true/false, yes/no or on/off"
        )),
    }
}

/// The settings after flags, environment and config file are merged.
#[derive(Debug)]
struct Settings {
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
    public_url: Option<String>,
    handle_domains: Vec<String>,
    service_did: Option<String>,
    pds_url: Option<String>,
    database: Option<String>,
    db_pool_size: Option<u16>,
    db_writer_lanes: Option<u16>,
    db_schema: Option<String>,
    plc_url: String,
    /// The DS's rules: the defaults, the `[limits]` of the config file and the retention
    /// settings.
    core: DsConfig,
    /// The DS service's per-principal shares from the config file's `[limits]`.
    shares: atmls_server::embedded::DsShares,
    only_pds_accounts: bool,
    /// The development loopback allowance, if set by flag, variable or file.
    allow_loopback: Option<bool>,
    /// The browser page's build folder, if any.
    web_dir: Option<PathBuf>,
}

/// `days` as a retention period.
fn days(days: Option<u32>) -> Option<Duration> {
    days.map(|d| Duration::from_secs(u64::from(d) * 24 * 3600))
}

impl ServeArgs {
    fn settings(self) -> Result<Settings, ServeError> {
        let file = match &self.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        if file.group_retention_days == Some(0) || file.inbox_retention_days == Some(0) {
            return Err(ServeError::Retention);
        }
        let attached = self.pds_url.is_some() || file.pds_url.is_some();
        if attached && (self.handle_domains.is_some() || file.handle_domains.is_some()) {
            eprintln!("warning: handle-domains applies to embedded mode only; ignored");
        }
        if !attached && (self.database.is_some() || file.database.is_some()) {
            return Err(ServeError::DatabaseEmbedded);
        }
        let database = self.database.or(file.database);
        let db_pool_size = self.db_pool_size.or(file.db_pool_size);
        let db_writer_lanes = self.db_writer_lanes.or(file.db_writer_lanes);
        let db_schema = self.db_schema.or(file.db_schema);
        if database.is_none()
            && (db_pool_size.is_some() || db_writer_lanes.is_some() || db_schema.is_some())
        {
            return Err(ServeError::DatabaseOnly);
        }
        if !attached && self.only_pds_accounts.or(file.only_pds_accounts) == Some(true) {
            eprintln!("warning: only-pds-accounts applies to attached mode only; ignored");
        }
        let default_listen: SocketAddr = DEFAULT_LISTEN.parse().expect("valid default address");
        Ok(Settings {
            listen: self.listen.or(file.listen).unwrap_or(default_listen),
            data_dir: self.data_dir.or(file.data_dir),
            public_url: self.public_url.or(file.public_url),
            handle_domains: self
                .handle_domains
                .or(file.handle_domains)
                .unwrap_or_else(|| vec![".test".to_owned()]),
            service_did: self.service_did.or(self.ds_did).or(file.service_did),
            pds_url: self
                .pds_url
                .or(file.pds_url)
                .map(|u| u.trim_end_matches('/').to_owned()),
            database,
            db_pool_size,
            db_writer_lanes,
            db_schema,
            plc_url: self
                .plc_url
                .or(file.plc_url)
                .unwrap_or_else(|| DEFAULT_PLC_URL.to_owned()),
            only_pds_accounts: self
                .only_pds_accounts
                .or(file.only_pds_accounts)
                .unwrap_or(false),
            allow_loopback: self.allow_loopback.or(file.allow_loopback),
            web_dir: self.web_dir.or(file.web_dir),
            shares: file.limits.shares(),
            core: file
                .limits
                .apply_core(DsConfig::default())
                .with_group_retention(days(
                    self.group_retention_days.or(file.group_retention_days),
                ))
                .with_inbox_retention(days(
                    self.inbox_retention_days.or(file.inbox_retention_days),
                )),
        })
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("no data directory: set --data-dir, ATMLS_DATA_DIR, XDG_DATA_HOME or HOME")]
    NoDataDir,
    #[error("--database (PostgreSQL) applies to attached mode only (--pds-url)")]
    DatabaseEmbedded,
    #[error("--database: {0}")]
    Database(String),
    #[error(
        "--db-pool-size, --db-writer-lanes and --db-schema apply to the PostgreSQL DS only (--database)"
    )]
    DatabaseOnly,
    #[error(transparent)]
    Embedded(#[from] EmbeddedError),
    #[error(transparent)]
    Attached(#[from] AttachedError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("a retention period must be at least 1 day (leave it out to keep everything)")]
    Retention,
    #[error("invalid --pds-url {0:?}: expected an http:// or https:// URL")]
    PdsUrl(String),
}

/// `$XDG_DATA_HOME/atmls`, else `~/.local/share/atmls`.
fn default_data_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(xdg) = nonempty("XDG_DATA_HOME") {
        return Some(PathBuf::from(xdg).join("atmls"));
    }
    nonempty("HOME").map(|home| PathBuf::from(home).join(".local/share/atmls"))
}

pub(crate) fn run(args: ServeArgs) -> Result<(), ServeError> {
    let settings = args.settings()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    if settings.pds_url.is_some() {
        runtime.block_on(serve_attached(settings))
    } else {
        runtime.block_on(serve(settings))
    }
}

async fn serve(args: Settings) -> Result<(), ServeError> {
    let signal = ShutdownSignal::listen();
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => default_data_dir().ok_or(ServeError::NoDataDir)?,
    };
    // A stack reached on loopback must reach itself there (its own did:web, its PDS
    // endpoint): the development allowance is on unless the operator said otherwise.
    let on_loopback = match &args.public_url {
        Some(url) => url_on_loopback(url),
        None => args.listen.ip().is_loopback(),
    };
    let allow_loopback = args.allow_loopback.unwrap_or(on_loopback);
    let mut config = EmbeddedConfig::new(&data_dir)
        .with_listen(args.listen)
        .with_handle_domains(args.handle_domains)
        .with_plc_url(&args.plc_url)
        .with_core(args.core)
        .with_ds_shares(args.shares)
        .with_development_loopback(allow_loopback)
        .with_web_dir(args.web_dir.clone());
    if let Some(url) = args.public_url {
        config = config.with_public_url(url);
    }
    if let Some(did) = args.service_did {
        config = config.with_ds_did(did);
    }
    let services = Embedded::start(config).await?;
    let url = services.url();
    say!("atmls serve {} (embedded mode)", env!("CARGO_PKG_VERSION"));
    say!("  data directory:  {}", data_dir.display());
    say!("  listening on     http://{}", services.local_addr());
    say!("  PDS host (XRPC): {url}/xrpc/");
    say!("  PLC directory:   {url}/  (GET /did:plc:…)");
    say!("  service DID:     {}", services.service_did());
    say!("  outbound:        {}", outbound_words(allow_loopback));
    if args.web_dir.is_some() {
        say!("  browser page:    {url}{WEB_PATH}/");
    }
    say!(
        "  delivery service: {url}/xrpc/chat.mls.ds.*  (DID {}, {url}/.well-known/did.json)",
        services.ds_did()
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    signal.wait().await;
    services.shutdown().await?;
    say!("stopped");
    Ok(())
}

/// Attached mode: the delivery service alone, beside the PDS at `pds_url`.
async fn serve_attached(args: Settings) -> Result<(), ServeError> {
    let signal = ShutdownSignal::listen();
    let pds_url = args.pds_url.unwrap_or_default();
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => default_data_dir().ok_or(ServeError::NoDataDir)?,
    };
    let allow_loopback = args.allow_loopback.unwrap_or(false);
    let mut config = AttachedConfig::new(&data_dir, &pds_url)
        .with_listen(args.listen)
        .with_plc_url(&args.plc_url)
        .with_core(args.core.clone())
        .with_ds_shares(args.shares)
        .with_only_pds_accounts(args.only_pds_accounts)
        .with_development_loopback(allow_loopback)
        .with_web_dir(args.web_dir.clone());
    if let Some(url) = args.public_url {
        config = config.with_public_url(url);
    }
    if let Some(did) = args.service_did {
        config = config.with_ds_did(did);
    }
    let mut on_postgres = None;
    if let Some(url) = &args.database {
        let mut pg = PgConfig::new(url).map_err(|e| ServeError::Database(e.to_string()))?;
        if let Some(n) = args.db_pool_size {
            pg = pg.with_pool_size(usize::from(n));
        }
        if let Some(n) = args.db_writer_lanes {
            pg = pg.with_writer_lanes(usize::from(n));
        }
        if let Some(name) = &args.db_schema {
            let schema: SchemaName = name
                .parse()
                .map_err(|e| ServeError::Database(format!("--db-schema: {e}")))?;
            pg = pg.with_schema(schema);
        }
        on_postgres = Some((pg.writer_lanes(), pg.pool_size()));
        config = config.with_database(pg);
    }
    let ds = Attached::start(config).await.map_err(|e| match e {
        AttachedError::PdsUrl(url) => ServeError::PdsUrl(url),
        other => ServeError::Attached(other),
    })?;
    let (url, ds_did, pds_url) = (ds.url(), ds.ds_did(), ds.pds_url());
    say!(
        "atmls serve {} (attached mode: delivery service only)",
        env!("CARGO_PKG_VERSION")
    );
    if let Some((lanes, pool)) = on_postgres {
        // The URL holds a password: never printed.
        say!(
            "  database:         PostgreSQL (shared by every DS process on it; \
             {lanes} writer lane(s), pool of {pool})"
        );
    } else {
        say!("  data directory:   {}", ds.database().display());
    }
    say!("  listening on      http://{}", ds.local_addr());
    say!("  public URL:       {url}");
    say!("  service DID:      {ds_did}  (document at {url}/.well-known/did.json)");
    say!("  delivery service: {url}/xrpc/chat.mls.ds.*");
    if args.web_dir.is_some() {
        say!("  browser page:     {url}{WEB_PATH}/");
    }
    say!("  attached to PDS:  {pds_url}  (atproto-proxy: {ds_did}#chat_mls_ds)");
    say!("  retention:        {}", retention(&args.core));
    if args.only_pds_accounts {
        say!("  accounts:         those whose PDS is {pds_url} (others: AccountNotServed)");
    } else {
        say!("  accounts:         any with a valid service-auth token");
    }
    say!("  outbound:         {}", outbound_words(allow_loopback));
    say!("  PLC directory:    {}", args.plc_url);
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    signal.wait().await;
    ds.shutdown().await?;
    say!("stopped");
    Ok(())
}

/// The retention settings in words, for the start-up lines.
fn retention(core: &DsConfig) -> String {
    let one = |d: Option<Duration>| {
        d.map_or("kept".to_owned(), |d| {
            format!("{} days", d.as_secs() / (24 * 3600))
        })
    };
    format!(
        "group envelopes {}, inbox items {}",
        one(core.group_retention()),
        one(core.inbox_retention())
    )
}

/// The outbound address policy in words, for the start-up lines.
fn outbound_words(allow_loopback: bool) -> &'static str {
    if allow_loopback {
        "public addresses and loopback (development)"
    } else {
        "public addresses only"
    }
}

/// Whether `url`'s host is `localhost` or a loopback IP address.
fn url_on_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Ctrl-C, or SIGTERM on Unix.
/// SIGTERM and SIGINT, listened for from the moment this is called: registered before the
/// start-up lines are printed, so a signal sent as soon as they are read is never met by
/// the default action (death without a clean stop).
struct ShutdownSignal {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let (term, int) = (self.term, self.int);
            let one = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            if term.is_none() && int.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
            tokio::select! {
                _ = one(term) => {}
                _ = one(int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn booleans_in_the_usual_spellings() {
        for yes in ["1", "true", "TRUE", "yes", "Yes", "on", "ON"] {
            assert_eq!(super::boolish(yes), Ok(true), "{yes}");
        }
        for no in ["0", "false", "False", "no", "NO", "off", "Off"] {
            assert_eq!(super::boolish(no), Ok(false), "{no}");
        }
        for bad in ["", "2", "y", "enable", "truee"] {
            let err = super::boolish(bad).unwrap_err();
            assert!(err.contains("1/0, true/false, yes/no or on/off"), "{err}");
        }
    }

    #[test]
    fn loopback_urls_are_recognised() {
        for url in [
            "http://127.0.0.1:2583",
            "http://localhost:2583/",
            "http://[::1]:2583",
            "http://LOCALHOST",
        ] {
            assert!(super::url_on_loopback(url), "{url}");
        }
        for url in [
            "https://pds.example.com",
            "http://10.0.0.5:2583",
            "https://localhost.example.com",
            "http://0.0.0.0:2583",
        ] {
            assert!(!super::url_on_loopback(url), "{url}");
        }
    }
}
