// Figures of the browser device for docs/performance.md (issue 18 item 4): time to the first
// message after login, and the time a device takes to join a group of N members, in Chromium
// beside the Rust client (the `atmls` CLI) on the same machine and server. Not a test: run it
// under the bench lock:  flock /work/bench.lock npm run bench:browser -- 10 100
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { chromium } from "playwright-core";
import { Device, MemoryStorage } from "../../src/device/index.js";
import { PASSWORD, atmlsBin, createAccount, login, rust, rustAccount, startServer } from "../device/harness.js";
import { serveHasWebDir, servePage } from "./static.js";

const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];
const sizes = process.argv.slice(2).map(Number).filter((n) => n >= 4);

const here = new URL(".", import.meta.url).pathname;
const pageDir = mkdtempSync(join(tmpdir(), "bench-page-"));
await build({ entryPoints: [join(here, "..", "test", "e2e", "bench-page.ts")], bundle: true, format: "esm", platform: "browser", outfile: join(pageDir, "bench.js"), logLevel: "warning" });
writeFileSync(join(pageDir, "index.html"), '<!doctype html><meta charset="utf-8"><script type="module" src="bench.js"></script>');

let upstream: string | undefined;
const front = serveHasWebDir(atmlsBin()) ? undefined : await servePage(pageDir, () => upstream);
const server = await startServer(front === undefined ? { webDir: pageDir } : { publicUrl: front.origin });
upstream = server.listening;
const origin = front?.origin ?? server.url;

function timed(args: string[]): Promise<number> {
  const t0 = performance.now();
  return rust(server, args[0]!, args.slice(1), 600_000).then(() => performance.now() - t0);
}

const profile = mkdtempSync(join(tmpdir(), "bench-chromium-"));
const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(600_000);
await page.goto(`${origin}/web/`);
await page.waitForFunction(() => "bench" in globalThis);

const out: string[] = [];
try {
  await rustAccount(server, "creator", "creator.test", "off");
  await rustAccount(server, "joiner", "joiner.test", "off");
  await createAccount(server.url, "browser.test");
  const creatorDid = ((await rust(server, "creator", ["account", "show"])) as { did: string }).did;
  const first = (await page.evaluate(
    ([pds, h, p, d]) => (globalThis as unknown as { bench: { firstMessage(a: string, b: string, c: string, e: string, f: string): Promise<Record<string, number>> } }).bench.firstMessage(pds!, pds!, h!, p!, d!),
    [server.url, "browser.test", PASSWORD, creatorDid],
  )) as Record<string, number>;
  out.push(`first message after login (Chromium): ${JSON.stringify(Object.fromEntries(Object.entries(first).map(([k, v]) => [k, Math.round(v)])))}`);
  let made = 0;
  for (const n of sizes) {
    // Members: TS devices made in Node (fast to set up); the creator, the browser and the Rust joiner make three more.
    const members: string[] = [];
    const t0 = performance.now();
    while (made < n - 3) {
      const batch = Array.from({ length: Math.min(8, n - 3 - made) }, (_, i) => made + i);
      await Promise.all(
        batch.map(async (i) => {
          await createAccount(server.url, `m${i}.test`);
          await Device.create(await login(server, `m${i}.test`), new MemoryStorage(), { resolver: server.resolver, dsEndpoint: server.url });
        }),
      );
      made += batch.length;
    }
    for (let i = 0; i < n - 3; i++) members.push(`m${i}.test`);
    const setup = performance.now() - t0;
    const createMs = await timed(["creator", "group", "create", `g${n}`, "--with", [...members, "browser.test", "joiner.test"].join(",")]);
    const browser = (await page.evaluate(() => (globalThis as unknown as { bench: { sync(): Promise<{ ms: number; joined: number }> } }).bench.sync())) as { ms: number; joined: number };
    if (browser.joined !== 1) throw new Error(`the browser joined ${browser.joined} groups`);
    const rustMs = await timed(["joiner", "inbox"]);
    const info = (await rust(server, "joiner", ["group", "info", `g${n}`])) as { members: unknown[] };
    out.push(`N=${n} (members ${info.members.length}): browser join ${Math.round(browser.ms)} ms; Rust CLI join (atmls inbox, whole process) ${Math.round(rustMs)} ms; Rust group create ${Math.round(createMs)} ms; member setup ${Math.round(setup)} ms`);
    console.log(out[out.length - 1]);
  }
} finally {
  console.log(out.join("\n"));
  await context.close();
  await server.stop();
  await front?.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(pageDir, { recursive: true, force: true });
}
