// Vector check: tests/vectors/envelopes.json (docs/spec.md §2a, §4, §10.5). For every case:
// decodes `frame` with src/net/frames.ts and `json` with src/net/lexicon.ts into typed values
// and compares them with the inputs, and re-encodes both from the inputs byte for byte.
import { isDeepStrictEqual } from "../../net/json-equal.js";
import { base64Encode, hexDecode, hexEncode, bytesEqual } from "../../../src/net/encoding.js";
import { decodeFrame, encodeFrame } from "../../../src/net/frames.js";
import { parseEnvelope, type Envelope } from "../../../src/net/lexicon.js";

type Case = { readonly [k: string]: unknown };

export async function check(vector: unknown): Promise<number> {
  let current = "?";
  try {
    return await checkAll(vector, (n) => (current = n));
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(msg.startsWith("envelopes \"") ? msg : `envelopes "${current}": ${msg}`);
  }
}

async function checkAll(vector: unknown, at: (name: string) => void): Promise<number> {
  const cases = (vector as { vectors?: unknown }).vectors;
  if (!Array.isArray(cases) || cases.length === 0) throw new Error("envelopes: no vectors");
  for (const c of cases as Case[]) {
    const name = typeof c["name"] === "string" ? c["name"] : "?";
    at(name);
    const fail = (what: string): never => {
      throw new Error(`envelopes "${name}": ${what} differs`);
    };
    const str = (k: string): string => {
      const v = c[k];
      if (typeof v !== "string") throw new Error(`envelopes "${name}": field ${k} missing`);
      return v;
    };
    const frame = hexDecode(str("frame"));
    const decoded = decodeFrame(frame);
    if (typeof c["error"] === "string") {
      if (decoded.type !== "error" || decoded.error !== c["error"] || decoded.message !== c["message"]) fail("decoded error frame");
      const body = c["message"] === undefined ? { error: c["error"] } : { error: c["error"], message: c["message"] };
      if (hexEncode(encodeFrame({ op: -1 }, body)) !== str("frame")) fail("encoded error frame");
      continue;
    }
    const receivedAtMs = c["receivedAtMs"];
    const seq = c["seq"];
    if (typeof receivedAtMs !== "number" || typeof seq !== "number") throw new Error(`envelopes "${name}": seq/receivedAtMs missing`);
    const epoch = c["epoch"];
    const payload = hexDecode(str("payload"));
    const base: Envelope = { seq, kind: str("kind"), payload, receivedAt: new Date(receivedAtMs).toISOString() };
    const expected: Envelope = typeof epoch === "number" ? { ...base, epoch } : base;
    const same = (e: Envelope) =>
      e.seq === expected.seq && e.kind === expected.kind && e.epoch === expected.epoch &&
      e.receivedAt === expected.receivedAt && bytesEqual(e.payload, expected.payload);
    if (decoded.type !== "envelope" || decoded.mailbox !== str("mailbox") || !same(decoded.envelope)) fail("decoded frame");
    if (!same(parseEnvelope(c["json"], "json"))) fail("parsed json");
    const cborEnvelope = { ...expected };
    if (hexEncode(encodeFrame({ op: 1, t: "#envelope" }, { mailbox: str("mailbox"), envelope: cborEnvelope })) !== str("frame")) {
      fail("encoded frame");
    }
    const json: Record<string, unknown> = { seq, kind: expected.kind, payload: { $bytes: base64Encode(payload) }, receivedAt: expected.receivedAt };
    if (typeof epoch === "number") json["epoch"] = epoch;
    if (!isDeepStrictEqual(json, c["json"])) fail("json");
  }
  return cases.length;
}
