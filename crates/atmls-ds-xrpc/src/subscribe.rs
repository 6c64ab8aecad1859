//! `chat.mls.ds.subscribeEnvelopes`: per mailbox, the backlog after its cursor, then live
//! envelopes, with no gap and no duplicate at the seam; heartbeats; `KeyExpired` when a
//! key leaves its grace window mid-stream.
//!
//! The seam: the writer authorises the mailboxes and registers the subscription's live
//! feed in one step, between two commits. Everything committed after that step reaches
//! the feed; everything committed before it is in the store, where the backlog is read
//! afterwards. The two overlap, and the overlap is dropped by sequence number.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use atmls_ds::auth::{DsMethod, RequestAuth, subscription_content};
use atmls_ds::{AuthError, MailboxId, ReadError, Subscription};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{Instant, interval_at};

use super::DsService;
use super::handlers::{MAX_SUBSCRIPTION_MAILBOXES, source_of};
use super::wire::{core_error, ds_error, envelope_frame};
use super::writer::{Command, ItemError, Lanes, LiveTx, SubscribeItem};
use atmls_ds::proto::ErrorName;
use atmls_ds::proto::codec::server as codec;
use atmls_xrpc::XrpcError;
use atmls_xrpc::XrpcRequest;
use atmls_xrpc::subscription::{EventSink, SinkError};

/// Envelopes read per backlog page.
const BACKLOG_PAGE: usize = 500;

/// Strings of a repeated parameter (one value or an array).
fn strings(req: &XrpcRequest, name: &str) -> Vec<String> {
    match req.params().get(name) {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(other) => vec![other.to_string()],
        None => Vec::new(),
    }
}

fn integers(req: &XrpcRequest, name: &str) -> Result<Vec<u64>, XrpcError> {
    let values = match req.params().get(name) {
        Some(Value::Array(a)) => a.clone(),
        Some(v) => vec![v.clone()],
        None => Vec::new(),
    };
    values
        .iter()
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| XrpcError::invalid_request(format!("params/{name}: must be >= 0")))
        })
        .collect()
}

fn sink_error(e: SinkError) -> XrpcError {
    match e {
        SinkError::ConsumerTooSlow => too_slow(),
        SinkError::Closed => XrpcError::unavailable("the subscription is closed"),
        other => XrpcError::internal(other.to_string()),
    }
}

fn too_slow() -> XrpcError {
    XrpcError::new(
        hyper::StatusCode::TOO_MANY_REQUESTS,
        ErrorName::ConsumerTooSlow.as_str(),
        "the subscriber did not keep up; reconnect from its last cursor",
    )
}

fn item_error((i, e): ItemError) -> XrpcError {
    let x = core_error(&e);
    XrpcError::new(
        x.status(),
        x.name().to_owned(),
        format!("mailbox {i}: {}", x.message()),
    )
}

/// Tells the writer to forget the subscription when the handler ends, however it ends.
struct Unregister {
    lanes: Lanes,
    id: u64,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        // A full queue leaves the entry for the next retention sweep.
        self.lanes.try_unsubscribe(self.id);
    }
}

impl DsService {
    pub(crate) async fn subscribe_envelopes(
        &self,
        req: XrpcRequest,
        sink: EventSink,
    ) -> Result<(), XrpcError> {
        // One source holds at most its share of the server's subscription slots.
        let _source_share = self
            .inner
            .subscriptions_by_source
            .take(source_of(&req))
            .ok_or_else(|| {
                ds_error(
                    ErrorName::RateLimitExceeded,
                    "too many subscriptions open from this source",
                )
                .with_limit("subscriptions_per_source")
            })?;
        let items = self.subscribe_items(&req)?;
        let id = self.inner.next_subscription.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::channel(self.inner.config.live_buffer());
        let overflowed = Arc::new(AtomicBool::new(false));
        let live = LiveTx {
            id,
            tx,
            overflowed: overflowed.clone(),
        };
        let _unregister = Unregister {
            lanes: self.inner.lanes.clone(),
            id,
        };
        let subs = self
            .call(|reply| Command::Subscribe { items, live, reply })
            .await?
            .map_err(item_error)?;
        // Counted per mailbox once authorised, so that nobody without its key can take a
        // mailbox's share.
        let mailboxes: Vec<MailboxId> = subs.iter().map(|s| s.mailbox).collect();
        let _mailbox_shares = self
            .inner
            .subscriptions_by_mailbox
            .take_all(&mailboxes)
            .ok_or_else(|| {
                ds_error(
                    ErrorName::RateLimitExceeded,
                    "too many subscriptions open to one of these mailboxes",
                )
                .with_limit("subscribers_per_mailbox")
            })?;

        // Per mailbox: the last seq sent.
        let mut sent: HashMap<MailboxId, u64> =
            subs.iter().map(|s| (s.mailbox, s.cursor)).collect();
        for s in &subs {
            self.backlog(s, &sink, &mut sent).await?;
        }
        // An ended epoch's key has had everything it may read (up to its `end_seq`).
        if let Some(s) = subs.iter().find(|s| s.end_seq.is_some()) {
            let x = core_error(&ReadError::Auth(AuthError::KeyExpired));
            return Err(XrpcError::new(
                x.status(),
                x.name().to_owned(),
                format!("mailbox {}: {}", s.mailbox, x.message()),
            ));
        }

        let period = self.inner.config.heartbeat();
        let mut heartbeat = interval_at(Instant::now() + period, period);
        let mut quiet = true;
        loop {
            tokio::select! {
                () = sink.closed() => return Ok(()),
                batch = rx.recv() => {
                    if overflowed.load(Ordering::SeqCst) {
                        return Err(too_slow());
                    }
                    let Some(batch) = batch else {
                        return Err(XrpcError::unavailable("the delivery service is stopping"));
                    };
                    let Some(last) = sent.get_mut(&batch.mailbox) else { continue };
                    let frames = batch.frames().as_ref().map_err(|e| XrpcError::internal(e.to_string()))?;
                    for (e, frame) in batch.envelopes.iter().zip(frames) {
                        if e.seq > *last {
                            sink.try_send_frame(frame.clone()).map_err(sink_error)?;
                            *last = e.seq;
                            quiet = false;
                        }
                    }
                    if batch.has_commit() {
                        let affected: Vec<Subscription> =
                            subs.iter().filter(|s| s.mailbox == batch.mailbox).copied().collect();
                        self.check_keys(affected).await?;
                    }
                }
                _ = heartbeat.tick() => {
                    self.check_keys(subs.clone()).await?;
                    if quiet {
                        let beat = codec::heartbeat(self.inner.config.clock().now());
                        sink.try_send("#heartbeat", &beat).map_err(sink_error)?;
                    }
                    quiet = true;
                }
            }
        }
    }

