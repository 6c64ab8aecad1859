//! Acting on a re-entry request found in the inbox (docs/spec.md §11.17): every check
//! that needs no network first (so a hostile request costs a lookup at most, never a
//! commit), then the requester's KeyPackage through the normal verified path, its
//! signature, and one commit per group removing the stale leaf and adding the package.

use openmls_traits::OpenMlsProvider as _;
use openmls_traits::storage::StorageProvider as _;

use super::is_broken;
use super::rows;
use crate::decide::commit::Intent;
use crate::device::store::{self, GroupRow, KeyPackageRow};
use crate::device::{Device, State};
use crate::error::{Error, StoreError};
use crate::event::Event;
use crate::group::reentry::{self, ReentryRefusal, ReentryRequest};
use crate::group::{self as grp, GroupId};
use crate::keypackage::VerifiedKeyPackage;
use crate::transport::{Ds, Pds};

/// Opens a sealed request with one of this device's KeyPackages (which it does not
/// consume). `Err` is a local storage failure.
fn open(
    st: &State,
    packages: Vec<KeyPackageRow>,
    payload: &[u8],
) -> Result<Option<Vec<u8>>, Error> {
    let provider = st.provider();
    for package in packages {
        let Some(hash_ref) = crate::keypackage::key_package_ref(&package.key_package_ref) else {
            continue;
        };
        let bundle: Option<openmls::prelude::KeyPackageBundle> = provider
            .storage()
            .key_package(&hash_ref)
            .map_err(StoreError::Sqlite)?;
        let Some(bundle) = bundle else { continue };
        if let Some(plain) = reentry::open_reentry(
            &st.crypto,
            bundle.key_package().ciphersuite().hpke_config(),
            bundle.init_private_key(),
            payload,
        ) {
            return Ok(Some(plain));
        }
    }
    Ok(None)
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Decides one sealed re-entry request from the inbox: acted on (a commit per group)
    /// or refused ([`Event::ReentryRefused`]). The caller moves the inbox cursor.
    pub(crate) async fn reentry_item(
        &self,
        st: &mut State,
        payload: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let packages = store::key_packages(&st.conn)?;
        let outcome = match open(st, packages, payload)? {
            None => Err((
                None,
                ReentryRefusal::Malformed("not sealed to this device's KeyPackages".into()),
            )),
            Some(plain) => self.act(st, &plain, events).await?,
        };
        if let Err((group, reason)) = outcome {
            // The reason's text may name the requester's DID: not logged.
            tracing::debug!("re-entry request refused");
            let ev = Event::ReentryRefused { group, reason };
            self.emit(std::slice::from_ref(&ev));
            events.push(ev);
        }
        Ok(())
    }

    /// Checks a request and re-adds its device where it may. `Ok(Err(_))` is a refusal.
    async fn act(
        &self,
        st: &mut State,
        plain: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<Result<(), (Option<GroupId>, ReentryRefusal)>, Error> {
        let (request, signature) = match ReentryRequest::from_cbor(plain) {
            Ok(r) => r,
            Err(reason) => return Ok(Err((None, reason))),
        };
        let named = request.group.as_ref().map(|g| GroupId(g.id.clone()));
        let refuse = |reason| Ok(Err((named.clone(), reason)));
        let me = st.did.clone();
        let sibling = request.did == me;
        if sibling && request.device_id == self.device_id() {
            return refuse(ReentryRefusal::NoRight);
        }
        // The groups to act in, decided from local state only.
        let candidates: Vec<GroupRow> = match &request.group {
            Some(g) => {
                let row = store::group(&st.conn, &g.id)?.filter(|r| {
                    r.active && r.ds == g.ds.as_str() && r.mailbox == *g.mailbox.as_bytes()
                });
                match row {
                    Some(r) if !is_broken(st, &r.group_id)? => vec![r],
                    _ => return refuse(ReentryRefusal::UnknownGroup),
                }
            }
            None if !sibling => return refuse(ReentryRefusal::NoRight),
            None => {
                let mut out = Vec::new();
                for r in store::groups(&st.conn)?.into_iter().filter(|r| r.active) {
                    if !is_broken(st, &r.group_id)? {
                        out.push(r);
                    }
                }
                out
            }
        };
        let mut groups = Vec::new();
        for row in candidates {
            let (has_leaf, admin) = st.with_group(&row.group_id, |_, g| {
                let has_leaf = grp::members(g).iter().any(|m| {
                    m.did == request.did && m.device_id.as_deref() == Some(&request.device_id)
                });
                let admin = grp::group_data(g.extensions()).is_ok_and(|d| d.is_admin(me.as_str()));
                Ok((has_leaf, admin))
            })?;
            let may = sibling || admin;
            if request.group.is_some() {
                if !has_leaf {
                    return refuse(ReentryRefusal::NoLeaf);
                }
                if !may {
                    return refuse(ReentryRefusal::NoRight);
                }
                if rows::acted_on(
                    &st.conn,
                    &row.group_id,
                    request.did.as_str(),
                    &request.device_id,
                    &request.key_package_ref,
                )? {
                    return refuse(ReentryRefusal::AlreadyDone);
                }
            }
            if has_leaf && may {
                groups.push(GroupId(row.group_id));
            }
        }
        if groups.is_empty() {
            return refuse(ReentryRefusal::NoLeaf);
        }
        // The requester's KeyPackages, verified against its repo (§3.3).
        let mut by_device = match self.key_packages_by_device(st, &request.did, false).await {
            Ok(v) => v,
            Err(e @ Error::Transport(_)) => {
                return refuse(ReentryRefusal::KeyPackage(format!("not fetched: {e}")));
            }
            Err(e) => return refuse(ReentryRefusal::KeyPackage(e.to_string())),
        };
        let Some(mut packages) = by_device.remove(&request.device_id) else {
            return refuse(ReentryRefusal::KeyPackage(
                "the device has no published KeyPackage".into(),
            ));
        };
        let crypto = crate::device::store::new_crypto()?;
        let reference = |k: &VerifiedKeyPackage| {
            k.key_package
                .hash_ref(&crypto)
                .map(|r| r.as_slice().to_vec())
                .unwrap_or_default()
        };
        let Some(position) = packages
            .iter()
            .position(|k| k.rkey == request.key_package && reference(k) == request.key_package_ref)
        else {
            return refuse(ReentryRefusal::KeyPackage(
                "the named KeyPackage is not published".into(),
            ));
        };
        let named_package = packages.remove(position);
        let leaf = named_package.key_package.leaf_node();
        let public = leaf.signature_key().as_slice().to_vec();
        let scheme = named_package
            .key_package
            .ciphersuite()
            .signature_algorithm();
        if !request.verify(&st.crypto, scheme, &public, &signature) {
            return refuse(ReentryRefusal::BadSignature);
        }
        // Only packages under the same signature key as the named one; the named one
        // first, one-time ones next, the last-resort one for the rest.
        packages.retain(|k| k.key_package.leaf_node().signature_key().as_slice() == public);
        packages.insert(0, named_package);
        // Not a one-time package this device already used (§11.9), the named one included.
        st.drop_used_key_packages(&mut packages)?;
        let mut acted = false;
        let mut skipped = 0;
        for group in groups {
            // A package in the group's suite only (§11.19): a group never changes suite.
            let suite = st.with_group(&group.0, |_, g| Ok(g.ciphersuite()))?;
            let Some(package) = next_package(&mut packages, suite) else {
                continue;
            };
            let package_ref = reference(&package);
            if rows::acted_on(
                &st.conn,
                &group.0,
                request.did.as_str(),
                &request.device_id,
                &package_ref,
            )? {
                skipped += 1;
                continue;
            }
            // Act on the group's current state: the inbox is read before the groups, and
            // a commit on an epoch that ended unseen is refused (`KeyExpired`).
            let synced = self.sync_group_locked(st, &group).await;
            match self.isolate(st, &group, synced, events)? {
                Some(evs) => {
                    self.emit(&evs);
                    events.extend(evs);
                }
                None => continue,
            }
            let committed = self
                .commit_locked(st, &group, Intent::Readd(Box::new(package)))
                .await;
            if self.isolate(st, &group, committed, events)?.is_some() {
                rows::record_acted(
                    &st.conn,
                    &group.0,
                    request.did.as_str(),
                    &request.device_id,
                    &package_ref,
                    st.unix_ms(),
                )?;
                acted = true;
            }
        }
        // Every group already acted on: a replay. (A commit that failed this time is
        // reported as the group's `Unreachable`; the requester asks again.)
        if !acted && skipped > 0 && request.group.is_some() {
            return refuse(ReentryRefusal::AlreadyDone);
        }
        Ok(Ok(()))
    }
}

/// The next package in `suite` to use: a one-time package once (the named one is first),
/// else the last-resort one again.
fn next_package(
    packages: &mut Vec<VerifiedKeyPackage>,
    suite: openmls::prelude::Ciphersuite,
) -> Option<VerifiedKeyPackage> {
    let in_suite = |k: &VerifiedKeyPackage| k.key_package.ciphersuite() == suite;
    if let Some(i) = packages.iter().position(|k| !k.last_resort && in_suite(k)) {
        return Some(packages.remove(i));
    }
    packages.iter().find(|k| in_suite(k)).cloned()
}
