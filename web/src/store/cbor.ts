// A typed layer over the byte records: values encoded as DAG-CBOR, read back through a
// parser the caller gives (parse, don't validate). A value that decrypts but does not
// decode or parse is `StoreCorrupt` with the cause attached.

import { decode, encode } from "@ipld/dag-cbor";

import { StoreCorrupt, StoreError } from "./errors.js";
import type { DeviceStore, WriteOp } from "./store.js";

/** Reads `name` and parses its DAG-CBOR value with `parse`; `undefined` when absent. */
export async function getValue<T>(store: DeviceStore, name: string, parse: (value: unknown) => T): Promise<T | undefined> {
  const bytes = await store.get(name);
  if (bytes === undefined) return undefined;
  let decoded: unknown;
  try {
    decoded = decode(bytes);
  } catch (e) {
    throw new StoreCorrupt("a stored value is not DAG-CBOR", { cause: e });
  }
  try {
    return parse(decoded);
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreCorrupt("a stored value does not have the expected type", { cause: e });
  }
}

/** Stores `value` (anything DAG-CBOR can encode) under `name`. */
export function putValue(store: DeviceStore, name: string, value: unknown): Promise<void> {
  return store.write([valueOp("put", name, value)]);
}

/** A batch operation writing `value` as DAG-CBOR, for `DeviceStore.write`. */
export function valueOp(op: "put" | "create", name: string, value: unknown): WriteOp {
  return { op, name, value: encode(value) };
}
