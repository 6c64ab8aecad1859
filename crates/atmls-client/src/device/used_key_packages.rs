//! One-time KeyPackages of other devices that this device already put in a commit
//! (docs/spec.md §11.9): never used again, since the first join through one deletes its
//! private keys. Each ref is kept until its record's `expiresAt`, after which no
//! committer would pick the package anyway.

use openmls::prelude::KeyPackage;
use openmls_traits::crypto::OpenMlsCrypto;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::error::StoreError;
use crate::keypackage::VerifiedKeyPackage;

/// The table (created with the rest of the device schema).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS atmls_used_key_packages (
    key_package_ref BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
";

/// The KeyPackage's hash ref (`None` if it cannot be computed: such a package is never
/// recorded nor skipped).
fn reference(crypto: &impl OpenMlsCrypto, key_package: &KeyPackage) -> Option<Vec<u8>> {
    key_package
        .hash_ref(crypto)
        .ok()
        .map(|r| r.as_slice().to_vec())
}

/// Records the one-time packages among `packages` as used (last-resort ones may serve
/// many joins and are not recorded), and forgets refs whose record expired by `now`
/// (Unix seconds).
pub(crate) fn record<'a>(
    conn: &Connection,
    crypto: &impl OpenMlsCrypto,
    packages: impl IntoIterator<Item = &'a VerifiedKeyPackage>,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM atmls_used_key_packages WHERE expires_at <= ?1",
        params![now],
    )?;
    for k in packages.into_iter().filter(|k| !k.last_resort) {
        if let Some(r) = reference(crypto, &k.key_package) {
            conn.execute(
                "INSERT INTO atmls_used_key_packages (key_package_ref, expires_at) \
                 VALUES (?1, ?2) ON CONFLICT (key_package_ref) DO UPDATE \
                 SET expires_at = max(expires_at, excluded.expires_at)",
                params![r, k.expires_at],
            )?;
        }
    }
    Ok(())
}

impl super::State {
    /// Drops from `packages` the one-time packages this device already used (§11.9);
    /// the order of the rest is kept.
    pub(crate) fn drop_used_key_packages(
        &self,
        packages: &mut Vec<VerifiedKeyPackage>,
    ) -> Result<(), StoreError> {
        let now = self.unix_now();
        let mut kept = Vec::with_capacity(packages.len());
        for k in packages.drain(..) {
            if !used(&self.conn, &self.crypto, &k, now)? {
                kept.push(k);
            }
        }
        *packages = kept;
        Ok(())
    }
}

/// Whether `package` is a one-time package this device already used (and whose record
/// has not expired by `now`, Unix seconds).
fn used(
    conn: &Connection,
    crypto: &impl OpenMlsCrypto,
    package: &VerifiedKeyPackage,
    now: i64,
) -> Result<bool, StoreError> {
    if package.last_resort {
        return Ok(false);
    }
    let Some(r) = reference(crypto, &package.key_package) else {
        return Ok(false);
    };
    Ok(conn
        .query_row(
            "SELECT 1 FROM atmls_used_key_packages WHERE key_package_ref = ?1 \
             AND expires_at > ?2",
            params![r, now],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
