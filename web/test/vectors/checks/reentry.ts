// tests/vectors/reentry.json (docs/spec.md §11.17, §11.4, §11.5): the signed request, its
// plaintext, HPKE sealing with fixed keys, layout and padding, the recipient opening it and
// checking the signature; and the epoch tag.
import { ed25519 } from "@noble/curves/ed25519.js";
import { epochTag, epochTagData, epochTagOf } from "../../../src/proto/epoch-tag.js";
import { parseMailboxId } from "../../../src/proto/mailbox-id.js";
import { pad } from "../../../src/proto/padding.js";
import {
  REENTRY_INFO,
  type ReentryBody,
  encodeReentryPlaintext,
  openReentry,
  reentrySignedBytes,
  sealReentry,
  signReentry,
  verifyReentry,
} from "../../../src/proto/reentry.js";
import { hpkeOf, parseSealed } from "../../../src/proto/sealed.js";
import { everyCase, fromHex } from "../fields.js";

export async function check(vector: unknown): Promise<number> {
  return everyCase(vector, async (f) => {
    const suite = f.int("cipherSuite");
    f.expect("cipherSuite", suite, 1);
    f.expect("info", f.str("info"), REENTRY_INFO);
    const hpke = hpkeOf(suite);
    const recipient = await hpke.kem.deriveKeyPair(f.hex("recipientIkm"));
    f.expect("recipientPrivateKey", new Uint8Array(await hpke.kem.serializePrivateKey(recipient.privateKey)), f.hex("recipientPrivateKey"));
    f.expect("recipientPublicKey", new Uint8Array(await hpke.kem.serializePublicKey(recipient.publicKey)), f.hex("recipientPublicKey"));
    const seed = f.hex("signerSeed");
    f.expect("signerPublicKey", ed25519.getPublicKey(seed), f.hex("signerPublicKey"));
    let group: ReentryBody["group"];
    if (f.has("group")) {
      const g = f.obj("group");
      if (Object.keys(g).sort().join(",") !== "ds,id,mailbox") throw f.fail("group: fields");
      if (typeof g["ds"] !== "string" || typeof g["id"] !== "string" || typeof g["mailbox"] !== "string") throw f.fail("group: types");
      group = { ds: g["ds"], id: fromHex(g["id"]), mailbox: parseMailboxId(g["mailbox"]) };
    }
    const body: ReentryBody = {
      did: f.str("did"),
      deviceId: f.str("deviceId"),
      createdAt: f.int("createdAt"),
      keyPackage: f.str("keyPackage"),
      keyPackageRef: f.hex("keyPackageRef"),
      ...(group === undefined ? {} : { group }),
    };
    f.expect("signedBytes", reentrySignedBytes(body), f.hex("signedBytes"));
    const request = signReentry(body, seed);
    f.expect("signature", request.sig, f.hex("signature"));
    const plaintext = encodeReentryPlaintext(request);
    f.expect("plaintext", plaintext, f.hex("plaintext"));
    const sealed = await sealReentry(request, suite, f.hex("recipientPublicKey"), f.hex("ephemeralIkm"));
    const parts = parseSealed(sealed);
    f.expect("enc", parts.enc, f.hex("enc"));
    f.expect("ciphertext", parts.ciphertext, f.hex("ciphertext"));
    f.expect("sealed", sealed, f.hex("sealed"));
    f.expect("payload", pad(sealed), f.hex("payload"));
    // The recipient's side: layout, padding, open with the init key, verify the signature.
    const opened = await openReentry(f.hex("payload"), [{ suite, privateKey: f.hex("recipientPrivateKey") }]);
    f.expect("opened plaintext", encodeReentryPlaintext(opened), plaintext);
    f.expect("signature verifies", verifyReentry(opened, f.hex("signerPublicKey")), true);
    const authenticator = f.hex("epochAuthenticator");
    f.expect("epochTag", await epochTag(authenticator), f.hex("epochTag"));
    f.expect("authenticatedData", await epochTagData(authenticator), f.hex("authenticatedData"));
    f.expect("tag read back", epochTagOf(f.hex("authenticatedData")) ?? new Uint8Array(0), f.hex("epochTag"));
  });
}
