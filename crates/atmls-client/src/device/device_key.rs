//! This device's long-term device key (docs/spec.md §11.16): an Ed25519 key kept in the
//! device database, published in the account's repo as `chat.mls.device/<deviceId>`,
//! which signs the device binding of every leaf the device uses. The latest proof of
//! that record (its `getRecord` CAR) is kept with it and travels in every binding.

use atmls_lexicon::chat::mls::device;
use atmls_lexicon::generated::KnownRecord;
use atrium_api::types::string::Datetime;
use ed25519_dalek::SigningKey;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::store::exec;
use super::{Device, State};
use crate::error::{Error, StoreError};
use crate::group::DEVICE_COLLECTION;
use crate::group::binding::Binder;
use crate::transport::{Ds, Pds, RecordWrite};

/// This module's table (its own migration step: created if missing, never altered).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS atmls_device_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL,
    proof BLOB NOT NULL
);
";

/// The device key and the latest proof of its record (empty until published).
fn load(conn: &Connection) -> Result<Option<(SigningKey, Vec<u8>)>, StoreError> {
    let row = conn
        .query_row("SELECT secret, proof FROM atmls_device_key", [], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    row.map(|(secret, proof)| {
        let secret: [u8; 32] = secret
            .try_into()
            .map_err(|_| StoreError::Corrupt("device key"))?;
        Ok((SigningKey::from_bytes(&secret), proof))
    })
    .transpose()
}

fn save(conn: &Connection, key: &SigningKey, proof: &[u8]) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO atmls_device_key (id, secret, proof) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET secret = excluded.secret, proof = excluded.proof",
        params![key.to_bytes().as_slice(), proof],
    )?;
    Ok(())
}

/// The `chat.mls.device` record value (generated type, `$type` first).
fn record(device_id: &str, key: &SigningKey) -> Result<serde_json::Value, Error> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        Error::from(StoreError::Device(format!("device record: {what}: {e}")))
    };
    let data = device::RecordData {
        device_id: device_id.to_owned(),
        device_key: key.verifying_key().to_bytes().to_vec().into(),
        created_at: crate::keypackage::build::datetime(chrono::Utc::now())
            .parse::<Datetime>()
            .map_err(|e| invalid("datetime", &e))?,
    };
    serde_json::to_value(KnownRecord::from(data)).map_err(|e| invalid("encode", &e))
}

impl State {
    /// What this device signs its leaves' bindings with. A device whose record is not
    /// published yet has none ([`Device::publish_device_record`] runs first).
    pub(crate) fn binder(&self) -> Result<Binder, Error> {
        match load(&self.conn)? {
            Some((key, proof)) if !proof.is_empty() => Ok(Binder {
                key,
                did: self.row.did.clone(),
                device_id: self.row.device_id.clone(),
                proof,
            }),
            _ => Err(StoreError::Device("the device record is not published yet".into()).into()),
        }
    }
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Makes sure this device has a device key, its `chat.mls.device` record is in the
    /// account's repo, and a proof of it is kept: creates the key (first time), the
    /// record (unless a previous attempt already wrote it) and fetches the proof.
    pub(crate) async fn publish_device_record(&self, st: &mut State) -> Result<(), Error> {
        let key = match load(&st.conn)? {
            Some((_, proof)) if !proof.is_empty() => return Ok(()),
            Some((key, _)) => key,
            None => {
                let key = SigningKey::from_bytes(&rand::random());
                save(&st.conn, &key, &[])?;
                key
            }
        };
        let did = st.did.clone();
        let device_id = st.row.device_id.clone();
        let listed = self.inner.pds.list_records(&did, DEVICE_COLLECTION).await?;
        if !listed.iter().any(|r| r.rkey == device_id) {
            self.inner
                .pds
                .apply_writes(vec![RecordWrite::Create {
                    collection: DEVICE_COLLECTION.into(),
                    rkey: device_id.clone(),
                    value: record(&device_id, &key)?,
                }])
                .await?;
        }
        let proof = self
            .inner
            .pds
            .record_proof(&did, DEVICE_COLLECTION, &device_id)
            .await?;
        save(&st.conn, &key, &proof)?;
        Ok(())
    }
}
