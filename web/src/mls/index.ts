// web/src/mls: atmls's group configuration on ts-mls (docs/spec.md §11). Plain async
// functions over immutable ts-mls states; no I/O: what needs the network (DID documents,
// record proofs) comes in as KeyMaterial.
export * from "./constants.js";
export * from "./did.js";
export * from "./tls.js";
export * from "./groupData.js";
export * from "./binding.js";
export * from "./leafProofs.js";
export * from "./epochTag.js";
export * from "./suite.js";
export * from "./keyPackage.js";
export * from "./material.js";
export * from "./verify.js";
export * from "./state.js";
export * from "./policy.js";
export * from "./errors.js";
export * from "./wire.js";
export * from "./create.js";
export * from "./commit.js";
export * from "./message.js";
export * from "./receive.js";
export * from "./join.js";
export * from "./invitee.js";
