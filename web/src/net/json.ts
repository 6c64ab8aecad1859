// Parsing untrusted JSON into typed values, one field at a time, with the failing path in
// the message (docs/spec.md §2a: a field without its lexicon type or format is refused).
import { base64Decode, EncodingError } from "./encoding.js";
import { parseMailboxId, type MailboxId } from "./mailbox-id.js";

/** Thrown when a value does not have its lexicon type; `path` names the field. */
export class ShapeError extends Error {
  override readonly name = "ShapeError";
  constructor(readonly path: string, what: string) {
    super(`${path}: ${what}`);
  }
}

/** A JSON object being read. */
export type JsonObject = { readonly [k: string]: unknown };

/** The largest integer of the protocol (§9.5.1). */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export function obj(v: unknown, path: string): JsonObject {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ShapeError(path, "not an object");
  return v as JsonObject;
}

export function arr(v: unknown, path: string, max = Infinity): readonly unknown[] {
  if (!Array.isArray(v)) throw new ShapeError(path, "not an array");
  if (v.length > max) throw new ShapeError(path, `more than ${max} items`);
  return v;
}

export function int(v: unknown, path: string, min = 0, max = MAX_SAFE): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new ShapeError(path, "not an integer");
  if (v < min || v > max) throw new ShapeError(path, `out of ${min}..${max}`);
  return v;
}

export function optInt(o: JsonObject, key: string, path: string, min = 0, max = MAX_SAFE): number | undefined {
  return o[key] === undefined ? undefined : int(o[key], `${path}/${key}`, min, max);
}

export function str(v: unknown, path: string, maxBytes = Infinity): string {
  if (typeof v !== "string") throw new ShapeError(path, "not a string");
  if (maxBytes !== Infinity && new TextEncoder().encode(v).length > maxBytes) throw new ShapeError(path, "too long");
  return v;
}

export function bool(v: unknown, path: string): boolean {
  if (typeof v !== "boolean") throw new ShapeError(path, "not a boolean");
  return v;
}

/** `{"$bytes": base64}` (§2). */
export function bytes(v: unknown, path: string, min = 0, max = Infinity): Uint8Array {
  const o = obj(v, path);
  const b64 = o["$bytes"];
  if (typeof b64 !== "string" || Object.keys(o).length !== 1) throw new ShapeError(path, "not a {$bytes} object");
  let out: Uint8Array;
  try {
    out = base64Decode(b64);
  } catch (e) {
    throw new ShapeError(path, e instanceof EncodingError ? e.message : "bad base64");
  }
  if (out.length < min || out.length > max) throw new ShapeError(path, `length not in ${min}..${max}`);
  return out;
}

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;
/** A DID in the atproto syntax. */
export type Did = string & { readonly __brand: "Did" };
export function did(v: unknown, path: string): Did {
  const s = str(v, path, 2048);
  if (!DID_RE.test(s)) throw new ShapeError(path, "not a DID");
  return s as Did;
}

const DATETIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
/** An atproto datetime (RFC 3339 with `T` and a zone), kept as its text. */
export function datetime(v: unknown, path: string): string {
  const s = str(v, path, 64);
  if (!DATETIME_RE.test(s) || Number.isNaN(Date.parse(s))) throw new ShapeError(path, "not a datetime");
  return s;
}

export function mailboxId(v: unknown, path: string): MailboxId {
  const s = str(v, path);
  try {
    return parseMailboxId(s);
  } catch {
    throw new ShapeError(path, "not a mailbox id");
  }
}
