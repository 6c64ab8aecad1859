// The Rust side of interop tests: `atmls serve` (embedded PDS + PLC + DS) on loopback from
// the prebuilt binary $ATMLS_BIN, the CLI run as a Rust device, and plain XRPC calls.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { type Server, atmlsBin, startServer } from "../support/server.js";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A running `atmls serve` and the CLI against it. */
export class Host {
  private constructor(
    private readonly server: Server,
    private readonly bin: string,
  ) {}

  static async start(): Promise<Host> {
    const server = await startServer();
    return new Host(server, atmlsBin());
  }

  get url(): string {
    return this.server.url;
  }

  private get dir(): string {
    return this.server.dir;
  }

  private static env(dir: string): NodeJS.ProcessEnv {
    return { ...process.env, ATMLS_PROFILE_DIR: join(dir, "profiles"), ATMLS_XWING: "off", ATMLS_PASSPHRASE: "interop", ATMLS_LOG: "off" };
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  /** Runs the CLI (a Rust device) and returns its standard output. */
  async atmls(...args: string[]): Promise<string> {
    const { stdout } = await run(this.bin, args, { env: Host.env(this.dir), timeout: 60_000 });
    return stdout;
  }

  /** An XRPC call; `raw` sends the body bytes as given (signed requests sign these bytes). */
  async xrpc(
    method: string,
    init: { authorization?: string; body?: unknown; raw?: string; query?: string } = {},
  ): Promise<Response> {
    const body = init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body));
    const res = await fetch(`${this.url}/xrpc/${method}${init.query === undefined ? "" : `?${init.query}`}`, {
      method: body === undefined ? "GET" : "POST",
      headers: {
        ...(init.authorization === undefined ? {} : { authorization: init.authorization }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(20_000),
    });
    if (!res.ok) throw new Error(`${method}: HTTP ${res.status} ${await res.text()}`);
    return res;
  }
}

/** base64 without padding (atproto's `$bytes`). */
export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64").replace(/=+$/, "");

/** A record key in TID form (13 characters of base32-sortable). */
export function tid(n: number): string {
  const chars = "234567abcdefghijklmnopqrstuvwxyz";
  let v = (BigInt(Date.now()) * 1000n + BigInt(n)) << 10n;
  let out = "";
  for (let i = 0; i < 13; i++) {
    out = (chars[Number(v & 31n)] ?? "2") + out;
    v >>= 5n;
  }
  return out;
}
