//! Shutdown signalling and tracking of the tasks that must end before the server does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

/// The server's shutdown phases, shared by the accept loop, connections and
/// subscriptions.
#[derive(Debug, Clone)]
pub(crate) struct Lifecycle {
    /// Set when shutdown starts: stop accepting, finish in-flight work, end streams.
    draining: watch::Sender<bool>,
    /// Set when the grace period is over: drop whatever is left.
    force: watch::Sender<bool>,
    tasks: Arc<TaskCount>,
}

#[derive(Debug, Default)]
struct TaskCount {
    n: AtomicUsize,
    idle: Notify,
}

/// Held by a tracked task; the server waits for every one to drop.
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<TaskCount>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.n.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Lifecycle {
            draining: watch::channel(false).0,
            force: watch::channel(false).0,
            tasks: Arc::default(),
        }
    }

    pub(crate) fn track(&self) -> TaskGuard {
        self.tasks.n.fetch_add(1, Ordering::AcqRel);
        TaskGuard(self.tasks.clone())
    }

    pub(crate) fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    pub(crate) fn start_draining(&self) {
        self.draining.send_replace(true);
    }

    pub(crate) fn force_close(&self) {
        self.force.send_replace(true);
    }

    /// Resolves once shutdown has started.
    pub(crate) async fn draining(&self) {
        let mut rx = self.draining.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    /// Resolves once the grace period is over.
    pub(crate) async fn forced(&self) {
        let mut rx = self.force.subscribe();
        let _ = rx.wait_for(|f| *f).await;
    }

    /// Resolves when no tracked task is left.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.tasks.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.tasks.n.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}
