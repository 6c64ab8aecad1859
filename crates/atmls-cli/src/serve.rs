//! `atmls serve`: the embedded PDS-compatible host and the development PLC directory on
//! one listener, with SQLite files in a data directory. Restarting over the same data
//! directory keeps every account, record and session.

use std::net::SocketAddr;
use std::path::PathBuf;

use atmls_pds::PdsConfig;
use atmls_server::host::{Host, HostConfig};
use atmls_server::{Server, ServerConfig};
use clap::Args;

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
    let pds = PdsConfig::new(&url).with_handle_domains(args.handle_domains);
    let host = Host::open(HostConfig::new(&url).with_pds(pds).with_data_dir(&data_dir))?;
    let server = Server::from_listener(listener, ServerConfig::default(), host.router())?;
    println!("atmls serve {}", env!("CARGO_PKG_VERSION"));
    println!("  data directory:  {}", data_dir.display());
    println!("  listening on     http://{addr}");
    println!("  PDS host (XRPC): {url}/xrpc/");
    println!("  PLC directory:   {url}/  (GET /did:plc:…)");
    println!("  service DID:     {}", host.pds().config().service_did);
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    server.serve(shutdown_signal()).await?;
    println!("stopped");
    Ok(())
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
