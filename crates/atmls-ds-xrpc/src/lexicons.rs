//! The `chat.mls` lexicons the DS routes validate against: the copies compiled into
//! `atmls-lexicon` (so a DS binary needs no lexicon files at run time).

use atmls_lexicon::schema::LexiconDoc;
use atmls_lexicon::validate::Catalog;

use super::DsError;

/// Every `chat.mls` lexicon document, to add to a larger catalog (e.g. the embedded
/// host's).
pub fn lexicon_docs() -> Result<Vec<LexiconDoc>, DsError> {
    catalog().map(|c| c.docs().cloned().collect())
}

/// A catalog of the `chat.mls` lexicons alone.
pub fn catalog() -> Result<Catalog, DsError> {
    Catalog::embedded().map_err(|e| DsError::Lexicons(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_lexicons_load() {
        let catalog = super::catalog().expect("embedded lexicons load");
        assert_eq!(catalog.len(), atmls_lexicon::generated::LEXICONS.len());
        assert!(catalog.len() >= 14);
    }
}
