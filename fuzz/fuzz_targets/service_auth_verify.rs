//! Service-auth JWT parsing and verification never panic on any token: size, segments,
//! base64, header, claims, times, the signature check against a fixed issuer key, and
//! replay. The resolver answers at once with one fixed document for every DID, so the
//! whole verification runs in a single poll, without a runtime.
#![no_main]

use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Waker};

use atmls_crypto::{Algorithm, SigningKey};
use atmls_identity::plc::GenesisBuilder;
use atmls_identity::resolve::ResolveFuture;
use atmls_identity::service_auth::{ServiceAuthVerifier, UnverifiedToken, VerifierConfig};
use atmls_identity::{Did, DidDocument, DidResolver};
use libfuzzer_sys::fuzz_target;

/// The time verification runs at (the seed token in `scripts/fuzz-smoke` is valid then).
const NOW: u64 = 1_700_000_000;

struct Fixed(Arc<DidDocument>);

impl DidResolver for Fixed {
    fn resolve<'a>(&'a self, _did: &'a Did) -> ResolveFuture<'a> {
        let doc = self.0.clone();
        Box::pin(async move { Ok(doc) })
    }
}

fn verifier() -> &'static ServiceAuthVerifier {
    static VERIFIER: OnceLock<ServiceAuthVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let key = SigningKey::from_bytes(Algorithm::Es256k, &[7; 32]).expect("key");
        let genesis = GenesisBuilder::new(&key.public_key(), &key.public_key()).sign(&key);
        let did = genesis.did().expect("did");
        let doc = genesis.state(&did).expect("state").document();
        ServiceAuthVerifier::new(
            Arc::new(Fixed(Arc::new(doc))),
            VerifierConfig::new(Did::new("did:web:ds.example.com").expect("service DID")),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = UnverifiedToken::parse(token, 16 * 1024);
    let mut verify = pin!(verifier().verify(
        token,
        "chat.mls.ds.createMailbox",
        atmls_syntax::Timestamp::from_millis(NOW * 1000),
    ));
    let _ = verify.as_mut().poll(&mut Context::from_waker(Waker::noop()));
});
