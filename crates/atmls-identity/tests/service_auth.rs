//! Service-auth JWTs: the official PDS token, every rejection, replay, key rotation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use atmls_crypto::{Algorithm, SigningKey};
use atmls_identity::resolve::{CacheConfig, CachingResolver};
use atmls_identity::service_auth::{
    Claims, MemoryReplayStore, ServiceAuthError, ServiceAuthVerifier, TokenPart, VerifierConfig,
    issue,
};
use atmls_identity::{Did, DidDocument, DidResolver};
use atmls_syntax::Timestamp;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use common::{MapResolver, doc_with_key, official};

const ALICE: &str = "did:plc:aliceaaaaaaaaaaaaaaaaaaa";
const BOB: &str = "did:plc:bobbbbbbbbbbbbbbbbbbbbbb";
const SERVICE: &str = "did:web:ds.example.com";
const AUD: &str = "did:web:ds.example.com#chat_mls_ds";
const LXM: &str = "chat.mls.ds.createMailbox";
const NOW: u64 = 1_800_000_000;

/// A time given in whole seconds since the Unix epoch (the unit of the claims).
fn secs(s: u64) -> Timestamp {
    Timestamp::from_millis(s * 1000)
}

struct World {
    alice: SigningKey,
    resolver: Arc<MapResolver>,
    verifier: ServiceAuthVerifier,
}

fn world() -> World {
    let alice = SigningKey::generate(Algorithm::Es256k);
    let bob = SigningKey::generate(Algorithm::Es256k);
    let resolver = Arc::new(MapResolver::default());
    resolver.insert(doc_with_key(ALICE, &alice.public_key()));
    resolver.insert(doc_with_key(BOB, &bob.public_key()));
    let mut nokey = doc_with_key("did:plc:nokeyaaaaaaaaaaaaaaaaaaa", &alice.public_key());
    nokey.verification_method.clear();
    resolver.insert(nokey);
    let config =
        VerifierConfig::new(Did::new(SERVICE).unwrap()).with_service_fragment("chat_mls_ds");
    let verifier = ServiceAuthVerifier::new(resolver.clone(), config);
    World {
        alice,
        resolver,
        verifier,
    }
}

fn claims() -> Value {
    json!({"iss": ALICE, "aud": AUD, "exp": NOW + 60, "iat": NOW, "lxm": LXM, "jti": "j1"})
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A token with arbitrary header and payload JSON, signed by `key`.
fn raw_token(key: &SigningKey, header: &Value, payload: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()))
    )
}

fn header() -> Value {
    json!({"typ": "JWT", "alg": "ES256K"})
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    if value.is_null() {
        v.as_object_mut().unwrap().remove(key);
    } else {
        v[key] = value;
    }
    v
}

fn high_s(sig: &[u8]) -> Vec<u8> {
    let sig = k256::ecdsa::Signature::from_slice(sig).unwrap();
    let (r, s) = sig.split_scalars();
    let high = k256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    high.to_bytes().to_vec()
}

