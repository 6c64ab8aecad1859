// Helpers for check files: typed access to one vector's fields that records which fields
// were read, so a check that ignores a field fails (`done`), and comparisons that name the
// case and the field on a mismatch.

/** A vector that does not match what the library computes, or is malformed. */
export class VectorMismatch extends Error {
  override readonly name = "VectorMismatch";
}

/** The `vectors` array of a vector file. */
export function cases(file: unknown): unknown[] {
  if (typeof file !== "object" || file === null || !("vectors" in file) || !Array.isArray(file.vectors)) {
    throw new VectorMismatch("a vector file is an object with a `vectors` array");
  }
  return file.vectors;
}

/** Lowercase hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Bytes of lowercase hex; refuses anything else. */
export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text)) throw new VectorMismatch(`not lowercase hex: ${text.slice(0, 40)}`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** One vector's fields. Every field but `name` must be read before `done()`. */
export class Fields {
  readonly name: string;
  private readonly v: Record<string, unknown>;
  private readonly used = new Set<string>(["name"]);

  constructor(vector: unknown) {
    if (typeof vector !== "object" || vector === null || Array.isArray(vector)) {
      throw new VectorMismatch("a vector is not an object");
    }
    this.v = vector as Record<string, unknown>;
    const name = this.v["name"];
    this.name = typeof name === "string" ? name : "(unnamed)";
  }

  /** Whether the vector has the field (does not mark it read). */
  has(key: string): boolean {
    return key in this.v;
  }

  /** The raw value of a required field. */
  value(key: string): unknown {
    if (!(key in this.v)) throw this.fail(`missing field ${key}`);
    this.used.add(key);
    return this.v[key];
  }

  str(key: string): string {
    const v = this.value(key);
    if (typeof v !== "string") throw this.fail(`field ${key} is not a string`);
    return v;
  }

  int(key: string): number {
    const v = this.value(key);
    if (typeof v !== "number" || !Number.isSafeInteger(v)) throw this.fail(`field ${key} is not an integer`);
    return v;
  }

  bool(key: string): boolean {
    const v = this.value(key);
    if (typeof v !== "boolean") throw this.fail(`field ${key} is not a boolean`);
    return v;
  }

  hex(key: string): Uint8Array {
    try {
      return fromHex(this.str(key));
    } catch (e) {
      throw this.fail(`field ${key}: ${(e as Error).message}`);
    }
  }

  obj(key: string): Record<string, unknown> {
    const v = this.value(key);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw this.fail(`field ${key} is not an object`);
    return v as Record<string, unknown>;
  }

  /** Throws unless `computed` equals `given` (strings, numbers, booleans or bytes as hex). */
  expect(what: string, computed: string | number | boolean | Uint8Array, given: string | number | boolean | Uint8Array): void {
    const a = computed instanceof Uint8Array ? toHex(computed) : computed;
    const b = given instanceof Uint8Array ? toHex(given) : given;
    if (a !== b) throw this.fail(`${what}: computed ${short(a)}, vector has ${short(b)}`);
  }

  /** Throws unless every field was read. */
  done(): void {
    const extra = Object.keys(this.v).filter((k) => !this.used.has(k));
    if (extra.length > 0) throw this.fail(`fields not checked: ${extra.sort().join(", ")}`);
  }

  /** An error naming this case. */
  fail(message: string): VectorMismatch {
    return new VectorMismatch(`case "${this.name}": ${message}`);
  }
}

function short(v: string | number | boolean): string {
  const s = String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Runs `each` on every case of a vector file with its Fields, requires every field read,
 * and returns the number of cases. Errors that are not VectorMismatch are wrapped with the
 * case name.
 */
export async function everyCase(file: unknown, each: (f: Fields) => Promise<void> | void): Promise<number> {
  const all = cases(file);
  for (const vector of all) {
    const f = new Fields(vector);
    try {
      await each(f);
    } catch (e) {
      if (e instanceof VectorMismatch) throw e;
      throw f.fail(`${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
    f.done();
  }
  return all.length;
}
