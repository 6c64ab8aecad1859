//! The `chat.mls` lexicons the client validates peer data against, embedded at build
//! time from `lexicons/`.

use std::sync::OnceLock;

use atmls_lexicon::schema::{LexiconDoc, Reference};
use atmls_lexicon::syntax::Nsid;
use atmls_lexicon::validate::Catalog;

macro_rules! lexicon {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../lexicons/",
            $path
        ))
    };
}

const DOCS: &[&str] = &[
    lexicon!("chat/mls/defs.json"),
    lexicon!("chat/mls/content.json"),
    lexicon!("chat/mls/keyPackage.json"),
    lexicon!("chat/mls/declaration.json"),
    lexicon!("chat/mls/device.json"),
];

/// The catalog; `None` only if the embedded documents are broken (a build defect that the
/// unit test below catches).
pub(crate) fn catalog() -> Option<&'static Catalog> {
    static CATALOG: OnceLock<Option<Catalog>> = OnceLock::new();
    CATALOG
        .get_or_init(|| {
            let docs = DOCS
                .iter()
                .map(|d| LexiconDoc::from_json(d).ok())
                .collect::<Option<Vec<_>>>()?;
            Catalog::from_docs(docs).ok()
        })
        .as_ref()
}

/// Validates a record value (JSON form, with `$type`) of collection `nsid`.
pub(crate) fn validate_record(nsid: &str, value: &serde_json::Value) -> Result<(), String> {
    let catalog = catalog().ok_or("lexicons not loaded")?;
    let nsid = Nsid::new(nsid).map_err(|e| e.to_string())?;
    catalog
        .validate_record(&nsid, value)
        .map_err(|e| e.to_string())
}

/// Validates an object against the `main` definition of `nsid`.
pub(crate) fn validate_object(nsid: &str, value: &serde_json::Value) -> Result<(), String> {
    let catalog = catalog().ok_or("lexicons not loaded")?;
    let nsid = Nsid::new(nsid).map_err(|e| e.to_string())?;
    let main = Reference::parse(nsid.as_str(), &nsid).ok_or("bad reference")?;
    catalog
        .validate_value(&main, value)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_lexicons_load() {
        assert_eq!(
            super::catalog().expect("lexicons load").len(),
            super::DOCS.len()
        );
    }
}
