// The test page of the store's browser tests (bundled by test/store/run.mjs, driven through
// playwright-core). Each scenario runs in the page against the real IndexedDB and WebCrypto,
// throws an Error naming what failed, and returns plain data for run.mjs to check.

import {
  DEFAULT_PBKDF2_ITERATIONS,
  getValue,
  INSECURE_PBKDF2_ITERATIONS_FOR_TESTS,
  openStore,
  putValue,
  StoreClosed,
  StoreConflict,
  StoreCorrupt,
  StoreInvalidName,
  valueOp,
  type StoreKeys,
} from "../../src/store/index.js";
import { openValue } from "../../src/store/seal.js";

const text = new TextEncoder();
const untext = new TextDecoder();

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function rejects(p: Promise<unknown>, cls: abstract new (...a: never[]) => Error, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (e instanceof cls) return;
    throw new Error(`${what}: expected ${cls.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  throw new Error(`${what}: expected ${cls.name}, got success`);
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Keys imported from known bytes, non-extractable: so that run.mjs can look for the bytes. */
function knownKeys(aeadHex: string, macHex: string): () => Promise<StoreKeys> {
  return async () => ({
    aead: await crypto.subtle.importKey("raw", fromHex(aeadHex), { name: "AES-GCM" }, false, ["encrypt", "decrypt"]),
    mac: await crypto.subtle.importKey("raw", fromHex(macHex), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
  });
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- raw IndexedDB, bypassing the store (tampering, controls) ----

function raw<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function rawOpen(dbName: string): Promise<IDBDatabase> {
  const req = indexedDB.open(dbName);
  req.onupgradeneeded = () => {
    if (!req.result.objectStoreNames.contains("plain")) req.result.createObjectStore("plain");
  };
  return raw(req);
}

async function rawEdit(dbName: string, store: string, edit: (s: IDBObjectStore) => Promise<void>): Promise<void> {
  const db = await rawOpen(dbName);
  const tx = db.transaction([store], "readwrite");
  const done = new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error);
  });
  await edit(tx.objectStore(store));
  await done;
  db.close();
}

async function rawEntries(dbName: string, store: string): Promise<[IDBValidKey, unknown][]> {
  const db = await rawOpen(dbName);
  const s = db.transaction([store], "readonly").objectStore(store);
  const [keys, values] = await Promise.all([raw(s.getAllKeys()), raw(s.getAll())]);
  db.close();
  return keys.map((k, i) => [k, values[i]]);
}

// ---- scenarios ----

const scenarios = {
  async basics(db: string) {
    const store = await openStore(db);
    check((await store.get("absent")) === undefined, "absent name reads undefined");
    await store.put("group/1/state", text.encode("one"));
    await store.put("group/2/state", text.encode("two"));
    await store.put("outbox/1", text.encode("out"));
    check(untext.decode(await store.get("group/1/state")) === "one", "get after put");
    await store.put("group/1/state", text.encode("one, again"));
    check(untext.decode(await store.get("group/1/state")) === "one, again", "put replaces");
    check(JSON.stringify(await store.list("group/")) === '["group/1/state","group/2/state"]', "list by prefix");
    check(JSON.stringify(await store.list()) === '["group/1/state","group/2/state","outbox/1"]', "list all");
    await store.delete("group/2/state");
    await store.delete("never/there");
    check((await store.get("group/2/state")) === undefined, "deleted is gone");
    check(JSON.stringify(await store.list("group/")) === '["group/1/state"]', "list after delete");
    const empty = new Uint8Array(0);
    await store.put("empty", empty);
    check((await store.get("empty"))?.length === 0, "an empty value is a value, not absence");
    await rejects(store.put("", text.encode("x")), StoreInvalidName, "empty name");
    await rejects(store.get("x".repeat(2000)), StoreInvalidName, "long name");
    // The DAG-CBOR layer, with a parser.
    await putValue(store, "typed", { cursor: 7, mailbox: "m" });
    const parse = (v: unknown): { cursor: number } => {
      if (typeof v !== "object" || v === null || typeof (v as { cursor?: unknown }).cursor !== "number") throw new Error("bad shape");
      return { cursor: (v as { cursor: number }).cursor };
    };
    check((await getValue(store, "typed", parse))?.cursor === 7, "typed value round trip");
    await rejects(getValue(store, "typed", () => { throw new Error("other type"); }), StoreCorrupt, "typed value of another shape");
    await rejects(getValue(store, "group/1/state", parse), StoreCorrupt, "bytes that are not DAG-CBOR");
    store.close();
    await rejects(store.get("group/1/state"), StoreClosed, "closed store");
    const again = await openStore(db);
    const names = await again.list();
    again.close();
    return names;
  },

  async atomic(db: string) {
    const store = await openStore(db);
    await store.write([
      { op: "put", name: "group/g/state", value: text.encode("epoch 1") },
      { op: "put", name: "group/g/outbox/1", value: text.encode("hello") },
    ]);
    // A state change and its outbox change together.
    await store.write([
      { op: "put", name: "group/g/state", value: text.encode("epoch 2") },
      { op: "delete", name: "group/g/outbox/1" },
      valueOp("create", "group/g/outbox/2", { text: "second" }),
    ]);
    check(untext.decode(await store.get("group/g/state")) === "epoch 2", "batch put applied");
    check((await store.get("group/g/outbox/1")) === undefined, "batch delete applied");
    // A failing batch (create of an existing name, last) leaves nothing of its earlier ops.
    await rejects(
      store.write([
        { op: "put", name: "group/g/state", value: text.encode("epoch 3") },
        { op: "delete", name: "group/g/outbox/2" },
        { op: "put", name: "group/h/state", value: text.encode("new group") },
        { op: "create", name: "group/g/state", value: text.encode("dup") },
      ]),
      StoreConflict,
      "create of an existing name",
    );
    check(untext.decode(await store.get("group/g/state")) === "epoch 2", "failed batch: put rolled back");
    check((await store.get("group/g/outbox/2")) !== undefined, "failed batch: delete rolled back");
    check((await store.get("group/h/state")) === undefined, "failed batch: new record rolled back");
    // Invalid names are refused before anything is written.
    await rejects(
      store.write([{ op: "put", name: "group/i/state", value: text.encode("x") }, { op: "put", name: "", value: text.encode("y") }]),
      StoreInvalidName,
      "a batch with an empty name",
    );
    check((await store.get("group/i/state")) === undefined, "invalid batch wrote nothing");
    const names = await store.list();
    store.close();
    return names;
  },

  /** Writes records holding `marker` under names containing `name`, with known key bytes. */
  async writeState(db: string, marker: string, name: string, aeadHex: string, macHex: string) {
    const store = await openStore(db, { generateKeys: knownKeys(aeadHex, macHex) });
    await store.write([
      { op: "put", name, value: text.encode(`message text ${marker}`) },
      { op: "put", name: `${name}/outbox`, value: text.encode(marker.repeat(64)) },
    ]);
    for (let i = 0; i < 20; i++) await store.put(`${name}/${i}`, text.encode(`${marker} ${i}`));
    store.close();
    return true;
  },

  async readState(db: string, name: string) {
    const store = await openStore(db);
    const value = await store.get(name);
    const names = await store.list(name);
    store.close();
    return { value: value === undefined ? null : untext.decode(value), count: names.length };
  },

  /** The control: the same kind of data written to IndexedDB without the store. */
  async writeControl(db: string, marker: string, name: string) {
    await rawEdit(db, "plain", async (s) => {
      s.put(text.encode(`message text ${marker}`), name);
      s.put(`message text ${marker}`, `${name}/string`);
    });
    return true;
  },

  async exportKeys(db: string) {
    const store = await openStore(db);
    await store.put("x", text.encode("x"));
    store.close();
    const entries = await rawEntries(db, "keys");
    check(entries.length === 1, "one key entry");
    const entry = entries[0]?.[1] as { aead: CryptoKey; mac: CryptoKey };
    const results: Record<string, string> = {};
    for (const [label, key] of [["aead", entry.aead], ["mac", entry.mac]] as const) {
      results[`${label}.extractable`] = String(key.extractable);
      for (const format of ["raw", "jwk"] as const) {
        try {
          await crypto.subtle.exportKey(format, key);
          results[`${label}.${format}`] = "exported";
        } catch (e) {
          results[`${label}.${format}`] = e instanceof Error ? e.name : "thrown";
        }
      }
    }
    return results;
  },

  async tamper(db: string) {
    const store = await openStore(db);
    await store.put("a", text.encode("value of a"));
    await store.put("b", text.encode("value of b"));
    store.close();
    const values = await rawEntries(db, "values");
    check(values.length === 2, "two values");
    const [[idA, va], [idB, vb]] = values as [[IDBValidKey, Uint8Array], [IDBValidKey, Uint8Array]];
    const out: Record<string, string> = {};
    const outcome = async (label: string, p: Promise<unknown>) => {
      try {
        await p;
        out[label] = "ok";
      } catch (e) {
        out[label] = e instanceof Error ? e.name : "thrown";
      }
    };
    // Every record reads before tampering.
    await outcome("before", openStore(db).then(async (s) => { await s.get("a"); await s.get("b"); await s.list(); s.close(); }));
    // One flipped byte of a stored ciphertext.
    const flipped = va.slice();
    flipped[flipped.length - 20] = (flipped[flipped.length - 20] ?? 0) ^ 0x01;
    await rawEdit(db, "values", async (s) => { s.put(flipped, idA); });
    // (The first entry is "a" or "b", by id order: read both.)
    await outcome("flipped", openStore(db).then(async (s) => { try { await s.get("a"); await s.get("b"); } finally { s.close(); } }));
    // Records swapped: each ciphertext is valid, under the other name.
    await rawEdit(db, "values", async (s) => { s.put(vb, idA); s.put(va, idB); });
    await outcome("swapped", openStore(db).then(async (s) => { try { await s.get("a"); } finally { s.close(); } }));
    await rawEdit(db, "values", async (s) => { s.put(va, idA); s.put(vb, idB); });
    await outcome("restored", openStore(db).then(async (s) => { try { await s.get("a"); await s.get("b"); } finally { s.close(); } }));
    // A sealed name swapped: listing refuses it.
    const names = (await rawEntries(db, "names")) as [IDBValidKey, Uint8Array][];
    await rawEdit(db, "names", async (s) => { s.put(names[1]?.[1], names[0]?.[0] ?? ""); });
    await outcome("nameSwapped", openStore(db).then(async (s) => { try { await s.list(); } finally { s.close(); } }));
    // Other keys in place of the store's: the key check refuses them.
    const other = await knownKeys("11".repeat(32), "22".repeat(32))();
    const keys = await rawEntries(db, "keys");
    await rawEdit(db, "keys", async (s) => { s.put({ aead: other.aead, mac: other.mac }, "store"); });
    await outcome("otherKeys", openStore(db).then((s) => s.close()));
    // Keys deleted while records exist: never regenerated.
    await rawEdit(db, "keys", async (s) => { s.delete("store"); });
    await outcome("keysDeleted", openStore(db).then((s) => s.close()));
    await rawEdit(db, "keys", async (s) => { s.put(keys[0]?.[1], "store"); });
    await outcome("keysBack", openStore(db).then(async (s) => { try { await s.get("b"); } finally { s.close(); } }));
    return out;
  },

  /** Writes two records, deletes one, destroys the store; returns the sealed values it had. */
  async residue(db: string, aeadHex: string, macHex: string) {
    const store = await openStore(db, { generateKeys: knownKeys(aeadHex, macHex) });
    await store.put("kept", crypto.getRandomValues(new Uint8Array(200)));
    await store.put("deleted", crypto.getRandomValues(new Uint8Array(200)));
    store.close();
    const sealed = (await rawEntries(db, "values")).map(([, v]) => Array.from(v as Uint8Array, (b) => b.toString(16).padStart(2, "0")).join(""));
    const again = await openStore(db);
    await again.delete("deleted");
    check((await again.list()).join() === "kept", "one record left");
    await again.destroy();
    return sealed;
  },

  /**
   * A passphrase store: written, reopened (none, wrong, right passphrase), and its keys
   * recomputed here from the stored salt by the formula of decision 0028 — checked by
   * opening a record with them — so that run.mjs can look for their bytes.
   */
  async passphrase(db: string, marker: string, name: string, passphrase: string) {
    const opts = { keys: "passphrase", passphrase, iterations: INSECURE_PBKDF2_ITERATIONS_FOR_TESTS } as const;
    const store = await openStore(db, opts);
    await store.put(name, text.encode(`message text ${marker}`));
    for (let i = 0; i < 10; i++) await store.put(`${name}/${i}`, text.encode(`${marker} ${i}`));
    store.close();
    const out: Record<string, string> = {};
    const outcome = async (label: string, p: Promise<unknown>) => {
      try {
        out[label] = String(await p);
      } catch (e) {
        out[label] = e instanceof Error ? e.name : "thrown";
      }
    };
    await outcome("none", openStore(db).then((s) => s.close()));
    await outcome("wrong", openStore(db, { ...opts, passphrase: `${passphrase}!` }).then((s) => s.close()));
    await outcome("right", openStore(db, opts).then(async (s) => { try { return untext.decode(await s.get(name)); } finally { s.close(); } }));
    // The keys, recomputed.
    const [[, kdf]] = (await rawEntries(db, "meta")).filter(([k]) => k === "kdf") as [[IDBValidKey, { salt: Uint8Array<ArrayBuffer>; iterations: number }]];
    const base = await crypto.subtle.importKey("raw", text.encode(passphrase), "PBKDF2", false, ["deriveBits"]);
    const ikm = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: kdf.salt, iterations: kdf.iterations }, base, 256);
    const hkdf = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
    const derive = async (what: string) =>
      new Uint8Array(await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: text.encode(`atmls-web-store v1 ${what}`) }, hkdf, 256));
    const aead = await derive("aead");
    const mac = await derive("mac");
    const keys = await knownKeys(toHex(aead), toHex(mac))();
    // The recomputed keys open the record `name`.
    const values = await rawEntries(db, "values");
    let opened = 0;
    for (const [, v] of values) {
      try {
        await openValue(keys, name, v);
        opened++;
      } catch {
        // another record
      }
    }
    check(opened === 1, "the recomputed keys open the record");
    return { outcomes: out, ikm: toHex(new Uint8Array(ikm)), aead: toHex(aead), mac: toHex(mac) };
  },

  async passphraseMisuse(db: string) {
    const out: Record<string, string> = {};
    const outcome = async (label: string, p: Promise<unknown>) => {
      try {
        await p;
        out[label] = "ok";
      } catch (e) {
        out[label] = e instanceof Error ? e.name : "thrown";
      }
    };
    await outcome("storedCreate", openStore(`${db}-stored`).then((s) => s.close()));
    await outcome("storedWithPassphrase", openStore(`${db}-stored`, { keys: "passphrase", passphrase: "p" }).then((s) => s.close()));
    await outcome("emptyPassphrase", openStore(`${db}-pass`, { keys: "passphrase", passphrase: "" }).then((s) => s.close()));
    const opts = { keys: "passphrase", passphrase: "p", iterations: INSECURE_PBKDF2_ITERATIONS_FOR_TESTS } as const;
    await outcome("passCreate", openStore(`${db}-pass`, opts).then((s) => s.close()));
    const [[, kdf]] = (await rawEntries(`${db}-pass`, "meta")).filter(([k]) => k === "kdf") as [[IDBValidKey, Record<string, unknown>]];
    await rawEdit(`${db}-pass`, "meta", async (s) => { s.put({ ...kdf, iterations: 1_000_000_000 }, "kdf"); });
    await outcome("hugeIterations", openStore(`${db}-pass`, opts).then((s) => s.close()));
    await rawEdit(`${db}-pass`, "meta", async (s) => { s.put({ ...kdf, salt: new Uint8Array(16) }, "kdf"); });
    await outcome("otherSalt", openStore(`${db}-pass`, opts).then((s) => s.close()));
    await rawEdit(`${db}-pass`, "meta", async (s) => { s.put(kdf, "kdf"); });
    await outcome("restored", openStore(`${db}-pass`, opts).then((s) => s.close()));
    return out;
  },

  async readWithPassphrase(db: string, name: string, passphrase: string) {
    const store = await openStore(db, { keys: "passphrase", passphrase });
    try {
      return untext.decode(await store.get(name));
    } finally {
      store.close();
    }
  },

  /** Milliseconds to open a new passphrase store at the default iteration count. */
  async defaultCost(db: string) {
    const t0 = performance.now();
    const store = await openStore(db, { keys: "passphrase", passphrase: "a passphrase", iterations: DEFAULT_PBKDF2_ITERATIONS });
    const created = performance.now() - t0;
    store.close();
    const t1 = performance.now();
    (await openStore(db, { keys: "passphrase", passphrase: "a passphrase" })).close();
    return { created: Math.round(created), reopened: Math.round(performance.now() - t1) };
  },

  async destroy(db: string) {
    const first = await openStore(db);
    await first.put("secret", text.encode("v"));
    const second = await openStore(db);
    await first.destroy();
    const out: Record<string, string> = {};
    try {
      await second.get("secret");
      out.secondAfterDestroy = "ok";
    } catch (e) {
      out.secondAfterDestroy = e instanceof Error ? e.name : "thrown";
    }
    const dbs = await indexedDB.databases();
    out.stillListed = String(dbs.some((d) => d.name === db));
    const fresh = await openStore(db);
    out.freshRecords = String((await fresh.list()).length);
    out.freshGet = String(await fresh.get("secret"));
    fresh.close();
    return out;
  },
};

/** What run.mjs calls: `storeTest(name, ...args)`. */
async function storeTest(name: keyof typeof scenarios, ...args: string[]): Promise<unknown> {
  const f = scenarios[name] as (...a: string[]) => Promise<unknown>;
  return f(...args);
}

(globalThis as unknown as { storeTest: typeof storeTest }).storeTest = storeTest;