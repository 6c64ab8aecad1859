//! The atproto-interop-tests crypto fixtures, read from the repository copy.

use std::path::PathBuf;

use atmls_crypto::{Algorithm, CryptoError, PublicKey, SigningKey};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/atproto-interop-tests/crypto")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(s).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn signature_fixtures() {
    let cases = fixture("signature-fixtures.json");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 6);
    let (mut valid, mut invalid) = (0, 0);
    for case in cases {
        let comment = case["comment"].as_str().unwrap();
        let alg = Algorithm::from_jwt_name(case["algorithm"].as_str().unwrap()).unwrap();
        let msg = b64(case["messageBase64"].as_str().unwrap());
        let sig = b64(case["signatureBase64"].as_str().unwrap());
        let from_did = PublicKey::from_did_key(case["publicKeyDid"].as_str().unwrap()).unwrap();
        assert_eq!(from_did.algorithm(), alg, "{comment}");
        assert_eq!(
            from_did.to_did_key(),
            case["publicKeyDid"].as_str().unwrap()
        );
        // publicKeyMultibase is the legacy DID-document form (raw compressed point).
        let suite = case["didDocSuite"].as_str().unwrap();
        assert_eq!(Algorithm::from_legacy_did_doc_suite(suite), Some(alg));
        let legacy =
            PublicKey::from_legacy_multibase(alg, case["publicKeyMultibase"].as_str().unwrap())
                .unwrap();
        assert_eq!(legacy, from_did, "{comment}");

        let result = from_did.verify(&msg, &sig);
        if case["validSignature"].as_bool().unwrap() {
            result.unwrap_or_else(|e| panic!("{comment}: {e}"));
            valid += 1;
        } else {
            let err = result.expect_err(comment);
            if comment.contains("DER") {
                assert!(
                    matches!(err, CryptoError::SignatureLength(_)),
                    "{comment}: {err:?}"
                );
            } else {
                assert_eq!(err, CryptoError::HighS, "{comment}");
            }
            invalid += 1;
        }
    }
    assert_eq!((valid, invalid), (2, 4));
}

#[test]
fn w3c_didkey_k256() {
    let cases = fixture("w3c_didkey_K256.json");
    let cases = cases.as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let secret = hex(case["privateKeyBytesHex"].as_str().unwrap());
        let did_key = case["publicDidKey"].as_str().unwrap();
        let key = SigningKey::from_bytes(Algorithm::Es256k, &secret).unwrap();
        assert_eq!(key.public_key().to_did_key(), did_key);
        let parsed = PublicKey::from_did_key(did_key).unwrap();
        assert_eq!(parsed, key.public_key());
        parsed.verify(b"msg", &key.sign(b"msg")).unwrap();
    }
}

#[test]
fn w3c_didkey_p256() {
    let cases = fixture("w3c_didkey_P256.json");
    let cases = cases.as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let (_, secret) = multibase::decode(format!(
            "z{}",
            case["privateKeyBytesBase58"].as_str().unwrap()
        ))
        .unwrap();
        let did_key = case["publicDidKey"].as_str().unwrap();
        let key = SigningKey::from_bytes(Algorithm::Es256, &secret).unwrap();
        assert_eq!(key.public_key().to_did_key(), did_key);
        let parsed = PublicKey::from_did_key(did_key).unwrap();
        assert_eq!(parsed, key.public_key());
        parsed.verify(b"msg", &key.sign(b"msg")).unwrap();
    }
}

#[test]
fn encodings_round_trip_and_refuse_garbage() {
    for alg in [Algorithm::Es256k, Algorithm::Es256] {
        let public = SigningKey::generate(alg).public_key();
        let mk = public.to_multikey();
        assert_eq!(PublicKey::from_multikey(&mk).unwrap(), public);
        let did: PublicKey = public.to_did_key().parse().unwrap();
        assert_eq!(did, public);
        let compressed = public.to_sec1_compressed();
        assert_eq!(
            PublicKey::from_sec1_bytes(alg, &compressed).unwrap(),
            public
        );
        let legacy = multibase::encode(multibase::Base::Base58Btc, compressed);
        assert_eq!(
            PublicKey::from_legacy_multibase(alg, &legacy).unwrap(),
            public
        );
    }
    assert_eq!(
        PublicKey::from_did_key("did:web:x"),
        Err(CryptoError::NotDidKey)
    );
    assert!(matches!(
        PublicKey::from_multikey("zQ3sh"),
        Err(CryptoError::InvalidPublicKey(_) | CryptoError::UnsupportedMulticodec(_))
    ));
    // ed25519-pub multicodec (0xed) is not an atproto key.
    let ed = multibase::encode(multibase::Base::Base58Btc, [0xed, 0x01, 1, 2, 3]);
    assert_eq!(
        PublicKey::from_multikey(&ed),
        Err(CryptoError::UnsupportedMulticodec(0xed))
    );
    let key = SigningKey::generate(Algorithm::Es256k).public_key();
    assert_eq!(
        key.verify(b"m", &[0u8; 64]),
        Err(CryptoError::MalformedSignature)
    );
    assert_eq!(
        key.verify(b"m", &[1u8; 70]),
        Err(CryptoError::SignatureLength(70))
    );
    assert!(Algorithm::from_jwt_name("HS256").is_err());
    assert!(Algorithm::from_jwt_name("none").is_err());
}
