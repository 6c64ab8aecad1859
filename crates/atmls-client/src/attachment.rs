//! Attachments: a file is encrypted with a fresh AES-256-GCM key and stored as a blob on
//! the sender's PDS; the message carries key, nonce, digest, size and location
//! (`chat.mls.content#attachment`).
//!
//! - The plaintext is padded with zeros to the size bucket of [`crate::content::padded_len`]
//!   before encryption; `size` gives the real length. The blob's MIME type is always
//!   `application/octet-stream`.
//! - So that the PDS does not garbage-collect the blob, the sender references it from a
//!   `chat.mls.attachmentRef` record holding only the blob (record key a TID), deleted by
//!   the sender once the attachment may expire. See docs/spec.md §11.7.

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};
use atmls_identity::Did;
use atmls_lexicon::chat::mls::content as lex;
use atrium_api::types::CidLink;
use sha2::{Digest as _, Sha256};

use crate::content::{Body, padded_len};
use crate::error::Error;

/// The collection of the records that keep attachment blobs referenced.
pub const ATTACHMENT_REF_COLLECTION: &str = "chat.mls.attachmentRef";

/// The `chat.mls.attachmentRef` record value that keeps `blob` referenced (generated
/// type, `$type` first).
pub(crate) fn attachment_ref_record(
    blob: &crate::transport::BlobRef,
) -> Result<serde_json::Value, Error> {
    let data = atmls_lexicon::chat::mls::attachment_ref::RecordData {
        blob: atrium_api::types::BlobRef::Typed(atrium_api::types::TypedBlobRef::Blob(
            atrium_api::types::Blob {
                r#ref: CidLink(blob.cid),
                mime_type: blob.mime_type.clone(),
                size: usize::try_from(blob.size).unwrap_or(usize::MAX),
            },
        )),
    };
    serde_json::to_value(atmls_lexicon::generated::KnownRecord::from(data))
        .map_err(|e| Error::Attachment(format!("attachmentRef record: {e}")))
}

/// The `cipher` value of attachments.
pub const CIPHER: &str = "aes-256-gcm";

/// A file encrypted for upload.
#[derive(Debug, Clone)]
pub(crate) struct Sealed {
    pub(crate) key: [u8; 32],
    pub(crate) nonce: [u8; 12],
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) digest: [u8; 32],
}

/// Pads and encrypts `plain` with a fresh key.
pub(crate) fn seal(plain: &[u8]) -> Result<Sealed, Error> {
    let key: [u8; 32] = rand::random();
    let nonce: [u8; 12] = rand::random();
    let mut padded = plain.to_vec();
    padded.resize(padded_len(plain.len(), usize::MAX), 0);
    let ciphertext = Aes256Gcm::new(&key.into())
        .encrypt(Nonce::from_slice(&nonce), padded.as_slice())
        .map_err(|_| Error::Attachment("encryption failed".into()))?;
    let digest = Sha256::digest(&ciphertext).into();
    Ok(Sealed {
        key,
        nonce,
        ciphertext,
        digest,
    })
}

/// The `#attachment` body of a sealed file stored as blob `cid` of `did`.
pub(crate) fn body(
    sealed: &Sealed,
    size: usize,
    did: &Did,
    cid: cid::Cid,
    mime_type: &str,
    name: Option<String>,
) -> Result<Body, Error> {
    let did = atrium_api::types::string::Did::new(did.to_string())
        .map_err(|e| Error::Attachment(e.to_string()))?;
    Ok(Body::Attachment(Box::new(
        lex::AttachmentData {
            alt: None,
            cipher: CIPHER.into(),
            digest: sealed.digest.to_vec().into(),
            key: sealed.key.to_vec().into(),
            location: lex::BlobLocationData {
                cid: CidLink(cid),
                did,
            }
            .into(),
            mime_type: mime_type.into(),
            name,
            nonce: sealed.nonce.to_vec().into(),
            size: i64::try_from(size).map_err(|e| Error::Attachment(e.to_string()))?,
        }
        .into(),
    )))
}

/// Why an encrypted blob (an attachment or an out-of-band ratchet tree) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The cipher is not [`CIPHER`].
    #[error("unknown cipher {0}")]
    Cipher(String),
    /// The ciphertext's SHA-256 is not the announced digest.
    #[error("digest does not match")]
    Digest,
    /// The key is not 32 bytes or the nonce not 12.
    #[error("key or nonce of the wrong length")]
    KeyLength,
    /// AES-256-GCM refused the ciphertext.
    #[error("decryption failed")]
    Decrypt,
    /// The announced size is larger than the plaintext.
    #[error("size out of range")]
    Size,
    /// The padding after `size` bytes is not zeros.
    #[error("non-zero padding")]
    Padding,
}

/// Checks the digest of `ciphertext`, decrypts it with `key` and `nonce`, and strips the
/// zero padding after `size` bytes (the one path of attachments and ratchet trees).
pub(crate) fn open_blob(
    key: &[u8],
    nonce: &[u8],
    digest: &[u8],
    size: i64,
    ciphertext: &[u8],
) -> Result<Vec<u8>, BlobError> {
    if Sha256::digest(ciphertext).as_slice() != digest {
        return Err(BlobError::Digest);
    }
    let key: [u8; 32] = key.try_into().map_err(|_| BlobError::KeyLength)?;
    if nonce.len() != 12 {
        return Err(BlobError::KeyLength);
    }
    let mut plain = Aes256Gcm::new(&key.into())
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .map_err(|_| BlobError::Decrypt)?;
    let size = usize::try_from(size)
        .ok()
        .filter(|s| *s <= plain.len())
        .ok_or(BlobError::Size)?;
    if plain[size..].iter().any(|b| *b != 0) {
        return Err(BlobError::Padding);
    }
    plain.truncate(size);
    Ok(plain)
}

/// Checks the digest, then decrypts and strips the padding.
pub fn open(attachment: &lex::AttachmentData, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
    if attachment.cipher != CIPHER {
        return Err(Error::Attachment(
            BlobError::Cipher(attachment.cipher.clone()).to_string(),
        ));
    }
    open_blob(
        attachment.key.as_slice(),
        attachment.nonce.as_slice(),
        attachment.digest.as_slice(),
        attachment.size,
        ciphertext,
    )
    .map_err(|e| Error::Attachment(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_refusals() {
        let plain = b"a small file".to_vec();
        let sealed = seal(&plain).unwrap();
        assert_eq!(sealed.ciphertext.len(), 256 + 16);
        let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
        let Body::Attachment(a) = body(
            &sealed,
            plain.len(),
            &did,
            atmls_repo::cid::raw(&sealed.ciphertext),
            "text/plain",
            None,
        )
        .unwrap() else {
            unreachable!()
        };
        assert_eq!(open(&a, &sealed.ciphertext).unwrap(), plain);
        let mut tampered = sealed.ciphertext.clone();
        tampered[0] ^= 1;
        assert!(open(&a, &tampered).is_err());
        let mut wrong_size = (**a).clone();
        wrong_size.size = 10_000;
        assert!(open(&wrong_size, &sealed.ciphertext).is_err());
    }
}
