//! Reading documents from disk and checking references across documents.

use std::path::{Path, PathBuf};

use super::{Catalog, CatalogError};
use crate::schema::{Def, FieldSchema, LexiconDoc, RefUse, SchemaError, SchemaErrorKind};

/// Every `*.json` file under `dir`, read as a Lexicon document, in path order.
pub(super) fn read_dir(dir: &Path) -> Result<Vec<LexiconDoc>, CatalogError> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).map_err(|source| CatalogError::Io {
                path: file.clone(),
                source,
            })?;
            LexiconDoc::from_json(&text).map_err(|source| CatalogError::InFile { file, source })
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CatalogError> {
    let io = |source| CatalogError::Io {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// Checks that every reference in `doc` resolves in `catalog` to a definition it may
/// point to.
pub(super) fn check_references(catalog: &Catalog, doc: &LexiconDoc) -> Result<(), SchemaError> {
    for (path, reference, used) in doc.references() {
        let Some(target) = catalog.def(reference) else {
            return Err(SchemaError::new(
                path,
                SchemaErrorKind::UnresolvedRef(reference.to_string()),
            ));
        };
        let allowed = match used {
            RefUse::Ref => matches!(target, Def::Field(_) | Def::Record(_)),
            RefUse::UnionVariant => {
                matches!(target, Def::Field(FieldSchema::Object(_)) | Def::Record(_))
            }
        };
        if !allowed {
            let kind = SchemaErrorKind::BadRefTarget {
                reference: reference.to_string(),
                target: target.type_name().to_owned(),
            };
            return Err(SchemaError::new(path, kind));
        }
    }
    Ok(())
}
