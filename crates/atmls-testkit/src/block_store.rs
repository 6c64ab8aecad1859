//! The AT repository's block-store contract ([`atmls_repo::BlockStore`]) as public test
//! functions.
//!
//! Each function takes a fresh, empty store and panics when the store breaks the
//! contract. A backend runs all of them with
//! [`block_store_suite!`](crate::block_store_suite):
//!
//! ```
//! mod memory {
//!     atmls_testkit::block_store_suite!((atmls_repo::MemoryBlockStore::new(), ()));
//! }
//! ```

use atmls_crypto::{Algorithm, SigningKey};
use atmls_repo::store::CommitUpdate;
use atmls_repo::{
    BlockMap, BlockStore, Cid, Did, Ipld, MemoryBlockStore, Nsid, RecordKey, Repo, RepoError,
    RepoHead, RepoPath, StoreError, Write,
};

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

/// Blocks are stored idempotently and read back; a new store has no heads and no repos.
pub fn blocks_and_heads<S: BlockStore>(store: &S) {
    let a = b"\xa0".to_vec();
    let cid = atmls_repo::cid::dag_cbor(&a);
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

/// A commit moves the head only from the expected predecessor; a losing commit stores
/// none of its blocks.
pub fn commit_is_compare_and_swap<S: BlockStore>(store: &S) {
    let b1 = b"\x01".to_vec();
    let c1 = atmls_repo::cid::dag_cbor(&b1);
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
    let c2 = atmls_repo::cid::dag_cbor(&b2);
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

/// Repos written through this store give the same trees, CARs and proofs as in memory.
pub fn repos_behave_the_same<S: BlockStore>(store: &S) {
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
    let car = atmls_repo::car::read(&car_a).unwrap();
    assert_eq!(car.roots.len(), 1);
    let (_, commit) = atmls_repo::proof::root_commit(&car).unwrap();
    assert_eq!(commit.data(), data_a);
    let proof = atmls_repo::proof::verify_record_proof(
        &proof_a,
        &did("did:plc:alice"),
        &key().public_key(),
        &path("com.example.note/0005"),
    )
    .unwrap();
    assert_eq!(proof.record().map(|(_, v)| v.clone()), Some(record("five")));
}

/// Record writes, swapCommit and swapRecord, failed batches changing nothing, revisions
/// only going up, stale handles refused, listing, diffs and absence proofs.
pub fn writes_and_swaps<S: BlockStore>(store: &S) {
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
    let proof = atmls_repo::proof::verify_record_proof(
        &car,
        &did("did:plc:carol"),
        &key().public_key(),
        &absent,
    )
    .unwrap();
    assert!(proof.record().is_none());
}

/// One `#[test]` per property of the block-store contract ([`crate::block_store`]).
///
/// `$make` is evaluated once per test and yields `(store, guard)`: the store, and whatever
/// must live as long as it (a temporary directory; `()` when nothing must).
///
/// ```
/// mod memory {
///     atmls_testkit::block_store_suite!((atmls_repo::MemoryBlockStore::new(), ()));
/// }
/// ```
#[macro_export]
macro_rules! block_store_suite {
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (store, _guard) = $make;
                $crate::block_store::$name(&store);
            }
        )*
    };
    ($make:expr) => {
        $crate::block_store_suite!(@tests $make;
            blocks_and_heads,
            commit_is_compare_and_swap,
            repos_behave_the_same,
            writes_and_swaps,
        );
    };
}