    /// Parses and checks the parameters; each mailbox's token passes the startup guard and
    /// is decoded and its signature verified here (over the query string without its
    /// `auth` parameters), for the writer to report at its step of the verification order.
    fn subscribe_items(&self, req: &XrpcRequest) -> Result<Vec<SubscribeItem>, XrpcError> {
        let mailboxes = strings(req, "mailbox");
        let tokens = strings(req, "auth");
        let cursors = integers(req, "cursor")?;
        if mailboxes.is_empty() || mailboxes.len() > MAX_SUBSCRIPTION_MAILBOXES {
            return Err(XrpcError::invalid_request(format!(
                "params/mailbox: between 1 and {MAX_SUBSCRIPTION_MAILBOXES} mailboxes"
            )));
        }
        if tokens.len() > mailboxes.len() || cursors.len() > mailboxes.len() {
            return Err(XrpcError::invalid_request(
                "params: more auth or cursor values than mailboxes",
            ));
        }
        let content = subscription_content(req.query_string());
        let mut items: Vec<SubscribeItem> = Vec::with_capacity(mailboxes.len());
        for (i, text) in mailboxes.iter().enumerate() {
            let mailbox = MailboxId::from_str(text)
                .map_err(|e| XrpcError::invalid_request(format!("params/mailbox/{i}: {e}")))?;
            if items.iter().any(|it| it.mailbox == mailbox) {
                return Err(XrpcError::invalid_request(format!(
                    "params/mailbox/{i}: mailbox listed twice"
                )));
            }
            let token = tokens.get(i).map(String::as_str);
            self.check_startup_guard(token)?;
            let auth = RequestAuth::from_token(token, content.as_bytes())
                .check_signature(DsMethod::SubscribeEnvelopes, &mailbox)
                .with_source(source_of(req));
            items.push(SubscribeItem {
                mailbox,
                auth,
                cursor: cursors.get(i).copied(),
            });
        }
        Ok(items)
    }

    /// Sends the committed envelopes after the cursor, at the subscriber's pace (for an
    /// ended epoch's key, only those up to its `end_seq`).
    async fn backlog(
        &self,
        s: &Subscription,
        sink: &EventSink,
        sent: &mut HashMap<MailboxId, u64>,
    ) -> Result<(), XrpcError> {
        loop {
            let after = sent.get(&s.mailbox).copied().unwrap_or(s.cursor);
            let limit = match s.end_seq {
                Some(end) if after >= end => return Ok(()),
                Some(end) => BACKLOG_PAGE.min(usize::try_from(end - after).unwrap_or(usize::MAX)),
                None => BACKLOG_PAGE,
            };
            let page = self
                .call(|reply| Command::Page {
                    id: s.mailbox,
                    after,
                    limit,
                    reply,
                })
                .await?
                .map_err(|e| {
                    tracing::error!(error = e.kind(), "backlog read failed");
                    if e.is_transient() {
                        XrpcError::unavailable("the database is unavailable; retry")
                    } else {
                        XrpcError::internal("internal server error")
                    }
                })?;
            let end = s.end_seq.unwrap_or(u64::MAX);
            for e in page.iter().filter(|e| e.seq <= end) {
                let frame = envelope_frame(&s.mailbox, e)
                    .map_err(|e| XrpcError::internal(e.to_string()))?;
                sink.send_frame(frame).await.map_err(sink_error)?;
                sent.insert(s.mailbox, e.seq);
            }
            // Whatever was committed after this page reaches the live feed.
            if page.len() < limit || page.last().is_some_and(|e| e.seq >= end) {
                return Ok(());
            }
        }
    }

    /// Ends the stream with `KeyExpired` (or the core's error) once a key is no longer
    /// usable.
    async fn check_keys(&self, subs: Vec<Subscription>) -> Result<(), XrpcError> {
        if subs.is_empty() {
            return Ok(());
        }
        let ids: Vec<MailboxId> = subs.iter().map(|s| s.mailbox).collect();
        self.call(|reply| Command::Check { subs, reply })
            .await?
            .map_err(|(i, e)| {
                let x = core_error(&e);
                let mailbox = ids.get(i).map(ToString::to_string).unwrap_or_default();
                XrpcError::new(
                    x.status(),
                    x.name().to_owned(),
                    format!("mailbox {mailbox}: {}", x.message()),
                )
            })
    }
}
