// The interop scenario of issue 18 in Debian Chromium (playwright-core): `atmls serve
// --web-dir web/dist` on loopback serves the page; a browser device and Rust devices (the
// atmls CLI) share groups. The browser creates a group and adds a Rust device; a Rust device
// (X-Wing `prefer`) adds the browser and the group is 0x0001 (issue 19 item 6); messages flow
// both ways; a reload keeps the state; the browser survives a commit race; a second browser
// device of the account (second context) is auto-added; the browser is removed and can no
// longer read. The page in a conversation is saved (UPDATE_DOCS=1: to docs/browser-device.png).
//
// Run: ATMLS_BIN=/path/to/atmls npm run test:e2e   (fails when ATMLS_BIN is not set)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { launchChromium } from "../support/browser.mjs";
import { type Server, PASSWORD, createAccount, rust, rustAccount, startServer } from "../device/harness.js";

const here = new URL(".", import.meta.url).pathname;
const WEB = join(here, "..", "dist");
// The screenshot goes to dist-e2e/ on every run and replaces docs/browser-device.png only
// when UPDATE_DOCS=1 (new DIDs each run would otherwise leave the tree changed).
const SHOT = join(here, "browser-device.png");
const DOCS_SHOT = join(here, "..", "..", "docs", "browser-device.png");

let server: Server;
/** The page's origin: the server's own. */
let pageOrigin = "";
const profiles: string[] = [];
const contexts: BrowserContext[] = [];
const errors: string[] = [];

async function launch(): Promise<Page> {
  const dir = mkdtempSync(join(tmpdir(), "webdevice-e2e-"));
  profiles.push(dir);
  const context = await launchChromium(dir, { viewport: { width: 1100, height: 720 } });
  contexts.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    // Answers such as 404 RecordNotFound or 409 EpochConflict are outcomes the device handles.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(`console: ${m.text()}`);
  });
  page.setDefaultTimeout(30_000);
  return page;
}

async function logIn(page: Page, handle: string): Promise<void> {
  await page.goto(`${pageOrigin}/web/`);
  await page.getByTestId("login-pds").fill(server.url);
  await page.getByTestId("login-plc").fill(server.url);
  await page.getByTestId("login-handle").fill(handle);
  await page.getByTestId("login-password").fill(PASSWORD);
  await page.getByTestId("login-submit").click();
  const failed = page.getByTestId("login-error").filter({ hasText: /./ });
  await page.getByTestId("who").filter({ hasText: "device" }).or(failed).waitFor();
  if (await failed.isVisible()) throw new Error(`login: ${await failed.textContent()}; ${errors.join("; ")}`);
}

async function openGroup(page: Page, name: string): Promise<void> {
  await page.getByTestId("group").filter({ hasText: name }).click();
  await page.getByTestId("group-name").filter({ hasText: name }).waitFor();
}

function message(page: Page, text: string) {
  return page.getByTestId("message").filter({ hasText: text });
}

before(async () => {
  if (!existsSync(join(WEB, "index.html"))) throw new Error("web/dist is not built (npm run build)");
  // The page is served by the binary under test (`atmls serve --web-dir`).
  server = await startServer({ webDir: WEB });
  pageOrigin = server.url;
  await createAccount(server.url, "web.test");
  await rustAccount(server, "alice", "alice.test");
  await rustAccount(server, "dave", "dave.test");
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await server?.stop();
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
});

