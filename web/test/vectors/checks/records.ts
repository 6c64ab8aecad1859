// tests/vectors/records.json (docs/spec.md §2, §3): each record parsed from its JSON form,
// written back as canonical DAG-CBOR with its CID; the KeyPackage record's MLS content
// checked against the record and the DID; the attachment blob's raw CID and size.
import { cidOf, fromJson, RAW } from "../../../src/proto/data-model.js";
import { readKeyPackage } from "../../../src/proto/key-package-record.js";
import {
  attachmentRefValue,
  declarationValue,
  deviceRecordValue,
  keyPackageRecordValue,
  parseAttachmentRef,
  parseDeclaration,
  parseDeviceRecord,
  parseKeyPackageRecord,
  recordBlock,
} from "../../../src/proto/records.js";
import { everyCase } from "../fields.js";

export async function check(vector: unknown): Promise<number> {
  return everyCase(vector, async (f) => {
    const json = f.obj("record");
    const value = fromJson(json);
    const type = json["$type"];
    let written;
    if (type === "chat.mls.declaration") {
      written = declarationValue(parseDeclaration(value));
    } else if (type === "chat.mls.keyPackage") {
      const record = parseKeyPackageRecord(value);
      await readKeyPackage(record, f.str("did"));
      written = keyPackageRecordValue(record);
    } else if (type === "chat.mls.device") {
      written = deviceRecordValue(parseDeviceRecord(value));
    } else if (type === "chat.mls.attachmentRef") {
      const record = parseAttachmentRef(value);
      const blob = f.hex("blob");
      f.expect("blob ref", (await cidOf(RAW, blob)).toString(), record.blob.ref.toString());
      f.expect("blob size", blob.length, record.blob.size);
      written = attachmentRefValue(record);
    } else {
      throw f.fail(`unknown record type ${String(type)}`);
    }
    const block = await recordBlock(written);
    f.expect("dagCbor", block.bytes, f.hex("dagCbor"));
    f.expect("cid", block.cid.toString(), f.str("cid"));
  });
}
