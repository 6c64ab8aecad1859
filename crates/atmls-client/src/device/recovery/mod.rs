//! Recovery (docs/spec.md §11.17): the broken state, asking to be re-added (re-entry
//! requests sealed to member devices' inboxes), acting on such requests, and restoring a
//! device whose database was lost through its account's other devices.

mod act;
mod restore;
pub(crate) mod rows;

use atmls_ds_proto::{ErrorName, MailboxId};
use atmls_identity::Did;

use super::backoff::delay;
use super::store;
use super::{Device, State};
use crate::content;
use crate::error::{Error, TransportError};
use crate::event::Event;
use crate::group::reentry::{self, BrokenReason, ReentryGroup, ReentryRequest};
use crate::group::{self as grp, GroupId};
use crate::keypackage::VerifiedKeyPackage;
use crate::transport::{Ds, Pds};

/// The longest wait between two requests of a broken device.
const MAX_REENTRY_WAIT: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
/// Group-less requests a restored device sends before it gives up (it was re-added to
/// nothing: no other device of its account shares a group with it).
const MAX_RESTORE_REQUESTS: u32 = 16;

/// Whether a failed read of a group mailbox means this device's epoch is over at the DS
/// for good: its key is refused (`KeyExpired`: the epoch ended at a commit this device
/// read past without merging, or retention deleted what was left).
pub(crate) fn cut_off(e: &TransportError) -> bool {
    e.ds_error() == Some(ErrorName::KeyExpired)
}

/// Why a group whose mailbox refuses this device's key is broken: it refused the commit
/// just before its cursor, or something else left it out of reach.
pub(crate) fn cut_off_reason(
    st: &State,
    group: &GroupId,
    cursor: u64,
) -> Result<BrokenReason, Error> {
    Ok(match rows::last_refused(&st.conn, &group.0)? {
        Some(seq) if seq == cursor => BrokenReason::CommitRefused,
        _ => BrokenReason::OutOfReach,
    })
}

/// Marks the group broken (if it was not) and reports it once; the first request goes
/// out at the next [`Device::sync`].
pub(crate) fn enter_broken(
    st: &mut State,
    group: &GroupId,
    reason: BrokenReason,
    events: &mut Vec<Event>,
) -> Result<(), Error> {
    if rows::mark_broken(&st.conn, &group.0, reason, st.unix_ms())? {
        tracing::warn!(%reason, "group state broken; asking to be re-added");
        events.push(Event::Broken {
            group: group.clone(),
            reason,
        });
    }
    st.groups.remove(&group.0);
    Ok(())
}

/// Whether the group is broken on this device.
pub(crate) fn is_broken(st: &State, group: &[u8]) -> Result<bool, Error> {
    Ok(rows::broken(&st.conn, group)?.is_some())
}

/// One device a request goes to: its account and the device ids wanted (empty: every
/// device but this one).
struct Recipient {
    did: Did,
    devices: Vec<String>,
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Sends the re-entry requests that are due: for each broken group, and a restored
    /// device's group-less one. Failures are logged and retried on the schedule.
    pub(crate) async fn request_reentries(&self, st: &mut State) -> Result<(), Error> {
        let now = st.unix_ms();
        for row in rows::all_broken(&st.conn)? {
            if row.next_at > now {
                continue;
            }
            let group = GroupId(row.group_id.clone());
            let sent = self.request_group(st, &group, row.requests).await;
            let next = now.saturating_add(self.reentry_wait(row.requests.saturating_add(1)));
            rows::requested(
                &st.conn,
                &row.group_id,
                row.requests.saturating_add(1),
                next,
            )?;
            match sent {
                Ok(0) => tracing::warn!("no member to ask for re-entry; asking again later"),
                Ok(_) => {}
                // The device database: the caller's. Anything else is this group's and
                // is tried again at the next round (§11.14).
                Err(e @ Error::Store(_)) => return Err(e),
                Err(_) => tracing::warn!("re-entry request not sent; retried later"),
            }
        }
        if let Some((requests, next_at)) = rows::restore(&st.conn)?
            && next_at <= now
        {
            if requests >= MAX_RESTORE_REQUESTS {
                rows::set_restore(&st.conn, None)?;
            } else {
                let me = st.did.clone();
                let sent = self
                    .send_requests(
                        st,
                        None,
                        vec![Recipient {
                            did: me,
                            devices: Vec::new(),
                        }],
                        requests,
                    )
                    .await;
                let n = requests.saturating_add(1);
                rows::set_restore(
                    &st.conn,
                    Some((n, now.saturating_add(self.reentry_wait(n)))),
                )?;
                match sent {
                    Err(e @ Error::Store(_)) => return Err(e),
                    Err(_) => tracing::warn!("group-less re-entry request not sent; retried later"),
                    Ok(_) => {}
                }
            }
        }
        Ok(())
    }

