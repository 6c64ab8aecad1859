// DIDs and DID documents (docs/spec.md §8 "Identities", "Resolution"; §13.2): did:plc through
// a PLC directory, did:web through /.well-known/did.json; the `#atproto` key in its Multikey
// or legacy form; the `#atproto_pds` and `#chat_mls_ds` endpoints.
import { base58btc } from "multiformats/bases/base58";
import type { FailureKind } from "./errors.js";
import { kindOfStatus } from "./errors.js";
import * as J from "./json.js";
import type { Did } from "./json.js";

/** An account's signing key: a SEC1 point (compressed or not) on secp256k1 (ES256K) or P-256 (ES256). */
export interface AtprotoKey {
  readonly curve: "secp256k1" | "p256";
  readonly publicKey: Uint8Array;
}

/** What a device uses of a DID document. */
export interface DidDocument {
  readonly id: Did;
  /** `at://<handle>` entries. */
  readonly alsoKnownAs: readonly string[];
  /** The `#atproto` verification method, if the document has a usable one. */
  readonly atprotoKey?: AtprotoKey;
  /** The `#atproto_pds` service endpoint. */
  readonly pds?: string;
  /** The `#chat_mls_ds` service endpoint (a DS's document). */
  readonly chatMlsDs?: string;
}

/** A DID that could not be resolved; `kind` as §11.14 classifies resolution failures. */
export class DidResolutionError extends Error {
  override readonly name = "DidResolutionError";
  constructor(readonly kind: FailureKind, detail: string) {
    super(`Resolve: ${detail}`);
  }
}

/** Where and how to resolve. */
export interface ResolverConfig {
  /** The PLC directory, e.g. `https://plc.directory`. */
  readonly plcUrl: string;
  /** Development: fetch did:web of `localhost`/`127.0.0.1` over plain http (§8). */
  readonly allowHttpLoopback?: boolean;
  /** Total time per fetch, ms (default 5000). */
  readonly timeoutMs?: number;
  /** Largest document, bytes (default 64 KiB). */
  readonly maxBytes?: number;
  readonly fetch?: typeof fetch;
}

const PLC_RE = /^did:plc:[a-z2-7]{24}$/;
const WEB_RE = /^did:web:([a-zA-Z0-9.-]+)(%3A[0-9]{1,5})?$/;

function fragmentMatches(id: unknown, did: string, frag: string): boolean {
  return id === `#${frag}` || id === `${did}#${frag}`;
}

/** Parses an `#atproto` key in the Multikey or legacy `EcdsaSecp256{k,r}1VerificationKey2019` form (§8). */
export function parseAtprotoKey(method: J.JsonObject): AtprotoKey | undefined {
  const type = method["type"];
  const mb = method["publicKeyMultibase"];
  if (typeof mb !== "string" || !mb.startsWith("z")) return undefined;
  let raw: Uint8Array;
  try {
    raw = base58btc.decode(mb);
  } catch {
    return undefined;
  }
  if (type === "Multikey") {
    // multicodec varint: secp256k1-pub 0xe7 (e7 01), p256-pub 0x1200 (80 24); then a compressed point.
    if (raw[0] === 0xe7 && raw[1] === 0x01 && raw.length === 35) return { curve: "secp256k1", publicKey: raw.slice(2) };
    if (raw[0] === 0x80 && raw[1] === 0x24 && raw.length === 35) return { curve: "p256", publicKey: raw.slice(2) };
    return undefined;
  }
  const okLength = raw.length === 33 || raw.length === 65;
  if (type === "EcdsaSecp256k1VerificationKey2019" && okLength) return { curve: "secp256k1", publicKey: raw };
  if (type === "EcdsaSecp256r1VerificationKey2019" && okLength) return { curve: "p256", publicKey: raw };
  return undefined;
}

