//! Issue 14, hole 5: MST node decoding rebuilds full keys from prefix-compressed entries,
//! so a node whose every entry extends the previous key by one byte (`p = i`, `k = "a"`)
//! makes the decoder allocate the square of the entry count. With identity-hash CIDs an
//! entry is ~20 bytes, so a 1 MiB node would cost over a gigabyte. Key length and the key
//! bytes of a node are capped; such a node is refused with a typed error before the keys
//! are built, and peak memory stays a small multiple of the input.
//!
//! One test per binary: it reads the process's peak resident size.

use atmls_repo::mst::MstError;
use cid::Cid;
use serde::Serialize;

#[derive(Serialize)]
struct Entry {
    p: u64,
    #[serde(with = "serde_bytes")]
    k: Vec<u8>,
    v: Cid,
    t: Option<Cid>,
}

#[derive(Serialize)]
struct Node {
    l: Option<Cid>,
    e: Vec<Entry>,
}

/// A canonical node of `n` entries whose `i`-th key is `"a"` repeated `i + 1` times.
fn staircase(n: usize) -> Vec<u8> {
    // CIDv1, raw codec, identity multihash of zero bytes: the smallest valid CID.
    let tiny = Cid::try_from("bafkqaaa").expect("identity CID");
    let e = (0..n)
        .map(|i| Entry {
            p: i as u64,
            k: b"a".to_vec(),
            v: tiny,
            t: None,
        })
        .collect();
    serde_ipld_dagcbor::to_vec(&Node { l: None, e }).expect("encode")
}

/// Peak resident set size of this process, in bytes (Linux `VmHWM`).
#[cfg(target_os = "linux")]
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmHWM value");
    kib * 1024
}

#[test]
fn quadratic_key_node_is_refused_with_bounded_memory() {
    // 30,000 entries: ~640 KB of input, 450 MB of keys if they were all built.
    let bytes = staircase(30_000);
    assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
    #[cfg(target_os = "linux")]
    let before = peak_rss();
    let result = atmls_repo::mst::decode_node_block(&bytes);
    #[cfg(target_os = "linux")]
    {
        let grown = peak_rss().saturating_sub(before);
        assert!(
            grown < 64 << 20,
            "decoding {} bytes raised peak memory by {} MiB",
            bytes.len(),
            grown >> 20
        );
    }
    let err = result.expect_err("a node with 450 MB of keys is refused");
    assert!(
        matches!(
            err,
            MstError::TooManyKeyBytes { .. } | MstError::KeyTooLong { .. }
        ),
        "typed error: {err:?}"
    );
}
