//! Record-proof verification never panics on any CAR. The DID, key and path are those of
//! the official-PDS fixtures, which `scripts/fuzz-smoke` puts in the seed corpus, so the
//! fuzzer starts from proofs that verify.
#![no_main]

use std::sync::OnceLock;

use atmls_crypto::{Algorithm, PublicKey};
use atmls_repo::{Did, RepoPath, proof};
use libfuzzer_sys::fuzz_target;

struct Fixed {
    did: Did,
    key: PublicKey,
    present: RepoPath,
    absent: RepoPath,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| Fixed {
        did: Did::new("did:plc:fh5jrlbsm47qlufaem7aasei").expect("did"),
        key: PublicKey::from_legacy_multibase(
            Algorithm::Es256k,
            "zSaoc6642oVGnLbJ2Xk6QcLMKFUnRvtMaTu1Fht6kAzvtCkPsja24xBteXhF5xPkhgFE93oATGQLLR7cvJt4SptpE",
        )
        .expect("key"),
        present: RepoPath::parse("chat.mls.keyPackage/3kpaaaaaaaaa2").expect("path"),
        absent: RepoPath::parse("chat.mls.keyPackage/3kpaaaaaaaaa3").expect("path"),
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixed();
    let _ = proof::verify_record_proof(data, &f.did, &f.key, &f.present);
    let _ = proof::verify_record_proof(data, &f.did, &f.key, &f.absent);
});
