//! Blobs: `uploadBlob` and `sync.getBlob`, stored in the host database.

use atmls_syntax::Timestamp;
use rusqlite::{OptionalExtension as _, params};
use serde_json::{Value, json};

use crate::accounts::Caller;
use crate::error::HostError;
use crate::host::Host;
use crate::records::parse_cid;

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Blob {
    /// Its MIME type, as uploaded.
    pub mime_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// `mime` if it looks like `type/subtype` (parameters dropped), else
/// `application/octet-stream`.
fn clean_mime(mime: Option<&str>) -> String {
    let base = mime
        .and_then(|m| m.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let ok = base.len() <= 128
        && base.split_once('/').is_some_and(|(t, s)| {
            let token = |x: &str| {
                !x.is_empty()
                    && x.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
            };
            token(t) && token(s)
        });
    if ok {
        base
    } else {
        "application/octet-stream".to_owned()
    }
}

impl Host {
    /// `uploadBlob`: stores `bytes` for the caller under their raw CID and returns the
    /// blob reference to put in a record.
    pub fn upload_blob(
        &self,
        caller: &Caller,
        bytes: &[u8],
        mime_type: Option<&str>,
        now: Timestamp,
    ) -> Result<Value, HostError> {
        if bytes.len() as u64 > self.config.max_blob_bytes {
            return Err(HostError::PayloadTooLarge(format!(
                "blob is larger than {} bytes",
                self.config.max_blob_bytes
            )));
        }
        let account = self.account(&caller.did)?;
        if !account.is_active() {
            return Err(HostError::AccountDeactivated(account.did));
        }
        let cid = atmls_repo::cid::raw(bytes);
        let mime = clean_mime(mime_type);
        self.db.lock().execute(
            "INSERT OR IGNORE INTO blobs (did, cid, mime_type, size, data, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                caller.did,
                cid.to_string(),
                mime,
                bytes.len() as i64,
                bytes,
                i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
            ],
        )?;
        Ok(json!({
            "blob": {
                "$type": "blob",
                "ref": { "$link": cid.to_string() },
                "mimeType": mime,
                "size": bytes.len(),
            }
        }))
    }

    /// `sync.getBlob`.
    pub fn blob(&self, did: &str, cid: &str) -> Result<Blob, HostError> {
        let cid = parse_cid(cid, "cid")?;
        let account = self.resolve_repo(did)?;
        if !account.is_active() {
            return Err(HostError::RepoDeactivated(account.did));
        }
        self.db
            .lock()
            .query_row(
                "SELECT mime_type, data FROM blobs WHERE did = ?1 AND cid = ?2",
                params![account.did, cid.to_string()],
                |r| {
                    Ok(Blob {
                        mime_type: r.get(0)?,
                        bytes: r.get(1)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| HostError::BlobNotFound(cid.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::clean_mime;

    #[test]
    fn mime_types_are_cleaned() {
        assert_eq!(clean_mime(Some("image/PNG; q=1")), "image/png");
        assert_eq!(clean_mime(Some("nonsense")), "application/octet-stream");
        assert_eq!(clean_mime(None), "application/octet-stream");
        assert_eq!(clean_mime(Some("a/b\r\nx: y")), "application/octet-stream");
    }
}
