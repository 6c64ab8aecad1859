//! Sending welcomes (with the ratchet tree out of band when it does not fit, spec §11.4)
//! and fetching an out-of-band tree when joining.

use atmls_ds_proto::MailboxId;
use atmls_identity::Did;

use super::{Device, State};
use crate::content;
use crate::decide::commit::WelcomePlan;
use crate::error::{Error, TransportError};
use crate::event::Event;
use crate::group::GroupId;
use crate::group::seal::{self, TreeRef, WelcomeInfo};
use crate::transport::{BlobRef, Ds, Pds, RecordWrite};

/// A new member whose welcome was not delivered. The commit adding it is merged: the
/// device is a member of the group (it counts in every later epoch) but cannot read it.
/// After a transient failure the device keeps the welcome and resends it during `sync`
/// (`retried`, docs/spec.md §11.4); after a permanent one, or once it gives up, the
/// application retries by removing the account and adding it again (a new KeyPackage, a
/// new welcome; docs/decisions/0016).
#[derive(Debug, Clone, PartialEq)]
pub struct UndeliveredWelcome {
    /// The account of the device.
    pub did: String,
    /// The DS of the device's inbox.
    pub inbox_ds: String,
    /// Why.
    pub reason: WelcomeError,
    /// Whether the device keeps the welcome and resends it during `sync` (a transient
    /// failure, docs/spec.md §11.4): [`Event::WelcomeResent`] or
    /// [`Event::WelcomeGivenUp`] follows.
    pub retried: bool,
}

