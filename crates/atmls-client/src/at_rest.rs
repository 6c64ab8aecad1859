//! The key of the device database (docs/spec.md §11.11, docs/decisions/0021).
//!
//! The device database is encrypted page by page (SQLCipher: AES-256 per page, each page
//! authenticated) with a 256-bit key that is never written to disk. A [`KeySource`] gives
//! the key when the database is created or opened:
//!
//! - [`Passphrase`]: argon2id (memory-hard) over a passphrase and a random salt. The salt
//!   and the cost parameters are not secret: they live beside the database in
//!   `<database>.kdf` (JSON), written when the database is created and read when it is
//!   opened, so that a cost raised later still opens older databases.
//! - [`DatabaseKey`]: a raw key the application keeps elsewhere, e.g. in the operating
//!   system's keyring or a secure element (the reference CLI has no keyring source yet:
//!   headless machines have none).
//!
//! ```
//! use atmls_client::at_rest::{KdfParams, Passphrase};
//!
//! // The defaults are for people; tests ask for the cheap set explicitly.
//! assert_eq!(KdfParams::default().memory_kib(), 64 * 1024);
//! let tests = Passphrase::new("correct horse").with_kdf_params(KdfParams::insecure_for_tests());
//! # let _ = tests;
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A 256-bit database key. Wiped from memory when dropped; never printed.
#[derive(Clone)]
pub struct DatabaseKey(Zeroizing<[u8; 32]>);

impl DatabaseKey {
    /// A key the application got elsewhere (keyring, secure element).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    pub fn random() -> Self {
        Self::from_bytes(rand::random())
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// SQLCipher's raw-key form, `x'<64 hex digits>'` (no key derivation by SQLCipher).
    pub(crate) fn sqlcipher_literal(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "\"x'{}'\"",
            data_encoding::HEXLOWER.encode(self.0.as_slice())
        ))
    }
}

impl fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseKey(..)")
    }
}

/// Where the key of a device database comes from.
pub trait KeySource: fmt::Debug + Send + Sync {
    /// The key of the database at `path`. `creating` is true when the database does not
    /// exist yet: a source that derives the key from a secret records its (non-secret)
    /// parameters then, and reads them back when opening.
    fn key(&self, path: &Path, creating: bool) -> Result<DatabaseKey, KeyError>;
}

impl KeySource for DatabaseKey {
    fn key(&self, _path: &Path, _creating: bool) -> Result<DatabaseKey, KeyError> {
        Ok(self.clone())
    }
}

/// The cost of argon2id (RFC 9106): memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane (RFC 9106 §4's second recommended option, one lane).
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// The most memory a `.kdf` file may ask for (1 GiB): a tampered file must not make
/// opening exhaust the machine.
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// The most passes a `.kdf` file may ask for.
const MAX_ITERATIONS: u32 = 64;
/// The most lanes a `.kdf` file may ask for.
const MAX_PARALLELISM: u32 = 16;

impl KdfParams {
    /// A cost chosen by the application (refused when argon2 refuses it or past the
    /// bounds a `.kdf` file may hold: 1 GiB, 64 passes, 16 lanes).
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, KeyError> {
        let p = Self {
            memory_kib,
            iterations,
            parallelism,
        };
        p.argon2()?;
        Ok(p)
    }

