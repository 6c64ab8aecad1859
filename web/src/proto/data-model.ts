// The atproto data model (docs/spec.md §2): values as JSON (bytes as {"$bytes": base64},
// links as {"$link": cid}) and as canonical DAG-CBOR (byte strings, tag 42, canonical map
// order, no floats); CIDv1 with SHA-256.
import * as dagCbor from "@ipld/dag-cbor";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { EncodingError, equal, fromBase64, toBase64 } from "./bytes.js";

/** One value of the data model. */
export type Ipld = null | boolean | number | string | Uint8Array | CID | Ipld[] | { [key: string]: Ipld };

/** The multicodec of DAG-CBOR (records, content objects). */
export const DAG_CBOR = 0x71;
/** The multicodec of raw bytes (blobs). */
export const RAW = 0x55;
const SHA2_256 = 0x12;

/** A value that is not in the data model, or bytes that are not canonical DAG-CBOR. */
export class DataModelError extends Error {
  override readonly name = "DataModelError";
}

/** The data-model value of a JSON value: {"$bytes"} -> bytes, {"$link"} -> CID; refuses floats. */
export function fromJson(value: unknown): Ipld {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new DataModelError("only integers (no floats) are in the data model");
    return value;
  }
  if (Array.isArray(value)) return value.map(fromJson);
  if (typeof value === "object") {
    const entries = Object.entries(value);
    const [first] = entries;
    if (entries.length === 1 && first !== undefined && (first[0] === "$bytes" || first[0] === "$link")) {
      if (typeof first[1] !== "string") throw new DataModelError(`${first[0]} is not a string`);
      try {
        return first[0] === "$bytes" ? fromBase64(first[1]) : CID.parse(first[1]);
      } catch (e) {
        throw new DataModelError(`bad ${first[0]}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const out: { [key: string]: Ipld } = {};
    for (const [k, v] of entries) out[k] = fromJson(v);
    return out;
  }
  throw new DataModelError(`${typeof value} is not in the data model`);
}

/** The JSON form of a data-model value. */
export function toJson(value: Ipld): unknown {
  if (value instanceof Uint8Array) return { $bytes: toBase64(value) };
  const cid = CID.asCID(value);
  if (cid !== null) return { $link: cid.toString() };
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJson(v as Ipld);
    return out;
  }
  return value;
}

/** Canonical DAG-CBOR of a value. */
export function encodeDagCbor(value: Ipld): Uint8Array {
  return dagCbor.encode(value);
}

/**
 * Decodes DAG-CBOR and refuses bytes that are not the canonical encoding of what they hold
 * (map order, integer sizes, trailing bytes): the decoded value is encoded again and the
 * bytes compared.
 */
export function decodeDagCbor(bytes: Uint8Array): Ipld {
  let value: Ipld;
  try {
    value = dagCbor.decode<Ipld>(bytes);
  } catch (e) {
    throw new DataModelError(`not DAG-CBOR: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!equal(dagCbor.encode(value), bytes)) throw new DataModelError("not canonical DAG-CBOR");
  return value;
}

/** SHA-256 of bytes (WebCrypto). */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** The CIDv1 (SHA-256) of bytes under a codec: DAG_CBOR for records, RAW for blobs. */
export async function cidOf(codec: typeof DAG_CBOR | typeof RAW, bytes: Uint8Array): Promise<CID> {
  return CID.createV1(codec, Digest.create(SHA2_256, await sha256(bytes)));
}

/** Parses a CID string (base32 `b…` for CIDv1), refusing anything but CIDv1 SHA-256 of RAW or DAG_CBOR. */
export function parseCid(text: string): CID {
  let cid: CID;
  try {
    cid = CID.parse(text);
  } catch (e) {
    throw new DataModelError(`not a CID: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (cid.version !== 1 || cid.multihash.code !== SHA2_256 || (cid.code !== RAW && cid.code !== DAG_CBOR)) {
    throw new DataModelError("not a CIDv1 SHA-256 of raw or dag-cbor");
  }
  if (cid.toString() !== text) throw new DataModelError("not the base32 text form of the CID");
  return cid;
}

export { CID, EncodingError };
