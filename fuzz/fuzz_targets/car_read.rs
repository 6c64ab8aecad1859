//! CAR reading never panics; every block it returns matches its CID.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(car) = atmls_repo::car::read(data) {
        for (cid, block) in &car.blocks {
            atmls_repo::cid::verify_block(cid, block).expect("blocks match their CIDs");
        }
        let _ = atmls_repo::proof::root_commit(&car);
    }
});
