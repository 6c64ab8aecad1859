//! The project's own Lexicon documents (`lexicons/` at the workspace root) load into a
//! validating catalog: every document passes the schema checks and every reference
//! resolves.

use std::path::PathBuf;

use atmls_lexicon::validate::Catalog;

#[test]
fn project_lexicons_load() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../lexicons");
    let catalog = Catalog::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !catalog.is_empty(),
        "no lexicons found under {}",
        dir.display()
    );
}
