// The one way web/'s tests start the Rust server: `atmls serve` from $ATMLS_BIN on loopback
// (embedded PDS host, PLC directory, DS), bounded in time. Without ATMLS_BIN a test fails
// with a message saying to set it (never skips).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResolverConfig } from "../../src/net/did.js";

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

