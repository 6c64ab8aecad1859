//! Reading a whole SQLite DS out, for a copy into another backend
//! (`atmls ds migrate-store`): what the [`Store`](super::Store) trait does not list —
//! every mailbox id, a group's ended epochs, the per-account counters.

use rusqlite::params;

use super::{SqliteStore, StoreError, key_from, to_u64};
use crate::auth::MailboxKey;
use crate::store::EndedEpoch;
use atmls_ds_proto::MailboxId;

impl SqliteStore {
    /// Every mailbox id, in byte order.
    pub fn mailbox_ids(&self) -> Result<Vec<MailboxId>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id FROM mailboxes ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut ids = Vec::new();
        for row in rows {
            let bytes: [u8; 32] = row?
                .try_into()
                .map_err(|_| StoreError::Corrupt("mailbox id length".into()))?;
            ids.push(MailboxId::from_bytes(bytes));
        }
        Ok(ids)
    }

    /// The ended epochs of the group mailbox `id` with their keys, in epoch order.
    pub fn ended_epochs(
        &self,
        id: &MailboxId,
    ) -> Result<Vec<(MailboxKey, EndedEpoch)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT key, epoch, end_seq FROM epoch_keys WHERE mailbox = ?1 ORDER BY epoch, key",
        )?;
        let rows = stmt.query_map(params![id.as_bytes().as_slice()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, epoch, end_seq) = row?;
            out.push((
                key_from(&key)?,
                EndedEpoch {
                    epoch: to_u64(epoch)?,
                    end_seq: to_u64(end_seq)?,
                },
            ));
        }
        Ok(out)
    }

    /// Every account's count of created mailboxes (the quota counter), in account order.
    pub fn account_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT account, mailboxes FROM account_quota ORDER BY account")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (account, n) = row?;
            out.push((account, to_u64(n)?));
        }
        Ok(out)
    }
}
