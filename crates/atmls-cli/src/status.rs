//! `atmls status`: an honest list of what exists in this build.

/// (component, state, what it is)
const COMPONENTS: &[(&str, &str, &str)] = &[
    (
        "atmls-repo",
        "built",
        "DAG-CBOR, CIDs, MST, signed commits, CAR, record proofs, memory and SQLite block stores",
    ),
    (
        "atmls repo inspect / verify-record",
        "built",
        "read repo CARs and verify getRecord proofs against a DID document",
    ),
    (
        "atmls-crypto",
        "built",
        "ES256K / ES256 keys, low-S signatures, multikey and did:key",
    ),
    (
        "atmls-identity",
        "in progress",
        "DIDs, DID documents, resolution, service-auth JWTs",
    ),
    (
        "atmls-lexicon",
        "in progress",
        "chat.mls.* lexicons and generated types",
    ),
    ("atmls-ds", "not built yet", "delivery service core"),
    (
        "atmls-pds",
        "built",
        "embedded PDS-compatible host: accounts, sessions, repos, blobs, service auth",
    ),
    (
        "atmls-server",
        "built",
        "XRPC server; `atmls serve` runs the host and the dev PLC directory",
    ),
    ("atmls-client", "not built yet", "MLS client library"),
    ("demo", "not built yet", "end-to-end demo"),
];

pub(crate) fn print() {
    println!("atmls {} — component status", env!("CARGO_PKG_VERSION"));
    let width = COMPONENTS
        .iter()
        .map(|(n, _, _)| n.len())
        .max()
        .unwrap_or(0);
    for (name, state, what) in COMPONENTS {
        println!("  {name:<width$}  {state:<13}  {what}");
    }
}
