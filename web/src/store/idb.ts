// Promises over the IndexedDB requests and transactions the store uses, and the mapping of
// IndexedDB's DOMExceptions to the store's typed errors. No knowledge of records here.

import { StoreClosed, StoreConflict, StoreError, StoreUnavailable } from "./errors.js";

/** The object stores of a device store database (schema version 1). */
export const OBJECT_STORES = ["keys", "meta", "names", "values"] as const;
/** One of the object stores. */
export type ObjectStoreName = (typeof OBJECT_STORES)[number];
/** The schema version: bump with an upgrade step when the layout changes. */
export const SCHEMA_VERSION = 1;

/** Opens (creating or upgrading) the database `dbName`. */
export function openDatabase(dbName: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    let req: IDBOpenDBRequest;
    try {
      if (typeof indexedDB === "undefined") throw new Error("no indexedDB in this environment");
      req = indexedDB.open(dbName, SCHEMA_VERSION);
    } catch (e) {
      reject(new StoreUnavailable("IndexedDB cannot be opened", { cause: e }));
      return;
    }
    req.onupgradeneeded = (ev) => {
      const db = req.result;
      if (ev.oldVersion < 1) for (const name of OBJECT_STORES) db.createObjectStore(name);
    };
    const blocked = whileBlocked(req, reject, "opening the database");
    req.onsuccess = () => {
      blocked.clear();
      resolve(req.result);
    };
    req.onerror = () => {
      blocked.clear();
      reject(mapError(req.error, "opening the database"));
    };
  });
}

/** Deletes the database `dbName` (all its object stores). */
export function deleteDatabase(dbName: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let req: IDBOpenDBRequest;
    try {
      req = indexedDB.deleteDatabase(dbName);
    } catch (e) {
      reject(new StoreUnavailable("IndexedDB cannot delete the database", { cause: e }));
      return;
    }
    const blocked = whileBlocked(req, reject, "deleting the database");
    req.onsuccess = () => {
      blocked.clear();
      resolve();
    };
    req.onerror = () => {
      blocked.clear();
      reject(mapError(req.error, "deleting the database"));
    };
  });
}

/** How long an open or delete may stay blocked by other connections before it fails. */
export const BLOCKED_TIMEOUT_MS = 10_000;

/**
 * `blocked` is not a failure: other connections were asked to close (the store's own close
 * on `versionchange`) and may still be finishing a transaction. It fails with
 * `StoreUnavailable` only if they are still open after `BLOCKED_TIMEOUT_MS`.
 */
function whileBlocked(req: IDBOpenDBRequest, reject: (e: StoreError) => void, during: string): { clear(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  req.onblocked = () => {
    timer ??= setTimeout(
      () => reject(new StoreUnavailable(`${during} is blocked by another open connection`)),
      BLOCKED_TIMEOUT_MS,
    );
  };
  return { clear: () => clearTimeout(timer) };
}

/** Starts a transaction; a closed connection is `StoreClosed`. */
export function transaction(
  db: IDBDatabase,
  stores: readonly ObjectStoreName[],
  mode: IDBTransactionMode,
): IDBTransaction {
  try {
    // "strict": the browser flushes to disk before `complete` (device state must not be
    // lost after a crash once a write reported success).
    return db.transaction([...stores], mode, { durability: "strict" });
  } catch (e) {
    throw mapError(e, "starting a transaction");
  }
}

/** The result of one request. */
export function result<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(mapError(req.error, "a request"));
  });
}

/** Resolves when `tx` commits; rejects (typed) when it aborts. */
export function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    // A failed request aborts the transaction (its error is not prevented): `onabort`
    // reports it, with the request's error as `tx.error`.
    tx.onabort = () => reject(mapError(tx.error, "a transaction"));
  });
}

/** IndexedDB's exceptions as store errors; store errors pass through. */
export function mapError(e: unknown, during: string): StoreError {
  if (e instanceof StoreError) return e;
  const name = e instanceof DOMException ? e.name : "";
  if (name === "ConstraintError") return new StoreConflict(`a record to create already exists (${during})`, { cause: e });
  if (name === "InvalidStateError") return new StoreClosed(`the store is closed (${during})`, { cause: e });
  return new StoreUnavailable(`IndexedDB failed: ${name || "unknown error"} (${during})`, { cause: e });
}
