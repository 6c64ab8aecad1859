// tests/vectors/xwing-mailbox-key.json (docs/spec.md §11.3, §11.19): the mailbox key of an
// X-Wing (0x004D) group's epoch from its exporter secret; the exporter uses the suite's
// KDF, HKDF-SHA256, as 0x0001's.
import { MAILBOX_KEY_LABEL, exporterSuiteImpl, mailboxKeyFromExporterSecret } from "../../../src/proto/mailbox-key.js";
import { parseMailboxId } from "../../../src/proto/mailbox-id.js";
import { SUITE_XWING_CHACHA20 } from "../../../src/proto/sealed.js";
import { everyCase } from "../fields.js";

export async function check(vector: unknown): Promise<number> {
  return everyCase(vector, async (f) => {
    const suite = f.int("cipherSuite");
    f.expect("cipherSuite", suite, SUITE_XWING_CHACHA20);
    f.expect("label", f.str("label"), MAILBOX_KEY_LABEL);
    f.expect("length", f.int("length"), 32);
    const pair = await mailboxKeyFromExporterSecret(f.hex("exporterSecret"), await exporterSuiteImpl(suite), parseMailboxId(f.str("mailbox")));
    f.expect("exported", pair.seed, f.hex("exported"));
    f.expect("publicKey", pair.publicKey, f.hex("publicKey"));
  });
}
