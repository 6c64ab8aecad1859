//! The `chat.mls` lexicons the DS routes validate against, embedded at build time from
//! `lexicons/` (so a DS binary needs no lexicon files at run time).

use atmls_lexicon::schema::LexiconDoc;
use atmls_lexicon::validate::Catalog;

use super::DsError;

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
    lexicon!("chat/mls/ds/createMailbox.json"),
    lexicon!("chat/mls/ds/deleteInboxItems.json"),
    lexicon!("chat/mls/ds/describeServer.json"),
    lexicon!("chat/mls/ds/getEnvelopes.json"),
    lexicon!("chat/mls/ds/getKeyPackages.json"),
    lexicon!("chat/mls/ds/getMailbox.json"),
    lexicon!("chat/mls/ds/listInbox.json"),
    lexicon!("chat/mls/ds/sendEnvelopes.json"),
    lexicon!("chat/mls/ds/sendWelcome.json"),
    lexicon!("chat/mls/ds/subscribeEnvelopes.json"),
];

/// The lexicon documents of the DS methods and `chat.mls.defs`, to add to a larger
/// catalog (e.g. the embedded host's).
pub fn lexicon_docs() -> Result<Vec<LexiconDoc>, DsError> {
    DOCS.iter()
        .map(|json| LexiconDoc::from_json(json).map_err(|e| DsError::Lexicons(e.to_string())))
        .collect()
}

/// A catalog of [`lexicon_docs`] alone.
pub fn catalog() -> Result<Catalog, DsError> {
    Catalog::from_docs(lexicon_docs()?).map_err(|e| DsError::Lexicons(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_lexicons_load() {
        let catalog = super::catalog().expect("embedded lexicons load");
        assert_eq!(catalog.len(), super::DOCS.len());
    }
}
