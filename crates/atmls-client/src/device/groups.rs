//! Group operations: create, commit an intent (with the race loop), send, read state.

use atmls_ds_proto::{MailboxKind, OutgoingEnvelope};
use atmls_identity::Did;
use openmls::prelude::Ciphersuite;
use openmls::prelude::tls_codec::Serialize as _;
use openmls_traits::OpenMlsProvider as _;
use sha2::{Digest as _, Sha256};

use super::store::{self, GroupRow};
use super::{Device, State};
use crate::content::{self, Content};
use crate::decide::commit::{self, BuiltCommit, DataChange, Intent};
use crate::error::{Error, TransportError};
use crate::event::Event;
use crate::group::seal;
use crate::group::{self as grp, Group, GroupData, GroupId};
use crate::keypackage::VerifiedKeyPackage;
use crate::transport::{Ds, Pds};

/// How a commit ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Committed {
    /// The DS accepted it at this epoch; the group is now at `epoch + 1`.
    Accepted {
        /// The epoch it was built on.
        epoch: u64,
        /// Attempts used (1 without a race).
        attempts: u32,
        /// New members whose welcome was not delivered (empty when all were): they are in
        /// the group but cannot read it until removed and added again.
        undelivered: Vec<crate::UndeliveredWelcome>,
    },
    /// Nothing to do: the intent was already reached (possibly by a concurrent commit).
    Unchanged,
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Creates a group named `name` on this device's DS, with this account as its only
    /// admin. The mailbox is created with the epoch-0 key, then the first commit records
    /// its id in the group data. Its ciphersuite is negotiated with this account's other
    /// devices ([`Self::create_group_with`] with no one else).
    pub async fn create_group(&self, name: &str) -> Result<GroupId, Error> {
        Ok(self.create_group_with(name, &[]).await?.0)
    }

    /// Creates a group named `name` and adds every device of `dids` in one commit. The
    /// group's ciphersuite is the first of this device's suites that every first device
    /// (this account's other devices and those of `dids`) has a verified KeyPackage in:
    /// X-Wing when all have one and the policy is not off, else 0x0001
    /// (docs/spec.md §11.19). No suite in common is [`Error::NoSuite`].
    pub async fn create_group_with(
        &self,
        name: &str,
        dids: &[Did],
    ) -> Result<(GroupId, Option<Committed>), Error> {
        let mut st = self.inner.state.lock().await;
        let offers = self.offers_locked(&mut st, dids).await?;
        let me = st.did.clone();
        let own = match self.key_packages_by_device(&mut st, &me, false).await {
            Ok(v) => v,
            Err(Error::NoKeyPackage { .. }) => Default::default(),
            Err(e) => return Err(e),
        };
        let suites: Vec<Vec<Ciphersuite>> = offers
            .iter()
            .flat_map(|(_, by_device)| by_device.values())
            .chain(own.values())
            .map(|kps| kps.iter().map(|k| k.key_package.ciphersuite()).collect())
            .collect();
        let suite = self
            .inner
            .config
            .suite_policy
            .choose(suites.iter().map(Vec::as_slice))?;
        let id = self.create_locked(&mut st, name, suite).await?;
        if dids.is_empty() {
            return Ok((id, None));
        }
        let kps = super::keys::pick(offers, suite)?;
        let committed = self.commit_locked(&mut st, &id, Intent::Add(kps)).await?;
        Ok((id, Some(committed)))
    }

    async fn create_locked(
        &self,
        st: &mut State,
        name: &str,
        suite: Ciphersuite,
    ) -> Result<GroupId, Error> {
        let ds_did =
            Did::new(st.row.inbox_ds.clone()).map_err(|e| Error::Protocol(e.to_string()))?;
        let (group_id, key0) = st.transaction(|st| {
            let signer = st.signer(&st.row.signature_public.clone())?;
            let binder = st.binder()?;
            let group = grp::create::create(
                &st.provider(),
                &signer,
                &st.did,
                suite,
                &ds_did,
                name,
                &binder,
            )?;
            let key0 = seal::mailbox_key(&group, st.provider().crypto(), &[0; 32])
                .map_err(|e| Error::mls("mailbox key", e))?;
            let id = group.group_id().as_slice().to_vec();
            st.groups.insert(id.clone(), group);
            Ok((id, key0))
        })?;
        let token = self
            .inner
            .pds
            .service_auth(&ds_did, "chat.mls.ds.createMailbox")
            .await?;
        let mailbox = self
            .inner
            .ds
            .create_mailbox(
                &ds_did,
                &token,
                MailboxKind::Group,
                key0.verifying_key().to_bytes(),
                0,
            )
            .await?;
        // First commit: the group data gets the mailbox id (epoch 0 -> 1).
        self.first_commit(st, &group_id, mailbox, key0).await?;
        Ok(GroupId(group_id))
    }

    async fn first_commit(
        &self,
        st: &mut State,
        group_id: &[u8],
        mailbox: atmls_ds_proto::MailboxId,
        key0: ed25519_dalek::SigningKey,
    ) -> Result<(), Error> {
        let (payload, next_key, ds) = st.transaction(|st| {
            let signer = st.signer(&st.row.signature_public.clone())?;
            st.with_group(group_id, |provider, group| {
                let data = grp::group_data(group.extensions())
                    .map_err(|e| Error::Protocol(e.to_string()))?;
                let next = GroupData {
                    mailbox: *mailbox.as_bytes(),
                    ..data
                };
                let extensions = grp::with_data(group.extensions(), &next)?;
                let (commit, _, _) = group
                    .update_group_context_extensions(provider, extensions, &signer)
                    .map_err(|e| Error::mls("set mailbox", e))?;
                let staged = group.pending_commit().ok_or(Error::NotMember)?;
                let next_key = seal::staged_mailbox_key(staged, provider.crypto(), &next.mailbox)
                    .map_err(|e| Error::mls("mailbox key", e))?;
                let bytes = commit
                    .tls_serialize_detached()
                    .map_err(|e| Error::mls("encode commit", e))?;
                Ok((bytes, next_key.verifying_key().to_bytes(), next.ds))
            })
        })?;
        let payload = content::pad(payload, self.envelope_limit(&ds).await);
        self.inner
            .ds
            .send_envelopes(
                &ds,
                &mailbox,
                &key0,
                vec![OutgoingEnvelope::commit(0, payload, next_key)],
            )
            .await?;
        st.transaction(|st| {
            let public = st.row.signature_public.clone();
            st.with_group(group_id, |provider, group| {
                group
                    .merge_pending_commit(provider)
                    .map_err(|e| Error::mls("merge", e))
            })?;
            Ok(store::insert_group(
                &st.conn,
                &GroupRow {
                    group_id: group_id.to_vec(),
                    ds: ds.to_string(),
                    mailbox: *mailbox.as_bytes(),
                    cursor: 1,
                    signature_public: public,
                    active: true,
                },
            )?)
        })
    }

    /// Adds every device of each account (their KeyPackages verified against their repos)
    /// in one commit, then sends each new device its sealed welcome. Admins only (a member
    /// may add devices of its own account).
    pub async fn add_members(&self, group: &GroupId, dids: &[Did]) -> Result<Committed, Error> {
        let mut st = self.inner.state.lock().await;
        let suite = st.with_group(&group.0, |_, g| Ok(g.ciphersuite()))?;
        let kps = self.key_packages_locked(&mut st, dids, suite).await?;
        self.commit_locked(&mut st, group, Intent::Add(kps)).await
    }

    /// Removes every device of each account. Admins only.
    pub async fn remove_members(&self, group: &GroupId, dids: &[Did]) -> Result<Committed, Error> {
        let mut st = self.inner.state.lock().await;
        self.commit_locked(&mut st, group, Intent::Remove(dids.to_vec()))
            .await
    }

    /// Renames the group. Admins only.
    pub async fn rename(&self, group: &GroupId, name: &str) -> Result<Committed, Error> {
        self.change(
            group,
            DataChange {
                name: Some(name.to_owned()),
                ..DataChange::default()
            },
        )
        .await
    }

    /// Changes the description. Admins only.
    pub async fn set_description(
        &self,
        group: &GroupId,
        description: &str,
    ) -> Result<Committed, Error> {
        self.change(
            group,
            DataChange {
                description: Some(description.to_owned()),
                ..DataChange::default()
            },
        )
        .await
    }

    /// Makes `did` an admin. Admins only.
    pub async fn add_admin(&self, group: &GroupId, did: &Did) -> Result<Committed, Error> {
        self.change(
            group,
            DataChange {
                add_admins: vec![did.clone()],
                ..DataChange::default()
            },
        )
        .await
    }

    /// Removes `did` from the admins. Admins only.
    pub async fn remove_admin(&self, group: &GroupId, did: &Did) -> Result<Committed, Error> {
        self.change(
            group,
            DataChange {
                remove_admins: vec![did.clone()],
                ..DataChange::default()
            },
        )
        .await
    }

    /// Sets the group's message lifetime (`None`: messages no longer expire), by a
    /// commit of the group data (§11.18). Admins only; the lifetime must be whole seconds
    /// between 60 s and 365 days ([`Error::MessageLifetime`] otherwise).
    pub async fn set_message_lifetime(
        &self,
        group: &GroupId,
        lifetime: Option<std::time::Duration>,
    ) -> Result<Committed, Error> {
        let lifetime = lifetime.map(grp::MessageLifetime::new).transpose()?;
        self.change(
            group,
            DataChange {
                message_lifetime: Some(lifetime),
                ..DataChange::default()
            },
        )
        .await
    }

    async fn change(&self, group: &GroupId, change: DataChange) -> Result<Committed, Error> {
        let mut st = self.inner.state.lock().await;
        self.commit_locked(&mut st, group, Intent::Update(change))
            .await
    }

    /// Updates this device's leaf (new encryption keys; with `rotate`, a new signature
    /// key too). Any member may.
    pub async fn self_update(&self, group: &GroupId, rotate: bool) -> Result<Committed, Error> {
        let mut st = self.inner.state.lock().await;
        self.commit_locked(&mut st, group, Intent::SelfUpdate { rotate })
            .await
    }

    /// Asks to leave: sends a proposal removing this device; an admin commits it (admins
    /// do so when they receive it), and this device then sees [`Event::Removed`].
    pub async fn leave(&self, group: &GroupId) -> Result<(), Error> {
        let mut st = self.inner.state.lock().await;
        let limit = match store::group(&st.conn, &group.0)? {
            Some(row) => match Did::new(row.ds) {
                Ok(ds) => self.envelope_limit(&ds).await,
                Err(_) => self.inner.config.max_envelope_bytes,
            },
            None => return Err(Error::UnknownGroup),
        };
        let (payload, key, ds, mailbox) = st.transaction(|st| {
            let row = store::group(&st.conn, &group.0)?.ok_or(Error::UnknownGroup)?;
            let signer = st.signer(&row.signature_public)?;
            let (bytes, key) = st.with_group(&group.0, |provider, g| {
                let key = seal::mailbox_key(g, provider.crypto(), &row.mailbox)
                    .map_err(|e| Error::mls("mailbox key", e))?;
                crate::group::reentry::tag_next(g);
                let proposal = g
                    .leave_group(provider, &signer)
                    .map_err(|e| Error::mls("leave", e))?;
                let bytes = proposal
                    .tls_serialize_detached()
                    .map_err(|e| Error::mls("encode", e))?;
                Ok((bytes, key))
            })?;
            let payload = content::pad(bytes, limit);
            store::record_sent(&st.conn, &group.0, &Sha256::digest(&payload))?;
            Ok((payload, key, row.ds, row.mailbox))
        })?;
        let ds = Did::new(ds).map_err(|e| Error::Protocol(e.to_string()))?;
        self.inner
            .ds
            .send_envelopes(
                &ds,
                &atmls_ds_proto::MailboxId::from_bytes(mailbox),
                &key,
                vec![OutgoingEnvelope::message(payload)],
            )
            .await?;
        Ok(())
    }

    /// The group as this device sees it.
    pub async fn group(&self, group: &GroupId) -> Result<Group, Error> {
        let mut st = self.inner.state.lock().await;
        let row = store::group(&st.conn, &group.0)?.ok_or(Error::UnknownGroup)?;
        if !row.active {
            return Err(Error::NotMember);
        }
        let broken = super::recovery::rows::broken(&st.conn, &group.0)?.map(|b| b.reason);
        let mut snapshot = st.with_group(&group.0, |_, g| {
            grp::snapshot(g, row.active).map_err(|e| Error::Protocol(e.to_string()))
        })?;
        snapshot.broken = broken;
        Ok(snapshot)
    }

    /// Every group this device is a member of.
    pub async fn groups(&self) -> Result<Vec<Group>, Error> {
        let mut st = self.inner.state.lock().await;
        let rows = store::groups(&st.conn)?;
        let mut out = Vec::new();
        for row in rows.into_iter().filter(|r| r.active) {
            let broken = super::recovery::rows::broken(&st.conn, &row.group_id)?.map(|b| b.reason);
            let mut snapshot = st.with_group(&row.group_id, |_, g| {
                grp::snapshot(g, row.active).map_err(|e| Error::Protocol(e.to_string()))
            })?;
            snapshot.broken = broken;
            out.push(snapshot);
        }
        Ok(out)
    }

    /// Commits `intent`: builds it on the current epoch, sends it, and when the DS refuses
    /// it for its epoch (an epoch conflict, or the key of an epoch that ended unseen)
    /// drops it, catches up with the group and rebuilds the same intent.
    pub(crate) async fn commit_locked(
        &self,
        st: &mut State,
        group: &GroupId,
        intent: Intent,
    ) -> Result<Committed, Error> {
        let max = self.inner.config.max_commit_attempts;
        for attempt in 1..=max {
            let row = store::group(&st.conn, &group.0)?.ok_or(Error::UnknownGroup)?;
            if !row.active {
                return Err(Error::NotMember);
            }
            if let Some(b) = super::recovery::rows::broken(&st.conn, &group.0)? {
                return Err(Error::Broken(b.reason));
            }
            let me = st.did.clone();
            // The group's DS carries the commit; each invitee's inbox DS its welcome.
            let mut dses: Vec<Did> = Did::new(row.ds.clone()).into_iter().collect();
            if let Intent::Add(packages) = &intent {
                dses.extend(packages.iter().map(|k| k.inbox_ds.clone()));
            }
            let max_bytes = self.envelope_limit_over(&dses).await;
            let now = st.unix_now();
            let built = st.transaction(|st| {
                let signer = st.signer(&row.signature_public)?;
                let binder = st.binder()?;
                let built = st.with_group(&group.0, |provider, g| {
                    let built =
                        commit::build(provider, g, &signer, &me, &intent, max_bytes, &binder)?;
                    // The lifetime after the commit goes to the DS with it (§11.18).
                    Ok(built.map(|b| (b, super::vanish::pending_lifetime_seconds(g))))
                })?;
                if let Some((built, _)) = &built {
                    st.record_pending(group, &built.pending)?;
                    // Its one-time packages are used from now on, whatever the outcome
                    // (an accepted commit may not be known as such yet): §11.9.
                    let added: Vec<&VerifiedKeyPackage> = match &intent {
                        Intent::Add(kps) => kps.iter().collect(),
                        Intent::Readd(k) => vec![k.as_ref()],
                        _ => Vec::new(),
                    };
                    super::used_key_packages::record(&st.conn, &st.crypto, added, now)?;
                }
                Ok(built)
            })?;
            let Some((built, lifetime)) = built else {
                return Ok(Committed::Unchanged);
            };
            let BuiltCommit {
                epoch,
                payload,
                key,
                next_key,
                mailbox,
                ds,
                pending,
            } = built;
            let sent = self
                .inner
                .ds
                .send_envelopes(
                    &ds,
                    &mailbox,
                    &key,
                    vec![
                        OutgoingEnvelope::commit(epoch, payload, next_key)
                            .with_message_lifetime(lifetime),
                    ],
                )
                .await;
            match sent {
                Ok(receipt) => {
                    let merged = st.transaction(|st| st.merge_own(group, &pending))?;
                    self.emit(&[Event::GroupChanged {
                        group: group.clone(),
                        epoch: merged,
                        by: me,
                    }]);
                    let undelivered = self
                        .send_welcomes(
                            st,
                            group,
                            &ds,
                            &mailbox,
                            &pending.plan,
                            receipt.last_seq + 1,
                        )
                        .await;
                    return Ok(Committed::Accepted {
                        epoch,
                        attempts: attempt,
                        undelivered,
                    });
                }
                // Refused for its epoch: the group moved on. Either the DS says so
                // (`EpochConflict`), or this device's epoch ended past the DS's key grace
                // window (or more than one epoch ago) and its key is refused outright
                // (`KeyExpired`); reading with that key still reaches the commit that
                // ended the epoch (§11.3). The commit is dropped, the group caught up
                // with, and the intent rebuilt.
                Err(e) if stale_epoch(&e) => {
                    st.transaction(|st| st.drop_pending(group))?;
                    let events = self.sync_group_locked(st, group).await?;
                    self.emit(&events);
                }
                // Outcome unknown (the DS may have accepted it): the pending commit stays,
                // and the next sync merges it if its envelope shows up, else drops it.
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::RetriesExhausted(max))
    }
}

