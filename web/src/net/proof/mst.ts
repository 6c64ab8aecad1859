// The MST walk of a record proof (docs/spec.md §3.3 step 6): from the commit's `data` to the
// key `collection/rkey`, every node present and canonical, ending at the key's entry
// (inclusion) or at an empty gap (absence).
import { CID } from "multiformats/cid";
import { RecordProofError } from "./errors.js";
import { decodeCanonical } from "./car.js";

const MAX_KEY = 1024;
const MAX_NODE_KEY_BYTES = 256 * 1024;
const MAX_WALK_KEY_BYTES = 1024 * 1024;
const MAX_DEPTH = 128;

/** The walk's outcome: the record's CID, or proven absence. */
export type MstLookup = { readonly found: true; readonly cid: CID } | { readonly found: false };

/** The MST layer of a key: leading zero bits of SHA-256(key), counted in 2-bit chunks. */
export async function keyHeight(key: Uint8Array): Promise<number> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", key as Uint8Array<ArrayBuffer>));
  let zeros = 0;
  for (const b of h) {
    if (b === 0) {
      zeros += 4;
      continue;
    }
    if ((b & 0xc0) === 0) zeros++;
    if ((b & 0xf0) === 0) zeros++;
    if ((b & 0xfc) === 0) zeros++;
    break;
  }
  return zeros;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function commonPrefix(a: Uint8Array, b: Uint8Array): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function fail(detail: string): never {
  throw new RecordProofError("MstPath", detail);
}

function cidOrNull(v: unknown, what: string): CID | null {
  if (v === null) return null;
  const c = CID.asCID(v);
  if (c === null) fail(`${what} is not a link`);
  return c;
}

interface Entry {
  readonly key: Uint8Array;
  readonly value: CID;
  readonly right: CID | null;
}

/** Parses a node: `{l, e: [{p, k, v, t}]}`, rebuilding keys under the size limits. */
function parseNode(value: unknown, walkBytes: { n: number }): { left: CID | null; entries: Entry[] } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail("node is not a map");
  const o = value as Record<string, unknown>;
  if (Object.keys(o).length !== 2 || !("l" in o) || !Array.isArray(o["e"])) fail("node is not {l, e}");
  const left = cidOrNull(o["l"], "l");
  const entries: Entry[] = [];
  let prev = new Uint8Array(0);
  let nodeBytes = 0;
  for (const raw of o["e"] as unknown[]) {
    if (typeof raw !== "object" || raw === null) fail("entry is not a map");
    const e = raw as Record<string, unknown>;
    if (Object.keys(e).length !== 4) fail("entry is not {p, k, v, t}");
    const p = e["p"];
    const k = e["k"];
    if (typeof p !== "number" || !Number.isInteger(p) || p < 0 || p > prev.length) fail("bad prefix length");
    if (!(k instanceof Uint8Array)) fail("k is not bytes");
    const length = p + k.length;
    // Size limits are checked before the key is built (§3.3 step 6).
    if (length > MAX_KEY) throw new RecordProofError("KeyTooLong", "a key over 1024 bytes");
    nodeBytes += length;
    walkBytes.n += length;
    if (nodeBytes > MAX_NODE_KEY_BYTES || walkBytes.n > MAX_WALK_KEY_BYTES) {
      throw new RecordProofError("TooManyKeyBytes", "keys over the size limit");
    }
    const key = new Uint8Array(length);
    key.set(prev.subarray(0, p), 0);
    key.set(k, p);
    if (entries.length === 0 && p !== 0) fail("first entry has a prefix");
    if (entries.length > 0) {
      if (compare(prev, key) >= 0) fail("keys not strictly increasing");
      if (commonPrefix(prev, key) !== p) fail("prefix compression not maximal");
    }
    const v = CID.asCID(e["v"]);
    if (v === null) fail("v is not a link");
    entries.push({ key, value: v, right: cidOrNull(e["t"], "t") });
    prev = key;
  }
  return { left, entries };
}

/**
 * Walks from `root` to `key` through `blocks`. An incomplete path (a subtree block missing)
 * proves nothing and is refused.
 */
export async function mstLookup(blocks: ReadonlyMap<string, Uint8Array>, root: CID, key: Uint8Array): Promise<MstLookup> {
  const walkBytes = { n: 0 };
  let node: CID = root;
  let expectedHeight: number | undefined;
  let lo: Uint8Array | undefined;
  let hi: Uint8Array | undefined;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const bytes = blocks.get(node.toString());
    if (bytes === undefined) fail("a node on the path is missing");
    const { left, entries } = parseNode(decodeCanonical(bytes, "MstPath"), walkBytes);
    let height = expectedHeight;
    for (const e of entries) {
      const h = await keyHeight(e.key);
      if (height === undefined) height = h;
      if (h !== height) fail("a key at the wrong height");
      if ((lo !== undefined && compare(e.key, lo) <= 0) || (hi !== undefined && compare(e.key, hi) >= 0)) {
        fail("a key outside its parent's gap");
      }
    }
    if (depth > 0 && entries.length === 0 && left === null) fail("an empty non-root node");
    // Find the key or the gap it would sit in.
    let gap: CID | null = left;
    let gapLo = lo;
    let gapHi = entries[0]?.key ?? hi;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const c = compare(key, e.key);
      if (c === 0) return { found: true, cid: e.value };
      if (c < 0) break;
      gap = e.right;
      gapLo = e.key;
      gapHi = entries[i + 1]?.key ?? hi;
    }
    if (gap === null) return { found: false };
    if (height !== undefined && height === 0) fail("a subtree below layer 0");
    node = gap;
    expectedHeight = height === undefined ? undefined : height - 1;
    lo = gapLo;
    hi = gapHi;
  }
  fail("path too deep");
}
