//! Rotating an account's `#atproto` signing key, as a PDS migration does: a new key in
//! the DID's PLC operation log (from `now` on) and in the account row, so that the
//! repo's next commits are signed by it. Earlier commits keep the old signature; clients
//! check a proof against the key in force when it was used (docs/spec.md §11.13).

use atmls_crypto::{Algorithm, SigningKey};
use atmls_identity::PlcDid;
use atmls_syntax::Timestamp;
use rusqlite::params;

use crate::error::HostError;
use crate::host::Host;

impl Host {
    /// Gives the local account `did` a new `#atproto` key from `now` on (a PLC update
    /// signed with the host's rotation key, then the account's key). Returns the new
    /// public key as a did:key. The repo's head stays signed by the old key until its
    /// next write.
    pub fn rotate_signing_key(&self, did: &str, now: Timestamp) -> Result<String, HostError> {
        let plc = PlcDid::new(did).map_err(|_| HostError::AccountNotFound(did.to_owned()))?;
        // No repo write signs with a half-rotated key.
        let lock = self.repo_lock(did);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        self.signing_key(did)?;
        let key = SigningKey::generate(Algorithm::Es256k);
        let did_key = key.public_key().to_did_key();
        let (last, cid) = self
            .directory
            .last_operation(&plc)
            .map_err(HostError::internal)?;
        let mut update = last
            .state(&plc)
            .map_err(HostError::internal)?
            .to_update(&cid);
        update
            .verification_methods
            .insert("atproto".to_owned(), did_key.clone());
        self.directory
            .submit(&plc, update.sign(&self.rotation_key), now)
            .map_err(HostError::internal)?;
        self.db.lock().execute(
            "UPDATE accounts SET key_alg = ?2, signing_key = ?3 WHERE did = ?1",
            params![did, key.algorithm().jwt_name(), key.to_bytes().to_vec()],
        )?;
        Ok(did_key)
    }
}
