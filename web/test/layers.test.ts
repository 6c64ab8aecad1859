// The browser device's module layers (docs/architecture.md "The browser device"): which
// folder of src/ may import which, and no Node built-in anywhere in src/ (it runs in a
// browser). Read from the sources, so a new import that breaks a layer fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const src = fileURLToPath(new URL("../src/", import.meta.url));

/** For each folder, the folders of src/ its files may import. */
const ALLOWED: Record<string, readonly string[]> = {
  proto: [],
  mls: ["proto"],
  net: ["proto"],
  store: [],
  device: ["proto", "mls", "net", "store"],
  page: ["device", "proto", "net", "store", "mls"],
};

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** The module specifiers a source file imports or re-exports. */
export function specifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^"';]*?from\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)|import\s*["']([^"']+)["']/g)) {
    const s = m[1] ?? m[2] ?? m[3];
    if (s !== undefined) out.push(s);
  }
  return out;
}

test("every folder of src/ imports only the folders below it, and nothing of Node", () => {
  for (const folder of ["proto", "mls", "net", "store"]) assert.ok(existsSync(join(src, folder)), folder);
  const broken: string[] = [];
  for (const folder of Object.keys(ALLOWED)) {
    for (const file of files(join(src, folder))) {
      for (const spec of specifiers(readFileSync(file, "utf8"))) {
        if (spec.startsWith("node:")) broken.push(`${file}: imports ${spec}`);
        const up = /^\.\.\/([a-z-]+)\//.exec(spec);
        const target = up?.[1];
        if (target !== undefined && !ALLOWED[folder]!.includes(target)) {
          broken.push(`${file}: ${folder} imports ${target} (${spec})`);
        }
      }
    }
  }
  assert.deepEqual(broken, []);
});

test("the import reader sees the forms the sources use", () => {
  assert.deepEqual(specifiers('import { a } from "../net/x.js";'), ["../net/x.js"]);
  assert.deepEqual(specifiers('export * from "../proto/y.js";'), ["../proto/y.js"]);
  assert.deepEqual(specifiers('import type { T } from "node:fs";'), ["node:fs"]);
  assert.deepEqual(specifiers('export {\n  a,\n  b as c,\n} from "../proto/z.js";'), ["../proto/z.js"]);
});
