//! Wake-ups across processes: every append notifies (`pg_notify`, delivered at commit, in
//! commit order) on the store's channel, and a [`Listener`] in any process hears it.
//!
//! A notification is only a wake-up. The source of truth stays the table: a reader keeps
//! the last seq it delivered per mailbox and, when woken, reads everything after it. A
//! lost notification therefore never loses an envelope. The listener says
//! [`Notices::Resync`] whenever it may have missed some (its connection broke and was
//! made again, or too many mailboxes were pending): the reader then re-reads every
//! mailbox it serves from its last delivered seq.
//!
//! Payload of a notification: the mailbox id in lower-case hex, `:`, the new head. The
//! channel is `atmls_ds_append`, or `atmls_ds_append_<schema>` with
//! [`PgConfig::with_schema`](crate::PgConfig::with_schema).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use atmls_ds::{MailboxId, StoreError};
use futures_util::StreamExt as _;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::config::{PgConfig, SchemaName};
use crate::error::from_db;

/// Most mailboxes a listener keeps pending before it gives up on details and asks for a
/// [`Notices::Resync`].
const MAX_PENDING: usize = 1 << 16;

/// The channel appends notify on.
pub(crate) fn channel(schema: Option<&SchemaName>) -> String {
    match schema {
        None => "atmls_ds_append".to_owned(),
        Some(s) => format!("atmls_ds_append_{}", s.as_str()),
    }
}

/// The payload of a notification for `mailbox` at `head`.
pub(crate) fn payload(mailbox: &MailboxId, head: u64) -> String {
    let mut s = String::with_capacity(64 + 21);
    for b in mailbox.as_bytes() {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s.push(':');
    s.push_str(&head.to_string());
    s
}

/// Parses a [`payload`]; `None` for anything else.
fn parse(payload: &str) -> Option<Appended> {
    let (hex, head) = payload.split_once(':')?;
    if hex.len() != 64 {
        return None;
    }
    let mut id = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digit = |c: u8| char::from(c).to_digit(16);
        let byte = digit(pair[0])? * 16 + digit(pair[1])?;
        id[i] = u8::try_from(byte).ok()?;
    }
    Some(Appended {
        mailbox: MailboxId::from_bytes(id),
        head: head.parse().ok()?,
    })
}

/// A mailbox's head moved (in any process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// Its head after the append.
    pub head: u64,
}

/// What a [`Listener`] hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notices {
    /// These mailboxes moved (the highest head heard for each), since the last call.
    Appended(Vec<Appended>),
    /// Notifications may have been missed: re-read every mailbox served from its last
    /// delivered seq.
    Resync,
}

#[derive(Debug, Default)]
struct Pending {
    heads: HashMap<MailboxId, u64>,
    resync: bool,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Pending) -> T) -> T {
        f(&mut self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn heard(&self, a: Appended) {
        self.with(|p| {
            if p.heads.len() >= MAX_PENDING && !p.heads.contains_key(&a.mailbox) {
                p.heads.clear();
                p.resync = true;
            } else {
                let head = p.heads.entry(a.mailbox).or_default();
                *head = (*head).max(a.head);
            }
        });
        self.wake.notify_one();
    }

    fn resync(&self) {
        self.with(|p| {
            p.heads.clear();
            p.resync = true;
        });
        self.wake.notify_one();
    }
}

/// Listens on the store's channel with a connection of its own (not from the pool), and
/// reconnects by itself. Runs on the Tokio runtime it was started on.
#[derive(Debug)]
pub struct Listener {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Listener {
    /// Connects and starts listening. Fails if the first connection fails; later losses
    /// are retried (every 50 ms to 2 s) and reported as [`Notices::Resync`].
    pub async fn start(config: &PgConfig) -> Result<Self, StoreError> {
        let mut connect = config.connect.clone();
        connect.application_name("atmls-ds-listen");
        let channel = channel(config.schema.as_ref());
        let shared = Arc::new(Shared::default());
        let first = session(&connect, &channel, &shared).await?;
        let task = tokio::spawn(keep_listening(connect, channel, shared.clone(), first));
        Ok(Self { shared, task })
    }

    /// Waits for the next notices (returns at once if some are pending).
    pub async fn next(&mut self) -> Notices {
        loop {
            let woken = self.shared.wake.notified();
            let ready = self.shared.with(|p| {
                if p.resync {
                    p.resync = false;
                    p.heads.clear();
                    Some(Notices::Resync)
                } else if p.heads.is_empty() {
                    None
                } else {
                    let mut moved: Vec<Appended> = p
                        .heads
                        .drain()
                        .map(|(mailbox, head)| Appended { mailbox, head })
                        .collect();
                    moved.sort_by_key(|a| *a.mailbox.as_bytes());
                    Some(Notices::Appended(moved))
                }
            });
            if let Some(n) = ready {
                return n;
            }
            woken.await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: the client (kept alive by the caller) and the task reading its
/// messages, which ends when the connection does.
type Session = (tokio_postgres::Client, JoinHandle<()>);

async fn session(
    connect: &tokio_postgres::Config,
    channel: &str,
    shared: &Arc<Shared>,
) -> Result<Session, StoreError> {
    let (client, mut conn) = connect.connect(NoTls).await.map_err(from_db)?;
    let heard = shared.clone();
    let pump = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message
                && let Some(a) = parse(n.payload())
            {
                heard.heard(a);
            }
        }
    });
    // The channel name is built from a checked schema name: a plain identifier.
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .map_err(from_db)?;
    Ok((client, pump))
}

async fn keep_listening(
    connect: tokio_postgres::Config,
    channel: String,
    shared: Arc<Shared>,
    mut current: Session,
) {
    loop {
        let _ = (&mut current.1).await;
        // The connection ended: whatever was notified from now on is missed.
        shared.resync();
        let mut backoff = Duration::from_millis(50);
        current = loop {
            tokio::time::sleep(backoff).await;
            match session(&connect, &channel, &shared).await {
                Ok(s) => break s,
                Err(_) => backoff = (backoff * 2).min(Duration::from_secs(2)),
            }
        };
        // Listening again: anything between the loss and now is read from the table.
        shared.resync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let id = MailboxId::from_bytes([0xa7; 32]);
        let p = payload(&id, 42);
        assert_eq!(p.len(), 64 + 3);
        assert_eq!(
            parse(&p),
            Some(Appended {
                mailbox: id,
                head: 42
            })
        );
        for bad in [
            "",
            ":1",
            &p[1..],
            &p.replace(":42", ":x"),
            &p.replace('a', "g"),
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
