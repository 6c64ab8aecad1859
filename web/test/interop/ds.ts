// The few DS-client pieces the interop tests need, written here from docs/spec.md so that
// the tests do not wait for web/src/net (§9.4 request tokens, §11.5 buckets, §5 content,
// mailbox ids in base32).
import { ed25519 } from "@noble/curves/ed25519.js";
import * as dagCbor from "@ipld/dag-cbor";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";
export function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}
export function unbase32(text: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const c of text) {
    const i = ALPHABET.indexOf(c);
    if (i < 0) throw new Error("not base32");
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

/** §9.4: the `ChatMls-Mailbox` authorization of a request on `mailbox` signed by `seed`. */
export async function mailboxAuth(seed: Uint8Array, method: string, mailbox: Uint8Array, content: string): Promise<string> {
  const key = ed25519.getPublicKey(seed);
  const ts = new Uint8Array(8);
  new DataView(ts.buffer).setBigUint64(0, BigInt(Date.now()));
  const nonce = crypto.getRandomValues(new Uint8Array(16));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(content)));
  const m = new TextEncoder().encode(method);
  const signing = Uint8Array.from([...new TextEncoder().encode("chat.mls/ds/v1 request"), 0, m.length, ...m, ...mailbox, ...key, ...ts, ...nonce, ...digest]);
  const token = Uint8Array.from([...key, ...ts, ...nonce, ...ed25519.sign(signing, seed)]);
  return `ChatMls-Mailbox ${Buffer.from(token).toString("base64url")}`;
}

/** §11.5 size buckets. */
export function pad(payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const len = n <= 256 ? 256 : n <= 65536 ? 2 ** Math.ceil(Math.log2(n)) : Math.ceil(n / 65536) * 65536;
  const out = new Uint8Array(len);
  out.set(payload);
  return out;
}

export function content(text: string): Uint8Array {
  return dagCbor.encode({
    $type: "chat.mls.content",
    id: base32(crypto.getRandomValues(new Uint8Array(16))),
    sentAt: new Date().toISOString(),
    body: { $type: "chat.mls.content#text", text },
  });
}

export const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));
