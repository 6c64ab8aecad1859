// Figures of the browser device for docs/performance.md (issue 18 item 4): time to the first
// message after login, and the time a device takes to join a group of N members, in Chromium
// beside the Rust client (the `atmls` CLI) on the same machine and server. Not a test: run it
// under the bench lock:  flock /work/bench.lock npm run bench:browser -- 10 100
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { launchChromium } from "../support/browser.mjs";
import { Device, MemoryStorage } from "../../src/device/index.js";
import { PASSWORD, createAccount, login, rust, rustAccount, startServer } from "../device/harness.js";

const sizes = process.argv.slice(2).map(Number).filter((n) => n >= 4);

const here = new URL(".", import.meta.url).pathname;
const pageDir = mkdtempSync(join(tmpdir(), "bench-page-"));
await build({ entryPoints: [join(here, "..", "test", "e2e", "bench-page.ts")], bundle: true, format: "esm", platform: "browser", outfile: join(pageDir, "bench.js"), logLevel: "warning" });
writeFileSync(join(pageDir, "index.html"), '<!doctype html><meta charset="utf-8"><script type="module" src="bench.js"></script>');

const server = await startServer({ webDir: pageDir });
const origin = server.url;

function timed(args: string[]): Promise<number> {
  const t0 = performance.now();
  return rust(server, args[0]!, args.slice(1), 600_000).then(() => performance.now() - t0);
}

const profile = mkdtempSync(join(tmpdir(), "bench-chromium-"));
const context = await launchChromium(profile);
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
    // A commit adding more than about 300 devices is over the DS's 1 MiB envelope limit
    // (each Add carries a KeyPackage and its record proof): larger groups grow in chunks.
    const CHUNK = 200;
    const rest = [...members];
    let createMs = await timed(["creator", "group", "create", `g${n}`, ...(rest.length > 0 ? ["--with", rest.splice(0, CHUNK).join(",")] : [])]);
    while (rest.length > 0) createMs += await timed(["creator", "group", "add", `g${n}`, ...rest.splice(0, CHUNK)]);
    // The DS limits welcomes per source per minute, and every client here is 127.0.0.1: the
    // members' welcomes of a large group use it up, so the measured joiners wait a window.
    if (n > 60) await new Promise((r) => setTimeout(r, 61_000));
    const t1 = performance.now();
    await rust(server, "creator", ["group", "add", `g${n}`, "browser.test", "joiner.test"], 600_000, (e) => console.log(`N=${n} add, stderr: ${e.slice(0, 600)}`));
    createMs += performance.now() - t1;
    const rustMs = await timed(["joiner", "inbox"]);
    const browser = (await page.evaluate(() => (globalThis as unknown as { bench: { sync(): Promise<{ ms: number; joined: number }> } }).bench.sync())) as { ms: number; joined: number; refused: string[] };
    if (browser.joined !== 1) throw new Error(`the browser joined ${browser.joined} groups; refused: ${browser.refused.join("; ")}`);
    const info = (await rust(server, "joiner", ["group", "info", `g${n}`])) as { members: unknown[] };
    out.push(`N=${n} (members ${info.members.length}): browser join ${Math.round(browser.ms)} ms; Rust CLI join (atmls inbox, whole process) ${Math.round(rustMs)} ms; Rust group create ${Math.round(createMs)} ms; member setup ${Math.round(setup)} ms`);
    console.log(out[out.length - 1]);
  }
} finally {
  console.log(out.join("\n"));
  await context.close();
  await server.stop();
  rmSync(profile, { recursive: true, force: true });
  rmSync(pageDir, { recursive: true, force: true });
}
