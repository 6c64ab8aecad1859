// The device store: named byte records in IndexedDB, sealed under two non-extractable
// WebCrypto keys, kept in the same database or derived from a passphrase (decision 0028,
// spec §11.11 "browser device state"). Layout of database `dbName` (schema 1):
//
//   keys   "store" -> { aead: CryptoKey, mac: CryptoKey }     (stored keys: structured clone, non-extractable)
//   meta   "kdf"   -> { version, kdf, iterations, salt }      (passphrase stores instead of "store")
//   meta   "check" -> { tag, box }                            (KeyCheck: proves the keys are this store's)
//   names  id      -> nonce || AES-GCM(name,  ad = "… name\0"  || id)
//   values id      -> nonce || AES-GCM(value, ad = "… value\0" || name)
//
// where id = hex HMAC-SHA-256(mac, "… id\0" || name). A record's name never appears in
// clear; `list` opens the small `names` entries only. A write batch is one IndexedDB
// transaction over `names` and `values`.

import {
  StoreClosed,
  StoreConflict,
  StoreCorrupt,
  StoreKeyMissing,
  StorePassphraseRequired,
  StoreWrongKey,
} from "./errors.js";
import { committed, deleteDatabase, mapError, openDatabase, result, transaction } from "./idb.js";
import { newKdfParams, parseKdfParams, passphraseKeys, type KdfParams } from "./passphrase.js";
import {
  generateStoreKeys,
  makeKeyCheck,
  nameBytes,
  openName,
  openValue,
  parseStoreKeys,
  recordId,
  sealName,
  sealValue,
  verifyKeyCheck,
  type StoreKeys,
} from "./seal.js";

/**
 * Options of `openStore`: where the two keys come from (decision 0028, "key sources").
 *
 * - `stored` (the default): random non-extractable keys, created with the store and kept
 *   in it. Reopens by itself after a reload or restart; the keys are in the profile.
 * - `passphrase`: keys derived from a passphrase (PBKDF2, then HKDF), never stored; the
 *   passphrase is needed at every open. A wrong one is `StoreWrongKey`.
 *
 * A store keeps the source it was created with: opening a stored-key store with a
 * passphrase is `StoreWrongKey`, a passphrase store without one `StorePassphraseRequired`.
 */
export type OpenOptions =
  | {
      readonly keys?: "stored";
      /**
       * Makes the keys of a store being created (default `generateStoreKeys`: random,
       * non-extractable). Whatever it returns must be non-extractable or the open fails
       * with `StoreCorrupt`. Tests use it to know the key bytes they scan the profile for.
       */
      readonly generateKeys?: () => Promise<StoreKeys>;
    }
  | {
      readonly keys: "passphrase";
      readonly passphrase: string;
      /** PBKDF2 iterations when the store is created (default `DEFAULT_PBKDF2_ITERATIONS`); ignored later. */
      readonly iterations?: number;
    };

/** One operation of an atomic batch (`DeviceStore.write`). */
export type WriteOp =
  /** Writes `value` under `name`, replacing any previous value. */
  | { readonly op: "put"; readonly name: string; readonly value: Uint8Array }
  /** Writes `value` under `name`; if `name` exists the whole batch fails with `StoreConflict`. */
  | { readonly op: "create"; readonly name: string; readonly value: Uint8Array }
  /** Removes `name` (absent is fine). */
  | { readonly op: "delete"; readonly name: string };

/** Opens the device store `dbName`, creating it (and its keys) if it does not exist. */
export function openStore(dbName: string, options: OpenOptions = {}): Promise<DeviceStore> {
  return DeviceStore.open(dbName, options);
}

/** An open device store. Every method is async and fails only with a `StoreError`. */
export class DeviceStore {
  #closed = false;

  private constructor(
    readonly dbName: string,
    private readonly db: IDBDatabase,
    private readonly keys: StoreKeys,
  ) {
    // Another tab deleting or upgrading the database: step aside instead of blocking it.
    db.onversionchange = () => this.close();
    db.onclose = () => {
      this.#closed = true;
    };
  }

  /** See `openStore`. Invalid options (e.g. iterations out of bounds) throw a `RangeError`. */
  static async open(dbName: string, options: OpenOptions = {}): Promise<DeviceStore> {
    const db = await openDatabase(dbName);
    try {
      const keys = await loadOrCreateKeys(db, options);
      return new DeviceStore(dbName, db, keys);
    } catch (e) {
      db.close();
      // A RangeError (invalid options) is the caller's bug, not the store's state.
      throw e instanceof RangeError ? e : mapError(e, "opening the store");
    }
  }

  /** The value stored under `name`, or `undefined` if there is none. */
  async get(name: string): Promise<Uint8Array | undefined> {
    this.#open();
    const id = await recordId(this.keys, name);
    const tx = transaction(this.db, ["values"], "readonly");
    const sealed = await result(tx.objectStore("values").get(id));
    if (sealed === undefined) return undefined;
    return openValue(this.keys, name, sealed);
  }

  /** Stores `value` under `name`. */
  put(name: string, value: Uint8Array): Promise<void> {
    return this.write([{ op: "put", name, value }]);
  }

  /** Removes the record `name` (absent is fine). */
  delete(name: string): Promise<void> {
    return this.write([{ op: "delete", name }]);
  }

