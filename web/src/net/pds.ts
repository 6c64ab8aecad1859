// The account's PDS (docs/spec.md §3, §8, §13): log in with handle + app password through
// @atproto/api, resolve handles and DIDs, get service-auth tokens for the DS, and put, list
// and delete the device's records. Other accounts' repos are read without a session.
import { AtpAgent, XRPCError } from "@atproto/api";
import { DidResolutionError, resolveDid, type DidDocument, type ResolverConfig } from "./did.js";
import { MalformedAnswerError, NetworkError, XrpcError } from "./errors.js";
import * as J from "./json.js";
import type { Did } from "./json.js";
import * as R from "./repo-records.js";

/** A record as the PDS listed it. */
export interface ListedRecord<T> {
  readonly uri: string;
  readonly rkey: string;
  readonly cid: string;
  readonly value: T;
}

/** Where a written record landed. */
export interface WrittenRecord {
  readonly uri: string;
  readonly cid: string;
}

/** Runs one @atproto/api call and turns its failure into the network layer's typed errors. */
export async function pdsCall<T>(method: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof XRPCError) {
      if (e.status === 1) throw new NetworkError(method, "no answer");
      if (e.status === 2) throw new MalformedAnswerError(method, "the answer breaks its lexicon");
      throw new XrpcError(method, e.status, e.error || `Http${e.status}`, e.message);
    }
    if (e instanceof J.ShapeError) throw new MalformedAnswerError(method, e.message);
    throw new NetworkError(method, e instanceof Error ? e.message : "failed");
  }
}

function rkeyOf(uri: string): string {
  const rkey = uri.split("/").pop();
  if (!rkey) throw new J.ShapeError("uri", "no record key");
  return rkey;
}

/** Lists every record of `collection` in `did`'s repo on `service` (paged), parsing each value. */
async function listAll<T>(agent: AtpAgent, did: string, collection: string, parse: (v: unknown) => T, maxPages = 10): Promise<ListedRecord<T>[]> {
  const out: ListedRecord<T>[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const res = await pdsCall("com.atproto.repo.listRecords", () =>
      agent.com.atproto.repo.listRecords(cursor === undefined ? { repo: did, collection, limit: 100 } : { repo: did, collection, limit: 100, cursor }),
    );
    for (const r of res.data.records) {
      out.push({ uri: r.uri, rkey: rkeyOf(r.uri), cid: r.cid, value: parse(r.value) });
    }
    cursor = res.data.cursor;
    if (cursor === undefined || res.data.records.length === 0) break;
  }
  return out;
}

/** A repo read without a session: another account's PDS (§3.2). */
export class PublicRepo {
  readonly #agent: AtpAgent;

  constructor(readonly pdsUrl: string, readonly did: Did) {
    this.#agent = new AtpAgent({ service: pdsUrl });
  }

