//! What a device reports: messages, joins, membership and group changes, refusals.

use atmls_identity::Did;

use crate::content::Content;
use crate::group::GroupId;

/// An application message received (or sent by this device).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The group.
    pub group: GroupId,
    /// The sending account.
    pub sender: Did,
    /// The sending device's id, when its leaf carries one.
    pub sender_device: Option<String>,
    /// The message's position in the group mailbox.
    pub seq: u64,
    /// The content.
    pub content: Content,
}

impl Message {
    /// The text of a `#text` or `#reply` body, or the fallback text.
    pub fn text(&self) -> Option<&str> {
        use crate::content::Body;
        match &self.content.body {
            atrium_api::types::Union::Refs(Body::Text(t)) => Some(&t.text),
            atrium_api::types::Union::Refs(Body::Reply(r)) => Some(&r.text),
            _ => self.content.fallback_text.as_deref(),
        }
    }
}

/// Something that happened on a device.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // messages are the common case; boxing them buys nothing
pub enum Event {
    /// This device joined a group through a welcome.
    Joined {
        /// The group.
        group: GroupId,
        /// Its name.
        name: String,
    },
    /// A message arrived.
    Message(Message),
    /// A commit moved the group to a new epoch.
    GroupChanged {
        /// The group.
        group: GroupId,
        /// The new epoch.
        epoch: u64,
        /// Who committed it.
        by: Did,
    },
    /// This device was removed from the group (or left it).
    Removed {
        /// The group.
        group: GroupId,
    },
    /// A member asked to leave; admins commit it.
    LeaveRequested {
        /// The group.
        group: GroupId,
        /// The account leaving.
        did: Did,
    },
    /// The group could not be read (or a commit of this device to it not sent) this
    /// time: its DS or a DID document it needs is unreachable, or the DS refused the
    /// mailbox key. The group is left alone for a while (doubling per failure, see
    /// [`TransportError::kind`](crate::TransportError::kind)); other groups and the inbox
    /// were synced (docs/spec.md §11.14).
    Unreachable {
        /// The group.
        group: GroupId,
        /// What the DS or the network answered.
        error: crate::error::TransportError,
    },
    /// The inbox could not be listed this time; it is left alone for a while, the groups
    /// were synced.
    InboxUnreachable {
        /// What the DS or the network answered.
        error: crate::error::TransportError,
    },
    /// An inbox item needs something that failed transiently (the out-of-band ratchet
    /// tree of a welcome, from the committer's PDS): it is set aside on this device and
    /// retried later, a bounded number of times, then refused ([`Event::Rejected`]). The
    /// items after it were processed.
    InboxItemDeferred {
        /// The inbox sequence number.
        seq: u64,
        /// What failed.
        error: crate::error::TransportError,
        /// How many attempts failed so far.
        attempts: u32,
    },
    /// A commit was refused by the group policy, or because a leaf it adds is not proven
    /// to belong to its account (docs/spec.md §11.2, §11.13): it was not merged.
    CommitRefused {
        /// The group.
        group: GroupId,
        /// The commit's mailbox sequence number.
        seq: u64,
        /// Why.
        violation: crate::error::PolicyViolation,
    },
    /// A welcome was refused because a member of the group it leads into is not bound to
    /// its account (docs/spec.md §11.16): the group was not joined.
    WelcomeRefused {
        /// The inbox sequence number.
        seq: u64,
        /// Why.
        violation: crate::error::PolicyViolation,
    },
    /// Something from the group or the inbox was refused (shown to a person as a warning).
    Rejected {
        /// The group, if known.
        group: Option<GroupId>,
        /// The mailbox sequence number.
        seq: u64,
        /// Why.
        reason: String,
    },
    /// A message was accepted into this device's outbox (stored before `send` or
    /// `queue` returns); [`Event::Message`] follows when the DS accepted it
    /// (docs/spec.md §11.15).
    Queued {
        /// The group.
        group: GroupId,
        /// The message's content id.
        id: String,
    },
    /// An attempt to send the first waiting message of a group failed transiently (or
    /// the mailbox could not be read to settle an earlier attempt): it and the messages
    /// after it stay queued and are tried again after the group's back-off.
    Unsent {
        /// The group.
        group: GroupId,
        /// The waiting message's content id.
        id: String,
        /// Attempts made so far.
        attempts: u32,
        /// What the DS or the network answered.
        error: crate::error::TransportError,
    },
    /// A queued message was given up (it stays listed as failed in
    /// [`Device::outbox`](crate::Device::outbox)); the messages after it go on.
    SendFailed {
        /// The group.
        group: GroupId,
        /// The message's content id.
        id: String,
        /// Why.
        reason: crate::error::SendRefusal,
    },
    /// A welcome of a commit of this device was not delivered: the device is in the group
    /// but cannot read it (see [`crate::UndeliveredWelcome`]).
    WelcomeUndelivered {
        /// The group.
        group: GroupId,
        /// Who and why.
        welcome: crate::UndeliveredWelcome,
    },
    /// This device cannot go on in the group (docs/spec.md §11.17): it stops sending
    /// there (the outbox holds its messages) and asks to be re-added.
    Broken {
        /// The group.
        group: GroupId,
        /// Why.
        reason: crate::group::reentry::BrokenReason,
    },
    /// This device was re-added to a group it was broken in (or lost with its database)
    /// and reads it again; held messages are sent.
    Recovered {
        /// The group.
        group: GroupId,
    },
    /// A re-entry request in the inbox was refused (it cost no commit).
    ReentryRefused {
        /// The group it named, if any and known here.
        group: Option<GroupId>,
        /// Why.
        reason: crate::group::reentry::ReentryRefusal,
    },
    /// A welcome that was not delivered at first was delivered by a later attempt
    /// (docs/spec.md §11.4).
    WelcomeResent {
        /// The group.
        group: GroupId,
        /// The invited account.
        did: String,
        /// Attempts so far, the successful one included.
        attempts: u32,
    },
    /// The device stopped trying to deliver a welcome (docs/spec.md §11.4): the invitee is
    /// in the group without one; remove and add the account again to retry.
    WelcomeGivenUp {
        /// The group.
        group: GroupId,
        /// The invited account.
        did: String,
        /// Attempts made.
        attempts: u32,
        /// Why.
        reason: crate::WelcomeGiveUp,
    },
}

/// Recovery (docs/spec.md §11.17).
impl Event {
    /// The groups that became broken among `events`, with why.
    pub fn broken(events: &[Event]) -> Vec<(GroupId, crate::group::reentry::BrokenReason)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Broken { group, reason } => Some((group.clone(), *reason)),
                _ => None,
            })
            .collect()
    }
}

impl Event {
    /// The texts of the text messages among `events`, in order.
    pub fn texts(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => m.text().map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    /// The groups joined among `events`, in order.
    pub fn joined(events: &[Event]) -> Vec<GroupId> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Joined { group, .. } => Some(group.clone()),
                _ => None,
            })
            .collect()
    }
}
