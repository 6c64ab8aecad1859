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
        "built",
        "DIDs, DID documents, resolution, dev PLC directory, service-auth JWTs",
    ),
    (
        "atmls-lexicon",
        "built",
        "chat.mls.* lexicons, generated types, run-time lexicon validation",
    ),
    (
        "atmls-ds",
        "built",
        "delivery service core: mailboxes, ordering, mailbox-key auth, stores",
    ),
    (
        "atmls-host",
        "built",
        "embedded PDS-compatible host: accounts, sessions, repos, blobs, service auth",
    ),
    (
        "atmls-server",
        "built",
        "composition of the XRPC shells (atmls-xrpc, atmls-ds-xrpc, atmls-host-xrpc): `embedded` starts the host, the dev PLC directory and the DS in-process; `attached` the DS beside a PDS",
    ),
    (
        "atmls-client",
        "built",
        "MLS client library: KeyPackages, groups, messages, multi-device, HTTP and memory transports",
    ),
    (
        "atmls serve",
        "built",
        "embedded default (host + PLC directory + DS, SQLite in a data directory) or, with --pds-url, the DS alone beside an existing PDS",
    ),
    (
        "atmls demo",
        "built",
        "an encrypted group conversation from nothing, every step checked, DS view from its database",
    ),
    (
        "atmls-vectors",
        "built",
        "test vectors in tests/vectors/ from production code; checked again in Python",
    ),
    (
        "atmls-interop-tests",
        "built",
        "the official TypeScript PDS and PLC directory with our client and attached DS",
    ),
    (
        "atmls account / keys / group / send / watch / inbox",
        "built",
        "client commands against any PDS and DS; profiles; --json",
    ),
];

pub(crate) fn print() {
    say!("atmls {} — component status", env!("CARGO_PKG_VERSION"));
    let width = COMPONENTS
        .iter()
        .map(|(n, _, _)| n.len())
        .max()
        .unwrap_or(0);
    for (name, state, what) in COMPONENTS {
        say!("  {name:<width$}  {state:<13}  {what}");
    }
}
