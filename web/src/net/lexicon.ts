// TypeScript types of the delivery-service lexicons, written by hand from
// lexicons/chat/mls/defs.json and lexicons/chat/mls/ds/*.json (docs/spec.md §4, §6), and the
// parsers that turn an answer into them. Field names and bounds follow the lexicon JSON.
import * as J from "./json.js";
import type { Did } from "./json.js";
import type { MailboxId } from "./mailbox-id.js";

/** The NSIDs a device calls. */
export const NSID = {
  describeServer: "chat.mls.ds.describeServer",
  createMailbox: "chat.mls.ds.createMailbox",
  getMailbox: "chat.mls.ds.getMailbox",
  sendEnvelopes: "chat.mls.ds.sendEnvelopes",
  getEnvelopes: "chat.mls.ds.getEnvelopes",
  subscribeEnvelopes: "chat.mls.ds.subscribeEnvelopes",
  sendWelcome: "chat.mls.ds.sendWelcome",
  listInbox: "chat.mls.ds.listInbox",
  deleteInboxItems: "chat.mls.ds.deleteInboxItems",
  getKeyPackages: "chat.mls.ds.getKeyPackages",
} as const;

/** Most payload bytes an envelope lexicon allows. */
export const MAX_PAYLOAD = 4194304;

/** `chat.mls.defs#envelopeKind` (open set; `maxLength` 32). */
export type EnvelopeKind = "message" | "commit" | "welcome" | (string & {});
/** `kind` of a mailbox (`createMailbox`, `getMailbox`). */
export type MailboxKind = "group" | "inbox" | (string & {});

/** `chat.mls.defs#mailboxRef`. */
export interface MailboxRef {
  readonly service: Did;
  readonly mailbox: MailboxId;
}

/** `chat.mls.defs#envelope`. */
export interface Envelope {
  readonly seq: number;
  readonly kind: EnvelopeKind;
  /** Commits: the epoch it was built on. */
  readonly epoch?: number;
  readonly payload: Uint8Array;
  readonly receivedAt: string;
}

/** `chat.mls.defs#limits`. */
export interface Limits {
  readonly maxEnvelopeBytes: number;
  readonly maxBatchEnvelopes: number;
  readonly maxMailboxesPerAccount: number;
  readonly inboxDepositsPerMinute: number;
  readonly keyGraceSeconds: number;
  readonly requestMaxAgeSeconds: number;
  readonly maxSubscriptionMailboxes: number;
  readonly maxMailboxBytes?: number;
  readonly inboxDepositBytesPerMinute?: number;
  readonly groupRetentionSeconds?: number;
  readonly inboxRetentionSeconds?: number;
}

/** `describeServer` output. */
export interface ServerDescription {
  readonly did: Did;
  readonly protocolVersion: number;
  readonly limits: Limits;
}

/** `createMailbox` input. */
export interface CreateMailboxInput {
  readonly kind: MailboxKind;
  readonly key: Uint8Array;
  readonly epoch?: number;
}

/** `createMailbox` and `getMailbox` output. */
export interface MailboxInfo {
  readonly mailbox: MailboxId;
  readonly kind: MailboxKind;
  readonly epoch?: number;
  readonly seq: number;
  /** `getMailbox` only: the group's message lifetime, seconds. */
  readonly messageLifetime?: number;
}

/** `sendEnvelopes#outgoingEnvelope`. */
export interface OutgoingEnvelope {
  readonly kind: "message" | "commit";
  readonly epoch?: number;
  readonly payload: Uint8Array;
  readonly nextKey?: Uint8Array;
  readonly messageLifetime?: number;
}

/** `sendEnvelopes` output. */
export interface SendResult {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly epoch: number;
}

/** `getEnvelopes` output. */
export interface EnvelopePage {
  readonly envelopes: readonly Envelope[];
  readonly cursor: number;
  readonly headSeq: number;
  /** Absent when read with an ended epoch's key (§9.6.4). */
  readonly epoch?: number;
}

/** `listInbox` output. */
export interface InboxPage {
  readonly items: readonly Envelope[];
  readonly cursor: number;
}

/** `getKeyPackages#provenRecord`. */
export interface ProvenRecord {
  readonly uri: string;
  readonly cid: string;
  /** The CAR of `com.atproto.sync.getRecord`. */
  readonly proof: Uint8Array;
}

/** `getKeyPackages#didResult.status` (open set). */
export type DidStatus = "ok" | "notFound" | "noDeclaration" | "unreachable" | (string & {});

/** `getKeyPackages#didResult`. */
export interface DidResult {
  readonly did: Did;
  readonly status: DidStatus;
  readonly message?: string;
  readonly declaration?: ProvenRecord;
  readonly keyPackages: readonly ProvenRecord[];
}

/** `subscribeEnvelopes` messages (the `message` union) and the error frame. */
export type StreamMessage =
  | { readonly type: "envelope"; readonly mailbox: MailboxId; readonly envelope: Envelope }
  | { readonly type: "heartbeat"; readonly time: string }
  | { readonly type: "info"; readonly name: string; readonly message?: string }
  | { readonly type: "unknown"; readonly t: string }
  | { readonly type: "error"; readonly error: string; readonly message?: string };

// ---- parsers (path-named ShapeError on the first violation) ----

