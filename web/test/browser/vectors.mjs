// The vector checks in Debian Chromium: bundles test/browser/page.ts (every check file of
// test/vectors/checks/ and the runner contract) with esbuild, serves it and tests/vectors/*.json
// from a loopback HTTP server (127.0.0.1, random port: a secure context for WebCrypto), opens
// it in headless Chromium through playwright-core and runs every check in the page. Fails on
// any check error, a missing check file (contract.ts NOT_YET rules), a page error or console
// error, or when the run exceeds its time bound.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, bundlePage, launchChromium } from "../support/browser.mjs";

const web = fileURLToPath(new URL("../../", import.meta.url));
const vectorsDir = join(web, "../tests/vectors");
const TIMEOUT_MS = 90_000;

async function bundle() {
  return bundlePage(join(web, "test/browser/page.ts"));
}

function serve(pageJs, stems) {
  const html = '<!doctype html><meta charset="utf-8"><title>atmls vectors</title><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>';
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    const vector = /^\/vectors\/([a-z0-9-]+)\.json$/.exec(path);
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
    } else if (path === "/page.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(pageJs);
    } else if (vector !== null && stems.includes(vector[1])) {
      res.writeHead(200, { "content-type": "application/json" }).end(readFileSync(join(vectorsDir, `${vector[1]}.json`)));
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

function within(ms, what, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

test("vector checks in Chromium", { timeout: TIMEOUT_MS + 30_000 }, async (t) => {
  // No Chromium is a failure, never a skip: `.ci/run` installs Debian's `chromium`.
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  const stems = readdirSync(vectorsDir)
    .filter((n) => n.endsWith(".json"))
    .map((n) => n.slice(0, -".json".length))
    .sort();
  const server = await serve(await bundle(), stems);
  const userData = mkdtempSync(join(tmpdir(), "atmls-chromium-"));
  let context;
  try {
    context = await launchChromium(userData);
    const page = context.pages()[0] ?? (await context.newPage());
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    const { port } = server.address();
    await page.goto(`http://127.0.0.1:${port}/`, { timeout: 30_000 });
    await page.waitForFunction(() => typeof globalThis.runVectors === "function", null, { timeout: 30_000 });
    const report = await within(TIMEOUT_MS, "the page's vector run",
      page.evaluate((s) => globalThis.runVectors(s), stems));
    t.diagnostic(`Chromium ${context.browser()?.version() ?? "(version unknown)"}, secure context: ${report.secureContext}`);
    for (const [stem, why] of report.notYet) t.diagnostic(`not yet: ${stem}.json (${why})`);
    for (const r of report.results) t.diagnostic(`${r.stem}.json: ${r.error ?? `${r.cases} cases`}`);
    assert.equal(report.secureContext, true, "the page is not a secure context");
    assert.deepEqual(report.errors, [], "breaches of the vector contract");
    assert.ok(report.results.length > 0, "no check ran");
    assert.deepEqual(report.results.filter((r) => r.error !== undefined), [], "checks that failed in Chromium");
    assert.deepEqual(problems, [], "errors in the page");
  } finally {
    await context?.close();
    await new Promise((resolve) => server.close(resolve));
    rmSync(userData, { recursive: true, force: true });
  }
});
