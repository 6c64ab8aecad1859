//! Test support: reading a device database the way a thief holding the key would.
//!
//! SQLCipher 4 pages (the defaults atmls uses): 4096 bytes, AES-256-CBC with the raw
//! database key over bytes `[offset, 4096 - 80)` (offset 16 on page 1, where the file's
//! salt is), the IV in the 16 bytes after them, then a 64-byte HMAC-SHA512. Decrypting
//! every page image — live, free, or in the WAL — shows what a person who later learns
//! the key could recover from the file, which is what "deleted material is gone" must hold
//! against (the HMAC is not checked here: reading, not trusting).
#![allow(dead_code)]

use aes::Aes256;
use aes::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};

const PAGE: usize = 4096;
const RESERVE: usize = 80;
const SALT: usize = 16;

/// The plaintext of one SQLCipher page image.
fn decrypt_page(key: &[u8; 32], page: &[u8], first: bool) -> Vec<u8> {
    let cipher = Aes256::new(GenericArray::from_slice(key));
    let start = if first { SALT } else { 0 };
    let end = PAGE - RESERVE;
    let mut prev: [u8; 16] = page[end..end + 16].try_into().unwrap();
    let mut out = Vec::with_capacity(end - start);
    for block in page[start..end].chunks_exact(16) {
        let mut b = GenericArray::clone_from_slice(block);
        cipher.decrypt_block(&mut b);
        out.extend(b.iter().zip(prev.iter()).map(|(x, y)| x ^ y));
        prev = block.try_into().unwrap();
    }
    out
}

/// Every page image of the database file and its WAL, decrypted with `key`.
pub(crate) fn decrypted_images(path: &std::path::Path, key: &[u8; 32]) -> Vec<u8> {
    let mut all = Vec::new();
    let db = std::fs::read(path).unwrap();
    assert_eq!(db.len() % PAGE, 0, "SQLCipher pages of {PAGE} bytes");
    for (i, page) in db.chunks_exact(PAGE).enumerate() {
        all.extend(decrypt_page(key, page, i == 0));
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(w) = std::fs::read(wal) {
        // 32-byte header, then frames of a 24-byte header and one page.
        for frame in w.get(32..).unwrap_or_default().chunks_exact(24 + PAGE) {
            let pgno = u32::from_be_bytes(frame[..4].try_into().unwrap());
            all.extend(decrypt_page(key, &frame[24..], pgno == 1));
        }
    }
    all
}

/// The raw bytes of the database file and its WAL, as they are on disk.
pub(crate) fn raw_files(path: &std::path::Path) -> Vec<u8> {
    let mut all = std::fs::read(path).unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(w) = std::fs::read(wal) {
        all.extend(w);
    }
    all
}

/// Whether `needle` occurs in `hay`.
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
pub(crate) mod http;