function withOpt<T extends object, K extends string, V>(o: T, key: K, v: V | undefined): T & { [P in K]?: V } {
  return (v === undefined ? o : { ...o, [key]: v }) as T & { [P in K]?: V };
}

/** Parses `chat.mls.defs#envelope` from JSON. */
export function parseEnvelope(v: unknown, path: string): Envelope {
  const o = J.obj(v, path);
  const base = {
    seq: J.int(o["seq"], `${path}/seq`, 1),
    kind: J.str(o["kind"], `${path}/kind`, 32),
    payload: J.bytes(o["payload"], `${path}/payload`, 1, MAX_PAYLOAD),
    receivedAt: J.datetime(o["receivedAt"], `${path}/receivedAt`),
  };
  return withOpt(base, "epoch", J.optInt(o, "epoch", path));
}

export function parseLimits(v: unknown, path: string): Limits {
  const o = J.obj(v, path);
  const p = (k: string, min = 1) => J.int(o[k], `${path}/${k}`, min);
  let out: Limits = {
    maxEnvelopeBytes: p("maxEnvelopeBytes"),
    maxBatchEnvelopes: p("maxBatchEnvelopes"),
    maxMailboxesPerAccount: p("maxMailboxesPerAccount"),
    inboxDepositsPerMinute: p("inboxDepositsPerMinute"),
    keyGraceSeconds: p("keyGraceSeconds", 0),
    requestMaxAgeSeconds: p("requestMaxAgeSeconds"),
    maxSubscriptionMailboxes: p("maxSubscriptionMailboxes"),
  };
  for (const k of ["maxMailboxBytes", "inboxDepositBytesPerMinute", "groupRetentionSeconds", "inboxRetentionSeconds"] as const) {
    out = withOpt(out, k, J.optInt(o, k, path, 1));
  }
  return out;
}

export function parseServerDescription(v: unknown): ServerDescription {
  const o = J.obj(v, "output");
  return {
    did: J.did(o["did"], "output/did"),
    protocolVersion: J.int(o["protocolVersion"], "output/protocolVersion", 1),
    limits: parseLimits(o["limits"], "output/limits"),
  };
}

export function parseMailboxInfo(v: unknown): MailboxInfo {
  const o = J.obj(v, "output");
  const base = {
    mailbox: J.mailboxId(o["mailbox"], "output/mailbox"),
    kind: J.str(o["kind"], "output/kind", 32),
    seq: J.int(o["seq"], "output/seq"),
  };
  return withOpt(
    withOpt(base, "epoch", J.optInt(o, "epoch", "output")),
    "messageLifetime",
    J.optInt(o, "messageLifetime", "output", 60, 31536000),
  );
}

export function parseSendResult(v: unknown): SendResult {
  const o = J.obj(v, "output");
  return {
    firstSeq: J.int(o["firstSeq"], "output/firstSeq", 1),
    lastSeq: J.int(o["lastSeq"], "output/lastSeq", 1),
    epoch: J.int(o["epoch"], "output/epoch"),
  };
}

export function parseEnvelopePage(v: unknown): EnvelopePage {
  const o = J.obj(v, "output");
  const base = {
    envelopes: J.arr(o["envelopes"], "output/envelopes").map((e, i) => parseEnvelope(e, `output/envelopes/${i}`)),
    cursor: J.int(o["cursor"], "output/cursor"),
    headSeq: J.int(o["headSeq"], "output/headSeq"),
  };
  return withOpt(base, "epoch", J.optInt(o, "epoch", "output"));
}

export function parseInboxPage(v: unknown): InboxPage {
  const o = J.obj(v, "output");
  return {
    items: J.arr(o["items"], "output/items").map((e, i) => parseEnvelope(e, `output/items/${i}`)),
    cursor: J.int(o["cursor"], "output/cursor"),
  };
}

export function parseSeq(v: unknown): number {
  return J.int(J.obj(v, "output")["seq"], "output/seq", 1);
}

export function parseDeleted(v: unknown): number {
  return J.int(J.obj(v, "output")["deleted"], "output/deleted");
}

function parseProvenRecord(v: unknown, path: string): ProvenRecord {
  const o = J.obj(v, path);
  return {
    uri: J.str(o["uri"], `${path}/uri`, 8192),
    cid: J.str(o["cid"], `${path}/cid`, 256),
    proof: J.bytes(o["proof"], `${path}/proof`, 1, 65536),
  };
}

export function parseKeyPackagesOutput(v: unknown): DidResult[] {
  const o = J.obj(v, "output");
  return J.arr(o["results"], "output/results").map((r, i) => {
    const path = `output/results/${i}`;
    const ro = J.obj(r, path);
    let out: DidResult = {
      did: J.did(ro["did"], `${path}/did`),
      status: J.str(ro["status"], `${path}/status`, 64),
      keyPackages: J.arr(ro["keyPackages"], `${path}/keyPackages`, 100).map((k, j) =>
        parseProvenRecord(k, `${path}/keyPackages/${j}`),
      ),
    };
    if (ro["message"] !== undefined) out = { ...out, message: J.str(ro["message"], `${path}/message`, 1024) };
    if (ro["declaration"] !== undefined) out = { ...out, declaration: parseProvenRecord(ro["declaration"], `${path}/declaration`) };
    return out;
  });
}
