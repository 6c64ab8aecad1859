// tests/vectors/mailbox-key.json (docs/spec.md §11.3): ts-mls's MLS-Exporter against RFC 9420's
// key-schedule vector, and the mailbox key pair of an epoch from its exporter secret.
import { getCiphersuiteFromName, getCiphersuiteImpl, mlsExporter } from "ts-mls";
import { MAILBOX_KEY_LABEL, mailboxKeyFromExporterSecret } from "../../../src/proto/mailbox-key.js";
import { parseMailboxId } from "../../../src/proto/mailbox-id.js";
import { everyCase } from "../fields.js";

export async function check(vector: unknown): Promise<number> {
  const cs = await getCiphersuiteImpl(getCiphersuiteFromName("MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"));
  return everyCase(vector, async (f) => {
    f.expect("cipherSuite", f.int("cipherSuite"), 1);
    const secret = f.hex("exporterSecret");
    const length = f.int("length");
    if (!f.has("mailbox")) {
      const exported = await mlsExporter(secret, f.str("label"), f.hex("context"), length, cs);
      f.expect("exported", exported, f.hex("exported"));
      return;
    }
    f.expect("label", f.str("label"), MAILBOX_KEY_LABEL);
    f.expect("length", length, 32);
    const text = f.str("mailbox");
    // Epoch 0's context is 32 zero bytes, which is also the mailbox id "a" × 52: the same input.
    const pair = await mailboxKeyFromExporterSecret(secret, cs, parseMailboxId(text));
    f.expect("exported", pair.seed, f.hex("exported"));
    f.expect("publicKey", pair.publicKey, f.hex("publicKey"));
    if (/^a{52}$/.test(text)) {
      const epoch0 = await mailboxKeyFromExporterSecret(secret, cs, null);
      f.expect("epoch 0 key (null mailbox)", epoch0.publicKey, pair.publicKey);
    }
  });
}
