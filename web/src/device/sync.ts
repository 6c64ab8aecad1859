// Reading (docs/spec.md §11.4, §11.8, §11.8.1, §11.9): the inbox — open each sealed welcome,
// fetch an out-of-band tree, join with the checks of §11.16.5, delete the item — and each
// group mailbox from its cursor, envelope by envelope in seq order, one atomic write each.
import type { ClientState } from "ts-mls";
import { groupDataOf, members } from "../mls/state.js";
import { joinFromWelcome } from "../mls/join.js";
import { receive } from "../mls/receive.js";
import { failureKind } from "../net/errors.js";
import type { Envelope } from "../net/lexicon.js";
import { mailboxIdBytes } from "../proto/mailbox-id.js";
import { decodeContent } from "../proto/content.js";
import { openWelcome, type WelcomePlaintext } from "../proto/welcome.js";
import { type Context, digestHex, dsOf, epochKey, groupIds, loadGroup, ownKeyPackages } from "./context.js";
import { withMaterial } from "./material.js";
import { type GroupRecord, type MessageRecord, type OwnKeyPackage, groupOp, hex, kpName, kpOp, messageOp } from "./records.js";
import { deleteOp } from "./storage.js";
import { publishKeyPackages } from "./identity.js";
import { TreeRefused, fetchTree } from "./tree.js";
import type { WriteOp } from "../store/store.js";

/** What one sync did. */
export interface SyncReport {
  /** Groups joined from welcomes (ids). */
  joined: string[];
  /** Joined through the last-resort package: the signature key must be rotated at once (TBD-5). */
  joinedLastResort: string[];
  /** Welcomes refused (reasons). */
  refusedWelcomes: string[];
  /** Welcomes left in the inbox after a transient failure, tried again at the next sync (error names and messages). */
  deferredWelcomes: string[];
  /** Envelopes processed. */
  envelopes: number;
}

const PAGE = 100;
const MAX_PAGES = 100;

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The inbox: join from every welcome that opens, delete what was decided. */
export async function syncInbox(ctx: Context, report: SyncReport): Promise<void> {
  const page = await ctx.ds.listInbox(ctx.device.inbox as never, ctx.inboxKey, { cursor: 0, limit: PAGE });
  const done: number[] = [];
  for (const item of page.items) {
    try {
      const outcome = await acceptWelcome(ctx, item);
      if (outcome.kind === "joined") {
        report.joined.push(outcome.group);
        if (outcome.lastResort) report.joinedLastResort.push(outcome.group);
      } else report.refusedWelcomes.push(outcome.reason);
      done.push(item.seq);
    } catch (e) {
      // Transient (network, a DID that did not resolve now): the item stays for the next sync.
      const what = e instanceof Error ? `${e.name}: ${e.message}` : "failed";
      if (failureKind(e) === "permanent") {
        report.refusedWelcomes.push(what);
        done.push(item.seq);
      } else report.deferredWelcomes.push(what);
    }
  }
  if (done.length > 0) await ctx.ds.deleteInboxItems(ctx.device.inbox as never, ctx.inboxKey, done);
}

type WelcomeOutcome = { kind: "joined"; group: string; lastResort: boolean } | { kind: "refused"; reason: string };

async function openWith(payload: Uint8Array, kps: readonly OwnKeyPackage[]): Promise<{ plaintext: WelcomePlaintext; kp: OwnKeyPackage } | undefined> {
  for (const kp of kps) {
    try {
      return { plaintext: await openWelcome(payload, [{ suite: 1, privateKey: kp.initPrivateKey }]), kp };
    } catch {
      // not this package's
    }
  }
  return undefined;
}

async function acceptWelcome(ctx: Context, item: Envelope): Promise<WelcomeOutcome> {
  const opened = await openWith(item.payload, await ownKeyPackages(ctx));
  if (opened === undefined) return { kind: "refused", reason: "no init key opens it" };
  const { plaintext, kp } = opened;
  let tree: Uint8Array | undefined;
  if (plaintext.ratchetTree !== undefined) {
    try {
      tree = await fetchTree(plaintext.ratchetTree, ctx.config.resolver);
    } catch (e) {
      if (e instanceof TreeRefused) return { kind: "refused", reason: e.message };
      throw e;
    }
  }
  const keyPackage = {
    publicPackage: kp.publicPackage,
    privatePackage: { initPrivateKey: kp.initPrivateKey, hpkePrivateKey: kp.hpkePrivateKey, signaturePrivateKey: ctx.device.kpSignPriv },
  };
  const joined = await withMaterial(ctx.config.resolver, (m) => joinFromWelcome(plaintext.welcome, tree, keyPackage, m));
  if (joined.kind !== "joined") return { kind: "refused", reason: joined.kind === "refused" ? joined.reason : "keys" };
  const data = groupDataOf(joined.state);
  if (data.ds !== plaintext.ds || !equalBytes(data.mailbox, mailboxIdBytes(plaintext.mailbox))) {
    return { kind: "refused", reason: "the welcome's ds or mailbox differs from the group data" };
  }
  const id = hex(joined.state.groupContext.groupId);
  if ((await ctx.storage.list(`group/${id}`)).length > 0) return { kind: "refused", reason: "already a member of this group" };
  const group: GroupRecord = { id, state: joined.state, mailbox: plaintext.mailbox, cursor: plaintext.fromSeq - 1, own: [], removed: false, messageCount: 1 };
  const ops: WriteOp[] = [
    groupOp(group),
    messageOp(id, 0, { kind: "event", text: `joined "${data.name}"`, at: item.receivedAt, seq: plaintext.fromSeq - 1, mine: false }),
  ];
  // A one-time package is spent: its private keys go now, its record is replaced (TBD-4, §11.9).
  if (!kp.lastResort) ops.push(deleteOp(kpName(kp.ref)));
  await ctx.storage.write(ops);
  if (!kp.lastResort && ctx.session !== undefined) {
    try {
      const fresh = await publishKeyPackages(ctx.session, ctx.device, [false], [kp.rkey]);
      await ctx.storage.write(fresh.map(kpOp));
    } catch {
      // The record is replaced at a later join; the private keys are already gone.
    }
  }
  ctx.emit({ kind: "groups" });
  return { kind: "joined", group: id, lastResort: kp.lastResort };
}

