//! Static files beside the XRPC routes: a build folder (the browser device's page, `web/dist`)
//! read once at start and served from memory under one path prefix.
//!
//! Only the regular files directly in the folder are served, each at `<prefix>/<name>`, and
//! `index.html` also at `<prefix>/`: there is no path lookup at request time, so no request
//! can reach a file outside the set read at start. Responses carry `no-cache` (a rebuilt
//! page is picked up at the next start), `nosniff`, `no-referrer`, and HTML a
//! Content-Security-Policy that allows scripts from this origin only and connections to any
//! PDS or delivery service (the page talks to the account's own PDS, wherever it is).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;
use hyper::header::{CACHE_CONTROL, HeaderName, HeaderValue};

use crate::error::XrpcError;
use crate::request::{HttpRequest, XrpcResponse};
use crate::router::Router;

/// The most a static folder may hold in all; more is refused at start.
pub const MAX_STATIC_BYTES: u64 = 32 * 1024 * 1024;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; connect-src 'self' http: https: ws: wss:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/// Why a static folder could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StaticError {
    /// The folder or one of its files could not be read.
    #[error("cannot read the static folder {path}: {source}")]
    Read {
        /// The folder or file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The folder has no `index.html`.
    #[error(
        "the static folder {0} has no index.html (build it first: cd web && npm ci && npm run build)"
    )]
    NoIndex(PathBuf),
    /// The folder holds more than [`MAX_STATIC_BYTES`].
    #[error("the static folder {0} holds more than {MAX_STATIC_BYTES} bytes")]
    TooLarge(PathBuf),
    /// The prefix is not `/` followed by path characters.
    #[error("invalid static path prefix {0:?}: expected e.g. \"/web\"")]
    Prefix(String),
}

/// One file read at start.
#[derive(Debug, Clone)]
struct StaticFile {
    content_type: &'static str,
    bytes: Bytes,
}

/// A folder's files, read once.
#[derive(Debug, Clone)]
pub struct StaticDir {
    files: Vec<(String, StaticFile)>,
}

impl StaticDir {
    /// Reads every regular file directly in `dir` (names of letters, digits, `.`, `-`, `_`;
    /// others are left out). Needs an `index.html`.
    pub fn read(dir: &Path) -> Result<Self, StaticError> {
        let read_err = |path: &Path, source| StaticError::Read {
            path: path.to_owned(),
            source,
        };
        let mut files = Vec::new();
        let mut total = 0u64;
        for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
            let entry = entry.map_err(|e| read_err(dir, e))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let meta = entry.metadata().map_err(|e| read_err(&path, e))?;
            if !meta.is_file() || !plain_name(&name) {
                continue;
            }
            total = total.saturating_add(meta.len());
            if total > MAX_STATIC_BYTES {
                return Err(StaticError::TooLarge(dir.to_owned()));
            }
            let bytes = std::fs::read(&path).map_err(|e| read_err(&path, e))?;
            let content_type = content_type(&name);
            files.push((
                name,
                StaticFile {
                    content_type,
                    bytes: Bytes::from(bytes),
                },
            ));
        }
        if !files.iter().any(|(name, _)| name == "index.html") {
            return Err(StaticError::NoIndex(dir.to_owned()));
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(StaticDir { files })
    }

    /// The names of the files served.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.iter().map(|(n, _)| n.as_str())
    }

    /// Mounts every file at `<prefix>/<name>` and `index.html` also at `<prefix>/`.
    pub fn mount(&self, router: Router, prefix: &str) -> Result<Router, StaticError> {
        if !prefix.starts_with('/')
            || prefix.len() < 2
            || prefix.ends_with('/')
            || prefix.starts_with("/xrpc")
            || !prefix[1..].split('/').all(plain_name)
        {
            return Err(StaticError::Prefix(prefix.to_owned()));
        }
        let mut router = router;
        for (name, file) in &self.files {
            let file = Arc::new(file.clone());
            let at = format!("{prefix}/{name}");
            router = serve_at(router, &at, file.clone());
            if name == "index.html" {
                router = serve_at(router, &format!("{prefix}/"), file);
            }
        }
        Ok(router)
    }
}

fn serve_at(router: Router, path: &str, file: Arc<StaticFile>) -> Router {
    router.path(path, move |req: HttpRequest| {
        let file = file.clone();
        async move { answer(&req, &file) }
    })
}

fn answer(req: &HttpRequest, file: &StaticFile) -> Result<XrpcResponse, XrpcError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(XrpcError::method_not_allowed("only GET is allowed here"));
    }
    let header = |v: &'static str| HeaderValue::from_static(v);
    let mut response = XrpcResponse::bytes(file.content_type, file.bytes.clone())
        .with_header(CACHE_CONTROL, header("no-cache"))
        .with_header(
            HeaderName::from_static("x-content-type-options"),
            header("nosniff"),
        )
        .with_header(
            HeaderName::from_static("referrer-policy"),
            header("no-referrer"),
        );
    if file.content_type.starts_with("text/html") {
        response = response.with_header(
            HeaderName::from_static("content-security-policy"),
            header(CSP),
        );
    }
    Ok(response)
}

fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_plain_set_are_not_served() {
        assert!(plain_name("app.js"));
        assert!(plain_name("index.html"));
        assert!(!plain_name(".env"));
        assert!(!plain_name("a b"));
        assert!(!plain_name("..")); // starts with '.'
        assert!(!plain_name(""));
    }

    #[test]
    fn a_folder_without_index_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.js"), "x").unwrap();
        assert!(matches!(
            StaticDir::read(dir.path()),
            Err(StaticError::NoIndex(_))
        ));
    }

    #[test]
    fn hidden_files_and_subfolders_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>").unwrap();
        std::fs::write(dir.path().join(".secret"), "k").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/x.js"), "x").unwrap();
        let d = StaticDir::read(dir.path()).unwrap();
        assert_eq!(d.names().collect::<Vec<_>>(), vec!["index.html"]);
    }

    #[test]
    fn bad_prefixes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>").unwrap();
        let d = StaticDir::read(dir.path()).unwrap();
        for p in ["", "/", "web", "/web/", "/xrpc", "/a/../b"] {
            let router = Router::new(Catalog::new());
            assert!(
                matches!(d.mount(router, p), Err(StaticError::Prefix(_))),
                "{p:?}"
            );
        }
    }

    use crate::Catalog;
}
