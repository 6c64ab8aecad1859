//! `atmls serve`: the embedded default — the PDS-compatible host, the development PLC
//! directory and the delivery service on one listener, with SQLite files in a data
//! directory. Restarting over the same data directory keeps every account, record,
//! session, mailbox and envelope.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use atmls_ds::SqliteStore;
use atmls_identity::resolve::{DidResolver, HttpResolver, ResolverConfig};
use atmls_lexicon::syntax::Did;
use atmls_pds::{LocalResolver, PdsConfig};
use atmls_server::ds::{DsService, DsServiceConfig};
use atmls_server::host::{Host, HostConfig};
use atmls_server::{Server, ServerConfig};
use clap::Args;

/// The delivery service's database in the data directory.
const DS_FILE: &str = "ds.sqlite";

/// Options of `atmls serve`; each can also be set by its environment variable.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "ATMLS_LISTEN", default_value = "127.0.0.1:2583")]
    listen: SocketAddr,
    /// Where the SQLite files live [default: $XDG_DATA_HOME/atmls or ~/.local/share/atmls].
    #[arg(long, env = "ATMLS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The URL clients reach this host at, written into new DID documents
    /// [default: http://<listen address>].
    #[arg(long, env = "ATMLS_PUBLIC_URL")]
    public_url: Option<String>,
    /// Handle suffixes accounts may be created under, comma-separated.
    #[arg(
        long,
        env = "ATMLS_HANDLE_DOMAINS",
        value_delimiter = ',',
        default_value = ".test"
    )]
    handle_domains: Vec<String>,
    /// The delivery service's DID [default: did:web of the public URL's host and port].
    #[arg(long, env = "ATMLS_DS_DID")]
    ds_did: Option<String>,
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error("no data directory: set --data-dir, ATMLS_DATA_DIR, XDG_DATA_HOME or HOME")]
    NoDataDir,
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Host(#[from] atmls_server::host::HostError),
    #[error(transparent)]
    Server(#[from] atmls_server::ServeError),
    #[error("delivery service: {0}")]
    Ds(String),
    #[error("invalid DS DID {0:?}: {1}")]
    DsDid(String, String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> Result<(), ServeError> {
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => default_data_dir().ok_or(ServeError::NoDataDir)?,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: args.listen,
        source,
    })?;
    let url = args
        .public_url
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    // DID documents on this machine (the DS's own did:web included) are fetched over
    // plain http only for loopback hosts.
    let http: Arc<dyn DidResolver> = Arc::new(HttpResolver::new(
        ResolverConfig::default().allow_loopback_http(true),
    ));
    let pds = PdsConfig::new(&url).with_handle_domains(args.handle_domains);
    let host = Host::open(
        HostConfig::new(&url)
            .with_pds(pds)
            .with_data_dir(&data_dir)
            .with_resolver(http.clone()),
    )?;
    let ds_did = match args.ds_did {
        Some(did) => did,
        None => web_did(&url).ok_or_else(|| ServeError::DsDid(url.clone(), "no host".into()))?,
    };
    let ds_did = Did::new(&ds_did).map_err(|e| ServeError::DsDid(ds_did.clone(), e.to_string()))?;
    let store =
        SqliteStore::open(data_dir.join(DS_FILE)).map_err(|e| ServeError::Ds(e.to_string()))?;
    // The DS resolves account DIDs in the local PLC directory first.
    let resolver = Arc::new(LocalResolver::new(host.directory().clone(), Some(http)));
    let ds = DsService::start(store, DsServiceConfig::new(ds_did.clone(), &url), resolver)
        .map_err(|e| ServeError::Ds(e.to_string()))?;
    let router = ds.mount(host.router());
    let server = Server::from_listener(listener, ServerConfig::default(), router)?;
    println!("atmls serve {}", env!("CARGO_PKG_VERSION"));
    println!("  data directory:  {}", data_dir.display());
    println!("  listening on     http://{addr}");
    println!("  PDS host (XRPC): {url}/xrpc/");
    println!("  PLC directory:   {url}/  (GET /did:plc:…)");
    println!("  service DID:     {}", host.pds().config().service_did);
    println!(
        "  delivery service: {url}/xrpc/chat.mls.ds.*  (DID {ds_did}, {url}/.well-known/did.json)"
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    server.serve(shutdown_signal()).await?;
    ds.shutdown().await;
    println!("stopped");
    Ok(())
}

/// `did:web:<host>[%3A<port>]` for a base URL such as `http://127.0.0.1:2583`.
fn web_did(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    Some(format!("did:web:{}", authority.replace(':', "%3A")))
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn web_did_of_a_url() {
        assert_eq!(
            super::web_did("http://127.0.0.1:2583").as_deref(),
            Some("did:web:127.0.0.1%3A2583")
        );
        assert_eq!(
            super::web_did("https://ds.example.com/").as_deref(),
            Some("did:web:ds.example.com")
        );
        assert_eq!(super::web_did("http://"), None);
    }
}
