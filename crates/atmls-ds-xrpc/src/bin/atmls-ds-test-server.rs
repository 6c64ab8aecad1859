//! A delivery service on a SQLite file, for the crash-safety test: it prints
//! `listening on http://<addr>` and serves until it is killed or its stdin closes.
//!
//! Usage: `atmls-ds-test-server <database> [request-max-age-ms]`

use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atmls_ds::{DsConfig, SqliteStore};
use atmls_ds_xrpc::{DsService, DsServiceConfig};
use atmls_identity::Did;
use atmls_identity::resolve::{HttpResolver, ResolverConfig};
use atmls_xrpc::{Server, ServerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: atmls-ds-test-server <database> [max-age-ms]")?;
    let max_age = args.next().map_or(Ok(120_000), |s| s.parse::<u64>())?;
    let store = SqliteStore::open(&path)?;
    let core = DsConfig::default().with_request_max_age(Duration::from_millis(max_age));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let config = DsServiceConfig::new(Did::new("did:web:127.0.0.1")?, format!("http://{addr}"))
        .with_core(core);
    let resolver = Arc::new(HttpResolver::new(ResolverConfig::default()));
    let ds = DsService::start(store, config, resolver)?;
    let server = Server::from_listener(listener, ServerConfig::default(), ds.router()?)?;
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    // Stop when stdin closes (the parent went away without killing us).
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin()
            .lock()
            .read_line(&mut line)
            .is_ok_and(|n| n > 0)
        {
            line.clear();
        }
        let _ = tx.send(());
    });
    server
        .serve(async {
            let _ = rx.await;
        })
        .await?;
    ds.shutdown().await;
    Ok(())
}
