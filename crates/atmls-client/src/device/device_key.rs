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

/// Whether a well-formed device key and a proof of its record are stored: what
/// [`State::binder`] needs, asked without loading the key (deriving its public key is a
/// base-point multiplication, and `sync()` asks on every call).
fn bound(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT length(secret) = 32 AND length(proof) > 0 FROM atmls_device_key")?
        .query_row([], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
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

/// The `chat.mls.device` record value (generated type, `$type` first), created at
/// `now_ms` (the device clock).
fn record(device_id: &str, key: &SigningKey, now_ms: i64) -> Result<serde_json::Value, Error> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        Error::from(StoreError::Device(format!("device record: {what}: {e}")))
    };
    let data = device::RecordData {
        device_id: device_id.to_owned(),
        device_key: key.verifying_key().to_bytes().to_vec().into(),
        created_at: crate::keypackage::build::datetime(crate::keypackage::build::utc(now_ms))
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

    /// Whether [`Self::binder`] would succeed (a database error counts as no), without
    /// loading the key.
    pub(crate) fn is_bound(&self) -> bool {
        bound(&self.conn).unwrap_or(false)
    }
}

impl<P: Pds, D: Ds> Device<P, D> {
    /// Makes sure the device's record is published (a database from before device keys,
    /// or whose key was lost, gets a new key); when it was, replaces every KeyPackage,
    /// whose leaves were bound by no key or another one. A transport failure is logged and
    /// tried again at the next sync.
    pub(crate) async fn bind_device(&self, st: &mut State) -> Result<(), Error> {
        let rebound = match self.publish_device_record(st, false).await {
            Ok(rebound) => rebound,
            Err(e) => return super::sync::own_step_failed(e, "device record not published"),
        };
        if rebound && let Err(e) = self.replenish_all(st).await {
            super::sync::own_step_failed(e, "KeyPackages not rebound")?;
        }
        Ok(())
    }

    /// Makes sure this device has a device key, its `chat.mls.device` record is in the
    /// account's repo, and a proof of it is kept: creates the key (first time), the
    /// record (unless a previous attempt already wrote it) and fetches the proof. With
    /// `refresh`, a kept proof is fetched again (the account's `#atproto` key may have
    /// changed since, §11.16.7): bindings made from then on carry the new one. `true`
    /// when the record was (re)published: KeyPackages bound before are then stale.
    pub(crate) async fn publish_device_record(
        &self,
        st: &mut State,
        refresh: bool,
    ) -> Result<bool, Error> {
        // The common case (every sync): published, nothing to refresh.
        if !refresh && bound(&st.conn)? {
            return Ok(false);
        }
        let key = match load(&st.conn)? {
            Some((_, proof)) if !proof.is_empty() && !refresh => return Ok(false),
            Some((key, proof)) if !proof.is_empty() => {
                let proof = self
                    .inner
                    .pds
                    .record_proof(&st.did, DEVICE_COLLECTION, &st.row.device_id)
                    .await?;
                save(&st.conn, &key, &proof)?;
                return Ok(false);
            }
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
        // A record written by an earlier attempt with this key stays; one holding another
        // key (this device's key was lost) is deleted first (a repo takes one write per
        // path in a commit; if the create then fails, the next attempt creates it).
        let value = record(&device_id, &key, st.unix_ms())?;
        let existing = listed.iter().find(|r| r.rkey == device_id);
        if existing.is_none_or(|r| r.value.get("deviceKey") != value.get("deviceKey")) {
            if existing.is_some() {
                self.inner
                    .pds
                    .apply_writes(vec![RecordWrite::Delete {
                        collection: DEVICE_COLLECTION.into(),
                        rkey: device_id.clone(),
                    }])
                    .await?;
            }
            self.inner
                .pds
                .apply_writes(vec![RecordWrite::Create {
                    collection: DEVICE_COLLECTION.into(),
                    rkey: device_id.clone(),
                    value,
                }])
                .await?;
        }
        let proof = self
            .inner
            .pds
            .record_proof(&did, DEVICE_COLLECTION, &device_id)
            .await?;
        save(&st.conn, &key, &proof)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bound` says yes exactly when `load` finds a key with a non-empty proof.
    #[test]
    fn bound_agrees_with_load() {
        let conn = Connection::open_in_memory().expect("sqlite");
        conn.execute_batch(SCHEMA).expect("schema");
        let agrees = |conn: &Connection| {
            let by_load = matches!(load(conn), Ok(Some((_, p))) if !p.is_empty());
            assert_eq!(bound(conn).expect("query"), by_load);
            by_load
        };
        assert!(!agrees(&conn), "no key yet");
        let key = SigningKey::from_bytes(&[7; 32]);
        save(&conn, &key, &[]).expect("save");
        assert!(!agrees(&conn), "a key whose record is not published");
        save(&conn, &key, b"proof car").expect("save");
        assert!(agrees(&conn), "a key and its proof");
        conn.execute("UPDATE atmls_device_key SET secret = ?1", [vec![7u8; 31]])
            .expect("update");
        assert!(!agrees(&conn), "a corrupt key is not a binder");
    }
}
