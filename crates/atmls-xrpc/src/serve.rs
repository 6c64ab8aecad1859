//! Accepting connections, serving them with hyper, and shutting down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::error::ServeError;
use crate::lifecycle::{Lifecycle, TaskGuard};
use crate::metrics::Metrics;
use crate::router::Router;
use crate::service::{State, handle};
use crate::sources::{SourceCounts, SourceGuard};

/// A bound server, not yet serving: its address is known (bind to port 0 and read it).
///
/// ```no_run
/// # async fn run(router: atmls_xrpc::Router) -> Result<(), atmls_xrpc::ServeError> {
/// use atmls_xrpc::{Server, ServerConfig};
///
/// let server = Server::bind(ServerConfig::default(), router).await?;
/// println!("listening on http://{}", server.local_addr());
/// server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<State>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("router", &self.state.router)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Checks the routes and binds `config.addr`.
    pub async fn bind(config: ServerConfig, router: Router) -> Result<Server, ServeError> {
        router.check()?;
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(ServeError::Listen)?;
        Self::from_listener(listener, config, router)
    }

    /// Serves on a listener bound by the caller (`config.addr` is ignored).
    pub fn from_listener(
        listener: TcpListener,
        config: ServerConfig,
        router: Router,
    ) -> Result<Server, ServeError> {
        router.check()?;
        let addr = listener.local_addr().map_err(ServeError::Listen)?;
        let state = Arc::new(State {
            subscription_slots: Arc::new(Semaphore::new(config.subscription.max_subscriptions)),
            refusal_log: Default::default(),
            router,
            config,
            metrics: Arc::default(),
            lifecycle: Lifecycle::new(),
        });
        Ok(Server {
            listener,
            addr,
            state,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics registry (also served at `GET /metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    /// Serves until `shutdown` resolves, then shuts down gracefully: stops accepting,
    /// answers requests that arrive on open connections with 503, ends subscriptions with
    /// an error frame, and waits up to [`ServerConfig::shutdown_grace`] for in-flight
    /// requests before dropping what is left.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let Server {
            listener, state, ..
        } = self;
        let slots = Arc::new(Semaphore::new(state.config.max_connections));
        let sources = SourceCounts::new(state.config.max_connections_per_source);
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, remote) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // One source holds at most its share of the connection slots: past it, the
            // connection is closed at once.
            let Some(source) = sources.admit(remote.ip()) else {
                tracing::debug!("connection refused: too many open from one source");
                state.metrics.refusal("connections_per_source");
                continue;
            };
            let guard = state.lifecycle.track();
            let held = (permit, source);
            tokio::spawn(connection(stream, remote, state.clone(), held, guard));
        }
        drop(listener);
        tracing::info!("shutting down");
        state.lifecycle.start_draining();
        let grace = state.config.shutdown_grace;
        if tokio::time::timeout(grace, state.lifecycle.idle())
            .await
            .is_err()
        {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "requests still running after the grace period are dropped"
            );
            state.lifecycle.force_close();
            let _ = tokio::time::timeout(Duration::from_secs(1), state.lifecycle.idle()).await;
        }
        Ok(())
    }

    /// Serves on a new task; the handle stops it.
    pub fn spawn(self) -> ServerHandle {
        let (tx, rx) = oneshot::channel::<()>();
        let addr = self.addr;
        let metrics = self.metrics();
        let join = tokio::spawn(self.serve(async move {
            let _ = rx.await;
        }));
        ServerHandle {
            addr,
            metrics,
            shutdown: Some(tx),
            join,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves (see [`Server::serve`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    Server::from_listener(listener, config, router)?
        .serve(shutdown)
        .await
}

/// A server running on its own task (from [`Server::spawn`]).
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: Option<oneshot::Sender<()>>,
    join: JoinHandle<Result<(), ServeError>>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Starts graceful shutdown without waiting for it.
    pub fn start_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Shuts down gracefully and waits until the server has stopped.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        self.start_shutdown();
        self.join().await
    }

    /// Waits until the server has stopped (after [`ServerHandle::start_shutdown`]).
    pub async fn join(self) -> Result<(), ServeError> {
        self.join
            .await
            .map_err(|e| ServeError::Task(e.to_string()))?
    }
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    state: Arc<State>,
    _held: (OwnedSemaphorePermit, SourceGuard),
    _guard: TaskGuard,
) {
    let _ = stream.set_nodelay(true);
    let _open = state.metrics.connection();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_read_timeout)
        .max_buf_size(state.config.max_header_bytes)
        .keep_alive(true);
    let service_state = state.clone();
    let service = service_fn(move |req| handle(service_state.clone(), remote, req));
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let draining = state.lifecycle.draining();
    tokio::pin!(draining);
    let forced = state.lifecycle.forced();
    tokio::pin!(forced);
    let mut drain_started = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = &mut draining, if !drain_started => {
                drain_started = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = &mut forced => break,
        }
    }
}