    /// A cheap set (64 KiB, 1 pass) for tests and throw-away demos only: a passphrase
    /// behind it is guessed about a thousand times faster than behind the default. Never
    /// a default; asked for by name.
    pub fn insecure_for_tests() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Memory in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Passes over the memory.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Lanes.
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }

    fn argon2(&self) -> Result<Argon2<'static>, KeyError> {
        if self.memory_kib > MAX_MEMORY_KIB
            || self.iterations > MAX_ITERATIONS
            || self.parallelism > MAX_PARALLELISM
        {
            return Err(KeyError::BadParams("cost past the bounds".into()));
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| KeyError::BadParams(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// A passphrase, stretched with argon2id into the database key.
pub struct Passphrase {
    phrase: Zeroizing<String>,
    params: KdfParams,
}

impl Passphrase {
    /// A passphrase with the default cost ([`KdfParams::default`]).
    pub fn new(phrase: impl Into<String>) -> Self {
        Self {
            phrase: Zeroizing::new(phrase.into()),
            params: KdfParams::default(),
        }
    }

    /// The cost used when a database is created (an existing database keeps the cost
    /// recorded in its `.kdf` file).
    pub fn with_kdf_params(mut self, params: KdfParams) -> Self {
        self.params = params;
        self
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passphrase")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// What `<database>.kdf` holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KdfFile {
    version: u32,
    kdf: String,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    /// 16 random bytes, base64 (standard, padded).
    salt: String,
}

const KDF_FILE_VERSION: u32 = 1;
const KDF_NAME: &str = "argon2id";

/// The path of the KDF parameters beside the database at `path`: `<path>.kdf`.
pub fn kdf_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".kdf");
    PathBuf::from(name)
}

impl KeySource for Passphrase {
    fn key(&self, path: &Path, creating: bool) -> Result<DatabaseKey, KeyError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let file = kdf_path(path);
        let (params, salt) = if creating {
            let salt: [u8; 16] = rand::random();
            let record = KdfFile {
                version: KDF_FILE_VERSION,
                kdf: KDF_NAME.into(),
                memory_kib: self.params.memory_kib,
                iterations: self.params.iterations,
                parallelism: self.params.parallelism,
                salt: b64.encode(salt),
            };
            let text = serde_json::to_vec_pretty(&record)
                .map_err(|e| KeyError::BadParams(e.to_string()))?;
            write_private(&file, &text)?;
            (self.params, salt.to_vec())
        } else {
            let text = match std::fs::read(&file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(KeyError::MissingParams(file));
                }
                Err(e) => return Err(KeyError::Io(e.to_string())),
            };
            let record: KdfFile =
                serde_json::from_slice(&text).map_err(|e| KeyError::BadParams(e.to_string()))?;
            if record.version != KDF_FILE_VERSION || record.kdf != KDF_NAME {
                return Err(KeyError::BadParams(format!(
                    "unknown kdf {} version {}",
                    record.kdf, record.version
                )));
            }
            let salt = b64
                .decode(&record.salt)
                .map_err(|e| KeyError::BadParams(format!("salt: {e}")))?;
            if salt.len() < 16 {
                return Err(KeyError::BadParams("salt shorter than 16 bytes".into()));
            }
            let params = KdfParams {
                memory_kib: record.memory_kib,
                iterations: record.iterations,
                parallelism: record.parallelism,
            };
            (params, salt)
        };
        let mut key = Zeroizing::new([0u8; 32]);
        params
            .argon2()?
            .hash_password_into(self.phrase.as_bytes(), &salt, key.as_mut_slice())
            .map_err(|e| KeyError::BadParams(e.to_string()))?;
        Ok(DatabaseKey(key))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::io::Write as _;
    atmls_fs::private_file(path).map_err(|e| KeyError::Io(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| KeyError::Io(e.to_string()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| KeyError::Io(e.to_string()))
}

/// The key of a device database could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The database exists but its `.kdf` file (salt and cost) does not.
    #[error("no key derivation parameters at {}", .0.display())]
    MissingParams(PathBuf),
    /// The `.kdf` file or the chosen cost is not usable.
    #[error("key derivation parameters: {0}")]
    BadParams(String),
    /// Reading or writing the `.kdf` file failed.
    #[error("key derivation parameters: {0}")]
    Io(String),
    /// The application's own source (keyring, prompt) failed.
    #[error("key source: {0}")]
    Source(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_passphrase_same_key_other_salt_other_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.sqlite");
        let b = dir.path().join("b.sqlite");
        let p = Passphrase::new("pw").with_kdf_params(KdfParams::insecure_for_tests());
        let ka = p.key(&a, true).unwrap();
        assert_eq!(p.key(&a, false).unwrap().as_bytes(), ka.as_bytes());
        let kb = p.key(&b, true).unwrap();
        assert_ne!(
            kb.as_bytes(),
            ka.as_bytes(),
            "each database has its own salt"
        );
        let other = Passphrase::new("wrong");
        assert_ne!(other.key(&a, false).unwrap().as_bytes(), ka.as_bytes());
        // The recorded cost wins over the opener's.
        let text = std::fs::read_to_string(kdf_path(&a)).unwrap();
        assert!(text.contains("\"memoryKib\": 64"), "{text}");
        assert!(!text.contains("pw\""), "the passphrase is not in the file");
    }

    #[test]
    fn missing_or_tampered_params_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.sqlite");
        let p = Passphrase::new("pw");
        assert!(matches!(p.key(&a, false), Err(KeyError::MissingParams(_))));
        std::fs::write(
            kdf_path(&a),
            r#"{"version":1,"kdf":"argon2id","memoryKib":4294967295,"iterations":3,"parallelism":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="}"#,
        )
        .unwrap();
        assert!(matches!(p.key(&a, false), Err(KeyError::BadParams(_))));
        assert!(!format!("{p:?}").contains("pw"));
        assert_eq!(format!("{:?}", DatabaseKey::random()), "DatabaseKey(..)");
    }
}