    fn reentry_wait(&self, requests: u32) -> i64 {
        let wait = delay(
            self.inner.config.reentry_retry,
            MAX_REENTRY_WAIT.max(self.inner.config.reentry_retry),
            requests,
        );
        i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)
    }

    /// Asks the members of a broken group that may re-add this device: its account's
    /// other devices in the group first, else the admins' devices (from its last good
    /// state). Returns how many requests were sent.
    async fn request_group(
        &self,
        st: &mut State,
        group: &GroupId,
        round: u32,
    ) -> Result<usize, Error> {
        let me = st.did.clone();
        let mine = self.device_id().to_owned();
        let row = store::group(&st.conn, &group.0)?.ok_or(Error::UnknownGroup)?;
        let (members, admins) = st.with_group(&group.0, |_, g| {
            let data =
                grp::group_data(g.extensions()).map_err(|e| Error::Protocol(e.to_string()))?;
            Ok((grp::members(g), data.admins))
        })?;
        let siblings: Vec<String> = members
            .iter()
            .filter(|m| m.did == me)
            .filter_map(|m| m.device_id.clone())
            .filter(|d| *d != mine)
            .collect();
        let recipients = if siblings.is_empty() {
            admins
                .iter()
                .filter(|a| **a != me)
                .map(|a| Recipient {
                    did: a.clone(),
                    devices: members
                        .iter()
                        .filter(|m| m.did == *a)
                        .filter_map(|m| m.device_id.clone())
                        .collect(),
                })
                .filter(|r| !r.devices.is_empty())
                .collect()
        } else {
            vec![Recipient {
                did: me,
                devices: siblings,
            }]
        };
        let target = ReentryGroup {
            id: group.0.clone(),
            ds: Did::new(row.ds).map_err(|e| Error::Protocol(e.to_string()))?,
            mailbox: MailboxId::from_bytes(row.mailbox),
        };
        self.send_requests(st, Some(target), recipients, round)
            .await
    }

    /// Signs a request naming one of this device's published KeyPackages and seals it to
    /// a KeyPackage of one recipient device — the next one in turn at each `round`, so
    /// that one member acts and one that stays offline is passed over at the next round
    /// — padded like a welcome (§11.5) and deposited in its inbox. Returns how many were
    /// delivered (0 or 1).
    async fn send_requests(
        &self,
        st: &mut State,
        group: Option<ReentryGroup>,
        recipients: Vec<Recipient>,
        round: u32,
    ) -> Result<usize, Error> {
        // A package in the group's suite (§11.19); for a request about every group, one in
        // this device's preferred suite.
        let suite = match &group {
            Some(g) => st.with_group(&g.id, |_, g| Ok(g.ciphersuite())).ok(),
            None => self.suites().first().copied(),
        }
        .map(u16::from);
        let packages: Vec<_> = store::key_packages(&st.conn)?
            .into_iter()
            .filter(|p| suite.is_none_or(|s| p.ciphersuite == s))
            .collect();
        let Some(package) = packages
            .iter()
            .find(|p| !p.last_resort)
            .or_else(|| packages.first())
        else {
            return Err(Error::Protocol(
                "no KeyPackage of this device to name".into(),
            ));
        };
        let request = ReentryRequest {
            did: st.did.clone(),
            device_id: self.device_id().to_owned(),
            key_package: package.rkey.clone(),
            key_package_ref: package.key_package_ref.clone(),
            group,
            created_at: st.unix_ms(),
        };
        let signer = st.signer(&st.row.signature_public.clone())?;
        let signature = request
            .sign(&signer)
            .map_err(|e| Error::mls("sign re-entry request", e))?;
        let plaintext = request.to_cbor(&signature);
        let mut targets: Vec<VerifiedKeyPackage> = Vec::new();
        for r in recipients {
            let by_device = match self.key_packages_by_device(st, &r.did, false).await {
                Ok(v) => v,
                Err(e @ Error::Transport(_)) => return Err(e),
                // The error's text may name the DID: not logged.
                Err(_) => {
                    tracing::debug!("no KeyPackage to seal a re-entry request to");
                    continue;
                }
            };
            for (device, kps) in by_device {
                if !r.devices.is_empty() && !r.devices.contains(&device) {
                    continue;
                }
                if let Some(k) = kps.into_iter().next() {
                    targets.push(k);
                }
            }
        }
        let max = self.inner.config.max_envelope_bytes;
        let mut sent = 0;
        let turn = usize::try_from(round).unwrap_or(0) % targets.len().max(1);
        for k in targets.into_iter().skip(turn).take(1) {
            let sealed = reentry::seal_reentry(
                &st.crypto,
                k.key_package.ciphersuite(),
                k.key_package.hpke_init_key().as_slice(),
                &plaintext,
            )
            .map_err(|e| Error::mls("seal re-entry request", e))?;
            let payload = content::pad(sealed, max);
            match self
                .inner
                .ds
                .send_welcome(&k.inbox_ds, &k.inbox, payload)
                .await
            {
                Ok(_) => sent += 1,
                Err(e) => tracing::warn!(error = %e, "re-entry request not delivered"),
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests;
