//! An application message's plaintext (peer bytes from any group member): a
//! `chat.mls.content` object in DAG-CBOR, checked against the lexicon (docs/spec.md §5).
//! Never panics; what decodes encodes again.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = atmls_client::content::decode(data) {
        atmls_client::content::encode(&content).expect("decoded content encodes");
    }
});