/// Why a welcome was not delivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WelcomeError {
    /// The sealed welcome is larger than the DS's `maxEnvelopeBytes` even with the ratchet
    /// tree out of band.
    #[error("sealed welcome of {bytes} bytes exceeds maxEnvelopeBytes {max}")]
    TooLarge {
        /// The sealed length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The invitee's inbox DS or mailbox id, or its ciphersuite, is unusable.
    #[error("bad inbox: {0}")]
    BadTarget(String),
    /// Sealing to the invitee's init key failed.
    #[error("sealing failed: {0}")]
    Seal(String),
    /// The out-of-band ratchet tree could not be stored on this account's PDS.
    #[error("ratchet tree not stored: {0}")]
    TreeUpload(TransportError),
    /// The DS refused the welcome or could not be reached.
    #[error("DS refused: {0}")]
    Refused(TransportError),
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Uploads `ciphertext` as a blob to this account's PDS and keeps it referenced by a
    /// `chat.mls.attachmentRef` record (spec §11.7) so the PDS does not collect it.
    pub(crate) async fn upload_referenced(&self, ciphertext: Vec<u8>) -> Result<BlobRef, Error> {
        Ok(self.upload_referenced_rkey(ciphertext).await?.0)
    }

    /// [`Self::upload_referenced`], also returning the `attachmentRef` record key.
    async fn upload_referenced_rkey(
        &self,
        ciphertext: Vec<u8>,
    ) -> Result<(BlobRef, String), Error> {
        let blob = self
            .inner
            .pds
            .upload_blob(ciphertext, "application/octet-stream")
            .await?;
        let rkey = atmls_syntax::TidGenerator::default().next_now().to_string();
        self.inner
            .pds
            .apply_writes(vec![RecordWrite::Create {
                collection: crate::attachment::ATTACHMENT_REF_COLLECTION.into(),
                rkey: rkey.clone(),
                value: crate::attachment::attachment_ref_record(&blob)?,
            }])
            .await?;
        Ok((blob, rkey))
    }

    /// Encrypts and stores an out-of-band ratchet tree.
    async fn store_tree(&self, tree: &[u8]) -> Result<(TreeRef, String), WelcomeError> {
        let sealed =
            crate::attachment::seal(tree).map_err(|e| WelcomeError::Seal(e.to_string()))?;
        let (blob, rkey) = self
            .upload_referenced_rkey(sealed.ciphertext.clone())
            .await
            .map_err(|e| match e {
                Error::Transport(t) => WelcomeError::TreeUpload(t),
                other => WelcomeError::TreeUpload(TransportError::Malformed(other.to_string())),
            })?;
        let tree = TreeRef {
            did: self.did().clone(),
            cid: blob.cid,
            key: sealed.key,
            nonce: sealed.nonce,
            digest: sealed.digest,
            size: u64::try_from(tree.len()).unwrap_or(u64::MAX),
        };
        Ok((tree, rkey))
    }

    /// Seals and deposits the welcome of an accepted commit to each new device's inbox;
    /// returns (and emits as [`Event::WelcomeUndelivered`]) those not delivered.
    pub(crate) async fn send_welcomes(
        &self,
        st: &mut State,
        group: &GroupId,
        ds: &Did,
        mailbox: &MailboxId,
        plan: &WelcomePlan,
        from_seq: u64,
    ) -> Vec<UndeliveredWelcome> {
        let mut info = WelcomeInfo {
            welcome: plan.welcome.clone(),
            ds: ds.clone(),
            mailbox: *mailbox,
            from_seq,
            ratchet_tree: None,
        };
        let mut failed = Vec::new();
        // How long the welcome (and its out-of-band tree) can be used (§11.4).
        let now = self.inner.config.clock.now();
        let retention = self
            .ds_limits(ds)
            .await
            .and_then(|l| l.group_retention_seconds);
        let not_afters: Vec<u64> = plan.targets.iter().map(|t| t.not_after).collect();
        let usable_until = super::tree_blobs::delete_at(now, retention, &not_afters);
        let tree = match &plan.ratchet_tree {
            Some(tree) if !plan.targets.is_empty() => match self.store_tree(tree).await {
                Ok((tree, rkey)) => {
                    if let Err(e) = super::tree_blobs::record(&st.conn, &rkey, usable_until) {
                        tracing::warn!(error = %e, "tree record kept without a deadline");
                    }
                    Ok(Some(tree))
                }
                Err(e) => Err(e),
            },
            _ => Ok(None),
        };
        for target in &plan.targets {
            let outcome = match &tree {
                Ok(t) => {
                    info.ratchet_tree = t.clone();
                    let sealed = seal_for(st, target, &info);
                    let max = match Did::new(target.inbox_ds.clone()) {
                        Ok(ds) => self.envelope_limit(&ds).await,
                        Err(_) => self.inner.config.max_envelope_bytes,
                    };
                    self.send_one(sealed, max).await
                }
                Err(e) => Err(e.clone()),
            };
            if let Err(reason) = outcome {
                // No DID in logs (the event names the account to the application).
                tracing::warn!(error = %reason, "welcome not delivered");
                // A transient failure: kept and resent during `sync` (§11.4).
                let retried = self.inner.config.welcome_attempts > 1
                    && super::resend::retryable(&reason)
                    && {
                        let wait = super::resend::backoff(
                            self.inner.config.retry_backoff,
                            self.inner.config.max_retry_backoff,
                            1,
                        );
                        super::resend::keep(
                            &st.conn,
                            &group.0,
                            target,
                            &info,
                            now.saturating_add(wait),
                            usable_until,
                        )
                        .unwrap_or(false)
                    };
                failed.push(UndeliveredWelcome {
                    did: target.did.clone(),
                    inbox_ds: target.inbox_ds.clone(),
                    reason,
                    retried,
                });
            }
        }
        let events: Vec<Event> = failed
            .iter()
            .map(|u| Event::WelcomeUndelivered {
                group: group.clone(),
                welcome: u.clone(),
            })
            .collect();
        self.emit(&events);
        failed
    }

    pub(super) async fn send_one(
        &self,
        sealed: Result<(Did, MailboxId, Vec<u8>), WelcomeError>,
        max: usize,
    ) -> Result<(), WelcomeError> {
        let (inbox_ds, inbox, sealed) = sealed?;
        if sealed.len() > max {
            return Err(WelcomeError::TooLarge {
                bytes: sealed.len(),
                max,
            });
        }
        let payload = content::pad(sealed, max);
        self.inner
            .ds
            .send_welcome(&inbox_ds, &inbox, payload)
            .await
            .map(|_| ())
            .map_err(WelcomeError::Refused)
    }

    /// Fetches an out-of-band ratchet tree from its PDS, checks size and digest and
    /// decrypts it.
    pub(crate) async fn fetch_tree(&self, tree: &TreeRef) -> Result<Vec<u8>, Error> {
        let bytes = self.inner.pds.blob(&tree.did, &tree.cid).await?;
        open_tree(tree, &bytes)
    }
}

