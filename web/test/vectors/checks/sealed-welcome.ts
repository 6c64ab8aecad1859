// tests/vectors/sealed-welcome.json (docs/spec.md §11.4, §11.5): the welcome plaintext, HPKE
// sealing with fixed keys, the sealed layout and its padding, the invitee opening it; and
// the out-of-band ratchet tree as an encrypted blob.
import { openBlob, sealBlob } from "../../../src/proto/attachment.js";
import { pad } from "../../../src/proto/padding.js";
import { parseMailboxId } from "../../../src/proto/mailbox-id.js";
import { hpkeOf, parseSealed } from "../../../src/proto/sealed.js";
import {
  type RatchetTreeRef,
  WELCOME_INFO,
  encodeWelcomePlaintext,
  openWelcome,
  sealWelcome,
} from "../../../src/proto/welcome.js";
import { type Fields, fromHex } from "../fields.js";
import { everyCase } from "../fields.js";

async function tree(f: Fields): Promise<RatchetTreeRef> {
  const ref = f.obj("ratchetTree");
  const names = Object.keys(ref).sort().join(",");
  if (names !== "cid,did,digest,key,nonce,size") throw f.fail(`ratchetTree fields ${names}`);
  const hex = (k: string) => {
    const v = ref[k];
    if (typeof v !== "string") throw f.fail(`ratchetTree.${k} is not hex`);
    return fromHex(v);
  };
  const { cid, did, size } = ref;
  if (typeof cid !== "string" || typeof did !== "string" || typeof size !== "number") throw f.fail("ratchetTree cid, did or size");
  const t: RatchetTreeRef = { cid, did, key: hex("key"), nonce: hex("nonce"), digest: hex("digest"), size };
  const plain = f.hex("tree");
  const sealed = await sealBlob(plain, t.key, t.nonce);
  f.expect("treeCiphertext", sealed.ciphertext, f.hex("treeCiphertext"));
  f.expect("ratchetTree.digest", sealed.digest, t.digest);
  f.expect("ratchetTree.size", sealed.size, t.size);
  f.expect("ratchetTree.cid", sealed.cid.toString(), t.cid);
  f.expect("opened tree", await openBlob(f.hex("treeCiphertext"), t), plain);
  return t;
}

export async function check(vector: unknown): Promise<number> {
  return everyCase(vector, async (f) => {
    const suite = f.int("cipherSuite");
    f.expect("cipherSuite", suite, 1);
    f.expect("info", f.str("info"), WELCOME_INFO);
    const hpke = hpkeOf(suite);
    const recipient = await hpke.kem.deriveKeyPair(f.hex("recipientIkm"));
    f.expect("recipientPrivateKey", new Uint8Array(await hpke.kem.serializePrivateKey(recipient.privateKey)), f.hex("recipientPrivateKey"));
    f.expect("recipientPublicKey", new Uint8Array(await hpke.kem.serializePublicKey(recipient.publicKey)), f.hex("recipientPublicKey"));
    const plaintext = {
      ds: f.str("ds"),
      fromSeq: f.int("fromSeq"),
      mailbox: parseMailboxId(f.str("mailbox")),
      welcome: f.hex("welcome"),
      ...(f.has("ratchetTree") ? { ratchetTree: await tree(f) } : {}),
    };
    const encoded = encodeWelcomePlaintext(plaintext);
    f.expect("plaintext", encoded, f.hex("plaintext"));
    const sealed = await sealWelcome(plaintext, suite, f.hex("recipientPublicKey"), f.hex("ephemeralIkm"));
    const parts = parseSealed(sealed);
    f.expect("enc", parts.enc, f.hex("enc"));
    f.expect("ciphertext", parts.ciphertext, f.hex("ciphertext"));
    f.expect("sealed", sealed, f.hex("sealed"));
    f.expect("payload", pad(sealed), f.hex("payload"));
    // The invitee's side: parse the given payload, check its padding, open it with the init key.
    const opened = await openWelcome(f.hex("payload"), [{ suite, privateKey: f.hex("recipientPrivateKey") }]);
    f.expect("opened plaintext", encodeWelcomePlaintext(opened), encoded);
  });
}