#[tokio::test]
async fn official_pds_token_verifies_at_iat_and_expires() {
    let fixture: Value = serde_json::from_slice(&official("service-auth-tokens.json")).unwrap();
    let entry = &fixture["tokens"][0];
    let token = entry["token"].as_str().unwrap();
    let iat = entry["payload"]["iat"].as_u64().unwrap();
    let exp = entry["payload"]["exp"].as_u64().unwrap();
    let lxm = entry["payload"]["lxm"].as_str().unwrap();
    let doc = DidDocument::from_json(&official("alice-did-doc.json")).unwrap();
    let resolver = Arc::new(MapResolver::default());
    resolver.insert(doc);
    // The DS's DID with its fragment; the token carries the bare DID, which is accepted.
    let service = Did::new("did:web:localhost%3A2585").unwrap();
    let config = VerifierConfig::new(service).with_service_fragment("chat_mls_ds");
    let verifier = ServiceAuthVerifier::new(resolver.clone(), config.clone());
    let ok = verifier.verify(token, lxm, secs(iat)).await.unwrap();
    assert_eq!(ok.issuer.as_str(), "did:plc:fh5jrlbsm47qlufaem7aasei");
    assert_eq!(ok.jti, "b3a9008a3f819af653a1a106e99b94f4");

    let fresh = ServiceAuthVerifier::new(resolver.clone(), config.clone());
    assert_eq!(
        fresh.verify(token, lxm, secs(exp)).await,
        Err(ServiceAuthError::Expired { exp, now: exp })
    );
    assert!(matches!(
        fresh.verify(token, lxm, secs(exp + 3600)).await,
        Err(ServiceAuthError::Expired { .. })
    ));
    assert!(matches!(
        fresh.verify(token, "chat.mls.ds.other", secs(iat)).await,
        Err(ServiceAuthError::WrongLxm { .. })
    ));
    // Replaying the same token to the first verifier is refused.
    assert_eq!(
        verifier.verify(token, lxm, secs(iat + 1)).await,
        Err(ServiceAuthError::Replayed)
    );
}

#[tokio::test]
async fn issued_tokens_verify_with_both_audience_forms_and_curves() {
    let w = world();
    for aud in [AUD, SERVICE] {
        let claims = Claims::new(ALICE, aud, LXM, secs(NOW), Duration::from_secs(60));
        let token = issue(&w.alice, &claims);
        let ok = w.verifier.verify(&token, LXM, secs(NOW)).await.unwrap();
        assert_eq!(ok.issuer.as_str(), ALICE);
        assert_eq!(ok.lxm, LXM);
    }
    // ES256 (P-256) issuer, kid naming the key, iss with a service fragment.
    let p256 = SigningKey::generate(Algorithm::Es256);
    let carol = "did:plc:carolaaaaaaaaaaaaaaaaaaa";
    w.resolver.insert(doc_with_key(carol, &p256.public_key()));
    let payload = with(claims(), "iss", json!(format!("{carol}#atproto_labeler")));
    let token = raw_token(
        &p256,
        &json!({"typ": "JWT", "alg": "ES256", "kid": format!("{carol}#atproto")}),
        &payload,
    );
    let ok = w.verifier.verify(&token, LXM, secs(NOW)).await.unwrap();
    assert_eq!(ok.issuer_service.as_deref(), Some("atproto_labeler"));
}

/// A predicate on the expected error.
type Expect = fn(&ServiceAuthError) -> bool;

