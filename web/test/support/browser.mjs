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
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: CHROMIUM_ARGS,
    ...options,
  });
}

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
