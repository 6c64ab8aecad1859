//! One test suite for every [`BlockStore`]: each test is a generic function, and the macro
//! at the bottom instantiates all of them for each backend.

use atmls_crypto::{Algorithm, SigningKey};
use cid::Cid;
use ipld_core::ipld::Ipld;

use super::*;
use crate::repo::{Repo, RepoError, Write};
use crate::syntax::{Did, Nsid, RecordKey, RepoPath};

fn did(s: &str) -> Did {
    Did::new(s).unwrap()
}

fn path(s: &str) -> RepoPath {
    RepoPath::parse(s).unwrap()
}

fn record(text: &str) -> Ipld {
    let mut m = std::collections::BTreeMap::new();
    m.insert("$type".to_owned(), Ipld::String("com.example.note".into()));
    m.insert("text".to_owned(), Ipld::String(text.into()));
    Ipld::Map(m)
}

fn key() -> SigningKey {
    SigningKey::from_bytes(Algorithm::Es256k, &[7u8; 32]).unwrap()
}

pub(super) fn blocks_and_heads<S: BlockStore>(store: &S) {
    let a = b"\xa0".to_vec();
    let cid = crate::cid::dag_cbor(&a);
    assert!(!store.has_block(&cid).unwrap());
    assert_eq!(store.block(&cid).unwrap(), None);
    let mut blocks = BlockMap::new();
    blocks.insert(cid, a.clone());
    store.put_blocks(&blocks).unwrap();
    store.put_blocks(&blocks).unwrap();
    assert!(store.has_block(&cid).unwrap());
    assert_eq!(store.block(&cid).unwrap(), Some(a));
    assert_eq!(store.head("did:plc:a").unwrap(), None);
    assert!(store.repos().unwrap().is_empty());
}

pub(super) fn commit_is_compare_and_swap<S: BlockStore>(store: &S) {
    let b1 = b"\x01".to_vec();
    let c1 = crate::cid::dag_cbor(&b1);
    let rev = "3kpaaaaaaaaa2".parse().unwrap();
    let mut blocks = BlockMap::new();
    blocks.insert(c1, b1);
    let head = RepoHead { commit: c1, rev };
    let update = CommitUpdate {
        did: "did:plc:a",
        blocks: &blocks,
        head,
        prev: None,
    };
    store.apply_commit(&update).unwrap();
    assert_eq!(store.head("did:plc:a").unwrap(), Some(head));
    // A second writer that also saw "no repo" loses, and none of its blocks land.
    let b2 = b"\x02".to_vec();
    let c2 = crate::cid::dag_cbor(&b2);
    let mut blocks2 = BlockMap::new();
    blocks2.insert(c2, b2);
    let stale = CommitUpdate {
        did: "did:plc:a",
        blocks: &blocks2,
        head: RepoHead { commit: c2, rev },
        prev: None,
    };
    assert!(matches!(
        store.apply_commit(&stale),
        Err(StoreError::HeadMismatch(m)) if m.expected.is_none() && m.found == Some(c1)
    ));
    assert!(!store.has_block(&c2).unwrap());
    assert_eq!(store.head("did:plc:a").unwrap(), Some(head));
    // With the right predecessor it goes through.
    let next = CommitUpdate {
        prev: Some(c1),
        ..stale
    };
    store.apply_commit(&next).unwrap();
    assert_eq!(store.head("did:plc:a").unwrap().map(|h| h.commit), Some(c2));
}

/// Writes a fixed script of commits; returns the final head, data root and CAR.
fn script<S: BlockStore>(store: &S, name: &str) -> (Cid, Vec<u8>, Vec<u8>) {
    let mut repo = Repo::create(store, did(name), key()).unwrap();
    for i in 0..30 {
        repo.apply_writes(
            vec![Write::create(
                path(&format!("com.example.note/{i:04}")),
                record(&format!("note {i}")),
            )],
            None,
        )
        .unwrap();
    }
    let p5 = path("com.example.note/0005");
    repo.apply_writes(
        vec![
            Write::update(p5.clone(), record("five")),
            Write::delete(path("com.example.note/0006")),
            Write::create(path("com.example.other/self"), record("x")),
        ],
        Some(repo.head().commit),
    )
    .unwrap();
    let proof = repo.record_proof(&p5).unwrap();
    let car = repo.export_car().unwrap();
    (repo.data(), car, proof)
}

pub(super) fn repos_behave_the_same<S: BlockStore>(store: &S) {
    let (data_a, car_a, proof_a) = script(store, "did:plc:alice");
    let (data_b, _, _) = script(store, "did:plc:bob");
    // Same records give the same tree in any repo and any store.
    assert_eq!(data_a, data_b);
    let mem = MemoryBlockStore::new();
    let (data_m, _, _) = script(&mem, "did:plc:alice");
    assert_eq!(data_a, data_m);
    assert_eq!(
        store.repos().unwrap(),
        vec!["did:plc:alice".to_owned(), "did:plc:bob".to_owned()]
    );
    let car = crate::car::read(&car_a).unwrap();
    assert_eq!(car.roots.len(), 1);
    let (_, commit) = crate::proof::root_commit(&car).unwrap();
    assert_eq!(commit.data(), data_a);
    let proof = crate::proof::verify_record_proof(
        &proof_a,
        &did("did:plc:alice"),
        &key().public_key(),
        &path("com.example.note/0005"),
    )
    .unwrap();
    assert_eq!(proof.record().map(|(_, v)| v.clone()), Some(record("five")));
}

