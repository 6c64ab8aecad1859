//! KeyPackages: this device's own (built, published as `chat.mls.keyPackage` records,
//! replaced), and other accounts' (fetched and verified against their repo, §3.3).

pub(crate) mod build;
mod verify;

pub(crate) use build::{build_key_package, declaration_record};
pub use build::{capabilities, leaf_capabilities};
pub use verify::VerifiedKeyPackage;
pub(crate) use verify::{prove_record, verify_added_key_package, verify_key_package};

/// The collection of KeyPackage records.
pub const KEY_PACKAGE_COLLECTION: &str = "chat.mls.keyPackage";
/// The collection of declarations.
pub const DECLARATION_COLLECTION: &str = "chat.mls.declaration";

/// A KeyPackageRef from its raw bytes (as stored and as in records).
pub(crate) fn key_package_ref(raw: &[u8]) -> Option<openmls::prelude::KeyPackageRef> {
    use openmls::prelude::tls_codec::Deserialize as _;
    let len = u8::try_from(raw.len()).ok().filter(|l| *l < 64)?;
    let mut bytes = Vec::with_capacity(raw.len() + 1);
    bytes.push(len);
    bytes.extend_from_slice(raw);
    openmls::prelude::KeyPackageRef::tls_deserialize_exact(bytes.as_slice()).ok()
}
