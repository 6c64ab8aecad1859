//! A bound on concurrent password hashing (Argon2 in `createSession` and
//! `createAccount`): at most `max_running` at once, at most `max_waiting` queued behind
//! them, and any further caller refused at once with 429 instead of queueing without end.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use atmls_xrpc::XrpcError;

/// Admission to password work.
#[derive(Debug)]
pub(crate) struct PasswordWork {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// Decrements the waiting count when a waiter leaves, admitted or cancelled.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordWork {
    pub(crate) fn new(max_running: usize, max_waiting: usize) -> Self {
        PasswordWork {
            running: Arc::new(Semaphore::new(max_running.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// A permit to hash one password, or 429 `RateLimitExceeded` when the queue is full.
    pub(crate) async fn admit(&self) -> Result<OwnedSemaphorePermit, XrpcError> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(XrpcError::rate_limit_exceeded(
                "too many password checks in progress; retry shortly",
            )
            .with_limit("password_work"));
        }
        let _waiting = Waiting(&self.waiting);
        self.running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| XrpcError::internal("internal server error"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_a_bounded_number_and_refuses_past_the_queue() {
        let work = Arc::new(PasswordWork::new(1, 1));
        let first = work.admit().await.unwrap();
        // The second waits behind the first.
        let waiter = {
            let work = work.clone();
            tokio::spawn(async move { work.admit().await.map(drop) })
        };
        for _ in 0..10_000 {
            if work.waiting.load(Ordering::SeqCst) == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(work.waiting.load(Ordering::SeqCst), 1);
        // The third finds the queue full.
        let err = work.admit().await.unwrap_err();
        assert_eq!(err.status().as_u16(), 429);
        drop(first);
        waiter.await.unwrap().unwrap();
        assert_eq!(work.waiting.load(Ordering::SeqCst), 0);
        // Free again.
        drop(work.admit().await.unwrap());
    }
}
