// The network layer bundles for a browser: esbuild with platform "browser" refuses Node
// built-ins, so a `node:` import (or a dependency needing one) anywhere under src/net or
// src/proto/request.ts fails this test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { build } from "esbuild";

test("src/net and src/proto/request.ts bundle for the browser", { timeout: 60_000 }, async () => {
  const src = new URL("../../src/", import.meta.url).pathname;
  const entry = [
    "net/ds.ts", "net/subscribe.ts", "net/pds.ts", "net/keypackages.ts", "net/did.ts", "proto/request.ts",
  ].map((f) => `export * from ${JSON.stringify(src + f)};`).join("\n");
  const out = await build({
    stdin: { contents: entry, resolveDir: src, loader: "ts" },
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    logLevel: "silent",
  });
  assert.equal(out.errors.length, 0);
  const text = new TextDecoder().decode(out.outputFiles[0]!.contents);
  assert.ok(!/from\s*["']node:/.test(text), "no node: import left in the bundle");
});
