//! A device whose database was lost (docs/spec.md §11.17): the application kept its
//! identity (account and device id) outside the database; a new database for that device
//! id replaces the device's KeyPackage records and asks the account's other devices to
//! re-add it to every group where that device id has a leaf.

use atmls_identity::Did;

use super::rows;
use crate::device::store;
use crate::device::{Device, DeviceConfig, Storage};
use crate::error::Error;
use crate::keypackage::KEY_PACKAGE_COLLECTION;
use crate::transport::{Ds, Pds, RecordWrite};

impl<P: Pds, D: Ds> Device<P, D> {
    /// Creates a new database for a device of this account whose database was lost,
    /// keeping its device id: a new inbox and signature key, the device's old KeyPackage
    /// records replaced by new ones, and a group-less re-entry request sent at each
    /// [`Device::sync`] (on a schedule) to the account's other devices until it is
    /// re-added somewhere. Groups in which no other device of the account is a member
    /// cannot be learnt (nothing outside a member records them): they are lost to it
    /// until someone adds the account again.
    pub async fn restore(
        storage: Storage<'_>,
        pds: P,
        ds: D,
        ds_did: Did,
        device_id: &str,
        config: DeviceConfig,
    ) -> Result<Self, Error> {
        if device_id.is_empty() || device_id.len() > 64 {
            return Err(Error::Protocol("bad device id".into()));
        }
        let device =
            Self::create_inner(storage, pds, ds, ds_did, config, Some(device_id.to_owned()))
                .await?;
        device.forget_old_key_packages().await?;
        let st = device.inner.state.lock().await;
        rows::set_restore(&st.conn, Some((0, 0)))?;
        drop(st);
        Ok(device)
    }

    /// Deletes this device id's KeyPackage records that this database did not publish
    /// (their private keys were lost with the old database).
    async fn forget_old_key_packages(&self) -> Result<(), Error> {
        let own: Vec<String> = {
            let st = self.inner.state.lock().await;
            store::key_packages(&st.conn)?
                .into_iter()
                .map(|r| r.rkey)
                .collect()
        };
        let records = self
            .inner
            .pds
            .list_records(self.did(), KEY_PACKAGE_COLLECTION)
            .await?;
        let stale: Vec<RecordWrite> = records
            .into_iter()
            .filter(|r| r.value["deviceId"].as_str() == Some(self.device_id()))
            .filter(|r| !own.contains(&r.rkey))
            .map(|r| RecordWrite::Delete {
                collection: KEY_PACKAGE_COLLECTION.into(),
                rkey: r.rkey,
            })
            .collect();
        if !stale.is_empty() {
            self.inner.pds.apply_writes(stale).await?;
        }
        Ok(())
    }
}
