// tests/vectors/content.json (docs/spec.md §5, §11.6, §11.7): content objects in canonical
// DAG-CBOR, parsed back to the same object; the attachment's file padded and encrypted.
import { toBase64 } from "../../../src/proto/bytes.js";
import { openBlob, sealBlob } from "../../../src/proto/attachment.js";
import { decodeContent, encodeContent, parseContent } from "../../../src/proto/content.js";
import { fromJson, toJson } from "../../../src/proto/data-model.js";
import { everyCase } from "../fields.js";

export async function check(vector: unknown): Promise<number> {
  return everyCase(vector, async (f) => {
    const json = f.value("content");
    const content = parseContent(fromJson(json));
    const encoded = encodeContent(content);
    f.expect("dagCbor", encoded, f.hex("dagCbor"));
    const decoded = decodeContent(f.hex("dagCbor"));
    f.expect("decoded and encoded again", encodeContent(decoded), encoded);
    f.expect("JSON form", JSON.stringify(toJson(fromJson(json))), JSON.stringify(json));
    const body = content.body;
    if (body.kind === "attachment") {
      const file = f.hex("file");
      f.expect("cipher", body.cipher, "aes-256-gcm");
      const sealed = await sealBlob(file, body.key, body.nonce);
      f.expect("ciphertext", sealed.ciphertext, f.hex("ciphertext"));
      f.expect("digest", toBase64(sealed.digest), toBase64(body.digest));
      f.expect("size", sealed.size, body.size);
      f.expect("location.cid", sealed.cid.toString(), body.location.cid.toString());
      f.expect("opened file", await openBlob(f.hex("ciphertext"), body), file);
    }
  });
}
