import type { BrowserContext } from "playwright-core";

export const CHROMIUM: string;
export const CHROMIUM_ARGS: string[];
export function launchChromium(
  profile: string,
  options?: Parameters<typeof import("playwright-core").chromium.launchPersistentContext>[1],
): Promise<BrowserContext>;
export function bundlePage(entry: string): Promise<Uint8Array>;