#[tokio::test]
async fn every_rejection() {
    let w = world();
    let k = &w.alice;
    let good = raw_token(k, &header(), &claims());
    let (input, sig_b64) = good.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
    let der_like = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode([sig.clone(), vec![0; 6]].concat())
    );
    let high = format!("{input}.{}", URL_SAFE_NO_PAD.encode(high_s(&sig)));
    let bob_key = SigningKey::generate(Algorithm::Es256k);

    use ServiceAuthError as E;
    let cases: Vec<(&str, String, Expect)> = vec![
        ("oversized", format!("{good}{}", "A".repeat(5000)), |e| {
            matches!(e, E::TooLarge { .. })
        }),
        ("two segments", input.to_owned(), |e| {
            *e == E::SegmentCount(2)
        }),
        ("four segments", format!("{good}.x"), |e| {
            *e == E::SegmentCount(4)
        }),
        ("one segment", "garbage".into(), |e| {
            *e == E::SegmentCount(1)
        }),
        ("empty", String::new(), |e| *e == E::SegmentCount(1)),
        (
            "truncated signature",
            good[..good.len() - 10].to_owned(),
            |e| matches!(e, E::SignatureLength(_) | E::Base64(TokenPart::Signature)),
        ),
        (
            "truncated payload",
            good[..good.find('.').unwrap() + 20].to_owned(),
            |e| *e == E::SegmentCount(2),
        ),
        ("bad base64 header", format!("!!{good}"), |e| {
            *e == E::Base64(TokenPart::Header)
        }),
        (
            "padded base64 payload",
            {
                let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
                parts[1].push('=');
                parts.join(".")
            },
            |e| *e == E::Base64(TokenPart::Payload),
        ),
        ("bad base64 signature", format!("{input}.***"), |e| {
            *e == E::Base64(TokenPart::Signature)
        }),
        (
            "header not an object",
            raw_token(k, &json!([]), &claims()),
            |e| matches!(e, E::MalformedHeader(_)),
        ),
        (
            "alg none",
            raw_token(k, &json!({"alg": "none"}), &claims()),
            |e| *e == E::UnsupportedAlgorithm("none".into()),
        ),
        (
            "alg HS256",
            raw_token(k, &json!({"alg": "HS256"}), &claims()),
            |e| *e == E::UnsupportedAlgorithm("HS256".into()),
        ),
        (
            "alg RS256",
            raw_token(k, &json!({"alg": "RS256"}), &claims()),
            |e| matches!(e, E::UnsupportedAlgorithm(_)),
        ),
        (
            "typ at+jwt",
            raw_token(k, &json!({"alg": "ES256K", "typ": "at+jwt"}), &claims()),
            |e| matches!(e, E::WrongType(_)),
        ),
        (
            "missing exp",
            raw_token(k, &header(), &with(claims(), "exp", Value::Null)),
            |e| matches!(e, E::MalformedPayload(_)),
        ),
        (
            "exp a string",
            raw_token(k, &header(), &with(claims(), "exp", json!("soon"))),
            |e| matches!(e, E::MalformedPayload(_)),
        ),
        (
            "iss not a DID",
            raw_token(k, &header(), &with(claims(), "iss", json!("alice"))),
            |e| matches!(e, E::InvalidIssuer(_)),
        ),
        (
            "iss empty fragment",
            raw_token(
                k,
                &header(),
                &with(claims(), "iss", json!(format!("{ALICE}#"))),
            ),
            |e| matches!(e, E::InvalidIssuer(_)),
        ),
        (
            "kid of another DID",
            raw_token(
                k,
                &json!({"alg": "ES256K", "kid": format!("{BOB}#atproto")}),
                &claims(),
            ),
            |e| matches!(e, E::InvalidKeyId(_)),
        ),
        (
            "kid unknown fragment",
            raw_token(k, &json!({"alg": "ES256K", "kid": "#other"}), &claims()),
            |e| matches!(e, E::IssuerKey(_)),
        ),
        (
            "aud other service",
            raw_token(
                k,
                &header(),
                &with(claims(), "aud", json!("did:web:evil.example.com")),
            ),
            |e| matches!(e, E::WrongAudience { .. }),
        ),
        (
            "aud other fragment",
            raw_token(
                k,
                &header(),
                &with(claims(), "aud", json!(format!("{SERVICE}#atproto_pds"))),
            ),
            |e| matches!(e, E::WrongAudience { .. }),
        ),
        (
            "missing lxm",
            raw_token(k, &header(), &with(claims(), "lxm", Value::Null)),
            |e| *e == E::MissingLxm,
        ),
        (
            "wrong lxm",
            raw_token(
                k,
                &header(),
                &with(claims(), "lxm", json!("chat.mls.ds.deleteMailbox")),
            ),
            |e| matches!(e, E::WrongLxm { .. }),
        ),
        (
            "missing iat",
            raw_token(k, &header(), &with(claims(), "iat", Value::Null)),
            |e| *e == E::MissingIat,
        ),
        (
            "iat in future",
            raw_token(
                k,
                &header(),
                &with(
                    with(claims(), "iat", json!(NOW + 31)),
                    "exp",
                    json!(NOW + 90),
                ),
            ),
            |e| matches!(e, E::IssuedInFuture { .. }),
        ),
        (
            "exp before iat",
            raw_token(k, &header(), &with(claims(), "exp", json!(NOW - 1))),
            |e| *e == E::ExpiresBeforeIssued,
        ),
        (
            "expired",
            raw_token(
                k,
                &header(),
                &with(with(claims(), "iat", json!(NOW - 120)), "exp", json!(NOW)),
            ),
            |e| *e == E::Expired { exp: NOW, now: NOW },
        ),
        (
            "lifetime too long",
            raw_token(k, &header(), &with(claims(), "exp", json!(NOW + 301))),
            |e| *e == E::LifetimeTooLong { max_secs: 300 },
        ),
        (
            "missing jti",
            raw_token(k, &header(), &with(claims(), "jti", Value::Null)),
            |e| *e == E::MissingJti,
        ),
        (
            "empty jti",
            raw_token(k, &header(), &with(claims(), "jti", json!(""))),
            |e| *e == E::MissingJti,
        ),
        ("DER-length signature", der_like, |e| {
            *e == E::SignatureLength(70)
        }),
        ("high-S signature", high, |e| *e == E::HighS),
        (
            "zeroed signature",
            format!("{input}.{}", URL_SAFE_NO_PAD.encode([0u8; 64])),
            |e| *e == E::BadSignature,
        ),
        (
            "signed by another key",
            raw_token(&bob_key, &header(), &claims()),
            |e| *e == E::BadSignature,
        ),
        (
            "right key, wrong DID",
            raw_token(k, &header(), &with(claims(), "iss", json!(BOB))),
            |e| *e == E::BadSignature,
        ),
        (
            "unknown issuer",
            raw_token(
                k,
                &header(),
                &with(claims(), "iss", json!("did:plc:unknownaaaaaaaaaaaaaaaaa")),
            ),
            |e| matches!(e, E::Resolve(_)),
        ),
        (
            "issuer without #atproto",
            raw_token(
                k,
                &header(),
                &with(claims(), "iss", json!("did:plc:nokeyaaaaaaaaaaaaaaaaaaa")),
            ),
            |e| matches!(e, E::IssuerKey(_)),
        ),
        (
            "ES256 alg on a K-256 key",
            raw_token(k, &json!({"alg": "ES256"}), &claims()),
            |e| matches!(e, E::AlgorithmMismatch { .. }),
        ),
        (
            "payload altered after signing",
            {
                let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
                parts[1] = b64(&with(claims(), "jti", json!("j2")));
                parts.join(".")
            },
            |e| *e == E::BadSignature,
        ),
    ];
    let count = cases.len();
    for (name, token, expected) in cases {
        let result = w.verifier.verify(&token, LXM, secs(NOW)).await;
        match result {
            Err(e) if expected(&e) => {}
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
    assert!(count >= 40);
    // None of the refused tokens was remembered: the good one still passes once.
    w.verifier.verify(&good, LXM, secs(NOW)).await.unwrap();
    assert_eq!(
        w.verifier.verify(&good, LXM, secs(NOW)).await,
        Err(E::Replayed)
    );
}

#[tokio::test]
async fn replay_store_is_bounded_and_forgets_expired_tokens() {
    let w = world();
    let store = Arc::new(MemoryReplayStore::new(1));
    let config = VerifierConfig::new(Did::new(SERVICE).unwrap());
    let verifier =
        ServiceAuthVerifier::with_replay_store(w.resolver.clone(), store.clone(), config);
    let t1 = issue(
        &w.alice,
        &Claims::new(ALICE, SERVICE, LXM, secs(NOW), Duration::from_secs(60)),
    );
    let t2 = issue(
        &w.alice,
        &Claims::new(ALICE, SERVICE, LXM, secs(NOW), Duration::from_secs(60)),
    );
    verifier.verify(&t1, LXM, secs(NOW)).await.unwrap();
    assert_eq!(
        verifier.verify(&t2, LXM, secs(NOW)).await,
        Err(ServiceAuthError::ReplayStoreFull)
    );
    // Once t1 has expired its slot is reused.
    let t3 = issue(
        &w.alice,
        &Claims::new(ALICE, SERVICE, LXM, secs(NOW + 61), Duration::from_secs(60)),
    );
    verifier.verify(&t3, LXM, secs(NOW + 61)).await.unwrap();
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn rotated_key_is_picked_up_by_one_refetch() {
    let old = SigningKey::generate(Algorithm::Es256k);
    let new = SigningKey::generate(Algorithm::Es256k);
    let backing = Arc::new(MapResolver::default());
    backing.insert(doc_with_key(ALICE, &old.public_key()));
    let cache = CacheConfig::default().with_min_refresh_interval(Duration::ZERO);
    let cached = Arc::new(CachingResolver::new(backing.clone(), cache));
    let config = VerifierConfig::new(Did::new(SERVICE).unwrap());
    let verifier = ServiceAuthVerifier::new(cached.clone(), config);

    let t = issue(
        &old,
        &Claims::new(ALICE, SERVICE, LXM, secs(NOW), Duration::from_secs(60)),
    );
    verifier.verify(&t, LXM, secs(NOW)).await.unwrap();
    assert_eq!(backing.fetches(), 1);

    // Alice rotates her key; the cache still holds the old document.
    backing.insert(doc_with_key(ALICE, &new.public_key()));
    let t = issue(
        &new,
        &Claims::new(ALICE, SERVICE, LXM, secs(NOW), Duration::from_secs(60)),
    );
    verifier.verify(&t, LXM, secs(NOW)).await.unwrap();
    assert_eq!(backing.fetches(), 2, "exactly one refetch");
    // The refreshed document is now cached: the next token needs no fetch.
    let t = issue(
        &new,
        &Claims::new(ALICE, SERVICE, LXM, secs(NOW), Duration::from_secs(60)),
    );
    verifier.verify(&t, LXM, secs(NOW)).await.unwrap();
    assert_eq!(backing.fetches(), 2);

    // A token under a key she never had: one refetch, then refused.
    let stranger = SigningKey::generate(Algorithm::Es256k);
    let t = issue(
        &stranger,
        &Claims::new(ALICE, SERVICE, LXM, secs(NOW), Duration::from_secs(60)),
    );
    assert_eq!(
        verifier.verify(&t, LXM, secs(NOW)).await,
        Err(ServiceAuthError::BadSignature)
    );
    assert_eq!(backing.fetches(), 3);
    let doc = cached.resolve(&Did::new(ALICE).unwrap()).await.unwrap();
    assert_eq!(doc.atproto_key().unwrap(), new.public_key());
}

#[tokio::test]
async fn refetch_is_rate_limited_per_did() {
    let old = SigningKey::generate(Algorithm::Es256k);
    let backing = Arc::new(MapResolver::default());
    backing.insert(doc_with_key(ALICE, &old.public_key()));
    // Default: a DID fetched less than 10 s ago is not refetched.
    let cached = Arc::new(CachingResolver::new(
        backing.clone(),
        CacheConfig::default(),
    ));
    let verifier =
        ServiceAuthVerifier::new(cached, VerifierConfig::new(Did::new(SERVICE).unwrap()));
    let stranger = SigningKey::generate(Algorithm::Es256k);
    for _ in 0..5 {
        let t = issue(
            &stranger,
            &Claims::new(ALICE, SERVICE, LXM, secs(NOW), Duration::from_secs(60)),
        );
        assert_eq!(
            verifier.verify(&t, LXM, secs(NOW)).await,
            Err(ServiceAuthError::BadSignature)
        );
    }
    assert_eq!(backing.fetches(), 1);
}
