// The checks' self-test, after tests/vectors/check.py's: every leaf value of every case (all
// fields but `name`) is changed once, and the check must then fail. A check that ignores a
// field, or compares it with itself, is caught here.

import type { Check } from "./contract.js";
import { cases } from "./fields.js";

const HEX = "0123456789abcdef";

function mutateString(s: string): string {
  if (s.length === 0) return "x";
  const i = Math.floor(s.length / 2);
  const c = s.charAt(i);
  let m: string;
  if (HEX.includes(c)) m = HEX.charAt((HEX.indexOf(c) + 1) % 16);
  else if (c >= "a" && c <= "z") m = String.fromCharCode(((c.charCodeAt(0) - 97 + 1) % 26) + 97);
  else if (c >= "A" && c <= "Z") m = String.fromCharCode(((c.charCodeAt(0) - 65 + 1) % 26) + 65);
  else if (c >= "0" && c <= "9") m = String((Number(c) + 1) % 10);
  else m = c === "x" ? "y" : "x";
  return s.slice(0, i) + m + s.slice(i + 1);
}

/** Every single-leaf change of `value`: [path, changed value]. */
function* mutations(value: unknown, path: string): Generator<[string, unknown]> {
  if (typeof value === "boolean") yield [path, !value];
  else if (typeof value === "number") yield [path, value + 1];
  else if (typeof value === "string") yield [path, mutateString(value)];
  else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      for (const [p, m] of mutations(value[i], `${path}[${i}]`)) {
        const copy = [...value];
        copy[i] = m;
        yield [p, copy];
      }
    }
  } else if (typeof value === "object" && value !== null) {
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      for (const [p, m] of mutations(obj[key], `${path}.${key}`)) yield [p, { ...obj, [key]: m }];
    }
  }
}

/** Runs every mutation of every case; returns [mutations tried, those the check accepted]. */
export async function selfTest(check: Check, file: unknown): Promise<[number, string[]]> {
  const missed: string[] = [];
  let tried = 0;
  for (const vector of cases(file)) {
    if (typeof vector !== "object" || vector === null) continue;
    const v = vector as Record<string, unknown>;
    const name = typeof v["name"] === "string" ? v["name"] : "(unnamed)";
    for (const key of Object.keys(v)) {
      if (key === "name") continue;
      for (const [path, changed] of mutations(v[key], key)) {
        tried++;
        const mutated = { ...(file as object), vectors: [{ ...v, [key]: changed }] };
        let accepted = true;
        try {
          await check(mutated);
        } catch {
          accepted = false;
        }
        if (accepted) missed.push(`case "${name}": ${path}`);
      }
    }
  }
  return [tried, missed];
}