  /**
   * Applies `ops` in order, all or nothing, in one IndexedDB transaction (e.g. a group's
   * state and its outbox). A `create` of an existing name fails the batch with
   * `StoreConflict`; nothing of it is then written.
   */
  async write(ops: readonly WriteOp[]): Promise<void> {
    this.#open();
    for (const op of ops) nameBytes(op.name);
    // All cryptography first: an IndexedDB transaction commits itself as soon as it has no
    // pending request, so nothing may be awaited between its requests.
    const prepared = await Promise.all(
      ops.map(async (op) => {
        const id = await recordId(this.keys, op.name);
        if (op.op === "delete") return { op: op.op, id } as const;
        const [sealedName, sealedValue] = await Promise.all([
          sealName(this.keys, id, op.name),
          sealValue(this.keys, op.name, op.value),
        ]);
        return { op: op.op, id, sealedName, sealedValue } as const;
      }),
    );
    this.#open();
    const tx = transaction(this.db, ["names", "values"], "readwrite");
    const done = committed(tx);
    try {
      const names = tx.objectStore("names");
      const values = tx.objectStore("values");
      for (const p of prepared) {
        if (p.op === "delete") {
          names.delete(p.id);
          values.delete(p.id);
        } else if (p.op === "create") {
          names.add(p.sealedName, p.id);
          values.add(p.sealedValue, p.id);
        } else {
          names.put(p.sealedName, p.id);
          values.put(p.sealedValue, p.id);
        }
      }
    } catch (e) {
      try {
        tx.abort();
      } catch {
        // already aborted by the failed request
      }
      await done.catch(() => undefined);
      throw mapError(e, "writing a batch");
    }
    await done;
  }

  /** The names of all records starting with `prefix` (all records for ""), sorted. */
  async list(prefix = ""): Promise<string[]> {
    this.#open();
    const tx = transaction(this.db, ["names"], "readonly");
    const store = tx.objectStore("names");
    const [ids, sealed] = await Promise.all([result(store.getAllKeys()), result(store.getAll())]);
    if (ids.length !== sealed.length) throw new StoreCorrupt("the name index changed while being read");
    const names: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== "string") throw new StoreCorrupt("a record id is not a string");
      const name = await openName(this.keys, id, sealed[i]);
      if (name.startsWith(prefix)) names.push(name);
    }
    return names.sort();
  }

  /** Closes the connection; later calls fail with `StoreClosed`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.db.close();
  }

  /**
   * Closes the store and deletes its database: records, key check and keys. What the
   * browser keeps of deleted data in its files until it compacts them is outside this
   * promise (decision 0028).
   */
  async destroy(): Promise<void> {
    this.close();
    await deleteDatabase(this.dbName);
  }

  #open(): void {
    if (this.#closed) throw new StoreClosed("the store is closed");
  }
}

/**
 * Reads the keys (stored, or derived from the passphrase and the stored KDF parameters) and
 * verifies them against the key check; creates keys and check when the database is new.
 * Keys missing while the check or any record exists is `StoreKeyMissing` (never
 * regenerated: new keys would silently hide the old records).
 */
async function loadOrCreateKeys(db: IDBDatabase, options: OpenOptions): Promise<StoreKeys> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const tx = transaction(db, ["keys", "meta", "names", "values"], "readonly");
    const [entry, kdf, check, names, values] = await Promise.all([
      result(tx.objectStore("keys").get("store")),
      result(tx.objectStore("meta").get("kdf")),
      result(tx.objectStore("meta").get("check")),
      result(tx.objectStore("names").count()),
      result(tx.objectStore("values").count()),
    ]);
    if (entry !== undefined && kdf !== undefined) throw new StoreCorrupt("the store has both stored keys and passphrase parameters");
    if (entry !== undefined || kdf !== undefined) {
      let keys: StoreKeys;
      if (kdf !== undefined) {
        if (options.keys !== "passphrase") throw new StorePassphraseRequired("this store was created with a passphrase");
        keys = await passphraseKeys(options.passphrase, parseKdfParams(kdf));
      } else {
        if (options.keys === "passphrase") throw new StoreWrongKey("this store keeps its keys; it has no passphrase");
        keys = parseStoreKeys(entry);
      }
      if (check === undefined) throw new StoreCorrupt("the key check is missing");
      await verifyKeyCheck(keys, check);
      return keys;
    }
    if (check !== undefined || names > 0 || values > 0) {
      throw new StoreKeyMissing("the store holds data but its keys are gone");
    }
    let keys: StoreKeys;
    let params: KdfParams | undefined;
    if (options.keys === "passphrase") {
      params = newKdfParams(options.iterations);
      keys = await passphraseKeys(options.passphrase, params);
    } else {
      keys = parseStoreKeys(await (options.generateKeys ?? generateStoreKeys)());
    }
    const newCheck = await makeKeyCheck(keys);
    const wtx = transaction(db, ["keys", "meta"], "readwrite");
    const done = committed(wtx);
    if (params === undefined) wtx.objectStore("keys").add({ aead: keys.aead, mac: keys.mac }, "store");
    else wtx.objectStore("meta").add(params, "kdf");
    wtx.objectStore("meta").add(newCheck, "check");
    try {
      await done;
      return keys;
    } catch (e) {
      // Another tab created the store between our read and our write: read theirs.
      if (e instanceof StoreConflict && attempt === 0) continue;
      throw e;
    }
  }
  throw new StoreCorrupt("the store keys could not be created nor read");
}
