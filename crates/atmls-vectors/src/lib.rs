//! The protocol test vectors of `tests/vectors/` (docs/spec.md §14), one JSON file per
//! topic, computed with fixed keys and fixed randomness through the production code of the
//! client, DS, repo and server crates.
//!
//! `cargo run -p atmls-vectors` writes the files; `cargo run -p atmls-vectors -- --check`
//! computes them in memory and fails, naming the file, if any file differs. The
//! independent Python check (`tests/vectors/check.py`) recomputes every expected value
//! from the inputs with its own libraries.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod binding;
mod content;
mod envelopes;
mod extension;
mod hex;
mod mailbox_key;
mod padding;
mod records;
mod reentry;
mod rng;
mod signature;
mod welcome;
mod xwing;

/// Why the vectors could not be computed, written or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VectorError {
    /// A production function refused the fixed inputs.
    #[error("{topic}: {message}")]
    Compute {
        /// The vector file.
        topic: &'static str,
        /// What failed.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file on disk differs from the computed vectors.
    #[error("{path} differs from the computed vectors (run `cargo run -p atmls-vectors`)")]
    Differs {
        /// The file.
        path: PathBuf,
    },
}

pub(crate) fn fail(topic: &'static str, message: impl std::fmt::Display) -> VectorError {
    VectorError::Compute {
        topic,
        message: message.to_string(),
    }
}

/// One vector file: its name in `tests/vectors/` and its JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorFile {
    /// File name, e.g. `records.json`.
    pub name: &'static str,
    /// Pretty-printed JSON with a final newline.
    pub text: String,
}

/// A topic file: `{"topic", "spec", "description", "vectors": [...]}`.
pub(crate) fn topic_file(
    name: &'static str,
    spec: &str,
    description: &str,
    vectors: Vec<Value>,
) -> VectorFile {
    let value = serde_json::json!({
        "topic": name.trim_end_matches(".json"),
        "spec": spec,
        "description": description,
        "vectors": vectors,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    VectorFile { name, text }
}

/// Computes every vector file.
pub fn compute() -> Result<Vec<VectorFile>, VectorError> {
    Ok(vec![
        records::file()?,
        extension::file()?,
        mailbox_key::file()?,
        signature::file()?,
        envelopes::file()?,
        welcome::file()?,
        content::file()?,
        padding::file(),
        reentry::file()?,
        binding::file()?,
        xwing::welcome_file()?,
        xwing::mailbox_key_file()?,
    ])
}

/// The directory the vectors live in: `tests/vectors/` of the workspace.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

/// Writes every file into `dir`.
pub fn write(dir: &Path) -> Result<(), VectorError> {
    for file in compute()? {
        let path = dir.join(file.name);
        std::fs::write(&path, &file.text).map_err(|source| VectorError::Io { path, source })?;
    }
    Ok(())
}

/// Compares every computed file with the one in `dir`; the first difference is an error.
pub fn check(dir: &Path) -> Result<(), VectorError> {
    for file in compute()? {
        let path = dir.join(file.name);
        let on_disk = std::fs::read_to_string(&path).map_err(|source| VectorError::Io {
            path: path.clone(),
            source,
        })?;
        if on_disk != file.text {
            return Err(VectorError::Differs { path });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_on_disk_match_the_computed_vectors() {
        check(&default_dir()).unwrap();
    }

    #[test]
    fn computing_twice_gives_the_same_bytes() {
        assert_eq!(compute().unwrap(), compute().unwrap());
    }
}
