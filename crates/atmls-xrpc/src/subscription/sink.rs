//! The handler's end of a subscription: a bounded queue of frames to the socket.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;
use tokio::sync::{mpsc, watch};

use super::frame::{Frame, FrameError};

/// A frame was not queued for the subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The subscriber is gone (it disconnected, was cut off, or the server is shutting
    /// down); stop producing for it.
    #[error("the subscription is closed")]
    Closed,
    /// The subscriber's buffer was full: it has been cut off with the configured error
    /// frame (`ConsumerTooSlow`) and the stream ends.
    #[error("the subscriber did not keep up and was cut off")]
    ConsumerTooSlow,
    /// The message could not be encoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// State shared by the sinks of one subscription and its socket task.
#[derive(Debug)]
pub(crate) struct SinkShared {
    /// Set by a sink when the buffer overflowed.
    pub(crate) cut_off: watch::Sender<bool>,
    /// Set by the socket task when the stream has ended.
    pub(crate) closed: watch::Sender<bool>,
}

/// Where a subscription handler puts its frames. The buffer between the handler and the
/// socket is bounded ([`SubscriptionConfig::buffer_frames`](crate::SubscriptionConfig));
/// a subscriber that does not keep up is cut off with an error frame rather than
/// buffered without end.
///
/// Use [`EventSink::send`] to replay a backlog at the subscriber's pace (it waits for
/// room, up to [`SubscriptionConfig::send_timeout`](crate::SubscriptionConfig)), and
/// [`EventSink::try_send_frame`] to fan one live frame out to many subscribers without
/// waiting on any of them. Clones feed the same subscriber.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<Frame>,
    shared: Arc<SinkShared>,
    send_timeout: Duration,
}

impl EventSink {
    pub(crate) fn new(
        tx: mpsc::Sender<Frame>,
        shared: Arc<SinkShared>,
        send_timeout: Duration,
    ) -> Self {
        EventSink {
            tx,
            shared,
            send_timeout,
        }
    }

    /// Encodes a message of type `t` (e.g. `#envelope`) and queues it, waiting for room.
    pub async fn send<T: Serialize + ?Sized>(&self, t: &str, body: &T) -> Result<(), SinkError> {
        self.send_frame(Frame::message(t, body)?).await
    }

    /// Queues an encoded frame, waiting up to the send timeout for room; past it the
    /// subscriber is cut off.
    pub async fn send_frame(&self, frame: Frame) -> Result<(), SinkError> {
        self.check_open()?;
        match tokio::time::timeout(self.send_timeout, self.tx.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(SinkError::Closed),
            Err(_) => Err(self.cut_off()),
        }
    }

    /// Encodes a message and queues it without waiting; a full buffer cuts the
    /// subscriber off.
    pub fn try_send<T: Serialize + ?Sized>(&self, t: &str, body: &T) -> Result<(), SinkError> {
        self.try_send_frame(Frame::message(t, body)?)
    }

    /// Queues an encoded frame without waiting; a full buffer cuts the subscriber off.
    pub fn try_send_frame(&self, frame: Frame) -> Result<(), SinkError> {
        self.check_open()?;
        match self.tx.try_send(frame) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SinkError::Closed),
            Err(mpsc::error::TrySendError::Full(_)) => Err(self.cut_off()),
        }
    }

    /// Whether the stream has ended (or the subscriber was cut off).
    pub fn is_closed(&self) -> bool {
        *self.shared.closed.borrow() || *self.shared.cut_off.borrow() || self.tx.is_closed()
    }

    /// Resolves when the stream ends: the subscriber left, was cut off, or the server is
    /// shutting down. Handlers waiting on other events should select on it.
    pub async fn closed(&self) {
        let mut closed = self.shared.closed.subscribe();
        let mut cut = self.shared.cut_off.subscribe();
        tokio::select! {
            _ = closed.wait_for(|c| *c) => {}
            _ = cut.wait_for(|c| *c) => {}
            _ = self.tx.closed() => {}
        }
    }

    /// How many more frames fit in the buffer now.
    pub fn capacity(&self) -> usize {
        self.tx.capacity()
    }

    fn check_open(&self) -> Result<(), SinkError> {
        if *self.shared.cut_off.borrow() {
            Err(SinkError::ConsumerTooSlow)
        } else if *self.shared.closed.borrow() {
            Err(SinkError::Closed)
        } else {
            Ok(())
        }
    }

    fn cut_off(&self) -> SinkError {
        self.shared.cut_off.send_replace(true);
        SinkError::ConsumerTooSlow
    }
}
