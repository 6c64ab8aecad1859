//! Password hashing with argon2id (memory-hard), in the PHC string format.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};

use crate::error::HostError;

/// Longest password accepted, in bytes (hashing cost grows with length only slightly, but
/// there is no reason to take megabytes).
pub(crate) const MAX_PASSWORD_BYTES: usize = 256;

/// Hashes `password` with a fresh random salt and argon2id's default parameters
/// (19 MiB, 2 passes).
pub(crate) fn hash(password: &str) -> Result<String, HostError> {
    let salt: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt).map_err(HostError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(HostError::internal)
}

/// Whether `password` matches the stored PHC string.
pub(crate) fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash("hunter2").unwrap();
        let b = hash("hunter2").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("hunter2", &a));
        assert!(!verify("hunter3", &a));
        assert!(!verify("hunter2", "not a hash"));
    }
}
