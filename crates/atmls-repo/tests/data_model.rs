//! The atproto interop `data-model/` fixtures: JSON → DAG-CBOR → CID, valid and invalid.

use atmls_repo::{cbor, cid, json};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/atproto-interop-tests/data-model"
);

fn cases(name: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()).unwrap()
}

#[test]
fn json_to_cbor_to_cid() {
    let all = cases("data-model-fixtures.json");
    assert_eq!(all.len(), 3);
    for case in &all {
        let value = json::to_ipld(&case["json"]).unwrap();
        let bytes = cbor::encode(&value).unwrap();
        let expected = STANDARD_NO_PAD
            .decode(case["cbor_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, expected);
        assert_eq!(
            cid::dag_cbor(&bytes).to_string(),
            case["cid"].as_str().unwrap()
        );
        // And back: CBOR → data model → JSON gives the same JSON.
        let decoded = cbor::decode_ipld(&expected).unwrap();
        assert_eq!(decoded, value);
        assert_eq!(json::from_ipld(&decoded).unwrap(), case["json"]);
    }
}

#[test]
fn valid_fixtures() {
    let all = cases("data-model-valid.json");
    assert_eq!(all.len(), 5);
    for case in &all {
        let value =
            json::record_to_ipld(&case["json"]).unwrap_or_else(|e| panic!("{}: {e}", case["note"]));
        let bytes = cbor::encode(&value).unwrap();
        assert_eq!(cbor::decode_ipld(&bytes).unwrap(), value);
    }
}

#[test]
fn invalid_fixtures() {
    let all = cases("data-model-invalid.json");
    assert_eq!(all.len(), 12);
    for case in &all {
        assert!(
            json::record_to_ipld(&case["json"]).is_err(),
            "accepted: {}",
            case["note"]
        );
    }
}
