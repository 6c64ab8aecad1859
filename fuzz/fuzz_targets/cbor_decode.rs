//! Canonical DAG-CBOR decoding never panics, and whatever it accepts re-encodes to the
//! very same bytes (the decoder accepts only canonical input).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = atmls_repo::cbor::decode_ipld(data) {
        let again = atmls_repo::cbor::encode(&value).expect("decoded values encode");
        assert_eq!(again, data, "accepted a non-canonical encoding");
        let _ = atmls_repo::json::from_ipld(&value);
    }
});
