// tests/vectors/padding.json (docs/spec.md §11.5): bucket lengths and padded payloads.
import { pad, paddedLength, unpad } from "../../../src/proto/padding.js";
import { everyCase } from "../fields.js";

export async function check(vector: unknown): Promise<number> {
  return everyCase(vector, (f) => {
    if (f.has("message")) {
      const message = f.hex("message");
      const payload = pad(message);
      f.expect("payload", payload, f.hex("payload"));
      f.expect("unpadded payload", unpad(f.hex("payload"), message.length), message);
      return;
    }
    const length = f.int("length");
    const max = f.has("maxEnvelopeBytes") ? f.int("maxEnvelopeBytes") : undefined;
    const padded = paddedLength(length, max);
    f.expect("paddedLength", padded, f.int("paddedLength"));
    f.expect("paddingBytes", padded - length, f.int("paddingBytes"));
  });
}
