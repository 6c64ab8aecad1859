// The one way web/'s tests drive Debian Chromium (playwright-core) and bundle a test page:
// the executable (CHROMIUM, default /usr/bin/chromium; a missing one is a failure, never a
// skip), the flags, a fresh persistent context, and an esbuild bundle of a page module.
import { existsSync } from "node:fs";
import { build } from "esbuild";
import { chromium } from "playwright-core";

/** The Chromium executable. */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** The flags every test launches Chromium with (no sandbox as root, nothing on the network). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

/** Launches Chromium on the user-data dir `profile` (fresh or reused); throws if Chromium is missing. */
export async function launchChromium(profile, options = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`);
  }
  // A browser that dies while starting (seen once under load: SIGSEGV before any page)
  // is the machine, not the code under test: up to three starts, each failure logged.
  for (let attempt = 1; ; attempt++) {
    try {
      return await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        timeout: 30_000,
        args: CHROMIUM_ARGS,
        ...options,
      });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (attempt >= LAUNCH_ATTEMPTS || !message.includes("has been closed")) throw e;
      console.error(`Chromium exited while starting (attempt ${attempt} of ${LAUNCH_ATTEMPTS}); starting it again`);
    }
  }
}

/** How many times a browser that exits while starting is started. */
const LAUNCH_ATTEMPTS = 3;

/** The browser bundle (ES module) of the page module `entry`. */
export async function bundlePage(entry) {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    platform: "browser",
    format: "esm",
    target: "es2022",
    logLevel: "warning",
  });
  const file = out.outputFiles[0];
  if (file === undefined) throw new Error("esbuild produced no output");
  return file.contents;
}
