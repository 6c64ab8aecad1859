//! MST node decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = atmls_repo::mst::decode_node_block(data);
});
