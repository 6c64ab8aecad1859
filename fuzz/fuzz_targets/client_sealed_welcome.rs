//! An inbox item (peer bytes from anyone): the sealed-welcome layout opened with a fixed
//! init key (docs/spec.md §11.4), and the welcome plaintext parsed on its own (random
//! bytes never open, so the plaintext parser is fed directly too). Never panics.
#![no_main]

use std::sync::OnceLock;

use atmls_client::group::seal::{WelcomeInfo, open_welcome};
use libfuzzer_sys::fuzz_target;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::crypto::OpenMlsCrypto as _;
use openmls_traits::types::Ciphersuite;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

fn init_private() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| {
        RustCrypto::default()
            .derive_hpke_keypair(SUITE.hpke_config(), &[7; 32])
            .expect("key pair")
            .private
            .to_vec()
    })
}

fuzz_target!(|data: &[u8]| {
    let crypto = RustCrypto::default();
    if let Some(plain) = open_welcome(&crypto, SUITE.hpke_config(), init_private(), data) {
        let _ = WelcomeInfo::from_cbor(&plain);
    }
    let _ = WelcomeInfo::from_cbor(data);
});
