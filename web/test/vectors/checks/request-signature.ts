// Vector check: tests/vectors/request-signature.json (docs/spec.md §9.4). Recomputes the public
// key, content hash, signing bytes, signature, token and Authorization value of every case
// with src/proto/request.ts, and parses each token back.
import { bytesEqual, hexDecode, hexEncode } from "../../../src/net/encoding.js";
import { parseMailboxId } from "../../../src/net/mailbox-id.js";
import {
  MailboxKey,
  parseToken,
  signRequest,
  subscriptionSignedContent,
  verifyToken,
} from "../../../src/proto/request.js";

type Case = { readonly [k: string]: unknown };

function field(c: Case, key: string, name: string): string {
  const v = c[key];
  if (typeof v !== "string") throw new Error(`request-signature "${name}": field ${key} missing`);
  return v;
}

export async function check(vector: unknown): Promise<number> {
  let current = "?";
  try {
    return await checkAll(vector, (n) => (current = n));
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(msg.startsWith("request-signature \"") ? msg : `request-signature "${current}": ${msg}`);
  }
}

async function checkAll(vector: unknown, at: (name: string) => void): Promise<number> {
  const cases = (vector as { vectors?: unknown }).vectors;
  if (!Array.isArray(cases) || cases.length === 0) throw new Error("request-signature: no vectors");
  for (const raw of cases as Case[]) {
    const name = typeof raw["name"] === "string" ? raw["name"] : "?";
    at(name);
    const fail = (what: string): never => {
      throw new Error(`request-signature "${name}": ${what} differs`);
    };
    const timestampMs = raw["timestampMs"];
    if (typeof timestampMs !== "number") throw new Error(`request-signature "${name}": timestampMs missing`);
    let content: string;
    if (typeof raw["body"] === "string") content = raw["body"];
    else if (typeof raw["query"] === "string") content = raw["query"];
    else {
      content = subscriptionSignedContent(field(raw, "subscriptionQuery", name));
      if (content !== field(raw, "signedContent", name)) fail("signedContent");
    }
    const key = MailboxKey.fromSeed(hexDecode(field(raw, "seed", name)));
    if (hexEncode(key.publicKey) !== field(raw, "publicKey", name)) fail("publicKey");
    const signed = await signRequest({
      key,
      method: field(raw, "method", name),
      mailbox: parseMailboxId(field(raw, "mailbox", name)),
      content,
      timestampMs,
      nonce: hexDecode(field(raw, "nonce", name)),
    });
    if (hexEncode(signed.contentSha256) !== field(raw, "contentSha256", name)) fail("contentSha256");
    if (hexEncode(signed.signingBytes) !== field(raw, "signingBytes", name)) fail("signingBytes");
    if (hexEncode(signed.signature) !== field(raw, "signature", name)) fail("signature");
    if (signed.token !== field(raw, "token", name)) fail("token");
    if (signed.authorization !== field(raw, "authorization", name)) fail("authorization");
    const parsed = parseToken(signed.token);
    if (parsed.timestampMs !== timestampMs || !bytesEqual(parsed.publicKey, key.publicKey)) fail("parsed token");
    if (!verifyToken(parsed, signed.signingBytes)) fail("token verification");
    if (typeof raw["subscriptionQuery"] === "string" && !raw["subscriptionQuery"].includes(`auth=${signed.token}`)) {
      fail("auth component of subscriptionQuery");
    }
  }
  return cases.length;
}