/** Parses a DID document for `did`; its `id` must be `did` (`IdMismatch`). */
export function parseDidDocument(did: Did, value: unknown): DidDocument {
  const o = J.obj(value, "document");
  if (o["id"] !== did) throw new DidResolutionError("permanent", "IdMismatch: the document is for another DID");
  const aka = Array.isArray(o["alsoKnownAs"]) ? o["alsoKnownAs"].filter((x): x is string => typeof x === "string") : [];
  let doc: DidDocument = { id: did, alsoKnownAs: aka };
  const methods = Array.isArray(o["verificationMethod"]) ? o["verificationMethod"] : [];
  for (const m of methods) {
    if (typeof m === "object" && m !== null && fragmentMatches((m as J.JsonObject)["id"], did, "atproto")) {
      const key = parseAtprotoKey(m as J.JsonObject);
      if (key) doc = { ...doc, atprotoKey: key };
      break;
    }
  }
  const services = Array.isArray(o["service"]) ? o["service"] : [];
  for (const s of services) {
    if (typeof s !== "object" || s === null) continue;
    const so = s as J.JsonObject;
    const ep = so["serviceEndpoint"];
    if (typeof ep !== "string" || !/^https?:\/\/[^/?#]+/.test(ep)) continue;
    // The PDS entry must also have its type (as atmls-identity requires); the DS's type is not checked.
    if (fragmentMatches(so["id"], did, "atproto_pds") && so["type"] === "AtprotoPersonalDataServer" && doc.pds === undefined) {
      doc = { ...doc, pds: ep };
    }
    if (fragmentMatches(so["id"], did, "chat_mls_ds") && doc.chatMlsDs === undefined) doc = { ...doc, chatMlsDs: ep };
  }
  return doc;
}

/** The URL a DID document is fetched from (§8 "Resolution"). */
export function didDocumentUrl(did: string, config: ResolverConfig): string {
  if (PLC_RE.test(did)) return `${config.plcUrl.replace(/\/+$/, "")}/${did}`;
  const web = WEB_RE.exec(did);
  if (web) {
    const host = web[1]!.toLowerCase();
    const port = web[2] ? `:${web[2].slice(3)}` : "";
    const loopback = host === "localhost" || host === "127.0.0.1";
    const scheme = loopback && config.allowHttpLoopback ? "http" : "https";
    return `${scheme}://${host}${port}/.well-known/did.json`;
  }
  throw new DidResolutionError("permanent", "UnsupportedDid: only did:plc and did:web are supported");
}

/** Resolves a DID to its document, bounded in time and size; no redirects. */
export async function resolveDid(did: Did, config: ResolverConfig): Promise<DidDocument> {
  const url = didDocumentUrl(did, config);
  const f = config.fetch ?? fetch;
  let resp: Response;
  try {
    resp = await f(url, { signal: AbortSignal.timeout(config.timeoutMs ?? 5000), redirect: "error" });
  } catch {
    throw new DidResolutionError("transient", "the DID document could not be fetched");
  }
  if (!resp.ok) {
    await resp.body?.cancel();
    const kind = resp.status === 410 ? "permanent" : kindOfStatus(resp.status);
    throw new DidResolutionError(kind, resp.status === 410 ? "DID is deactivated or tombstoned" : `status ${resp.status}`);
  }
  const max = config.maxBytes ?? 64 * 1024;
  const declared = Number(resp.headers.get("content-length") ?? "0");
  if (declared > max) throw new DidResolutionError("permanent", "document over the size limit");
  let text: string;
  try {
    const buf = new Uint8Array(await resp.arrayBuffer());
    if (buf.length > max) throw new DidResolutionError("permanent", "document over the size limit");
    text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
  } catch (e) {
    if (e instanceof DidResolutionError) throw e;
    throw new DidResolutionError("transient", "the document could not be read");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DidResolutionError("permanent", "the document is not JSON");
  }
  try {
    return parseDidDocument(did, value);
  } catch (e) {
    if (e instanceof DidResolutionError) throw e;
    throw new DidResolutionError("permanent", "invalid document");
  }
}
