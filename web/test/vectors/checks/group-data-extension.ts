// tests/vectors/group-data-extension.json (docs/spec.md §11.2): the group data extension
// 0xF0A7, encoded from its fields and parsed back, with its TLS Extension framing.
import { GROUP_DATA_EXTENSION } from "../../../src/mls/constants.js";
import { GROUP_DATA_VERSION, type GroupData, decodeGroupData, encodeGroupData } from "../../../src/mls/groupData.js";
import { parseDid } from "../../../src/mls/did.js";
import { putUint, putVector, toHex } from "../../../src/mls/tls.js";

export async function check(vector: unknown): Promise<number> {
  const cases = vectorCases(vector);
  for (const c of cases) {
    const f = fields(c);
    try {
      f.int("extensionType", GROUP_DATA_EXTENSION);
      f.int("version", GROUP_DATA_VERSION);
      const admins = f.strings("admins").map((a) => did(a));
      const padding = f.number("padding");
      if (padding !== 0 && padding !== 1) throw new Error(`padding ${padding}`);
      const data: GroupData = {
        ds: did(f.string("ds")),
        mailbox: fromHex(f.string("mailbox")),
        name: f.string("groupName"),
        description: f.string("groupDescription"),
        admins,
        padding,
        lifetimeSeconds: f.number("messageLifetimeSeconds"),
      };
      const encoded = encodeGroupData(data);
      same("groupData", toHex(encoded), f.string("groupData"));
      const ext: number[] = [];
      putUint(ext, GROUP_DATA_EXTENSION, 2);
      putVector(ext, encoded);
      same("extension", toHex(Uint8Array.from(ext)), f.string("extension"));
      const back = decodeGroupData(fromHex(f.string("groupData")));
      same("decoded", JSON.stringify({ ...back, mailbox: toHex(back.mailbox) }), JSON.stringify({ ...data, mailbox: toHex(data.mailbox) }));
      f.done();
    } catch (e) {
      throw new Error(`group-data-extension: case "${f.name}": ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return cases.length;
}

function did(text: string) {
  const d = parseDid(text);
  if (d === undefined) throw new Error(`not a DID: ${text}`);
  return d;
}

function same(what: string, computed: string, given: string): void {
  if (computed !== given) throw new Error(`${what}: computed ${computed.slice(0, 80)}, vector has ${given.slice(0, 80)}`);
}

function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) throw new Error("not lowercase hex");
  return Uint8Array.from({ length: text.length / 2 }, (_, i) => parseInt(text.slice(2 * i, 2 * i + 2), 16));
}

function vectorCases(file: unknown): Record<string, unknown>[] {
  if (typeof file !== "object" || file === null || !Array.isArray((file as { vectors?: unknown }).vectors)) {
    throw new Error("group-data-extension: no `vectors` array");
  }
  return (file as { vectors: unknown[] }).vectors.map((v) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("group-data-extension: a case is not an object");
    return v as Record<string, unknown>;
  });
}

/** Typed field access that records what was read; `done` refuses unread fields. */
function fields(v: Record<string, unknown>) {
  const used = new Set(["name"]);
  const get = (k: string): unknown => {
    if (!(k in v)) throw new Error(`missing field ${k}`);
    used.add(k);
    return v[k];
  };
  return {
    name: typeof v["name"] === "string" ? v["name"] : "(unnamed)",
    string(k: string): string {
      const x = get(k);
      if (typeof x !== "string") throw new Error(`${k} is not a string`);
      return x;
    },
    number(k: string): number {
      const x = get(k);
      if (typeof x !== "number" || !Number.isSafeInteger(x)) throw new Error(`${k} is not an integer`);
      return x;
    },
    int(k: string, expected: number): void {
      const x = get(k);
      if (x !== expected) throw new Error(`${k}: vector has ${String(x)}, the library ${expected}`);
    },
    strings(k: string): string[] {
      const x = get(k);
      if (!Array.isArray(x) || !x.every((s) => typeof s === "string")) throw new Error(`${k} is not a list of strings`);
      return x as string[];
    },
    done(): void {
      const extra = Object.keys(v).filter((k) => !used.has(k));
      if (extra.length > 0) throw new Error(`fields not checked: ${extra.join(", ")}`);
    },
  };
}
