// Runs this layer's two vector checks on the checked-in vectors, and shows each check can
// fail: a one-character change of any expected value makes it throw.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { check as groupData } from "../vectors/checks/group-data-extension.js";
import { check as deviceBinding } from "../vectors/checks/device-binding.js";

const here = new URL("../../../tests/vectors/", import.meta.url);
const load = (stem: string): unknown => JSON.parse(readFileSync(new URL(`${stem}.json`, here), "utf8"));

for (const [stem, check] of [
  ["group-data-extension", groupData],
  ["device-binding", deviceBinding],
] as const) {
  test(`${stem}.json: every case recomputed`, async () => {
    const file = load(stem) as { vectors: Record<string, unknown>[] };
    assert.equal(await check(file), file.vectors.length);
    assert.ok(file.vectors.length > 0);
  });

  test(`${stem}.json: every mutated field is caught`, async () => {
    const file = load(stem) as { vectors: Record<string, unknown>[] };
    let mutations = 0;
    for (const [i, v] of file.vectors.entries()) {
      for (const key of Object.keys(v)) {
        if (key === "name") continue;
        const copy = structuredClone(file);
        const c = copy.vectors[i] as Record<string, unknown>;
        const value = c[key];
        if (typeof value === "string") c[key] = value.length > 0 ? (value[0] === "0" ? "1" : "0") + value.slice(1) : "x";
        else if (typeof value === "number") c[key] = value + 1;
        else if (Array.isArray(value)) c[key] = [...value, "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"];
        else continue;
        mutations++;
        await assert.rejects(check(copy), `mutating ${key} of case ${i} went unnoticed`);
        const removed = structuredClone(file);
        delete (removed.vectors[i] as Record<string, unknown>)[key];
        await assert.rejects(check(removed), `removing ${key} of case ${i} went unnoticed`);
        const extra = structuredClone(file);
        (extra.vectors[i] as Record<string, unknown>)["unexpected"] = 1;
        await assert.rejects(check(extra), "an unchecked field went unnoticed");
      }
    }
    assert.ok(mutations > 10);
  });
}
