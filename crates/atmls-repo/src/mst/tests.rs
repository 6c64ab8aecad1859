use proptest::prelude::*;

use super::*;
use crate::store::BlockStore as _;
use crate::store::MemoryBlockStore;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/atproto-interop-tests"
);

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap()
}

fn leaf() -> Cid {
    crate::cid::parse("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454").unwrap()
}

fn build(store: &MemoryBlockStore, keys: &[&str]) -> Mst {
    let mut mst = Mst::new();
    for k in keys {
        mst.insert(store, k.as_bytes(), leaf()).unwrap();
    }
    mst
}

fn save(store: &MemoryBlockStore, mst: &mut Mst) -> Cid {
    let (root, blocks) = mst.unstored_blocks().unwrap();
    store.put_blocks(&blocks).unwrap();
    root
}

#[test]
fn key_heights_fixture() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("mst/key_heights.json")).unwrap();
    for case in &cases {
        let key = case["key"].as_str().unwrap();
        assert_eq!(
            u64::from(key_height(key.as_bytes())),
            case["height"].as_u64().unwrap(),
            "{key}"
        );
    }
    assert_eq!(cases.len(), 9);
}

#[test]
fn common_prefix_fixture() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("mst/common_prefix.json")).unwrap();
    for case in &cases {
        let l = case["left"].as_str().unwrap();
        let r = case["right"].as_str().unwrap();
        assert_eq!(
            common_prefix_len(l.as_bytes(), r.as_bytes()) as u64,
            case["len"].as_u64().unwrap()
        );
    }
    assert_eq!(cases.len(), 13);
}

#[test]
fn example_keys_fixture() {
    let text = fixture("mst/example_keys.txt");
    let keys: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(keys.len(), 156);
    for k in &keys {
        let level: u32 = k[1..2].parse().unwrap();
        assert_eq!(key_height(k.as_bytes()), level, "{k}");
    }
    // Built forwards, backwards and interleaved, the tree is the same.
    let store = MemoryBlockStore::new();
    let mut fwd = build(&store, &keys);
    let rev: Vec<&str> = keys.iter().rev().copied().collect();
    let mut bwd = build(&store, &rev);
    let mut mixed: Vec<&str> = keys
        .iter()
        .step_by(2)
        .chain(keys.iter().skip(1).step_by(2))
        .copied()
        .collect();
    mixed.reverse();
    let mut mix = build(&store, &mixed);
    let root = save(&store, &mut fwd);
    assert_eq!(root, bwd.root_cid().unwrap());
    assert_eq!(root, mix.root_cid().unwrap());
    // Reading back from storage gives every key in order.
    let loaded = Mst::load(root);
    let listed: Vec<Vec<u8>> = loaded
        .entries(&store)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut sorted: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
    sorted.sort();
    assert_eq!(listed, sorted);
    // Deleting everything gives the empty tree.
    let mut t = Mst::load(root);
    for k in &keys {
        t.delete(&store, k.as_bytes()).unwrap();
    }
    assert_eq!(t.root_cid().unwrap(), Mst::new().root_cid().unwrap());
}

#[test]
fn empty_tree_cid() {
    // The empty node `{l: null, e: []}`.
    assert_eq!(
        Mst::new().root_cid().unwrap().to_string(),
        crate::cid::dag_cbor(&[0xa2, 0x61, b'e', 0x80, 0x61, b'l', 0xf6]).to_string()
    );
}

