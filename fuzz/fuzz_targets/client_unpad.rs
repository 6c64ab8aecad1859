//! A group-mailbox payload (peer bytes): one TLS-encoded MLSMessage, then zero padding
//! (docs/spec.md §11.5). Decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = atmls_client::content::unpad(data);
});
