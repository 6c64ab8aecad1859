//! This device's pending commit in a group: recorded when built, then either merged
//! (the DS accepted it: [`State::merge_own`]) or dropped (the DS refused it for an
//! epoch conflict, another commit took its epoch, or its envelope never showed up:
//! [`State::drop_pending`]). One way each.

use openmls_traits::OpenMlsProvider as _;

use super::State;
use super::store::{self, PendingRow};
use crate::decide::commit::{self, PendingCommit, WelcomePlan};
use crate::error::{Error, StoreError};
use crate::group::GroupId;

impl State {
    /// Records `pending` as the group's pending commit and its payload as sent by us.
    pub(crate) fn record_pending(
        &mut self,
        group: &GroupId,
        pending: &PendingCommit,
    ) -> Result<(), Error> {
        let welcomes = serde_json::to_string(&(&pending.plan, &pending.new_signer))
            .map_err(|e| Error::Protocol(e.to_string()))?;
        store::write_pending(
            &self.conn,
            &group.0,
            &PendingRow {
                intent: pending.intent.clone(),
                epoch: pending.epoch,
                digest: pending.digest.clone(),
                welcomes,
            },
        )?;
        store::record_sent(&self.conn, &group.0, &pending.digest)?;
        Ok(())
    }

    /// The group's pending commit, if there is one.
    pub(crate) fn pending(&self, group: &GroupId) -> Result<Option<PendingCommit>, Error> {
        let Some(row) = store::pending(&self.conn, &group.0)? else {
            return Ok(None);
        };
        // Written by `record_pending`; an unreadable plan sends no welcomes.
        let (plan, new_signer): (WelcomePlan, Option<Vec<u8>>) =
            serde_json::from_str(&row.welcomes).unwrap_or_default();
        Ok(Some(PendingCommit {
            intent: row.intent,
            epoch: row.epoch,
            digest: row.digest,
            plan,
            new_signer,
        }))
    }

    /// Drops the group's pending commit, if any: out of the MLS group, its rotated
    /// signature key forgotten, its record and its sent digest deleted. Returns it.
    pub(crate) fn drop_pending(&mut self, group: &GroupId) -> Result<Option<PendingCommit>, Error> {
        let Some(pending) = self.pending(group)? else {
            return Ok(None);
        };
        self.with_group(&group.0, commit::unstage)?;
        if let Some(public) = &pending.new_signer {
            self.forget_signer(public)?;
        }
        store::take_sent(&self.conn, &group.0, &pending.digest)?;
        store::delete_pending(&self.conn, &group.0)?;
        Ok(Some(pending))
    }

    /// Merges the group's pending commit, which the DS accepted: the group moves to the
    /// next epoch, a rotated signature key becomes the group's (the one it replaces is
    /// forgotten unless it is the device's own), and the record is deleted (its sent
    /// digest stays until its envelope is read). Returns the new epoch.
    pub(crate) fn merge_own(
        &mut self,
        group: &GroupId,
        pending: &PendingCommit,
    ) -> Result<u64, Error> {
        let old_signer = store::group(&self.conn, &group.0)?.map(|r| r.signature_public);
        let epoch = self.with_group(&group.0, |provider, g| {
            g.merge_pending_commit(provider)
                .map_err(|e| Error::mls("merge commit", e))?;
            Ok(g.epoch().as_u64())
        })?;
        if let Some(public) = &pending.new_signer {
            store::set_group_signer(&self.conn, &group.0, public)?;
            if let Some(old) = old_signer
                && old != self.row.signature_public
            {
                self.forget_signer(&old)?;
            }
        }
        store::delete_pending(&self.conn, &group.0)?;
        Ok(epoch)
    }

    /// Deletes a signature key pair (a rotated-away leaf key).
    pub(crate) fn forget_signer(&self, public: &[u8]) -> Result<(), Error> {
        let scheme = self.ciphersuite()?.signature_algorithm();
        openmls_basic_credential::SignatureKeyPair::delete(
            self.provider().storage(),
            public,
            scheme,
        )
        .map_err(|e| Error::Store(StoreError::Sqlite(e)))
    }
}
