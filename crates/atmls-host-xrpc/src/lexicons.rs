//! The lexicons compiled into the binary, so that `atmls serve` validates requests and
//! records without reading `lexicons/` or `vendor/lexicons/` at run time.

use atmls_lexicon::schema::LexiconDoc;
use atmls_lexicon::validate::{Catalog, CatalogError};

macro_rules! docs {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../", $path)))),*]
    };
}

/// (path, JSON) of the vendored `com.atproto.*` documents; the `chat.mls.*` ones come
/// from `atmls-lexicon` ([`Catalog::embedded`]).
const DOCS: &[(&str, &str)] = docs![
    "vendor/lexicons/com/atproto/identity/resolveHandle.json",
    "vendor/lexicons/com/atproto/repo/applyWrites.json",
    "vendor/lexicons/com/atproto/repo/createRecord.json",
    "vendor/lexicons/com/atproto/repo/defs.json",
    "vendor/lexicons/com/atproto/repo/deleteRecord.json",
    "vendor/lexicons/com/atproto/repo/describeRepo.json",
    "vendor/lexicons/com/atproto/repo/getRecord.json",
    "vendor/lexicons/com/atproto/repo/listRecords.json",
    "vendor/lexicons/com/atproto/repo/putRecord.json",
    "vendor/lexicons/com/atproto/repo/strongRef.json",
    "vendor/lexicons/com/atproto/repo/uploadBlob.json",
    "vendor/lexicons/com/atproto/server/createAccount.json",
    "vendor/lexicons/com/atproto/server/createSession.json",
    "vendor/lexicons/com/atproto/server/deleteSession.json",
    "vendor/lexicons/com/atproto/server/describeServer.json",
    "vendor/lexicons/com/atproto/server/getServiceAuth.json",
    "vendor/lexicons/com/atproto/server/getSession.json",
    "vendor/lexicons/com/atproto/server/refreshSession.json",
    "vendor/lexicons/com/atproto/sync/getBlob.json",
    "vendor/lexicons/com/atproto/sync/getLatestCommit.json",
    "vendor/lexicons/com/atproto/sync/getRecord.json",
    "vendor/lexicons/com/atproto/sync/getRepo.json",
];

/// The embedded lexicons as one catalog: every `chat.mls.*` document and the
/// `com.atproto.*` documents of the methods the host serves.
pub fn catalog() -> Result<Catalog, CatalogError> {
    let mut docs: Vec<LexiconDoc> = Catalog::embedded()?.docs().cloned().collect();
    for (path, json) in DOCS {
        let doc = LexiconDoc::from_json(json).map_err(|source| CatalogError::InFile {
            file: (*path).into(),
            source,
        })?;
        docs.push(doc);
    }
    Catalog::from_docs(docs)
}
