//! The host core without HTTP, with time as an input: token expiry, refresh races,
//! revocation, own-repo writes, swaps.

use std::sync::Arc;

use atmls_host::{
    CreateAccountInput, Host, HostConfig, HostError, ListParams, PutRecordInput, Timestamp,
};
use atmls_identity::plc::directory::Directory;
use atmls_lexicon::validate::Catalog;
use serde_json::json;

const T0: u64 = 1_800_000_000_000;
const HOUR: u64 = 3_600_000;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn pds() -> Host {
    Host::in_memory(
        HostConfig::new("http://127.0.0.1:2583"),
        Arc::new(Directory::in_memory()),
        Arc::new(Catalog::new()),
    )
    .unwrap()
}

#[test]
fn token_lifetimes_follow_the_given_clock() {
    let pds = pds();
    let s = pds
        .create_account(&CreateAccountInput::new("alice.test", "pw"), at(T0))
        .unwrap();
    assert!(
        pds.authenticate(&s.access_jwt, at(T0 + 2 * HOUR - 1000))
            .is_ok()
    );
    assert!(matches!(
        pds.authenticate(&s.access_jwt, at(T0 + 2 * HOUR)),
        Err(HostError::ExpiredToken)
    ));
    let r = pds
        .refresh_session(&s.refresh_jwt, at(T0 + 3 * HOUR))
        .unwrap();
    assert!(pds.authenticate(&r.access_jwt, at(T0 + 3 * HOUR)).is_ok());
    // The refreshed session lives 90 days from the refresh.
    let later = T0 + 3 * HOUR + 90 * 24 * HOUR - 1000;
    assert!(pds.refresh_session(&r.refresh_jwt, at(later)).is_ok());
}

#[test]
fn only_one_of_two_racing_refreshes_wins() {
    let pds = Arc::new(pds());
    let s = pds
        .create_account(&CreateAccountInput::new("bob.test", "pw"), at(T0))
        .unwrap();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let pds = pds.clone();
            let token = s.refresh_jwt.clone();
            std::thread::spawn(move || pds.refresh_session(&token, at(T0 + 1000)).is_ok())
        })
        .collect();
    let wins = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(wins, 1);
}

#[test]
fn deleted_sessions_revoke_their_access_tokens() {
    let pds = pds();
    let s = pds
        .create_account(&CreateAccountInput::new("carol.test", "pw"), at(T0))
        .unwrap();
    let other = pds
        .create_session("carol.test", "pw", None, at(T0))
        .unwrap();
    pds.delete_session(&s.refresh_jwt, at(T0)).unwrap();
    assert!(matches!(
        pds.authenticate(&s.access_jwt, at(T0)),
        Err(HostError::InvalidToken(_))
    ));
    // Other sessions of the same account are untouched.
    assert!(pds.authenticate(&other.access_jwt, at(T0)).is_ok());
    assert!(matches!(
        pds.delete_session(&s.refresh_jwt, at(T0)),
        Err(HostError::InvalidToken(_))
    ));
}

#[test]
fn writes_are_own_repo_only_and_swaps_hold() {
    let pds = pds();
    let a = pds
        .create_account(&CreateAccountInput::new("dave.test", "pw"), at(T0))
        .unwrap();
    let b = pds
        .create_account(&CreateAccountInput::new("erin.test", "pw"), at(T0))
        .unwrap();
    let caller_a = pds.authenticate(&a.access_jwt, at(T0)).unwrap();
    let input = |repo: &str, rkey: &str| {
        serde_json::from_value(json!({
            "repo": repo, "collection": "com.example.note", "rkey": rkey, "record": {}
        }))
        .unwrap()
    };
    assert!(matches!(
        pds.create_record(&caller_a, input(&b.did, "x")),
        Err(HostError::Forbidden(_))
    ));
    let w = pds.create_record(&caller_a, input(&a.did, "x")).unwrap();
    let stale: PutRecordInput = serde_json::from_value(json!({
        "repo": a.did, "collection": "com.example.note", "rkey": "x", "record": { "v": 2 },
        "swapRecord": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    }))
    .unwrap();
    assert!(matches!(
        pds.put_record(&caller_a, stale),
        Err(HostError::InvalidSwap(_))
    ));
    assert_eq!(
        pds.latest_commit(&a.did).unwrap().cid,
        w.commit.cid,
        "a refused write changes nothing"
    );
    let page = pds
        .list_records(&a.did, "com.example.note", &ListParams::new())
        .unwrap();
    assert_eq!(page.records.len(), 1);
}