pub(super) fn writes_and_swaps<S: BlockStore>(store: &S) {
    let mut repo = Repo::create(store, did("did:plc:carol"), key()).unwrap();
    assert!(matches!(
        Repo::create(store, did("did:plc:carol"), key()),
        Err(RepoError::RepoExists(_))
    ));
    let p = path("com.example.note/a");
    let first = repo
        .apply_writes(vec![Write::create(p.clone(), record("1"))], None)
        .unwrap();
    let c1 = first.results[0].cid.unwrap();
    assert!(matches!(
        repo.apply_writes(vec![Write::create(p.clone(), record("2"))], None),
        Err(RepoError::RecordExists(_))
    ));
    // swapCommit against a stale commit.
    let stale = first.cid;
    repo.apply_writes(vec![Write::update(p.clone(), record("2"))], None)
        .unwrap();
    assert!(matches!(
        repo.apply_writes(vec![Write::delete(p.clone())], Some(stale)),
        Err(RepoError::InvalidSwap(s)) if s.target.is_none()
    ));
    // swapRecord against a stale record.
    assert!(matches!(
        repo.apply_writes(vec![Write::delete(p.clone()).with_swap_record(c1)], None),
        Err(RepoError::InvalidSwap(s)) if s.target.is_some()
    ));
    // A failed batch changes nothing, even when its first write was fine.
    let head = repo.head();
    let q = path("com.example.note/b");
    assert!(matches!(
        repo.apply_writes(
            vec![
                Write::create(q.clone(), record("b")),
                Write::delete(path("com.example.note/zzz")),
            ],
            None
        ),
        Err(RepoError::RecordNotFound(_))
    ));
    assert_eq!(repo.head(), head);
    assert_eq!(repo.record_cid(&q).unwrap(), None);
    assert_eq!(store.head("did:plc:carol").unwrap(), Some(head));
    assert!(matches!(
        repo.apply_writes(
            vec![
                Write::create(q.clone(), record("b")),
                Write::delete(q.clone())
            ],
            None
        ),
        Err(RepoError::DuplicateWrite(_))
    ));
    // Revisions only go up, also across reopening.
    let before = repo.head().rev;
    let mut again = Repo::open(store, did("did:plc:carol"), key()).unwrap();
    let out = again
        .apply_writes(vec![Write::create(q.clone(), record("b"))], None)
        .unwrap();
    assert!(out.rev > before);
    // The first handle is now stale: the store refuses its commit.
    assert!(matches!(
        repo.apply_writes(vec![Write::delete(p.clone())], None),
        Err(RepoError::Conflict(_))
    ));
    let listed = again
        .list_records(&Nsid::new("com.example.note").unwrap(), None, 10)
        .unwrap();
    assert_eq!(listed.len(), 2);
    let after_a = again
        .list_records(
            &Nsid::new("com.example.note").unwrap(),
            Some(&RecordKey::new("a").unwrap()),
            10,
        )
        .unwrap();
    assert_eq!(after_a.len(), 1);
    assert_eq!(after_a[0].0, q);
    let (_, value) = again.record(&q).unwrap().unwrap();
    assert_eq!(value, record("b"));
    let diff = again.diff_since(&stale).unwrap();
    assert_eq!(diff.len(), 2);
    // An absence proof verifies as absent.
    let absent = path("com.example.note/nope");
    let car = again.record_proof(&absent).unwrap();
    let proof = crate::proof::verify_record_proof(
        &car,
        &did("did:plc:carol"),
        &key().public_key(),
        &absent,
    )
    .unwrap();
    assert!(proof.record().is_none());
}

macro_rules! store_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::super::*;

            #[test]
            fn blocks_and_heads() {
                let (store, _guard) = $make;
                super::blocks_and_heads(&store);
            }

            #[test]
            fn commit_is_compare_and_swap() {
                let (store, _guard) = $make;
                super::commit_is_compare_and_swap(&store);
            }

            #[test]
            fn repos_behave_the_same() {
                let (store, _guard) = $make;
                super::repos_behave_the_same(&store);
            }

            #[test]
            fn writes_and_swaps() {
                let (store, _guard) = $make;
                super::writes_and_swaps(&store);
            }
        }
    };
}

store_suite!(memory, (MemoryBlockStore::new(), ()));

#[cfg(feature = "sqlite")]
store_suite!(sqlite, {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteBlockStore::open(dir.path().join("repos.sqlite"), &SqliteConfig::default()).unwrap();
    (store, dir)
});
