import { test } from "node:test";
import assert from "node:assert/strict";
import { SPEC } from "../src/index.js";

test("the library builds and loads", () => {
  assert.equal(SPEC, "docs/spec.md");
});
