// atmls's MLS code points and limits (docs/spec.md §11.1, §11.2, §11.13, §11.16).

/** GroupContext extension: the group data (§11.2). */
export const GROUP_DATA_EXTENSION = 0xf0a7;
/** Custom proposal: the proofs of added leaves (§11.13). */
export const LEAF_PROOFS_PROPOSAL = 0xf0a8;
/** Leaf node extension: the device binding (§11.16). */
export const DEVICE_BINDING_EXTENSION = 0xf0a9;
/** KeyPackage extension `last_resort` (RFC 9420 §17.3 registry, RFC 9420bis draft). */
export const LAST_RESORT_EXTENSION = 0x000a;
/** The ciphersuite this layer implements: MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519. */
export const SUITE_NAME = "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519" as const;
/** Its code point. */
export const SUITE_ID = 0x0001;
/** The exporter label of mailbox keys (§11.3). */
export const MAILBOX_EXPORTER_LABEL = "chat.mls mailbox";
