//! Performing what one group envelope comes to ([`crate::decide::envelope`]): the
//! device's records (cursor, pending commit, outbox, sent payloads, seen messages,
//! group membership) and the events, inside the caller's transaction.

use atmls_ds_proto::Envelope;
use atmls_identity::Did;
use openmls_traits::OpenMlsProvider as _;
use sha2::{Digest as _, Sha256};

use super::State;
use super::outbox;
use super::store;
use crate::decide::commit::WelcomePlan;
use crate::decide::envelope::{self, EnvelopeOutcome, PendingFate, Refusal};
use crate::error::Error;
use crate::event::{Event, Message};
use crate::group::GroupId;
use crate::group::proofs::Documents;
use crate::group::reentry::BrokenReason;

/// What processing one envelope asks the caller to do afterwards.
#[derive(Default)]
pub(super) struct After {
    /// Events to show.
    pub(super) events: Vec<Event>,
    /// Welcomes to send (this device's commit was accepted), from this mailbox seq.
    pub(super) welcomes: Option<(WelcomePlan, u64)>,
    /// A member asked to leave: commit it (if this device does).
    pub(super) leave_requested: bool,
    /// This device was removed from the group.
    pub(super) removed: bool,
    /// This device cannot go on in the group: it entered the broken state (§11.17).
    pub(super) broken: bool,
}

/// Processes one group envelope inside the caller's transaction and advances the cursor.
/// `Ok(Err(dids))`: these DID documents are needed first (the caller rolls back).
pub(super) fn process_envelope(
    st: &mut State,
    group: &GroupId,
    envelope: &Envelope,
    documents: &Documents,
) -> Result<Result<After, Vec<Did>>, Error> {
    let mut after = After::default();
    let digest = Sha256::digest(&envelope.payload).to_vec();
    store::set_group_cursor(&st.conn, &group.0, envelope.seq)?;
    let pending = st.pending(group)?;
    let pending_digest = pending.as_ref().map(|p| p.digest.as_slice());
    match envelope::pending_fate(envelope.kind, &digest, pending_digest) {
        PendingFate::Accepted => {
            // Our own commit, accepted (its answer was lost): merge it now.
            if let Some(pending) = pending {
                st.merge_own(group, &pending)?;
                store::take_sent(&st.conn, &group.0, &digest)?;
                if !pending.plan.targets.is_empty() {
                    after.welcomes = Some((pending.plan, envelope.seq + 1));
                }
            }
            return Ok(Ok(after));
        }
        // Someone else's commit won this epoch: drop ours.
        PendingFate::Lost => {
            st.drop_pending(group)?;
        }
        PendingFate::Untouched => {}
    }
    if let Some(row) = outbox::rows::by_digest(&st.conn, &group.0, &digest)? {
        // An attempt of a queued message whose answer was lost or never awaited: the DS
        // accepted it, so the message is sent (§11.15).
        outbox::rows::delivered(&st.conn, row.item)?;
        after
            .events
            .push(outbox::own_message(st, group, &row, envelope.seq)?);
    }
    if store::take_sent(&st.conn, &group.0, &digest)? {
        outbox::rows::forget_digest(&st.conn, &group.0, &digest)?;
        return Ok(Ok(after));
    }
    let outcome = st.with_group(&group.0, |provider, g| {
        envelope::decide(
            provider,
            g,
            &envelope.payload,
            envelope.received_at,
            documents,
        )
    })?;
    if let EnvelopeOutcome::Refused(refusal) = &outcome {
        // Permanent (the cursor has moved past it): shown, never retried.
        tracing::debug!(seq = envelope.seq, kind = ?refusal.kind(), "envelope refused");
    }
    match outcome {
        EnvelopeOutcome::Message {
            sender,
            sender_device,
            content,
        } => {
            // A message its sender sent again (an attempt whose outcome it did not
            // know) is shown once (§11.15).
            if outbox::rows::seen(
                &st.conn,
                &group.0,
                sender.as_str(),
                &content.id,
                envelope.seq,
            )? {
                tracing::debug!(seq = envelope.seq, "a resent message dropped");
            } else {
                after.events.push(Event::Message(Message {
                    group: group.clone(),
                    sender,
                    sender_device,
                    seq: envelope.seq,
                    content: *content,
                }));
            }
        }
        EnvelopeOutcome::Merged {
            removed_self: true, ..
        } => {
            st.with_group(&group.0, |provider, g| {
                g.delete(provider.storage())
                    .map_err(|e| Error::mls("delete group", e))
            })?;
            st.groups.remove(&group.0);
            store::deactivate_group(&st.conn, &group.0)?;
            after.removed = true;
            after.events.push(Event::Removed {
                group: group.clone(),
            });
        }
        EnvelopeOutcome::Merged {
            committer, epoch, ..
        } => after.events.push(Event::GroupChanged {
            group: group.clone(),
            epoch,
            by: committer,
        }),
        EnvelopeOutcome::LeaveProposed { did } => {
            after.leave_requested = true;
            after.events.push(Event::LeaveRequested {
                group: group.clone(),
                did,
            });
        }
        EnvelopeOutcome::Ignored(reason) => {
            tracing::debug!(seq = envelope.seq, %reason, "ignored");
        }
        EnvelopeOutcome::Broken(reason) => {
            // Behind after refusing a commit: that refusal is why.
            let reason = match reason {
                BrokenReason::Behind
                    if super::recovery::rows::last_refused(&st.conn, &group.0)?.is_some() =>
                {
                    BrokenReason::CommitRefused
                }
                other => other,
            };
            super::recovery::enter_broken(st, group, reason, &mut after.events)?;
            after.broken = true;
        }
        EnvelopeOutcome::Refused(Refusal::Policy(violation)) => {
            // Remembered: if the DS then cuts this device off, it refused a commit the
            // others merged (§11.17).
            super::recovery::rows::refused_at(&st.conn, &group.0, envelope.seq)?;
            after.events.push(Event::CommitRefused {
                group: group.clone(),
                seq: envelope.seq,
                violation,
            });
        }
        EnvelopeOutcome::Refused(refusal @ Refusal::Malformed(_)) => {
            after.events.push(Event::Rejected {
                group: Some(group.clone()),
                seq: envelope.seq,
                reason: refusal.to_string(),
            });
        }
        EnvelopeOutcome::NeedDocuments(dids) => return Ok(Err(dids)),
    }
    Ok(Ok(after))
}