/** Reads one group's mailbox from its cursor to its head. */
export async function syncGroup(ctx: Context, id: string, report: SyncReport): Promise<void> {
  let g = await loadGroup(ctx, id);
  if (g.removed) return;
  const ds = await dsOf(ctx, groupDataOf(g.state).ds);
  for (let p = 0; p < MAX_PAGES && !g.removed; p++) {
    const page = await ds.getEnvelopes(g.mailbox as never, await epochKey(g.state), { cursor: g.cursor, limit: PAGE });
    if (page.envelopes.length === 0) break;
    for (const env of page.envelopes) {
      if (env.seq <= g.cursor) continue;
      g = await processEnvelope(ctx, g, env);
      report.envelopes++;
      if (g.removed) break;
    }
    if (g.cursor >= page.headSeq) break;
  }
}

/** Every group then the inbox (the inbox last: a group joined now is read from its fromSeq next time). */
export async function syncAll(ctx: Context): Promise<SyncReport> {
  const report: SyncReport = { joined: [], joinedLastResort: [], refusedWelcomes: [], deferredWelcomes: [], envelopes: 0 };
  await syncInbox(ctx, report);
  for (const id of await groupIds(ctx)) await syncGroup(ctx, id, report);
  return report;
}

function describeCommit(before: ClientState, after: ClientState, ownDid: string, removed: boolean): string {
  if (removed) return "this device was removed from the group";
  const key = (m: { did: string | undefined; deviceId: string | undefined }) => `${m.did ?? "?"} ${m.deviceId ?? "?"}`;
  const was = new Set(members(before).map(key));
  const now = new Set(members(after).map(key));
  const added = [...now].filter((k) => !was.has(k)).map((k) => k.split(" ")[0]);
  const gone = [...was].filter((k) => !now.has(k)).map((k) => k.split(" ")[0]);
  const parts: string[] = [];
  if (added.length > 0) parts.push(`added ${added.map((d) => (d === ownDid ? "a device of yours" : d)).join(", ")}`);
  if (gone.length > 0) parts.push(`removed ${gone.join(", ")}`);
  return parts.length > 0 ? parts.join("; ") : `epoch ${after.groupContext.epoch}`;
}

/** One envelope: decide, then one write of the group (state, cursor) and its new message line. */
export async function processEnvelope(ctx: Context, g: GroupRecord, env: Envelope): Promise<GroupRecord> {
  const digest = await digestHex(env.payload);
  let next: GroupRecord = { ...g, cursor: env.seq };
  let line: MessageRecord | undefined;
  if (g.own.includes(digest)) {
    // Our own payload came back (§11.8): already applied when it was accepted.
  } else if (g.pending !== undefined && g.pending.digest === digest) {
    next = { ...next, state: g.pending.state };
    line = { kind: "event", text: describeCommit(g.state, g.pending.state, ctx.device.did, false), at: env.receivedAt, seq: env.seq, mine: true };
  } else {
    const r = await withMaterial(ctx.config.resolver, (m) => receive(g.state, env.payload, Date.parse(env.receivedAt), m));
    if (r.kind === "application") {
      next = { ...next, state: r.newState };
      const sender = r.sender === undefined ? undefined : members(g.state).find((m) => m.leafIndex === r.sender);
      let text: string;
      let at = env.receivedAt;
      try {
        const content = decodeContent(r.plaintext);
        at = content.sentAt;
        text = content.body.kind === "text" || content.body.kind === "reply" ? content.body.text : (content.fallbackText ?? `[${content.body.kind}]`);
      } catch {
        text = "[a message that is not a valid content object]";
      }
      line = {
        kind: "text",
        text,
        at,
        seq: env.seq,
        mine: false,
        ...(sender?.did === undefined ? {} : { from: sender.did }),
        ...(sender?.deviceId === undefined ? {} : { fromDevice: sender.deviceId }),
      };
    } else if (r.kind === "commit") {
      next = { ...next, state: r.newState, removed: r.removed };
      line = { kind: "event", text: describeCommit(g.state, r.newState, ctx.device.did, r.removed), at: env.receivedAt, seq: env.seq, mine: false };
    } else if (r.kind === "proposal") {
      next = { ...next, state: r.newState };
      line = { kind: "event", text: "a member asks to leave", at: env.receivedAt, seq: env.seq, mine: false };
    } else if (r.kind === "forked") {
      line = { kind: "event", text: "a message of another branch of this epoch (fork, §11.17)", at: env.receivedAt, seq: env.seq, mine: false };
    }
    // refused / stale / behind: skipped (the cursor moves on; a refused commit is not merged).
  }
  if (g.pending !== undefined && (g.pending.digest === digest || env.kind === "commit")) {
    // Our pending commit came back (adopted above), or another commit of its epoch won (§11.8).
    const { pending: _settled, ...rest } = next;
    next = rest;
  }
  const ops: WriteOp[] = [];
  if (line !== undefined) {
    ops.push(messageOp(g.id, next.messageCount, line));
    next = { ...next, messageCount: next.messageCount + 1 };
  }
  ops.unshift(groupOp(next));
  await ctx.storage.write(ops);
  if (line !== undefined) ctx.emit({ kind: "group", group: g.id });
  return next;
}
