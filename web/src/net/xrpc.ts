// XRPC over fetch (docs/spec.md §2a): one query or procedure, its answer read with a size
// bound and a timeout, and every failure turned into a typed error with a kind (§11.14).
import { EpochConflictError, MalformedAnswerError, NetworkError, XrpcError } from "./errors.js";
import * as J from "./json.js";

/** Settings shared by the XRPC clients. */
export interface XrpcConfig {
  /** Total time for one call, milliseconds (default 30 000). */
  readonly timeoutMs?: number;
  /** Largest answer body accepted, bytes (default 32 MiB; `getKeyPackages` answers are ≤ 16 MiB of JSON). */
  readonly maxAnswerBytes?: number;
  /** The fetch to use (default: the global one). */
  readonly fetch?: typeof fetch;
}

/** One XRPC request as it goes on the wire. */
export interface XrpcRequest {
  readonly method: string;
  /** The exact query string after `?` (possibly empty), as signed. */
  readonly query: string;
  /** For a procedure: the exact body bytes, as signed (`application/json`). */
  readonly body?: Uint8Array;
  readonly authorization?: string;
}

const DEFAULT_TIMEOUT = 30_000;
const DEFAULT_MAX = 32 * 1024 * 1024;

/** Builds a query string: `key=value` pairs percent-encoded, arrays as repeated keys, in the given order. */
export function buildQuery(params: ReadonlyArray<readonly [string, string | number | undefined]>): string {
  return params
    .filter((p): p is readonly [string, string | number] => p[1] !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join("&");
}

async function readLimited(method: string, resp: Response, max: number): Promise<Uint8Array> {
  const declared = resp.headers.get("content-length");
  if (declared !== null && Number(declared) > max) throw new MalformedAnswerError(method, "answer over the size limit");
  if (resp.body === null) return new Uint8Array(0);
  const reader = resp.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel();
      throw new MalformedAnswerError(method, "answer over the size limit");
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function parseJson(method: string, bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new MalformedAnswerError(method, "not JSON");
  }
}

/** Turns an error answer into its typed error. */
export function errorFromAnswer(method: string, status: number, bytes: Uint8Array): XrpcError {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return new XrpcError(method, status, `Http${status}`, "no XRPC error body");
  }
  if (typeof body !== "object" || body === null || typeof (body as J.JsonObject)["error"] !== "string") {
    return new XrpcError(method, status, `Http${status}`, "no XRPC error body");
  }
  const o = body as J.JsonObject;
  const name = o["error"] as string;
  const message = typeof o["message"] === "string" ? o["message"] : "";
  if (name === "EpochConflict") {
    // §2a: an EpochConflict without its numbers is refused, never defaulted.
    const epoch = J.optInt(o, "currentEpoch", "error");
    const seq = J.optInt(o, "currentSeq", "error");
    if (epoch === undefined || seq === undefined) {
      throw new MalformedAnswerError(method, "EpochConflict without currentEpoch and currentSeq");
    }
    return new EpochConflictError(method, status, message, epoch, seq);
  }
  return new XrpcError(method, status, name, message);
}

/** Sends one request to `<base>/xrpc/<method>` and returns the parsed JSON answer, or throws a typed error. */
export async function xrpcCall(base: string, req: XrpcRequest, config: XrpcConfig = {}): Promise<unknown> {
  const f = config.fetch ?? fetch;
  const url = `${base.replace(/\/+$/, "")}/xrpc/${req.method}${req.query ? `?${req.query}` : ""}`;
  const headers: Record<string, string> = {};
  if (req.authorization !== undefined) headers["authorization"] = req.authorization;
  if (req.body !== undefined) headers["content-type"] = "application/json";
  let resp: Response;
  const init: RequestInit = {
    method: req.body === undefined ? "GET" : "POST",
    headers,
    signal: AbortSignal.timeout(config.timeoutMs ?? DEFAULT_TIMEOUT),
    redirect: "error",
  };
  if (req.body !== undefined) init.body = req.body as Uint8Array<ArrayBuffer>;
  try {
    resp = await f(url, init);
  } catch (e) {
    throw new NetworkError(req.method, e instanceof Error && e.name === "TimeoutError" ? "timed out" : "connection failed");
  }
  let bytes: Uint8Array;
  try {
    bytes = await readLimited(req.method, resp, config.maxAnswerBytes ?? DEFAULT_MAX);
  } catch (e) {
    if (e instanceof MalformedAnswerError) throw e;
    throw new NetworkError(req.method, "answer interrupted");
  }
  if (!resp.ok) throw errorFromAnswer(req.method, resp.status, bytes);
  return parseJson(req.method, bytes);
}

/** Runs a parser over an answer; a shape violation becomes a permanent {@link MalformedAnswerError}. */
export function parseAnswer<T>(method: string, answer: unknown, parse: (v: unknown) => T): T {
  try {
    return parse(answer);
  } catch (e) {
    if (e instanceof J.ShapeError) throw new MalformedAnswerError(method, e.message);
    throw e;
  }
}
