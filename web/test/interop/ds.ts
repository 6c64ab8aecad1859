// The few DS-client pieces the interop tests need, as thin names over the library's own
// code (src/proto): mailbox ids in base32, §9.4 request tokens, §11.5 buckets, §5 content.
import { base32Decode, base32Encode, base64Decode } from "../../src/proto/encoding.js";
import { encodeContent } from "../../src/proto/content.js";
import { mailboxIdOf } from "../../src/proto/mailbox-id.js";
import { pad as padTo } from "../../src/proto/padding.js";
import { MailboxKey, signRequest } from "../../src/proto/request.js";

export const base32 = base32Encode;
export const unbase32 = base32Decode;
export const fromB64 = base64Decode;

/** §9.4: the `ChatMls-Mailbox` authorization of a request on `mailbox` signed by `seed`. */
export async function mailboxAuth(seed: Uint8Array, method: string, mailbox: Uint8Array, content: string): Promise<string> {
  const signed = await signRequest({ key: MailboxKey.fromSeed(seed), method, mailbox: mailboxIdOf(mailbox), content });
  return signed.authorization;
}

/** §11.5 size buckets. */
export function pad(payload: Uint8Array): Uint8Array {
  return padTo(payload);
}

/** A text content object (§5). */
export function content(text: string): Uint8Array {
  return encodeContent({
    id: base32Encode(crypto.getRandomValues(new Uint8Array(16))),
    sentAt: new Date().toISOString(),
    body: { kind: "text", text },
  });
}
