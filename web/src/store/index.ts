// The browser device's state at rest (issue 18; decision 0028; spec §11.11): an encrypted
// key-value store on IndexedDB under non-extractable WebCrypto keys.
//
//   const store = await openStore("atmls-device");
//   await store.write([{ op: "put", name: "group/…/state", value }, { op: "delete", name: "outbox/…" }]);
//   const bytes = await store.get("group/…/state");

export { getValue, putValue, valueOp } from "./cbor.js";
export * from "./errors.js";
export {
  DEFAULT_PBKDF2_ITERATIONS,
  INSECURE_PBKDF2_ITERATIONS_FOR_TESTS,
  MAX_PBKDF2_ITERATIONS,
  type KdfParams,
} from "./passphrase.js";
export { generateStoreKeys, MAX_NAME_BYTES, type StoreKeys } from "./seal.js";
export { DeviceStore, openStore, type OpenOptions, type WriteOp } from "./store.js";
