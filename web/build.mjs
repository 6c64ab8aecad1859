// Builds the browser bundle (src/page/main.ts -> dist/) and the Node test files
// (test/**/*.test.ts -> dist-test/) with esbuild. Type checking is `tsc --noEmit` (npm run typecheck).
import { build } from "esbuild";
import { existsSync, readdirSync, rmSync, mkdirSync, copyFileSync } from "node:fs";
import { join } from "node:path";

const here = new URL(".", import.meta.url).pathname;

function testEntries(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testEntries(join(dir, e.name)) : e.name.endsWith(".test.ts") ? [join(dir, e.name)] : [],
  );
}

rmSync(join(here, "dist-test"), { recursive: true, force: true });
const tests = testEntries(join(here, "test"));
if (tests.length > 0) {
  await build({
    entryPoints: tests,
    outdir: join(here, "dist-test"),
    outbase: join(here, "test"),
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
    packages: "external",
    logLevel: "warning",
  });
}

const page = join(here, "src/page/main.ts");
if (existsSync(page)) {
  rmSync(join(here, "dist"), { recursive: true, force: true });
  mkdirSync(join(here, "dist"), { recursive: true });
  await build({
    entryPoints: [page],
    outfile: join(here, "dist/app.js"),
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: true,
    logLevel: "warning",
  });
  const html = join(here, "src/page/index.html");
  if (existsSync(html)) copyFileSync(html, join(here, "dist/index.html"));
}
