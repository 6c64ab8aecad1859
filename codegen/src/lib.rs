//! Lexicon documents → Rust types for `atmls-lexicon`.
//!
//! `cargo run -p codegen` reads every lexicon document under `lexicons/` and writes one
//! Rust file per document into `crates/atmls-lexicon/src/gen/`, module path = NSID.
//! `cargo run -p codegen -- --check` regenerates into a temporary directory and fails,
//! naming each file, on any difference from what is checked in.
//!
//! ```
//! let doc = serde_json::json!({
//!     "lexicon": 1,
//!     "id": "com.example.thing",
//!     "defs": { "main": { "type": "object", "properties": { "n": { "type": "integer" } } } }
//! });
//! let doc = codegen::model::parse_doc(&doc).unwrap();
//! let files = codegen::emit::generate(&[doc]).unwrap();
//! assert!(files.iter().any(|f| f.path.ends_with("com/example/thing.rs")));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod emit;
pub mod model;
pub mod names;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Everything that can stop a codegen run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodegenError {
    /// A lexicon document could not be read.
    #[error("lexicon: {0}")]
    Model(#[from] model::ModelError),
    /// A document could not be turned into Rust.
    #[error("lexicon: {0}")]
    Emit(#[from] emit::EmitError),
    /// rustfmt failed or is missing.
    #[error("rustfmt on {file}: {message}")]
    Rustfmt {
        /// The generated file.
        file: String,
        /// What rustfmt said.
        message: String,
    },
    /// Reading or writing files failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// `--check` found generated files that differ from the ones checked in.
    #[error("generated code is out of date; run `cargo run -p codegen`:\n{}", .0.join("\n"))]
    Drift(Vec<String>),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CodegenError + '_ {
    move |source| CodegenError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads the lexicons in `lexicons` and returns every generated file, formatted.
pub fn render(lexicons: &Path) -> Result<BTreeMap<PathBuf, String>, CodegenError> {
    let docs = model::read_dir(lexicons)?;
    let mut out = BTreeMap::new();
    for file in emit::generate(&docs)? {
        let text = rustfmt(&file.path, &file.text)?;
        out.insert(file.path, text);
    }
    Ok(out)
}

/// Formats Rust source with the toolchain's rustfmt (edition 2024), as `cargo fmt` would.
pub fn rustfmt(path: &Path, text: &str) -> Result<String, CodegenError> {
    let fail = |message: String| CodegenError::Rustfmt {
        file: path.display().to_string(),
        message,
    };
    let mut child = Command::new(std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".into()))
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start rustfmt: {e}")))?;
    let mut stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
    let input = text.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    writer
        .join()
        .map_err(|_| fail("writer thread panicked".into()))?
        .map_err(|e| fail(e.to_string()))?;
    if !output.status.success() {
        return Err(fail(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    String::from_utf8(output.stdout).map_err(|e| fail(e.to_string()))
}

/// Writes the generated files into `out`, removing stale `.rs` files there.
pub fn write(lexicons: &Path, out: &Path) -> Result<usize, CodegenError> {
    let files = render(lexicons)?;
    for existing in rust_files(out)? {
        if !files.contains_key(&existing) {
            let path = out.join(&existing);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    for (rel, text) in &files {
        let path = out.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text).map_err(io(&path))?;
        }
    }
    Ok(files.len())
}

/// Regenerates into `scratch` (a temporary directory) and compares with `out`, naming every
/// file that differs, is missing, or should not be there.
pub fn check(lexicons: &Path, out: &Path, scratch: &Path) -> Result<usize, CodegenError> {
    let n = write(lexicons, scratch)?;
    let fresh = rust_files(scratch)?;
    let current = rust_files(out)?;
    let mut drift = Vec::new();
    for rel in fresh
        .iter()
        .chain(current.iter())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let path = out.join(rel);
        match (fresh.contains(rel), current.contains(rel)) {
            (true, false) => drift.push(format!("  missing: {}", path.display())),
            (false, true) => drift.push(format!(
                "  not generated from any lexicon: {}",
                path.display()
            )),
            _ => {
                let a = std::fs::read(scratch.join(rel)).map_err(io(&scratch.join(rel)))?;
                let b = std::fs::read(&path).map_err(io(&path))?;
                if a != b {
                    drift.push(format!("  differs: {}", path.display()));
                }
            }
        }
    }
    if drift.is_empty() {
        Ok(n)
    } else {
        Err(CodegenError::Drift(drift))
    }
}

/// Every `.rs` file under `dir`, relative to it (empty if `dir` does not exist).
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, CodegenError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CodegenError> {
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out)?;
    }
    out.sort();
    Ok(out)
}
