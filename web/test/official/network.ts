// The official atproto PLC directory + PDS (tests/interop/official-pds/start.mjs, installed
// with `npm ci` at the pinned versions into <cache>/official-pds/<hash>, the same cache rule
// as crates/atmls-interop-tests) and `atmls serve` attached to it, each a child process on
// loopback that stop() ends. Nothing here skips: a failed install or start is an error.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { atmlsBin } from "../support/server.js";

/** tests/interop/official-pds/ of this clone (found upwards from this file or the cwd). */
function harnessDir(): string {
  for (let d of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let i = 0; i < 8; i++) {
      const c = join(d, "tests/interop/official-pds");
      if (existsSync(join(c, "start.mjs"))) return c;
      d = dirname(d);
    }
  }
  throw new Error("tests/interop/official-pds not found above the test file");
}

/** `$ATMLS_CACHE_DIR`, else `$XDG_CACHE_HOME/atmls`, else `$HOME/.cache/atmls`. */
function cacheRoot(): string {
  const env = (k: string) => (process.env[k] ?? "") !== "" ? process.env[k]! : undefined;
  return env("ATMLS_CACHE_DIR") ?? (env("XDG_CACHE_HOME") !== undefined ? join(env("XDG_CACHE_HOME")!, "atmls") : join(homedir(), ".cache/atmls"));
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(" ")} in ${cwd}: ${err.message}\n${stdout}${stderr}`.slice(0, 4000))) : resolve(),
    );
  });
}

/** Installs the pinned packages unless this lockfile's install is cached; answers its directory. */
export async function installOfficial(): Promise<string> {
  const src = harnessDir();
  const hash = createHash("sha256");
  for (const n of ["package.json", "package-lock.json"]) hash.update(readFileSync(join(src, n)));
  const dir = join(cacheRoot(), "official-pds", hash.digest().subarray(0, 8).toString("hex"));
  if (existsSync(join(dir, "node_modules/.atmls-installed"))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const n of ["package.json", "package-lock.json"]) copyFileSync(join(src, n), join(tmp, n));
  try {
    await run("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], tmp, 480_000);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  writeFileSync(join(tmp, "node_modules/.atmls-installed"), "");
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another process installed it meanwhile
    if (!existsSync(join(dir, "node_modules/.atmls-installed"))) throw new Error(`cannot move the install into ${dir}`);
  }
  return dir;
}

/** A child that answers its first stdout lines until `done` accepts them. */
function startChild(what: string, cmd: string, args: string[], cwd: string | undefined, done: (lines: string[]) => boolean, env?: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; lines: string[] }> {
  const child = spawn(cmd, args, { cwd, stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${what} printed no start-up line within 120 s: ${err.slice(-2000)}`));
    }, 120_000);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const lines = out.split("\n").slice(0, -1).map((l) => l.trimEnd());
      if (lines.length > 0 && done(lines)) {
        clearTimeout(timer);
        resolve({ child, lines });
      }
    });
    child.stderr?.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-8000);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${err.slice(-2000)}`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.once("exit", () => {
      clearTimeout(kill);
      resolve();
    });
    child.stdin?.end();
    child.kill("SIGTERM");
  });
}

/** The official network and the attached DS, running. */
export interface OfficialWorld {
  readonly plcUrl: string;
  readonly pdsUrl: string;
  readonly versions: unknown;
  /** The DS's public URL and DID. */
  readonly dsUrl: string;
  readonly dsDid: string;
  /** A scratch directory (DS data, CLI profiles). */
  readonly dir: string;
  stop(): Promise<void>;
}

export async function startOfficialWorld(): Promise<OfficialWorld> {
  const bin = atmlsBin();
  const installed = await installOfficial();
  copyFileSync(join(harnessDir(), "start.mjs"), join(installed, "start.mjs"));
  const net = await startChild("the official PDS", "node", ["start.mjs"], installed, (l) => l.length > 0);
  const started = JSON.parse(net.lines[net.lines.length - 1]!) as { plcUrl?: unknown; pdsUrl?: unknown; versions?: unknown };
  if (typeof started.plcUrl !== "string" || typeof started.pdsUrl !== "string") {
    await stopChild(net.child);
    throw new Error(`the official PDS printed ${net.lines.join(" ")}`);
  }
  const plcUrl = started.plcUrl;
  const pdsUrl = started.pdsUrl;
  const dir = mkdtempSync(join(tmpdir(), "weboff-"));
  let ds: { child: ChildProcess; lines: string[] };
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, ATMLS_LOG: "warn" };
    delete env["ATMLS_CONFIG"];
    delete env["ATMLS_PUBLIC_URL"];
    delete env["ATMLS_SERVICE_DID"];
    ds = await startChild(
      "atmls serve (attached mode)",
      bin,
      ["serve", "--listen", "127.0.0.1:0", "--pds-url", pdsUrl, "--allow-loopback", "--plc-url", plcUrl, "--data-dir", join(dir, "data")],
      undefined,
      (l) => l.some((x) => x.trim().startsWith("PLC directory:")),
      env,
    );
  } catch (e) {
    await stopChild(net.child);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const field = (name: string): string => {
    const v = ds.lines.map((l) => l.trim()).find((l) => l.startsWith(name))?.slice(name.length).trim().split(/\s+/)[0];
    if (v === undefined || v === "") throw new Error(`atmls serve printed no ${name} line`);
    return v;
  };
  return {
    plcUrl,
    pdsUrl,
    versions: started.versions,
    dsUrl: field("public URL:"),
    dsDid: field("service DID:"),
    dir,
    stop: async () => {
      await stopChild(ds.child);
      await stopChild(net.child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
