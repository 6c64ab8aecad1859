//! This device's KeyPackages in the repo, and other accounts' KeyPackages, verified.

use std::collections::BTreeMap;

use atmls_identity::Did;
use openmls_traits::OpenMlsProvider as _;
use openmls_traits::storage::StorageProvider as _;

use super::store::{self, KeyPackageRow};
use super::{Device, State};
use crate::error::{Error, KeyPackageRefusal};
use crate::keypackage::{
    DECLARATION_COLLECTION, KEY_PACKAGE_COLLECTION, VerifiedKeyPackage, build_key_package,
    verify_key_package,
};
use crate::transport::{Ds, Pds, RecordWrite};

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Publishes `chat.mls.declaration` unless the account already has one.
    pub async fn publish_declaration(&self) -> Result<(), Error> {
        let did = self.did().clone();
        let existing = self
            .inner
            .pds
            .list_records(&did, DECLARATION_COLLECTION)
            .await?;
        if existing.iter().any(|r| r.rkey == "self") {
            return Ok(());
        }
        let (ds, suite) = {
            let st = self.inner.state.lock().await;
            (st.row.inbox_ds.clone(), st.row.ciphersuite)
        };
        let value = serde_json::json!({
            "$type": DECLARATION_COLLECTION,
            "deliveryService": ds,
            "invitePolicy": self.inner.config.invite_policy,
            "ciphersuites": [suite],
            "createdAt": crate::keypackage::datetime(chrono::Utc::now()),
        });
        self.inner
            .pds
            .apply_writes(vec![RecordWrite::Create {
                collection: DECLARATION_COLLECTION.into(),
                rkey: "self".into(),
                value,
            }])
            .await?;
        Ok(())
    }

    /// Keeps one last-resort and the configured number of one-time KeyPackages published,
    /// replacing those that expire within the renewal window; one repo commit.
    pub async fn replenish_key_packages(&self) -> Result<(), Error> {
        let mut st = self.inner.state.lock().await;
        self.replenish_locked(&mut st).await
    }

    /// Replaces every KeyPackage this device has published with fresh ones (new HPKE
    /// init keys), deleting the old records and their private keys; one repo commit.
    pub async fn rotate_key_packages(&self) -> Result<(), Error> {
        let mut st = self.inner.state.lock().await;
        self.replenish_before(&mut st, i64::MAX).await
    }

    pub(crate) async fn replenish_locked(&self, st: &mut State) -> Result<(), Error> {
        let renewal = self.inner.config.key_package_renewal.as_secs();
        let renew_before = unix_now() + i64::try_from(renewal).unwrap_or(0);
        self.replenish_before(st, renew_before).await
    }

    /// Replaces the packages expiring before `renew_before` (Unix seconds) and tops up.
    async fn replenish_before(&self, st: &mut State, renew_before: i64) -> Result<(), Error> {
        let cfg = &self.inner.config;
        let rows = store::key_packages(&st.conn)?;
        let (stale, fresh): (Vec<KeyPackageRow>, Vec<KeyPackageRow>) =
            rows.into_iter().partition(|r| r.expires_at <= renew_before);
        let need_last_resort = !fresh.iter().any(|r| r.last_resort);
        let one_time = fresh.iter().filter(|r| !r.last_resort).count();
        let need_one_time = cfg.one_time_key_packages.saturating_sub(one_time);
        if stale.is_empty() && !need_last_resort && need_one_time == 0 {
            return Ok(());
        }
        let mut tids = atmls_repo::TidGenerator::default();
        let built = st.transaction(|st| {
            let signer = st.signer(&st.row.signature_public.clone())?;
            let suite = st.ciphersuite()?;
            let mailbox = atmls_ds::MailboxId::from_bytes(st.row.inbox_mailbox).to_string();
            let mut built = Vec::new();
            for last_resort in std::iter::repeat_n(true, usize::from(need_last_resort))
                .chain(std::iter::repeat_n(false, need_one_time))
            {
                let params = crate::keypackage::build::KeyPackageParams {
                    ciphersuite: suite,
                    did: &st.row.did,
                    device_id: &st.row.device_id,
                    inbox_ds: &st.row.inbox_ds,
                    inbox_mailbox: &mailbox,
                    lifetime_secs: cfg.key_package_lifetime.as_secs(),
                    last_resort,
                };
                let b = build_key_package(
                    &st.provider(),
                    &signer,
                    &params,
                    tids.next_now().to_string(),
                )?;
                store::insert_key_package(
                    &st.conn,
                    &KeyPackageRow {
                        key_package_ref: b.key_package_ref.clone(),
                        rkey: b.rkey.clone(),
                        last_resort: b.last_resort,
                        expires_at: b.expires_at,
                    },
                )?;
                built.push(b);
            }
            Ok(built)
        })?;
        let mut writes: Vec<RecordWrite> = built
            .iter()
            .map(|b| RecordWrite::Create {
                collection: KEY_PACKAGE_COLLECTION.into(),
                rkey: b.rkey.clone(),
                value: b.record.clone(),
            })
            .collect();
        writes.extend(stale.iter().map(|r| RecordWrite::Delete {
            collection: KEY_PACKAGE_COLLECTION.into(),
            rkey: r.rkey.clone(),
        }));
        self.inner.pds.apply_writes(writes).await?;
        st.transaction(|st| {
            for r in &stale {
                forget_key_package(st, &r.key_package_ref)?;
            }
            Ok(())
        })?;
        store::checkpoint(&st.conn)?;
        Ok(())
    }

    /// Fetches and verifies `did`'s KeyPackages: one per device (one-time packages before
    /// the last-resort one), each proven against the account's repo (§3.3). Devices whose
    /// every package is refused are left out; if none is usable the error says why.
    pub async fn key_packages_of(&self, did: &Did) -> Result<Vec<VerifiedKeyPackage>, Error> {
        let mut st = self.inner.state.lock().await;
        self.key_packages_locked(&mut st, did, true).await
    }

    pub(crate) async fn key_packages_locked(
        &self,
        st: &mut State,
        did: &Did,
        check_declaration: bool,
    ) -> Result<Vec<VerifiedKeyPackage>, Error> {
        Ok(self
            .key_packages_by_device(st, did, check_declaration)
            .await?
            .into_values()
            .filter_map(|v| v.into_iter().next())
            .collect())
    }

    /// Every verified KeyPackage of `did`, per device: its one-time packages in random
    /// order (so that two inviters rarely pick the same one), then its last-resort one.
    pub(crate) async fn key_packages_by_device(
        &self,
        st: &mut State,
        did: &Did,
        check_declaration: bool,
    ) -> Result<BTreeMap<String, Vec<VerifiedKeyPackage>>, Error> {
        let pds = &self.inner.pds;
        if check_declaration {
            let decl = pds.list_records(did, DECLARATION_COLLECTION).await?;
            let Some(decl) = decl.iter().find(|r| r.rkey == "self") else {
                return Err(Error::NoDeclaration(did.clone()));
            };
            let policy = decl.value["invitePolicy"].as_str().unwrap_or("none");
            if policy != "anyone" && did != self.did() {
                return Err(Error::InviteRefused {
                    did: did.clone(),
                    policy: policy.to_owned(),
                });
            }
        }
        let doc = pds
            .resolve(did)
            .await
            .map_err(|e| Error::KeyPackageRefused {
                did: did.clone(),
                reason: KeyPackageRefusal::DidDocument(e.to_string()),
            })?;
        let listed = pds.list_records(did, KEY_PACKAGE_COLLECTION).await?;
        // Candidates per device id (the listing is only a hint: verified below).
        let mut devices: BTreeMap<String, Vec<(bool, u64, String)>> = BTreeMap::new();
        for r in &listed {
            let device = r.value["deviceId"].as_str().unwrap_or_default().to_owned();
            if did == self.did() && device == self.device_id() {
                continue;
            }
            let last_resort = r.value["lastResort"].as_bool().unwrap_or(true);
            devices
                .entry(device)
                .or_default()
                .push((last_resort, rand::random(), r.rkey.clone()));
        }
        let suite = st.ciphersuite()?;
        let mut seen = store::rev(&st.conn, did.as_str())?;
        let mut out: BTreeMap<String, Vec<VerifiedKeyPackage>> = BTreeMap::new();
        let mut last = None;
        for (device, mut candidates) in devices {
            candidates.sort();
            for (_, _, rkey) in candidates {
                let car = pds.record_proof(did, KEY_PACKAGE_COLLECTION, &rkey).await?;
                match verify_key_package(
                    &st.crypto,
                    &doc,
                    did,
                    &rkey,
                    &car,
                    seen.as_deref(),
                    &[suite],
                    unix_now(),
                ) {
                    Ok(v) => {
                        if seen.as_deref().is_none_or(|s| v.rev.as_str() > s) {
                            seen = Some(v.rev.clone());
                        }
                        out.entry(device.clone()).or_default().push(v);
                    }
                    Err(reason) => last = Some(reason),
                }
            }
        }
        if let Some(rev) = &seen {
            store::set_rev(&st.conn, did.as_str(), rev)?;
        }
        if out.is_empty() {
            return Err(Error::NoKeyPackage {
                did: did.clone(),
                last,
            });
        }
        Ok(out)
    }

    /// After a join through the one-time package `key_package_ref`: delete its record
    /// and publish a replacement.
    pub(crate) async fn consumed_key_package(
        &self,
        st: &mut State,
        key_package_ref: &[u8],
    ) -> Result<(), Error> {
        let Some(row) = store::key_packages(&st.conn)?
            .into_iter()
            .find(|r| r.key_package_ref == key_package_ref)
        else {
            return Ok(());
        };
        if row.last_resort {
            return Ok(());
        }
        st.transaction(|st| forget_key_package(st, key_package_ref))?;
        self.inner
            .pds
            .apply_writes(vec![RecordWrite::Delete {
                collection: KEY_PACKAGE_COLLECTION.into(),
                rkey: row.rkey,
            }])
            .await?;
        self.replenish_locked(st).await
    }
}

/// Deletes a KeyPackage's private keys and our row.
fn forget_key_package(st: &mut State, key_package_ref: &[u8]) -> Result<(), Error> {
    let Some(hash_ref) = crate::keypackage::key_package_ref(key_package_ref) else {
        return Ok(store::delete_key_package(&st.conn, key_package_ref)?);
    };
    st.provider()
        .storage()
        .delete_key_package(&hash_ref)
        .map_err(crate::error::StoreError::Sqlite)?;
    store::delete_key_package(&st.conn, key_package_ref)?;
    Ok(())
}
