// The runners' contract can fail: a vector file without a check, a stale NOT_YET entry, a
// check that counts wrong, and a check that ignores a field are each caught.
import { test } from "node:test";
import assert from "node:assert/strict";
import { plan, runCheck } from "./vectors/contract.js";
import { everyCase } from "./vectors/fields.js";
import { selfTest } from "./vectors/mutate.js";

// A synthetic NOT_YET list: the real one may be empty.
const notYet: ReadonlyMap<string, string> = new Map([
  ["later-a", "not yet"],
  ["later-b", "not yet"],
]);
const listed = [...notYet.keys()];

test("a vector file with neither check file nor NOT_YET entry is an error", () => {
  const p = plan(["padding", "brand-new", ...listed], ["padding"], notYet);
  assert.deepEqual(p.checked, ["padding"]);
  assert.equal(p.errors.length, 1);
  assert.match(p.errors[0] ?? "", /brand-new\.json has no check file/);
});

test("a NOT_YET entry that has a check file, or no vector file, is an error", () => {
  const [first, ...rest] = listed;
  assert.ok(first !== undefined);
  assert.equal(plan([first, ...rest], [first], notYet).errors.length, 1);
  assert.equal(plan(rest, [], notYet).errors.length, 1);
  assert.deepEqual(plan(listed, [], notYet).errors, []);
});

test("a check that counts other than the file's cases fails", async () => {
  const file = { vectors: [{ name: "a" }, { name: "b" }] };
  await assert.rejects(runCheck("x", async () => 1, file), /counted 1 cases, the file has 2/);
  assert.equal(await runCheck("x", async () => 2, file), 2);
});

test("a check that ignores a field fails, and the self-test finds the field", async () => {
  const file = { vectors: [{ name: "a", length: 1, ignored: "ab" }] };
  const lax = (v: unknown) => everyCase(v, (f) => void f.int("length"));
  await assert.rejects(lax(file), /fields not checked: ignored/);
  const blind = async (v: unknown) => (v as { vectors: unknown[] }).vectors.length;
  const [tried, missed] = await selfTest(blind, file);
  assert.equal(tried, 2);
  assert.deepEqual(missed, ['case "a": length', 'case "a": ignored']);
});
