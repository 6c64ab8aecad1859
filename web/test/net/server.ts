// Starts the prebuilt `atmls serve` on loopback for an integration test, bounded in time;
// creates accounts on its embedded host; runs the `atmls` CLI against it.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ATMLS = process.env["ATMLS_BIN"] ?? "/work/targets/bin/atmls";

/** A running server: its URL, data directory, and how to stop it. */
export interface Server {
  readonly url: string;
  readonly dir: string;
  stop(): Promise<void>;
}

/** Starts `atmls serve --listen 127.0.0.1:0`, waits for its printed URL (at most 30 s). */
export async function startServer(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), "webnet-"));
  const child: ChildProcess = spawn(ATMLS, ["serve", "--listen", "127.0.0.1:0", "--data-dir", join(dir, "data")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ATMLS_LOG: "warn" },
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("atmls serve printed no URL within 30 s")), 30_000);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.stderr?.resume();
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`atmls serve exited (${code})`));
    });
  });
  return {
    url,
    dir,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
        child.once("exit", () => {
          clearTimeout(kill);
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
        child.kill("SIGTERM");
      }),
  };
}

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
      ATMLS,
      ["--profile-dir", join(server.dir, "profiles"), ...args],
      { timeout: timeoutMs, env: { ...process.env, ATMLS_PASSPHRASE: "webnet test passphrase", ATMLS_LOG: "off" } },
      (err, stdout, stderr) => (err ? reject(new Error(`atmls ${args[0] ?? ""} ${args[2] ?? ""}: ${stderr.slice(0, 500)}`)) : resolve(stdout)),
    );
  });
}
