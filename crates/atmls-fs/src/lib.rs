//! Owner-only files and directories for secrets and private state.
//!
//! Every file atmls writes holds something another local user must not read: the
//! host's session-signing secret and password hashes, the PLC rotation key, the DS's
//! mailboxes, a device's MLS epoch secrets and signature keys. So every such directory is
//! created `0700` and every such file `0600` — SQLite's `-wal`, `-shm` and `-journal`
//! files included (SQLite gives them the mode of their database file, which is why the
//! database file is created here, owner-only, before SQLite opens it).
//!
//! Existing files and directories with wider modes are tightened with a logged warning;
//! a directory that another user can write to (group- or world-writable, or owned by
//! another user) is refused with [`PrivateError::WritableByOthers`]: whoever can write
//! to it can swap our files for theirs.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let data = dir.path().join("data");
//! atmls_fs::private_dir(&data)?;
//! atmls_fs::private_file(&data.join("secret.sqlite"))?;
//! # #[cfg(unix)]
//! # {
//! use std::os::unix::fs::PermissionsExt as _;
//! let mode = std::fs::metadata(&data)?.permissions().mode() & 0o777;
//! assert_eq!(mode, 0o700);
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The suffixes of the files SQLite keeps beside a database.
pub const SQLITE_SIDE_FILES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// A private directory or file could not be made private.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PrivateError {
    /// Another user can write to the directory (or owns it): refused.
    #[error(
        "{path} can be written by other users ({why}); make it yours and owner-only: chmod 700 {path}"
    )]
    WritableByOthers {
        /// The directory.
        path: String,
        /// Group-writable, world-writable, or owned by another user.
        why: &'static str,
    },
    /// The path exists but is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(String),
    /// Reading, creating or changing the mode failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

impl PrivateError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Creates `path` (and missing parents) owner-only (`0700`), or checks an existing
/// directory: refused if another user can write to it, tightened to `0700` (with a
/// warning) if others can read or enter it.
pub fn private_dir(path: &Path) -> Result<(), PrivateError> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_dir() => {
            return Err(PrivateError::NotADirectory(path.display().to_string()));
        }
        Ok(meta) => return imp::check_dir(path, &meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(PrivateError::io(path)(e)),
    }
    imp::create_dir(path).map_err(PrivateError::io(path))
}

/// Creates `path` empty and owner-only (`0600`) if it does not exist; tightens an
/// existing file to `0600` (with a warning) if others can read or write it.
pub fn private_file(path: &Path) -> Result<(), PrivateError> {
    imp::private_file(path)
}

/// Makes a SQLite database at `path` owner-only before SQLite opens it: the database
/// file itself (created empty if missing, which SQLite treats as a new database) and any
/// existing `-wal`, `-shm` and `-journal` files beside it.
pub fn private_sqlite(path: &Path) -> Result<(), PrivateError> {
    private_file(path)?;
    for side in sqlite_side_files(path) {
        if side.exists() {
            private_file(&side)?;
        }
    }
    Ok(())
}

/// The paths of SQLite's side files of the database at `path`.
pub fn sqlite_side_files(path: &Path) -> Vec<PathBuf> {
    SQLITE_SIDE_FILES
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

#[cfg(unix)]
mod imp {
    use std::fs::{DirBuilder, Metadata, OpenOptions, Permissions};
    use std::io;
    use std::os::unix::fs::PermissionsExt as _;
    use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
    use std::path::Path;

    use super::PrivateError;

    pub(super) fn create_dir(path: &Path) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(0o700).create(path)?;
        // The umask may have narrowed it further, never widened; make it exact.
        std::fs::set_permissions(path, Permissions::from_mode(0o700))
    }

    pub(super) fn check_dir(path: &Path, meta: &Metadata) -> Result<(), PrivateError> {
        let mode = meta.mode() & 0o7777;
        let why = if meta.uid() != rustix::process::geteuid().as_raw() {
            Some("owned by another user")
        } else if mode & 0o002 != 0 {
            Some("world-writable")
        } else if mode & 0o020 != 0 {
            Some("group-writable")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(PrivateError::WritableByOthers {
                path: path.display().to_string(),
                why,
            });
        }
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "private directory was readable by other users; tightened to 0700"
            );
            std::fs::set_permissions(path, Permissions::from_mode(0o700))
                .map_err(PrivateError::io(path))?;
        }
        Ok(())
    }

    pub(super) fn private_file(path: &Path) -> Result<(), PrivateError> {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(PrivateError::io(path)(e)),
        }
        let meta = std::fs::metadata(path).map_err(PrivateError::io(path))?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "private file was open to other users; tightened to 0600"
            );
            std::fs::set_permissions(path, Permissions::from_mode(0o600))
                .map_err(PrivateError::io(path))?;
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod imp {
    use std::fs::Metadata;
    use std::io;
    use std::path::Path;

    use super::PrivateError;

    pub(super) fn create_dir(path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    pub(super) fn check_dir(_path: &Path, _meta: &Metadata) -> Result<(), PrivateError> {
        Ok(())
    }

    pub(super) fn private_file(path: &Path) -> Result<(), PrivateError> {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map(drop)
            .map_err(PrivateError::io(path))
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_owner_only_dirs_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        let db = dir.join("x.sqlite");
        private_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
    }

    #[test]
    fn tightens_readable_files_and_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("x.sqlite");
        std::fs::write(&db, b"").unwrap();
        let wal = dir.join("x.sqlite-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_sqlite(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }

    #[test]
    fn refuses_directories_others_can_write() {
        let tmp = tempfile::tempdir().unwrap();
        for (bits, why) in [(0o775, "group-writable"), (0o777, "world-writable")] {
            let dir = tmp.path().join(format!("d{bits:o}"));
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(bits)).unwrap();
            match private_dir(&dir) {
                Err(PrivateError::WritableByOthers { why: w, .. }) => assert_eq!(w, why),
                other => panic!("{bits:o}: {other:?}"),
            }
            // Nothing was changed: the operator decides.
            assert_eq!(mode(&dir), bits);
        }
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, b"").unwrap();
        assert!(matches!(
            private_dir(&f),
            Err(PrivateError::NotADirectory(_))
        ));
    }
}
