// The delivery-service client (docs/spec.md §6, §9.4, §10): every `chat.mls.ds.*` method a
// device calls, with typed inputs and answers. Mailbox methods are signed with a mailbox key
// over the exact bytes sent (§10.2); createMailbox carries a service-auth token (§8).
import { MailboxKey, signRequest } from "../proto/request.js";
import { base64Encode } from "./encoding.js";
import * as L from "./lexicon.js";
import { NSID } from "./lexicon.js";
import type { MailboxId } from "./mailbox-id.js";
import type { Did } from "./json.js";
import { buildQuery, parseAnswer, xrpcCall, type XrpcConfig } from "./xrpc.js";

/** Fixes a signature's timestamp and nonce (tests; a real request draws a fresh nonce). */
export interface SignOptions {
  readonly timestampMs?: number;
  readonly nonce?: Uint8Array;
}

/** Paging of `getEnvelopes` and `listInbox`. */
export interface PageOptions {
  /** Envelopes with `seq > cursor` (default 0). */
  readonly cursor?: number;
  /** 1–1000 (default: the DS's, 100). */
  readonly limit?: number;
}

const te = new TextEncoder();

function bytesJson(b: Uint8Array): { $bytes: string } {
  return { $bytes: base64Encode(b) };
}

function outgoingJson(e: L.OutgoingEnvelope): Record<string, unknown> {
  const o: Record<string, unknown> = { kind: e.kind };
  if (e.epoch !== undefined) o["epoch"] = e.epoch;
  o["payload"] = bytesJson(e.payload);
  if (e.nextKey !== undefined) o["nextKey"] = bytesJson(e.nextKey);
  if (e.messageLifetime !== undefined) o["messageLifetime"] = e.messageLifetime;
  return o;
}

/** A client of one delivery service, reached at its `#chat_mls_ds` endpoint (§10.1). */
export class DsClient {
  /** The service endpoint, e.g. `https://ds.example.com`. */
  readonly endpoint: string;
  readonly #config: XrpcConfig;

  constructor(endpoint: string, config: XrpcConfig = {}) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.#config = config;
  }

  async #signed(
    method: string,
    mailbox: MailboxId,
    key: MailboxKey,
    query: string,
    body: Uint8Array | undefined,
    sign: SignOptions,
  ): Promise<unknown> {
    const signed = await signRequest({ key, method, mailbox, content: body ?? query, ...sign });
    return xrpcCall(
      this.endpoint,
      body === undefined ? { method, query, authorization: signed.authorization } : { method, query, body, authorization: signed.authorization },
      this.#config,
    );
  }

  /** `describeServer` (no auth): the DS's DID, protocol version and limits. */
  async describeServer(): Promise<L.ServerDescription> {
    const answer = await xrpcCall(this.endpoint, { method: NSID.describeServer, query: "" }, this.#config);
    return parseAnswer(NSID.describeServer, answer, L.parseServerDescription);
  }

  /** `createMailbox` with a service-auth token from the account's PDS (`lxm` = this method, §8). */
  async createMailbox(input: L.CreateMailboxInput, serviceAuthToken: string): Promise<L.MailboxInfo> {
    const o: Record<string, unknown> = { kind: input.kind, key: bytesJson(input.key) };
    if (input.epoch !== undefined) o["epoch"] = input.epoch;
    const answer = await xrpcCall(
      this.endpoint,
      { method: NSID.createMailbox, query: "", body: te.encode(JSON.stringify(o)), authorization: `Bearer ${serviceAuthToken}` },
      this.#config,
    );
    return parseAnswer(NSID.createMailbox, answer, L.parseMailboxInfo);
  }

  /** `getMailbox` (mailbox key or inbox owner key). */
  async getMailbox(mailbox: MailboxId, key: MailboxKey, sign: SignOptions = {}): Promise<L.MailboxInfo> {
    const query = buildQuery([["mailbox", mailbox]]);
    const answer = await this.#signed(NSID.getMailbox, mailbox, key, query, undefined, sign);
    return parseAnswer(NSID.getMailbox, answer, L.parseMailboxInfo);
  }

  /** `sendEnvelopes` (group mailbox key): a batch accepted whole or not at all. */
  async sendEnvelopes(
    mailbox: MailboxId,
    key: MailboxKey,
    envelopes: readonly L.OutgoingEnvelope[],
    sign: SignOptions = {},
  ): Promise<L.SendResult> {
    const body = te.encode(JSON.stringify({ mailbox, envelopes: envelopes.map(outgoingJson) }));
    const answer = await this.#signed(NSID.sendEnvelopes, mailbox, key, "", body, sign);
    return parseAnswer(NSID.sendEnvelopes, answer, L.parseSendResult);
  }

  /** `getEnvelopes` (mailbox key or owner key): one page after `cursor`. */
  async getEnvelopes(mailbox: MailboxId, key: MailboxKey, page: PageOptions = {}, sign: SignOptions = {}): Promise<L.EnvelopePage> {
    const query = buildQuery([["mailbox", mailbox], ["cursor", page.cursor], ["limit", page.limit]]);
    const answer = await this.#signed(NSID.getEnvelopes, mailbox, key, query, undefined, sign);
    return parseAnswer(NSID.getEnvelopes, answer, L.parseEnvelopePage);
  }

  /** `sendWelcome` (no auth): deposits a sealed welcome; answers its `seq`. */
  async sendWelcome(inbox: MailboxId, payload: Uint8Array): Promise<number> {
    const body = te.encode(JSON.stringify({ inbox, payload: bytesJson(payload) }));
    const answer = await xrpcCall(this.endpoint, { method: NSID.sendWelcome, query: "", body }, this.#config);
    return parseAnswer(NSID.sendWelcome, answer, L.parseSeq);
  }

  /** `listInbox` (owner key). */
  async listInbox(inbox: MailboxId, key: MailboxKey, page: PageOptions = {}, sign: SignOptions = {}): Promise<L.InboxPage> {
    const query = buildQuery([["inbox", inbox], ["cursor", page.cursor], ["limit", page.limit]]);
    const answer = await this.#signed(NSID.listInbox, inbox, key, query, undefined, sign);
    return parseAnswer(NSID.listInbox, answer, L.parseInboxPage);
  }

  /** `deleteInboxItems` (owner key): answers how many of `seqs` still existed. */
  async deleteInboxItems(inbox: MailboxId, key: MailboxKey, seqs: readonly number[], sign: SignOptions = {}): Promise<number> {
    const body = te.encode(JSON.stringify({ inbox, seqs }));
    const answer = await this.#signed(NSID.deleteInboxItems, inbox, key, "", body, sign);
    return parseAnswer(NSID.deleteInboxItems, answer, L.parseDeleted);
  }

  /** `getKeyPackages` (no auth): declarations and KeyPackage records with their proofs, unverified (§3.3). */
  async getKeyPackages(dids: readonly Did[]): Promise<L.DidResult[]> {
    const query = buildQuery(dids.map((d) => ["dids", d] as const));
    const answer = await xrpcCall(this.endpoint, { method: NSID.getKeyPackages, query }, this.#config);
    return parseAnswer(NSID.getKeyPackages, answer, L.parseKeyPackagesOutput);
  }
}