#[test]
fn commit_proof_fixtures() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&fixture("firehose/commit-proof-fixtures.json")).unwrap();
    assert_eq!(cases.len(), 6);
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    for case in &cases {
        let name = case["comment"].as_str().unwrap();
        let keys = strs(&case["keys"]);
        let adds = strs(&case["adds"]);
        let dels = strs(&case["dels"]);
        let store = MemoryBlockStore::new();
        let mut mst = Mst::new();
        for k in &keys {
            mst.insert(&store, k.as_bytes(), leaf()).unwrap();
        }
        let before = save(&store, &mut mst);
        assert_eq!(
            before.to_string(),
            case["rootBeforeCommit"].as_str().unwrap(),
            "{name}"
        );
        for k in &adds {
            mst.insert(&store, k.as_bytes(), leaf()).unwrap();
        }
        for k in &dels {
            mst.delete(&store, k.as_bytes()).unwrap();
        }
        let after = save(&store, &mut mst);
        assert_eq!(
            after.to_string(),
            case["rootAfterCommit"].as_str().unwrap(),
            "{name}"
        );

        let mut proof = BlockMap::new();
        let mut reloaded = Mst::load(after);
        for k in adds.iter().chain(&dels) {
            proof.extend(reloaded.covering_proof(&store, k.as_bytes()).unwrap());
        }
        for cid in strs(&case["blocksInProof"]) {
            assert!(
                proof.contains_key(&crate::cid::parse(&cid).unwrap()),
                "{name}: {cid}"
            );
        }
        // Inverting the operations against the proof blocks alone restores the old root,
        // in every order.
        let ops: Vec<(bool, &String)> = adds
            .iter()
            .map(|k| (true, k))
            .chain(dels.iter().map(|k| (false, k)))
            .collect();
        for order in permutations(ops.len()) {
            let mut inv = Mst::load(after);
            for i in order {
                let (was_add, k) = ops[i];
                if was_add {
                    inv.delete(&proof, k.as_bytes()).unwrap();
                } else {
                    inv.insert(&proof, k.as_bytes(), leaf()).unwrap();
                }
            }
            assert_eq!(inv.root_cid().unwrap(), before, "{name}");
        }
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn update_list_and_diff() {
    let store = MemoryBlockStore::new();
    let keys: Vec<String> = (0..200)
        .map(|i| format!("com.example.a/{i:05}"))
        .chain((0..50).map(|i| format!("com.example.b/{i:05}")))
        .collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut mst = build(&store, &refs);
    let old = save(&store, &mut mst);
    let other = crate::cid::dag_cbor(b"\x01");
    assert_eq!(
        mst.update(&store, b"com.example.a/00007", other).unwrap(),
        leaf()
    );
    mst.delete(&store, b"com.example.b/00003").unwrap();
    mst.insert(&store, b"com.example.c/x", other).unwrap();
    assert!(matches!(
        mst.insert(&store, b"com.example.c/x", other),
        Err(MstError::KeyExists(_))
    ));
    assert!(matches!(
        mst.delete(&store, b"com.example.zz/1"),
        Err(MstError::KeyNotFound(_))
    ));
    let new = save(&store, &mut mst);

    let page = mst
        .list(&store, b"com.example.b/", Some(b"com.example.b/00045"), 10)
        .unwrap();
    let got: Vec<String> = page
        .iter()
        .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "com.example.b/00046",
            "com.example.b/00047",
            "com.example.b/00048",
            "com.example.b/00049"
        ]
    );
    let page = Mst::load(new)
        .list(&store, b"com.example.a/", None, 3)
        .unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(page[0].0, b"com.example.a/00000");

    let d = diff(&store, old, new).unwrap();
    assert_eq!(
        d,
        vec![
            DiffOp::Update {
                key: b"com.example.a/00007".to_vec(),
                old: leaf(),
                new: other
            },
            DiffOp::Delete {
                key: b"com.example.b/00003".to_vec(),
                cid: leaf()
            },
            DiffOp::Create {
                key: b"com.example.c/x".to_vec(),
                cid: other
            },
        ]
    );
    assert!(diff(&store, new, new).unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn order_does_not_matter(
        keys in proptest::collection::btree_set("[a-c]{1,2}\\.x\\.y/[a-z0-9]{1,6}", 1..60),
        seed in any::<u64>(),
    ) {
        let store = MemoryBlockStore::new();
        let sorted: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut shuffled = sorted.clone();
        // A cheap deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut a = build(&store, &sorted);
        let mut b = build(&store, &shuffled);
        let root = save(&store, &mut a);
        prop_assert_eq!(root, b.root_cid().unwrap());

        // Adding then deleting a key restores the previous root, from storage too.
        let extra = "zz.x.y/extra";
        let mut c = Mst::load(root);
        c.insert(&store, extra.as_bytes(), leaf()).unwrap();
        let with = save(&store, &mut c);
        prop_assert_ne!(with, root);
        let mut d = Mst::load(with);
        d.delete(&store, extra.as_bytes()).unwrap();
        prop_assert_eq!(d.root_cid().unwrap(), root);

        // Deleting any one key equals building without it.
        let victim = shuffled[0];
        let mut e = Mst::load(root);
        e.delete(&store, victim.as_bytes()).unwrap();
        let rest: Vec<&str> = sorted.iter().copied().filter(|k| *k != victim).collect();
        let mut f = build(&store, &rest);
        prop_assert_eq!(e.root_cid().unwrap(), f.root_cid().unwrap());
    }
}