  /** `listRecords` of the account's KeyPackage records (a hint: verify each with its proof). */
  listKeyPackages(): Promise<ListedRecord<R.KeyPackageRecord>[]> {
    return listAll(this.#agent, this.did, R.COLLECTION.keyPackage, R.parseKeyPackageRecord);
  }

  /**
   * `com.atproto.repo.getRecord` of `chat.mls.declaration/self`: its URI and CID (a hint:
   * verify with its proof), or undefined when the PDS has no such record.
   */
  async declarationRef(): Promise<{ uri: string; cid: string } | undefined> {
    try {
      const res = await pdsCall("com.atproto.repo.getRecord", () => this.#agent.com.atproto.repo.getRecord({ repo: this.did, collection: R.COLLECTION.declaration, rkey: "self" }));
      if (typeof res.data.cid !== "string") return undefined;
      return { uri: res.data.uri, cid: res.data.cid };
    } catch (e) {
      if (e instanceof XrpcError && (e.error === "RecordNotFound" || e.status === 404)) return undefined;
      throw e;
    }
  }

  /** `com.atproto.sync.getRecord`: the CAR proving `collection/rkey` (inclusion or absence). */
  async recordProof(collection: string, rkey: string): Promise<Uint8Array> {
    const res = await pdsCall("com.atproto.sync.getRecord", () => this.#agent.com.atproto.sync.getRecord({ did: this.did, collection, rkey }));
    return res.data;
  }
}

/** Settings of a session. */
export interface PdsConfig {
  /** How DIDs are resolved (PLC directory, loopback policy). */
  readonly resolver: ResolverConfig;
}

/** A logged-in session on the account's PDS. */
export class PdsSession {
  readonly #agent: AtpAgent;
  readonly did: Did;
  readonly handle: string;
  readonly config: PdsConfig;

  private constructor(agent: AtpAgent, did: Did, handle: string, config: PdsConfig) {
    this.#agent = agent;
    this.did = did;
    this.handle = handle;
    this.config = config;
  }

  /** Logs in with a handle (or DID) and an app password (`com.atproto.server.createSession`). */
  static async login(service: string, identifier: string, password: string, config: PdsConfig): Promise<PdsSession> {
    const agent = new AtpAgent({ service });
    const res = await pdsCall("com.atproto.server.createSession", () => agent.login({ identifier, password }));
    const did = J.did(res.data.did, "output/did");
    return new PdsSession(agent, did, res.data.handle, config);
  }

  /** The PDS's URL. */
  get service(): string {
    return this.#agent.serviceUrl.toString().replace(/\/+$/, "");
  }

  /**
   * Resolves a handle to a DID through the PDS (`com.atproto.identity.resolveHandle`: a browser
   * cannot read other hosts' `/.well-known/atproto-did`), then checks the DID document names the
   * handle back (`alsoKnownAs` has `at://<handle>`).
   */
  async resolveHandle(handle: string): Promise<{ did: Did; document: DidDocument }> {
    const res = await pdsCall("com.atproto.identity.resolveHandle", () => this.#agent.com.atproto.identity.resolveHandle({ handle }));
    const did = J.did(res.data.did, "output/did");
    const document = await resolveDid(did, this.config.resolver);
    if (!document.alsoKnownAs.some((a) => a.toLowerCase() === `at://${handle.toLowerCase()}`)) {
      throw new DidResolutionError("permanent", "the DID document does not name the handle");
    }
    return { did, document };
  }

  /**
   * `com.atproto.server.getServiceAuth` for a DS method: `aud` is the **bare** DS DID (the
   * official PDS refuses a `#fragment`, §13.1), `lxm` the method.
   */
  async serviceAuth(dsDid: Did, lxm: string): Promise<string> {
    const res = await pdsCall("com.atproto.server.getServiceAuth", () => this.#agent.com.atproto.server.getServiceAuth({ aud: dsDid, lxm }));
    return J.str(res.data.token, "output/token", 4096);
  }

  async #put(collection: string, rkey: string, record: Record<string, unknown>): Promise<WrittenRecord> {
    const res = await pdsCall("com.atproto.repo.putRecord", () =>
      this.#agent.com.atproto.repo.putRecord({ repo: this.did, collection, rkey, record }),
    );
    return { uri: res.data.uri, cid: res.data.cid };
  }

  /** Publishes (or replaces) the account's declaration, `chat.mls.declaration/self`. */
  putDeclaration(r: R.DeclarationRecord): Promise<WrittenRecord> {
    return this.#put(R.COLLECTION.declaration, "self", R.declarationJson(r));
  }

  /** Publishes the device record under its device id. */
  putDevice(r: R.DeviceRecord): Promise<WrittenRecord> {
    return this.#put(R.COLLECTION.device, r.deviceId, R.deviceJson(r));
  }

  /**
   * Publishes KeyPackage records in one commit (`applyWrites`, record keys chosen by the PDS)
   * and deletes `replace` in the same commit, so readers never see a half-updated set (§3.1).
   */
  async publishKeyPackages(records: readonly R.KeyPackageRecord[], replace: readonly string[] = []): Promise<WrittenRecord[]> {
    const writes = [
      ...records.map((r) => ({ $type: "com.atproto.repo.applyWrites#create" as const, collection: R.COLLECTION.keyPackage, value: R.keyPackageJson(r) })),
      ...replace.map((rkey) => ({ $type: "com.atproto.repo.applyWrites#delete" as const, collection: R.COLLECTION.keyPackage, rkey })),
    ];
    const res = await pdsCall("com.atproto.repo.applyWrites", () => this.#agent.com.atproto.repo.applyWrites({ repo: this.did, writes }));
    const results = res.data.results ?? [];
    const out: WrittenRecord[] = [];
    for (const r of results) {
      if ("uri" in r && typeof r.uri === "string" && "cid" in r && typeof r.cid === "string") out.push({ uri: r.uri, cid: r.cid });
    }
    if (out.length !== records.length) throw new MalformedAnswerError("com.atproto.repo.applyWrites", "not one result per created record");
    return out;
  }

  /** Deletes one record of the device (a consumed KeyPackage, a retired device). */
  async deleteRecord(collection: string, rkey: string): Promise<void> {
    await pdsCall("com.atproto.repo.deleteRecord", () => this.#agent.com.atproto.repo.deleteRecord({ repo: this.did, collection, rkey }));
  }

  /** The account's own declaration, if any. */
  async declaration(): Promise<R.DeclarationRecord | undefined> {
    try {
      const res = await pdsCall("com.atproto.repo.getRecord", () =>
        this.#agent.com.atproto.repo.getRecord({ repo: this.did, collection: R.COLLECTION.declaration, rkey: "self" }),
      );
      return R.parseDeclaration(res.data.value);
    } catch (e) {
      if (e instanceof XrpcError && (e.error === "RecordNotFound" || e.status === 404)) return undefined;
      throw e;
    }
  }

  /** The account's own KeyPackage records (its own devices' are read from the PDS, §3.2). */
  listKeyPackages(): Promise<ListedRecord<R.KeyPackageRecord>[]> {
    return listAll(this.#agent, this.did, R.COLLECTION.keyPackage, R.parseKeyPackageRecord);
  }

  /** The account's device records. */
  listDevices(): Promise<ListedRecord<R.DeviceRecord>[]> {
    return listAll(this.#agent, this.did, R.COLLECTION.device, R.parseDeviceRecord);
  }
}