/// Whether a refused commit was built on an epoch that is no longer the mailbox's:
/// `EpochConflict`, or its epoch's key refused (`KeyExpired`). Either way the DS did not
/// take it, and catching up with the group is the way on.
fn stale_epoch(e: &TransportError) -> bool {
    matches!(e, TransportError::EpochConflict { .. })
        || e.ds_error() == Some(atmls_ds_proto::ErrorName::KeyExpired)
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Encrypts `data` with a fresh key, uploads it as a blob to this account's PDS, keeps
    /// it referenced by a `chat.mls.attachmentRef` record, and sends the `#attachment`.
    pub async fn send_attachment(
        &self,
        group: &GroupId,
        data: &[u8],
        mime_type: &str,
        name: Option<String>,
    ) -> Result<Content, Error> {
        let sealed = crate::attachment::seal(data)?;
        let blob = self.upload_referenced(sealed.ciphertext.clone()).await?;
        let body =
            crate::attachment::body(&sealed, data.len(), self.did(), blob.cid, mime_type, name)?;
        let fallback = Some("An attachment".to_owned());
        let content = content::content(body, fallback);
        self.send_content(group, content.clone()).await?;
        Ok(content)
    }

    /// Fetches an attachment's blob from the sender's PDS, checks its digest and decrypts.
    pub async fn fetch_attachment(
        &self,
        attachment: &atmls_lexicon::chat::mls::content::AttachmentData,
    ) -> Result<Vec<u8>, Error> {
        let did = Did::new(attachment.location.did.as_str())
            .map_err(|e| Error::Attachment(e.to_string()))?;
        let bytes = self
            .inner
            .pds
            .blob(&did, &attachment.location.cid.0)
            .await?;
        crate::attachment::open(attachment, &bytes)
    }
}
