// tests/vectors/device-binding.json (docs/spec.md §11.16): the device binding's signature
// input, its Ed25519 signature by the device key, the 0xF0A9 extension data and framing.
import {
  DEVICE_BINDING_LABEL,
  DEVICE_BINDING_VERSION,
  bindingSignatureInput,
  decodeDeviceBinding,
  deviceKeyPublic,
  encodeDeviceBinding,
  signBinding,
  verifyBindingSignature,
} from "../../../src/mls/binding.js";
import { DEVICE_BINDING_EXTENSION } from "../../../src/mls/constants.js";
import { putUint, putVector, toHex } from "../../../src/mls/tls.js";

export async function check(vector: unknown): Promise<number> {
  const cases = vectorCases(vector);
  for (const c of cases) {
    const f = fields(c);
    try {
      f.int("extensionType", DEVICE_BINDING_EXTENSION);
      f.int("version", DEVICE_BINDING_VERSION);
      if (f.string("label") !== DEVICE_BINDING_LABEL) throw new Error("label differs from the library's");
      const seed = fromHex(f.string("deviceKeySeed"));
      same("deviceKey", toHex(deviceKeyPublic(seed)), f.string("deviceKey"));
      const did = f.string("did");
      const deviceId = f.string("deviceId");
      const suite = f.number("cipherSuite");
      const leafKey = fromHex(f.string("leafSignatureKey"));
      const proof = fromHex(f.string("proof"));
      same("signatureInput", toHex(bindingSignatureInput(did, deviceId, suite, leafKey)), f.string("signatureInput"));
      if (suite !== 1) throw new Error(`ciphersuite ${suite}: this library signs for 0x0001 only`);
      const binding = signBinding({ did, deviceId, deviceKeySeed: seed, deviceRecordProof: proof }, suite, leafKey);
      same("signature", toHex(binding.signature), f.string("signature"));
      if (!verifyBindingSignature(binding, deviceKeyPublic(seed), did, suite, leafKey)) throw new Error("the signature does not verify");
      const encoded = encodeDeviceBinding(binding);
      same("binding", toHex(encoded), f.string("binding"));
      const ext: number[] = [];
      putUint(ext, DEVICE_BINDING_EXTENSION, 2);
      putVector(ext, encoded);
      same("extension", toHex(Uint8Array.from(ext)), f.string("extension"));
      const back = decodeDeviceBinding(fromHex(f.string("binding")));
      same("decoded", `${back.deviceId} ${toHex(back.proof)} ${toHex(back.signature)}`, `${deviceId} ${toHex(proof)} ${toHex(binding.signature)}`);
      f.done();
    } catch (e) {
      throw new Error(`device-binding: case "${f.name}": ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return cases.length;
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
    throw new Error("device-binding: no `vectors` array");
  }
  return (file as { vectors: unknown[] }).vectors.map((v) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("device-binding: a case is not an object");
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
    done(): void {
      const extra = Object.keys(v).filter((k) => !used.has(k));
      if (extra.length > 0) throw new Error(`fields not checked: ${extra.join(", ")}`);
    },
  };
}
