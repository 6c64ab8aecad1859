// The real server and Rust devices for device tests: `atmls serve` from $ATMLS_BIN on loopback
// (embedded PDS host, PLC directory, DS), accounts, and the `atmls` CLI as Rust devices.
// Without ATMLS_BIN the tests fail with a message saying to set it (never skip).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { PdsSession } from "../../src/net/pds.js";

export { type Server, atmlsBin, startServer } from "../support/server.js";
import { type Server, atmlsBin } from "../support/server.js";

export const PASSWORD = "webdevice-pw-12345678";

/** Creates an account on the embedded host. */
export async function createAccount(url: string, handle: string): Promise<{ did: string }> {
  const resp = await fetch(`${url}/xrpc/com.atproto.server.createAccount`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ handle, email: `${handle}@example.com`, password: PASSWORD }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await resp.json()) as { did?: unknown };
  if (!resp.ok || typeof body.did !== "string") throw new Error(`createAccount ${resp.status}`);
  return { did: body.did };
}

/** Logs in to an account of the embedded host. */
export function login(server: Server, handle: string): Promise<PdsSession> {
  return PdsSession.login(server.url, handle, PASSWORD, { resolver: server.resolver });
}

/** Runs the CLI as `profile` (a Rust device), `--json`, bounded; answers the parsed output. */
export function rust(server: Server, profile: string, args: string[], timeoutMs = 90_000, stderrTo?: (text: string) => void): Promise<unknown> {
  const bin = atmlsBin();
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      ["--profile-dir", join(server.dir, "profiles"), "--profile", profile, ...args.slice(0, 1), "--json", ...args.slice(1)],
      {
        timeout: timeoutMs,
        env: { ...process.env, ATMLS_PASSPHRASE: "webdevice passphrase", ATMLS_PASSWORD: PASSWORD, ATMLS_KDF_INSECURE_FOR_TESTS: "1", ATMLS_LOG: "off" },
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`atmls ${args.slice(0, 2).join(" ")}: ${stderr.slice(0, 800)}`));
        if (stderr !== "") stderrTo?.(stderr);
        const text = stdout.trim();
        if (text === "") return resolve(undefined);
        try {
          resolve(JSON.parse(text));
        } catch {
          // several JSON lines (inbox): an array of them
          resolve(text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as unknown));
        }
      },
    );
  });
}

/** A Rust account and device made by the CLI. */
export async function rustAccount(server: Server, profile: string, handle: string, xwing = "prefer"): Promise<void> {
  await rust(server, profile, ["account", "create", "--xwing", xwing, "--pds", server.url, "--handle", handle, "--email", `${handle}@example.com`, "--password", PASSWORD]);
}

/** Polls `check` until it answers a value (bounded by count, not by speed). */
export async function until<T>(what: string, check: () => Promise<T | undefined>, tries = 60, pauseMs = 250): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  throw new Error(`${what}: not reached after ${tries} tries`);
}
