// Where a device keeps its state (docs/spec.md §11.11, decision 0028): a key-value contract
// that the encrypted IndexedDB store (web/src/store) satisfies in a browser and a memory map
// satisfies in Node tests. Every state change is one `write` of several operations, applied
// whole or not at all.
import * as cbor from "@ipld/dag-cbor";
import type { WriteOp } from "../store/store.js";

/** The contract a device's state lives in (the browser's `DeviceStore` implements it). */
export interface DeviceStorage {
  get(name: string): Promise<Uint8Array | undefined>;
  /** Applies every op in one transaction (all or nothing). */
  write(ops: readonly WriteOp[]): Promise<void>;
  /** Names starting with `prefix`. */
  list(prefix?: string): Promise<string[]>;
}

/** A storage in memory (tests, and a device that should leave nothing behind). */
export class MemoryStorage implements DeviceStorage {
  readonly #map = new Map<string, Uint8Array>();

  async get(name: string): Promise<Uint8Array | undefined> {
    return this.#map.get(name)?.slice();
  }

  async write(ops: readonly WriteOp[]): Promise<void> {
    for (const op of ops) if (op.op === "create" && this.#map.has(op.name)) throw new Error("create of an existing name");
    for (const op of ops) {
      if (op.op === "delete") this.#map.delete(op.name);
      else this.#map.set(op.name, op.value.slice());
    }
  }

  async list(prefix = ""): Promise<string[]> {
    return [...this.#map.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
}

/** A stored value that does not parse: the state is damaged (never a peer's fault). */
export class StateCorrupt extends Error {
  override readonly name = "StateCorrupt";
}

/** A put of `value` (DAG-CBOR) under `name`. */
export function putOp(name: string, value: unknown): WriteOp {
  return { op: "put", name, value: cbor.encode(value) };
}

/** A delete of `name`. */
export function deleteOp(name: string): WriteOp {
  return { op: "delete", name };
}

/** Reads `name` and parses its DAG-CBOR value with `parse`; undefined when absent. */
export async function readValue<T>(storage: DeviceStorage, name: string, parse: (v: Fields) => T): Promise<T | undefined> {
  const bytes = await storage.get(name);
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = cbor.decode(bytes);
  } catch {
    throw new StateCorrupt(`${name.split("/")[0] ?? "value"}: not DAG-CBOR`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new StateCorrupt("not a map");
  }
  return parse(new Fields(value as Record<string, unknown>));
}

/** Typed access to the fields of a stored map; a missing or mistyped field is StateCorrupt. */
export class Fields {
  constructor(readonly raw: Record<string, unknown>) {}

  str(k: string): string {
    const v = this.raw[k];
    if (typeof v !== "string") throw new StateCorrupt(`field ${k}`);
    return v;
  }

  num(k: string): number {
    const v = this.raw[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new StateCorrupt(`field ${k}`);
    return v;
  }

  bytes(k: string): Uint8Array {
    const v = this.raw[k];
    if (!(v instanceof Uint8Array)) throw new StateCorrupt(`field ${k}`);
    return v;
  }

  bool(k: string): boolean {
    const v = this.raw[k];
    if (typeof v !== "boolean") throw new StateCorrupt(`field ${k}`);
    return v;
  }

  optStr(k: string): string | undefined {
    return this.raw[k] === undefined || this.raw[k] === null ? undefined : this.str(k);
  }

  strList(k: string): string[] {
    const v = this.raw[k];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new StateCorrupt(`field ${k}`);
    return v as string[];
  }
}
