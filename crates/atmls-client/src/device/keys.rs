//! This device's KeyPackages in the repo, and other accounts' KeyPackages, verified.

use std::collections::{BTreeMap, HashMap};

use atmls_identity::Did;
use openmls::prelude::Ciphersuite;
use openmls_traits::OpenMlsProvider as _;
use openmls_traits::storage::StorageProvider as _;

use super::store::{self, KeyPackageRow};
use super::{Device, State};
use crate::error::{Error, KeyPackageRefusal, TransportError};
use crate::keypackage::{
    DECLARATION_COLLECTION, KEY_PACKAGE_COLLECTION, VerifiedKeyPackage, build_key_package,
    prove_record, verify_key_package,
};
use crate::transport::{DidStatus, Ds, GatheredRecords, Pds, RecordWrite};

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
        let (ds, now) = {
            let st = self.inner.state.lock().await;
            (st.row.inbox_ds.clone(), st.unix_ms())
        };
        let suites: Vec<u16> = self.suites().into_iter().map(u16::from).collect();
        let value = crate::keypackage::declaration_record(
            &ds,
            &self.inner.config.invite_policy,
            &suites,
            crate::keypackage::build::utc(now),
        )?;
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

    /// The suites this device publishes KeyPackages in and accepts, preferred first
    /// (docs/spec.md §11.19).
    pub fn suites(&self) -> Vec<openmls::prelude::Ciphersuite> {
        self.inner.config.suite_policy.suites()
    }

    /// Keeps one last-resort and the configured number of one-time KeyPackages published
    /// in each suite of [`Self::suites`],
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

    /// Replaces every published KeyPackage ([`Self::rotate_key_packages`] with the lock
    /// held).
    pub(crate) async fn replenish_all(&self, st: &mut State) -> Result<(), Error> {
        self.replenish_before(st, i64::MAX).await
    }

    pub(crate) async fn replenish_locked(&self, st: &mut State) -> Result<(), Error> {
        let renewal = self.inner.config.key_package_renewal.as_secs();
        let renew_before = st
            .unix_now()
            .saturating_add(i64::try_from(renewal).unwrap_or(0));
        self.replenish_before(st, renew_before).await
    }

    /// Replaces the packages expiring before `renew_before` (Unix seconds) or in a suite
    /// the device no longer speaks, and tops up each suite.
    async fn replenish_before(&self, st: &mut State, renew_before: i64) -> Result<(), Error> {
        let cfg = &self.inner.config;
        let suites = self.suites();
        let rows = store::key_packages(&st.conn)?;
        let (stale, fresh): (Vec<KeyPackageRow>, Vec<KeyPackageRow>) =
            rows.into_iter().partition(|r| {
                r.expires_at <= renew_before
                    || !suites.iter().any(|s| u16::from(*s) == r.ciphersuite)
            });
        // (suite, last resort) of each package to build.
        let mut wanted = Vec::new();
        for suite in &suites {
            let code = u16::from(*suite);
            let mine = fresh.iter().filter(|r| r.ciphersuite == code);
            if !mine.clone().any(|r| r.last_resort) {
                wanted.push((*suite, true));
            }
            let one_time = mine.filter(|r| !r.last_resort).count();
            let need = cfg.one_time_key_packages.saturating_sub(one_time);
            wanted.extend(std::iter::repeat_n((*suite, false), need));
        }
        if stale.is_empty() && wanted.is_empty() {
            return Ok(());
        }
        // Every package's leaf carries the device binding (§11.16), with a fresh proof of
        // the device record (rotations in groups use it from then on).
        // (A device key made here binds the packages built next.)
        self.publish_device_record(st, true).await?;
        let mut tids = atmls_syntax::TidGenerator::default();
        let now = st.unix_ms();
        let built = st.transaction(|st| {
            let signer = st.signer(&st.row.signature_public.clone())?;
            let binder = st.binder()?;
            let mailbox = atmls_ds_proto::MailboxId::from_bytes(st.row.inbox_mailbox).to_string();
            let mut built = Vec::new();
            for &(suite, last_resort) in &wanted {
                let params = crate::keypackage::build::KeyPackageParams {
                    ciphersuite: suite,
                    did: &st.row.did,
                    device_id: &st.row.device_id,
                    inbox_ds: &st.row.inbox_ds,
                    inbox_mailbox: &mailbox,
                    lifetime_secs: cfg.key_package_lifetime.as_secs(),
                    last_resort,
                    binder: &binder,
                    now,
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
                        ciphersuite: u16::from(suite),
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
    /// the last-resort one, in this device's most preferred suite the other device has),
    /// each proven against the account's repo (§3.3). Devices whose every package is
    /// refused are left out; if none is usable the error says why.
    pub async fn key_packages_of(&self, did: &Did) -> Result<Vec<VerifiedKeyPackage>, Error> {
        let mut st = self.inner.state.lock().await;
        let suites = self.suites();
        let offers = self
            .offers_locked(&mut st, std::slice::from_ref(did))
            .await?;
        Ok(offers
            .into_iter()
            .flat_map(|(_, by_device)| by_device.into_values())
            .filter_map(|kps| {
                suites.iter().find_map(|s| {
                    kps.iter()
                        .find(|k| k.key_package.ciphersuite() == *s)
                        .cloned()
                })
            })
            .collect())
    }

    /// Every verified KeyPackage of `did`, in every suite this client implements, each
    /// proven against the account's repo (§3.3; this device's own are left out).
    pub async fn all_key_packages_of(&self, did: &Did) -> Result<Vec<VerifiedKeyPackage>, Error> {
        let mut st = self.inner.state.lock().await;
        let offers = self
            .offers_locked(&mut st, std::slice::from_ref(did))
            .await?;
        Ok(offers
            .into_iter()
            .flat_map(|(_, by_device)| by_device.into_values().flatten())
            .collect())
    }

    /// One usable KeyPackage in `suite` per device of each account ([`pick`] over
    /// [`Self::offers_locked`]).
    pub(crate) async fn key_packages_locked(
        &self,
        st: &mut State,
        dids: &[Did],
        suite: Ciphersuite,
    ) -> Result<Vec<VerifiedKeyPackage>, Error> {
        let offers = self.offers_locked(st, dids).await?;
        pick(offers, suite)
    }

    /// Every usable KeyPackage per device of each account, declarations checked. The
    /// proofs are gathered in one `getKeyPackages` request to this device's DS (§6);
    /// an account the DS could not answer for, or whose gathered proofs do not give a
    /// usable package, is read from its own PDS instead.
    pub(crate) async fn offers_locked(
        &self,
        st: &mut State,
        dids: &[Did],
    ) -> Result<Vec<(Did, DeviceOffers)>, Error> {
        let mut gathered = self.gather(st, dids).await;
        let mut out = Vec::new();
        for did in dids {
            let mut by_device = None;
            if let Some(g) = gathered.remove(did) {
                match self.verified(st, did, true, Some(g)).await {
                    Ok(v) => by_device = Some(v),
                    // A proven declaration's answer stands.
                    Err(e @ Error::InviteRefused { .. }) => return Err(e),
                    // The error's text may name the DID: not logged.
                    Err(_) => tracing::debug!("gathered proofs unusable; reading the PDS"),
                }
            }
            let by_device = match by_device {
                Some(v) => v,
                None => self.verified(st, did, true, None).await?,
            };
            let mut by_device = by_device;
            for packages in by_device.values_mut() {
                st.drop_used_key_packages(packages)?;
            }
            by_device.retain(|_, packages| !packages.is_empty());
            // Every device's packages were one-time ones this device already used.
            if by_device.is_empty() {
                return Err(Error::NoKeyPackage {
                    did: did.clone(),
                    last: Some(KeyPackageRefusal::Used),
                });
            }
            out.push((did.clone(), by_device));
        }
        Ok(out)
    }

    /// `getKeyPackages` from this device's DS, in requests of at most 100 DIDs: the
    /// accounts it answered `ok` for. Nothing is trusted yet; a DS that cannot answer
    /// gives an empty map.
    async fn gather(&self, st: &State, dids: &[Did]) -> HashMap<Did, GatheredRecords> {
        let mut out = HashMap::new();
        let Ok(ds) = Did::new(st.row.inbox_ds.clone()) else {
            return out;
        };
        for chunk in dids.chunks(100) {
            match self.inner.ds.key_packages(&ds, chunk).await {
                Ok(results) => out.extend(
                    results
                        .into_iter()
                        .filter(|r| r.status == DidStatus::Ok && chunk.contains(&r.did))
                        .map(|r| (r.did.clone(), r)),
                ),
                Err(e) => tracing::debug!(error = %e, "getKeyPackages unavailable; reading PDSes"),
            }
        }
        out
    }

    /// Every verified KeyPackage of `did`, per device: its one-time packages in random
    /// order (so that two inviters rarely pick the same one), then its last-resort one.
    /// Proofs come from its PDS.
    pub(crate) async fn key_packages_by_device(
        &self,
        st: &mut State,
        did: &Did,
        check_declaration: bool,
    ) -> Result<DeviceOffers, Error> {
        self.verified(st, did, check_declaration, None).await
    }

    /// Verifies `did`'s declaration (if asked) and KeyPackages from `gathered` proofs, or
    /// from its PDS when `None`.
    async fn verified(
        &self,
        st: &mut State,
        did: &Did,
        check_declaration: bool,
        gathered: Option<GatheredRecords>,
    ) -> Result<BTreeMap<String, Vec<VerifiedKeyPackage>>, Error> {
        let pds = &self.inner.pds;
        // A directory that cannot answer now is a passing failure (§11.14), not a
        // verdict on the account's KeyPackages.
        let doc = pds.resolve(did).await.map_err(|e| match e.kind() {
            crate::error::FailureKind::Transient => Error::Transport(e),
            _ => Error::KeyPackageRefused {
                did: did.clone(),
                reason: KeyPackageRefusal::DidDocument(e.to_string()),
            },
        })?;
        let mut seen = store::rev(&st.conn, did.as_str())?;
        if check_declaration {
            let car = match &gathered {
                Some(g) => g.declaration.as_ref().map(|d| d.proof.clone()),
                None => self.declaration_proof(did).await?,
            };
            let car = car.ok_or_else(|| Error::NoDeclaration(did.clone()))?;
            let (rev, policy) = proven_declaration(&doc, did, seen.as_deref(), &car)?;
            if seen.as_deref().is_none_or(|s| rev.as_str() > s) {
                seen = Some(rev);
            }
            if policy != "anyone" && did != self.did() {
                return Err(Error::InviteRefused {
                    did: did.clone(),
                    policy,
                });
            }
        }
        // Candidate proofs (rkey, CAR): unverified until checked below.
        let mut candidates = Vec::new();
        match gathered {
            Some(g) => {
                let prefix = format!("at://{did}/{KEY_PACKAGE_COLLECTION}/");
                for r in g.key_packages {
                    if let Some(rkey) = r.uri.strip_prefix(&prefix) {
                        candidates.push((rkey.to_owned(), r.proof));
                    }
                }
            }
            None => {
                for r in pds.list_records(did, KEY_PACKAGE_COLLECTION).await? {
                    let device = r.value["deviceId"].as_str().unwrap_or_default();
                    if did == self.did() && device == self.device_id() {
                        continue;
                    }
                    let car = pds
                        .record_proof(did, KEY_PACKAGE_COLLECTION, &r.rkey)
                        .await?;
                    candidates.push((r.rkey, car));
                }
            }
        }
        let now = st.unix_now();
        let mut devices: BTreeMap<String, Vec<(bool, u64, VerifiedKeyPackage)>> = BTreeMap::new();
        let mut last = None;
        for (rkey, car) in candidates {
            match verify_key_package(
                &st.crypto,
                &doc,
                did,
                &rkey,
                &car,
                seen.as_deref(),
                crate::suite::ALL,
                now,
            ) {
                Ok(v) if did == self.did() && v.device_id == self.device_id() => {}
                Ok(v) => {
                    if seen.as_deref().is_none_or(|s| v.rev.as_str() > s) {
                        seen = Some(v.rev.clone());
                    }
                    devices.entry(v.device_id.clone()).or_default().push((
                        v.last_resort,
                        rand::random(),
                        v,
                    ));
                }
                Err(reason) => last = Some(reason),
            }
        }
        if let Some(rev) = &seen {
            store::set_rev(&st.conn, did.as_str(), rev)?;
        }
        if devices.is_empty() {
            return Err(Error::NoKeyPackage {
                did: did.clone(),
                last,
            });
        }
        Ok(devices
            .into_iter()
            .map(|(device, mut kps)| {
                kps.sort_by_key(|(last_resort, order, _)| (*last_resort, *order));
                (device, kps.into_iter().map(|(_, _, v)| v).collect())
            })
            .collect())
    }

    /// The proof of `did`'s declaration from its PDS (`None`: there is none).
    async fn declaration_proof(&self, did: &Did) -> Result<Option<Vec<u8>>, Error> {
        match self
            .inner
            .pds
            .record_proof(did, DECLARATION_COLLECTION, "self")
            .await
        {
            Ok(car) => Ok(Some(car)),
            // A PDS that answers "not found" instead of proving absence.
            Err(TransportError::Xrpc { error, .. }) if error == "RecordNotFound" => Ok(None),
            Err(e) => Err(e.into()),
        }
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

/// Each device's verified KeyPackages (one-time ones first), by `deviceId`.
pub(crate) type DeviceOffers = BTreeMap<String, Vec<VerifiedKeyPackage>>;

/// One KeyPackage in `suite` per device (the first one offered). A device with none in
/// `suite` is [`Error::SuiteMissing`], naming it: a group never changes suite for a
/// device (§11.19).
pub(crate) fn pick(
    offers: Vec<(Did, DeviceOffers)>,
    suite: Ciphersuite,
) -> Result<Vec<VerifiedKeyPackage>, Error> {
    let mut out = Vec::new();
    for (did, by_device) in offers {
        for (device_id, kps) in by_device {
            match kps
                .into_iter()
                .find(|k| k.key_package.ciphersuite() == suite)
            {
                Some(k) => out.push(k),
                None => {
                    return Err(Error::SuiteMissing {
                        did,
                        device_id,
                        suite: u16::from(suite),
                    });
                }
            }
        }
    }
    Ok(out)
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

/// `did`'s declaration, proven against its repo like a KeyPackage (§3.3 steps 1–7 and
/// the lexicon, with the same freshness rule): its revision and `invitePolicy`.
fn proven_declaration(
    doc: &atmls_identity::DidDocument,
    did: &Did,
    seen: Option<&str>,
    car: &[u8],
) -> Result<(String, String), Error> {
    let refused = |reason| Error::DeclarationRefused {
        did: did.clone(),
        reason,
    };
    let (rev, record) =
        prove_record(doc, did, DECLARATION_COLLECTION, "self", car).map_err(refused)?;
    let rev = rev.to_string();
    if let Some(seen) = seen
        && rev.as_str() < seen
    {
        return Err(refused(KeyPackageRefusal::StaleRevision {
            proof: rev,
            seen: seen.to_owned(),
        }));
    }
    let record = record.ok_or_else(|| Error::NoDeclaration(did.clone()))?;
    // An unknown policy counts as `none` (§3).
    let policy = record["invitePolicy"].as_str().unwrap_or("none").to_owned();
    Ok((rev, policy))
}
