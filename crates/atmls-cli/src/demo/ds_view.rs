//! What the delivery service holds, read from its own SQLite database (read-only), never
//! from the clients: mailbox ids, kinds, epochs, heads, and each envelope's kind and size.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use atmls_ds::MailboxId;
use rusqlite::{Connection, OpenFlags};

/// One envelope as the DS stores it (its payload only to search it for plaintext).
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) kind: &'static str,
    pub(crate) epoch: Option<u64>,
    pub(crate) payload: Vec<u8>,
}

/// One mailbox row.
#[derive(Debug, Clone)]
pub(crate) struct MailboxRow {
    pub(crate) kind: &'static str,
    pub(crate) head: u64,
    pub(crate) epoch: Option<u64>,
    pub(crate) envelopes: BTreeMap<u64, Stored>,
}

/// Everything the DS holds at one moment, by mailbox id (text form).
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub(crate) mailboxes: BTreeMap<String, MailboxRow>,
}

/// A read-only view of a DS database file.
#[derive(Debug)]
pub(crate) struct DsView {
    path: PathBuf,
}

impl DsView {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every mailbox and envelope (the demo's database is small).
    pub(crate) fn snapshot(&self) -> Result<Snapshot, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let mut snap = Snapshot::default();
        let mut q = conn.prepare("SELECT id, kind, head, epoch FROM mailboxes")?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
            ))
        })?;
        for row in rows {
            let (id, kind, head, epoch) = row?;
            snap.mailboxes.insert(
                mailbox_text(&id),
                MailboxRow {
                    kind: if kind == 0 { "group" } else { "inbox" },
                    head: u64::try_from(head).unwrap_or(0),
                    epoch: epoch.and_then(|e| u64::try_from(e).ok()),
                    envelopes: BTreeMap::new(),
                },
            );
        }
        let mut q = conn.prepare("SELECT mailbox, seq, kind, epoch, payload FROM envelopes")?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })?;
        for row in rows {
            let (mailbox, seq, kind, epoch, payload) = row?;
            if let Some(m) = snap.mailboxes.get_mut(&mailbox_text(&mailbox)) {
                m.envelopes.insert(
                    u64::try_from(seq).unwrap_or(0),
                    Stored {
                        kind: match kind {
                            0 => "message",
                            1 => "commit",
                            _ => "welcome",
                        },
                        epoch: epoch.and_then(|e| u64::try_from(e).ok()),
                        payload,
                    },
                );
            }
        }
        Ok(snap)
    }
}

fn mailbox_text(id: &[u8]) -> String {
    <[u8; 32]>::try_from(id).map_or_else(
        |_| format!("(bad id of {} bytes)", id.len()),
        |b| MailboxId::from_bytes(b).to_string(),
    )
}

/// What changed in one mailbox between two snapshots.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub(crate) mailbox: String,
    pub(crate) kind: &'static str,
    pub(crate) new: bool,
    pub(crate) head: (u64, u64),
    pub(crate) epoch: Option<u64>,
    /// Envelopes appended and still stored: (seq, kind, size).
    pub(crate) appended: Vec<(u64, &'static str, usize)>,
    /// Appended but already deleted (inbox items fetched and acknowledged).
    pub(crate) gone: u64,
}

impl Snapshot {
    /// The mailboxes whose head moved (or that are new) since `before`.
    pub(crate) fn since(&self, before: &Snapshot) -> Vec<Change> {
        let mut out = Vec::new();
        for (id, m) in &self.mailboxes {
            let old = before.mailboxes.get(id);
            let old_head = old.map_or(0, |o| o.head);
            if old.is_some() && old_head == m.head {
                continue;
            }
            let appended: Vec<(u64, &'static str, usize)> = m
                .envelopes
                .range(old_head + 1..)
                .map(|(seq, e)| (*seq, e.kind, e.payload.len()))
                .collect();
            let kept: BTreeSet<u64> = appended.iter().map(|a| a.0).collect();
            out.push(Change {
                mailbox: id.clone(),
                kind: m.kind,
                new: old.is_none(),
                head: (old_head, m.head),
                epoch: m.epoch,
                gone: (m.head - old_head).saturating_sub(kept.len() as u64),
                appended,
            });
        }
        out
    }

    /// Every stored payload, for the plaintext search.
    pub(crate) fn payloads(&self) -> impl Iterator<Item = (&str, u64, &Stored)> {
        self.mailboxes.iter().flat_map(|(id, m)| {
            m.envelopes
                .iter()
                .map(move |(seq, e)| (id.as_str(), *seq, e))
        })
    }
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn byte_search() {
        assert!(contains(b"xxhello bobyy", b"hello bob"));
        assert!(!contains(b"hello bo", b"hello bob"));
        assert!(!contains(b"abc", b""));
    }
}