/// Checks an out-of-band tree blob against its reference and decrypts it.
pub fn open_tree(tree: &TreeRef, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
    let too_big = || Error::RatchetTree(crate::attachment::BlobError::Size);
    let size = i64::try_from(tree.size).map_err(|_| too_big())?;
    let len = usize::try_from(tree.size).map_err(|_| too_big())?;
    if content::padded_len(len, usize::MAX) + 16 != ciphertext.len() {
        return Err(too_big());
    }
    crate::attachment::open_blob(&tree.key, &tree.nonce, &tree.digest, size, ciphertext)
        .map_err(Error::RatchetTree)
}

/// Seals `info` for one target: its inbox DS, inbox and the sealed bytes.
pub(super) fn seal_for(
    st: &State,
    target: &crate::decide::commit::WelcomeTarget,
    info: &WelcomeInfo,
) -> Result<(Did, MailboxId, Vec<u8>), WelcomeError> {
    let suite = openmls::prelude::Ciphersuite::try_from(target.ciphersuite)
        .map_err(|e| WelcomeError::BadTarget(e.to_string()))?;
    let inbox_ds =
        Did::new(target.inbox_ds.clone()).map_err(|e| WelcomeError::BadTarget(e.to_string()))?;
    let inbox = target
        .inbox
        .parse::<MailboxId>()
        .map_err(|_| WelcomeError::BadTarget(format!("inbox {}", target.inbox)))?;
    let sealed = seal::seal_welcome(&st.crypto, suite, &target.init_key, info)
        .map_err(|e| WelcomeError::Seal(e.to_string()))?;
    Ok((inbox_ds, inbox, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attachment::BlobError;

    #[test]
    fn open_tree_checks_size_digest_and_key() {
        let tree = vec![7u8; 1000];
        let sealed = crate::attachment::seal(&tree).unwrap();
        let r = TreeRef {
            did: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
            cid: atmls_repo::cid::raw(&sealed.ciphertext),
            key: sealed.key,
            nonce: sealed.nonce,
            digest: sealed.digest,
            size: 1000,
        };
        assert_eq!(open_tree(&r, &sealed.ciphertext).unwrap(), tree);
        let mut tampered = sealed.ciphertext.clone();
        tampered[5] ^= 1;
        assert!(matches!(
            open_tree(&r, &tampered),
            Err(Error::RatchetTree(BlobError::Digest))
        ));
        assert!(matches!(
            open_tree(&r, &sealed.ciphertext[1..]),
            Err(Error::RatchetTree(BlobError::Size))
        ));
        let wrong_size = TreeRef {
            size: 5000,
            ..r.clone()
        };
        assert!(matches!(
            open_tree(&wrong_size, &sealed.ciphertext),
            Err(Error::RatchetTree(BlobError::Size))
        ));
        let wrong_key = TreeRef { key: [0; 32], ..r };
        assert!(matches!(
            open_tree(&wrong_key, &sealed.ciphertext),
            Err(Error::RatchetTree(BlobError::Decrypt))
        ));
    }
}