test("a browser device and Rust devices in the same groups", { timeout: 170_000 }, async () => {
  const page = await launch();
  await logIn(page, "web.test");
  assert.equal(await page.evaluate(() => window.isSecureContext), true);
  const webDid = ((await rust(server, "alice", ["keys", "list", "web.test"])) as { account: string }).account;

  // The browser creates a group and adds a Rust device.
  await page.getByTestId("create-name").fill("lab");
  await page.getByTestId("create-with").fill("alice.test");
  await page.getByTestId("create-submit").click();
  await page.getByTestId("group").filter({ hasText: "lab" }).waitFor();
  await page.locator('[data-testid=members][data-devices="2"]').waitFor();
  await rust(server, "alice", ["inbox"]);
  const lab = (await rust(server, "alice", ["group", "info", "lab"])) as { ciphersuite: number; members: { did: string }[] };
  assert.equal(lab.ciphersuite, 1);
  assert.equal(lab.members.length, 2);
  assert.ok(lab.members.some((m) => m.did === webDid));

  // Messages both ways (the browser's arrive live).
  await rust(server, "alice", ["send", "lab", "hello from the terminal"]);
  await message(page, "hello from the terminal").waitFor();
  await page.getByTestId("send-text").fill("hello from Chromium");
  await page.getByTestId("send-submit").click();
  await message(page, "hello from Chromium").waitFor();
  const seen = (await rust(server, "alice", ["inbox"])) as { events: { text?: string; sender?: string }[] };
  assert.ok(seen.events.some((e) => e.text === "hello from Chromium" && e.sender === webDid), JSON.stringify(seen));
  await rust(server, "alice", ["send", "lab", "the browser is a device like any other"]);
  await message(page, "the browser is a device like any other").waitFor();
  await page.screenshot({ path: SHOT });
  if (process.env["UPDATE_DOCS"] === "1") copyFileSync(SHOT, DOCS_SHOT);

  // A Rust device with X-Wing `prefer` adds the browser: the group is 0x0001.
  await rust(server, "dave", ["group", "create", "tea", "--with", "web.test,alice.test"]);
  const tea = (await rust(server, "dave", ["group", "info", "tea"])) as { ciphersuite: number; suite: string; members: { did: string }[] };
  assert.equal(tea.ciphersuite, 1, `suite ${tea.suite}: the browser has no X-Wing KeyPackage`);
  await page.getByTestId("group").filter({ hasText: "tea" }).waitFor();
  await rust(server, "dave", ["send", "tea", "welcome to tea"]);
  await openGroup(page, "tea");
  await message(page, "welcome to tea").waitFor();

  // A reload keeps the state (same origin, same port), and live updates resume.
  await page.reload();
  await page.getByTestId("group").filter({ hasText: "lab" }).waitFor();
  await openGroup(page, "lab");
  await message(page, "hello from Chromium").waitFor();
  await openGroup(page, "tea");
  await message(page, "welcome to tea").waitFor();
  await rust(server, "dave", ["send", "tea", "after the reload"]);
  await message(page, "after the reload").waitFor();
  // Reopened without a session: logging in again gives back what needs the PDS (handles).
  await page.getByTestId("login-password").fill(PASSWORD);
  await page.getByTestId("login-handle").fill("web.test");
  await page.getByTestId("login-submit").click();
  await page.getByTestId("login").waitFor({ state: "hidden" });

  // A commit race: live paused, the Rust device commits, the browser commits on the old epoch.
  await page.getByTestId("live").uncheck();
  await rust(server, "dave", ["group", "remove", "tea", "alice.test"]);
  await page.getByTestId("rotate").click();
  await page.getByTestId("status").filter({ hasText: "committed after 2 attempt(s)" }).waitFor();
  await page.getByTestId("live").check();
  await rust(server, "dave", ["send", "tea", "after the race"]);
  await message(page, "after the race").waitFor();
  const afterRace = (await rust(server, "dave", ["group", "info", "tea"])) as { members: { did: string }[] };
  const aliceDid = lab.members.find((m) => m.did !== webDid)!.did;
  assert.ok(afterRace.members.some((m) => m.did === webDid) && !afterRace.members.some((m) => m.did === aliceDid), "both commits applied");

  // A second browser device of the account is auto-added to its groups by the first.
  const second = await launch();
  await logIn(second, "web.test");
  await second.getByTestId("group").filter({ hasText: "lab" }).waitFor({ timeout: 60_000 });
  await second.getByTestId("group").filter({ hasText: "tea" }).waitFor({ timeout: 60_000 });
  await rust(server, "dave", ["send", "tea", "to both browsers"]);
  await openGroup(second, "tea");
  await message(second, "to both browsers").waitFor();
  const both = (await rust(server, "dave", ["group", "info", "tea"])) as { members: { did: string }[] };
  assert.equal(both.members.filter((m) => m.did === webDid).length, 2);

  // The browser is removed (both devices of its account) and can no longer read.
  await rust(server, "dave", ["group", "remove", "tea", "web.test"]);
  await page.getByTestId("group").filter({ hasText: "(removed)" }).waitFor();
  await rust(server, "dave", ["send", "tea", "not for the browser"]);
  await rust(server, "alice", ["send", "lab", "marker after the removal"]);
  await openGroup(page, "lab");
  await message(page, "marker after the removal").waitFor();
  await openGroup(page, "tea");
  assert.equal(await message(page, "not for the browser").count(), 0);
  assert.deepEqual(errors, []);
});
