// The server of the net integration tests (test/support/server.ts); accounts on its embedded
// host; the `atmls` CLI against it.
import { execFile } from "node:child_process";
import { join } from "node:path";

export { type Server, startServer } from "../support/server.js";
import { type Server, atmlsBin } from "../support/server.js";

/** `com.atproto.server.createAccount` on the embedded host. */
export async function createAccount(url: string, handle: string, password: string): Promise<{ did: string }> {
  const resp = await fetch(`${url}/xrpc/com.atproto.server.createAccount`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ handle, email: `${handle}@example.com`, password }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await resp.json()) as { did?: unknown };
  if (!resp.ok || typeof body.did !== "string") throw new Error(`createAccount ${resp.status}`);
  return { did: body.did };
}

/** Runs the `atmls` CLI with a profile directory under the server's, bounded to `timeoutMs`. */
export function cli(server: Server, args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      atmlsBin(),
      ["--profile-dir", join(server.dir, "profiles"), ...args],
      { timeout: timeoutMs, env: { ...process.env, ATMLS_PASSPHRASE: "webnet test passphrase", ATMLS_LOG: "off" } },
      (err, stdout, stderr) => (err ? reject(new Error(`atmls ${args[0] ?? ""} ${args[2] ?? ""}: ${stderr.slice(0, 500)}`)) : resolve(stdout)),
    );
  });
}
