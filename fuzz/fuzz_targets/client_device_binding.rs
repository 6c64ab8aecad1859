//! A leaf's device binding extension `0xF0A9` (peer bytes in every leaf of a group, in
//! welcomes and commits: docs/spec.md §11.16.2). Never panics; what parses encodes back
//! to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(binding) = atmls_client::group::binding::DeviceBinding::from_bytes(data) {
        assert_eq!(binding.to_bytes(), data, "a parsed binding encodes back");
    }
});
