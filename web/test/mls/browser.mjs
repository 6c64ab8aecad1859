// Runs browser-page.ts (the group scenario through web/src/mls) in Debian Chromium:
// bundled by esbuild, served from 127.0.0.1 (a secure context for WebCrypto), opened
// headless through playwright-core. `node test/mls/browser.mjs`; fails without Chromium.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, bundlePage, launchChromium } from "../support/browser.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));

test("the group scenario in Chromium", { timeout: 150_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  const js = await bundlePage(join(here, "browser-page.ts"));
  assert.ok(js);
  const html = '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>';
  const server = createServer((req, res) => {
    if (req.url === "/") res.writeHead(200, { "content-type": "text/html" }).end(html);
    else if (req.url === "/page.js") res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const userData = mkdtempSync(join(tmpdir(), "atmls-mls-chromium-"));
  const context = await launchChromium(userData);
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${address.port}/`, { timeout: 30_000 });
    await page.waitForFunction(() => window.result !== undefined, undefined, { timeout: 100_000, polling: 200 });
    const result = await page.evaluate(() => window.result);
    assert.deepEqual(errors, []);
    assert.ok(result.ok, `${result.error} after: ${result.steps.join("; ")}`);
    assert.ok(result.steps.length >= 15, result.steps.join("; "));
  } finally {
    await context.close();
    server.close();
    rmSync(userData, { recursive: true, force: true });
  }
});
