// The real server and Rust devices for device tests: `atmls serve` from $ATMLS_BIN on loopback
// (embedded PDS host, PLC directory, DS), accounts, and the `atmls` CLI as Rust devices.
// Without ATMLS_BIN the tests fail with a message saying to set it (never skip).
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResolverConfig } from "../../src/net/did.js";
import { PdsSession } from "../../src/net/pds.js";

/** The atmls binary, or a failure naming the variable. */
export function atmlsBin(): string {
  const bin = process.env["ATMLS_BIN"];
  if (bin === undefined || bin === "") throw new Error("set ATMLS_BIN to the atmls binary (e.g. ATMLS_BIN=/work/targets/bin/atmls)");
  return bin;
}

/** A running server. */
export interface Server {
  /** The URL clients use (the public URL). */
  readonly url: string;
  /** The address it listens on. */
  readonly listening: string;
  readonly dir: string;
  readonly resolver: ResolverConfig;
  stop(): Promise<void>;
}

/** Starts `atmls serve` on 127.0.0.1 (`port` 0: any), optionally serving `webDir` at /web/. */
export async function startServer(options: { port?: number; webDir?: string; dir?: string; publicUrl?: string } = {}): Promise<Server> {
  const bin = atmlsBin();
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "webdevice-"));
  const args = ["serve", "--listen", `127.0.0.1:${options.port ?? 0}`, "--data-dir", join(dir, "data")];
  if (options.webDir !== undefined) args.push("--web-dir", options.webDir);
  if (options.publicUrl !== undefined) args.push("--public-url", options.publicUrl);
  const child: ChildProcess = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ATMLS_LOG: "warn" } });
  const listening = await new Promise<string>((resolve, reject) => {
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
  const url = options.publicUrl ?? listening;
  return {
    url,
    listening,
    dir,
    resolver: { plcUrl: url, allowHttpLoopback: true },
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
        child.once("exit", () => {
          clearTimeout(kill);
          done();
        });
        child.kill("SIGTERM");
      }),
  };
}

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
