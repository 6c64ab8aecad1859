// tests/vectors/xwing-sealed-welcome.json (docs/spec.md §11.4, §11.19): a welcome sealed with
// X-Wing (HPKE KEM 0x647A, HKDF-SHA256, ChaCha20-Poly1305). The ML-KEM half of `enc` was
// made with randomness the vector does not give, so `enc` cannot be recomputed: the check
// derives the recipient's key pair, recomputes the X25519 half of `enc`, decapsulates and
// opens the given ciphertext (an authenticated decryption: any other enc or ciphertext
// fails), and recomputes plaintext, sealed layout and padding. It then seals the plaintext
// afresh to the recipient and opens it again.
import { x25519 } from "@noble/curves/ed25519.js";
import { parseMailboxId } from "../../../src/proto/mailbox-id.js";
import { pad } from "../../../src/proto/padding.js";
import { SEALED_WELCOME, SUITE_XWING_CHACHA20, encodeSealed, hpkeOf } from "../../../src/proto/sealed.js";
import { WELCOME_INFO, encodeWelcomePlaintext, openWelcome, sealWelcome } from "../../../src/proto/welcome.js";
import { everyCase } from "../fields.js";

const ML_KEM_768_CT = 1088;

export async function check(vector: unknown): Promise<number> {
  return everyCase(vector, async (f) => {
    const suite = f.int("cipherSuite");
    f.expect("cipherSuite", suite, SUITE_XWING_CHACHA20);
    f.expect("info", f.str("info"), WELCOME_INFO);
    const hpke = hpkeOf(suite);
    const recipient = await hpke.kem.deriveKeyPair(f.hex("recipientIkm"));
    f.expect("recipientPrivateKey", new Uint8Array(await hpke.kem.serializePrivateKey(recipient.privateKey)), f.hex("recipientPrivateKey"));
    f.expect("recipientPublicKey", new Uint8Array(await hpke.kem.serializePublicKey(recipient.publicKey)), f.hex("recipientPublicKey"));
    const plaintext = { ds: f.str("ds"), fromSeq: f.int("fromSeq"), mailbox: parseMailboxId(f.str("mailbox")), welcome: f.hex("welcome") };
    const encoded = encodeWelcomePlaintext(plaintext);
    f.expect("plaintext", encoded, f.hex("plaintext"));
    const ekX = f.hex("ephemeralX25519");
    const clamped = ekX.length === 32 && ((ekX[0] ?? 1) & 7) === 0 && ((ekX[31] ?? 0x80) & 0xc0) === 0x40;
    f.expect("ephemeralX25519 is a clamped X25519 scalar", clamped, true);
    const enc = f.hex("enc");
    f.expect("enc length", enc.length, ML_KEM_768_CT + 32);
    f.expect("enc (X25519 half)", x25519.getPublicKey(ekX), enc.subarray(ML_KEM_768_CT));
    const sealed = encodeSealed({ kind: SEALED_WELCOME, enc, ciphertext: f.hex("ciphertext") });
    f.expect("sealed", sealed, f.hex("sealed"));
    f.expect("payload", pad(sealed), f.hex("payload"));
    const keys = [{ suite, privateKey: f.hex("recipientPrivateKey") }];
    const opened = await openWelcome(f.hex("payload"), keys);
    f.expect("opened plaintext", encodeWelcomePlaintext(opened), encoded);
    const fresh = await sealWelcome(plaintext, suite, f.hex("recipientPublicKey"));
    f.expect("fresh seal opens", encodeWelcomePlaintext(await openWelcome(pad(fresh), keys)), encoded);
  });
}
