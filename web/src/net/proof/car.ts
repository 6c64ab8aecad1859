// CAR v1 reading for record proofs (docs/spec.md §3.3 step 2): minimal varints, header
// exactly {version: 1, roots}, every block hashed against its CID (CIDv1, SHA-256,
// dag-cbor or raw).
import * as dagCbor from "@ipld/dag-cbor";
import { CID } from "multiformats/cid";
import { bytesEqual } from "../encoding.js";
import { RecordProofError } from "./errors.js";

const DAG_CBOR = 0x71;
const RAW = 0x55;
const SHA256 = 0x12;

/** A parsed CAR: its single root and its blocks by CID string. */
export interface Car {
  readonly root: CID;
  readonly blocks: ReadonlyMap<string, Uint8Array>;
}

function varint(b: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < b.length && i < at + 8; i++) {
    const byte = b[i] ?? 0;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) {
      if (byte === 0 && i > at) throw new RecordProofError("Car", "non-minimal varint");
      return [value, i + 1 - at];
    }
  }
  throw new RecordProofError("Car", "truncated or oversized varint");
}

async function sha256(b: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
}

/** Parses and checks a CAR v1 file of at most `maxBytes`. */
export async function readCar(bytes: Uint8Array, maxBytes = 1024 * 1024): Promise<Car> {
  if (bytes.length > maxBytes) throw new RecordProofError("Car", "CAR too large");
  const [hlen, hl] = varint(bytes, 0);
  let pos = hl;
  if (pos + hlen > bytes.length) throw new RecordProofError("Car", "truncated header");
  let header: unknown;
  try {
    header = dagCbor.decode(bytes.subarray(pos, pos + hlen));
  } catch {
    throw new RecordProofError("Car", "header is not DAG-CBOR");
  }
  pos += hlen;
  const h = header as { version?: unknown; roots?: unknown };
  if (typeof header !== "object" || header === null || Object.keys(header).length !== 2 || h.version !== 1 || !Array.isArray(h.roots)) {
    throw new RecordProofError("Car", "header is not {version: 1, roots}");
  }
  if (h.roots.length !== 1) throw new RecordProofError("Car", "not exactly one root");
  const root = CID.asCID(h.roots[0]);
  if (root === null) throw new RecordProofError("Car", "root is not a CID");
  const blocks = new Map<string, Uint8Array>();
  while (pos < bytes.length) {
    const [len, l] = varint(bytes, pos);
    pos += l;
    if (len === 0 || pos + len > bytes.length) throw new RecordProofError("Car", "truncated block");
    const section = bytes.subarray(pos, pos + len);
    pos += len;
    let cid: CID;
    let data: Uint8Array;
    try {
      [cid, data] = CID.decodeFirst(section);
    } catch {
      throw new RecordProofError("Car", "block CID does not parse");
    }
    if (cid.version !== 1 || (cid.code !== DAG_CBOR && cid.code !== RAW) || cid.multihash.code !== SHA256 || cid.multihash.size !== 32) {
      throw new RecordProofError("Car", "block CID is not CIDv1 SHA-256 dag-cbor/raw");
    }
    if (!bytesEqual(await sha256(data), cid.multihash.digest)) throw new RecordProofError("Car", "a block does not hash to its CID");
    blocks.set(cid.toString(), data.slice());
  }
  return { root, blocks };
}

/** Decodes a block as canonical DAG-CBOR: re-encoding must give the same bytes. */
export function decodeCanonical(bytes: Uint8Array, reason: "Commit" | "MstPath" | "Record"): unknown {
  let value: unknown;
  try {
    value = dagCbor.decode(bytes);
  } catch {
    throw new RecordProofError(reason, "block is not DAG-CBOR");
  }
  if (!bytesEqual(dagCbor.encode(value), bytes)) throw new RecordProofError(reason, "block is not canonical DAG-CBOR");
  return value;
}
