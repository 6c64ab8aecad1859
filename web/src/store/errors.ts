// Typed failures of the device store. Every failure is one of these classes (each with its
// own `name`), never a silent default: a caller tells a damaged store from a missing key
// from a lost race by `instanceof` or by `name`. Messages never carry a record name (names
// may hold DIDs or group ids) nor any stored byte.

/** What went wrong, as a closed set (also each class's `kind`). */
export type StoreErrorKind =
  | "corrupt"
  | "keyMissing"
  | "wrongKey"
  | "conflict"
  | "closed"
  | "unavailable"
  | "invalidName"
  | "passphraseRequired";

/** Base class of every store failure. */
export abstract class StoreError extends Error {
  /** The kind of failure, one per subclass. */
  abstract readonly kind: StoreErrorKind;
}

/**
 * A record, the key check or the key entry does not decrypt or does not have its shape:
 * the storage was changed by something other than this store (or damaged). Permanent.
 */
export class StoreCorrupt extends StoreError {
  override readonly name = "StoreCorrupt";
  readonly kind = "corrupt";
}

/**
 * The store holds records (or its key check) but its wrapping keys are gone, e.g. the key
 * entry was deleted. The records cannot be read by anyone; nothing is regenerated.
 */
export class StoreKeyMissing extends StoreError {
  override readonly name = "StoreKeyMissing";
  readonly kind = "keyMissing";
}

/** The keys present (stored or given) are not the keys the store was created with. */
export class StoreWrongKey extends StoreError {
  override readonly name = "StoreWrongKey";
  readonly kind = "wrongKey";
}

/**
 * A `create` operation of a batch found its record already present: the whole batch was
 * rolled back (nothing of it was written).
 */
export class StoreConflict extends StoreError {
  override readonly name = "StoreConflict";
  readonly kind = "conflict";
}

/** The store was closed (by `close`, `destroy`, or another tab deleting or upgrading it). */
export class StoreClosed extends StoreError {
  override readonly name = "StoreClosed";
  readonly kind = "closed";
}

/**
 * IndexedDB or WebCrypto failed for a reason of the environment (no IndexedDB, quota
 * exceeded, a transaction aborted by the browser, the database blocked by another tab).
 * Transient or environmental; the store's content is unchanged by the failed call.
 */
export class StoreUnavailable extends StoreError {
  override readonly name = "StoreUnavailable";
  readonly kind = "unavailable";
}

/** A record name that is empty, too long, or not well-formed Unicode. */
export class StoreInvalidName extends StoreError {
  override readonly name = "StoreInvalidName";
  readonly kind = "invalidName";
}

/**
 * The store was created with a passphrase and none (or an empty one) was given; the page
 * should ask for it.
 */
export class StorePassphraseRequired extends StoreError {
  override readonly name = "StorePassphraseRequired";
  readonly kind = "passphraseRequired";
}
