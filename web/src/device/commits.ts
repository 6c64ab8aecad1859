// Changing groups (docs/spec.md §11.2–§11.4, §11.8, §11.9, §11.10, TBD-5): every change is an
// intent rebuilt on the current epoch until the DS accepts it (EpochConflict → read what is
// new, rebuild, retry; bounded), then the welcomes are sealed and sent, one per new device.
import type { ClientState } from "ts-mls";
import { NothingToDo } from "../mls/errors.js";
import { type PendingCommit, addMembers, removeAccounts, rotateSignatureKey, selfUpdate, setMailbox } from "../mls/commit.js";
import { createGroup as mlsCreateGroup } from "../mls/create.js";
import { newSignatureKeyPair } from "../mls/keyPackage.js";
import { proposeLeave, sendMessage } from "../mls/message.js";
import { groupDataOf, members, ownLeafIndex } from "../mls/state.js";
import { EpochConflictError, NetworkError, XrpcError } from "../net/errors.js";
import type { Did } from "../net/json.js";
import { NSID } from "../net/lexicon.js";
import type { MailboxId } from "../proto/mailbox-id.js";
import { mailboxIdBytes } from "../proto/mailbox-id.js";
import { mailboxKeyPair } from "../proto/mailbox-key.js";
import { encodeContent } from "../proto/content.js";
import { newMessageId } from "../proto/lexicon-strings.js";
import { pad } from "../proto/padding.js";
import { sealWelcome } from "../proto/welcome.js";
import { type Context, digestHex, dsOf, epochKey, loadGroup, sessionOf } from "./context.js";
import { identityOf } from "./identity.js";
import { type Candidate, gatherCandidates } from "./invite.js";
import { type GroupRecord, groupOp, hex, messageOp, usedName } from "./records.js";
import { putOp } from "./storage.js";
import { type SyncReport, syncGroup } from "./sync.js";
import type { WriteOp } from "../store/store.js";

/** An intent that could not be committed in the allowed attempts (§11.8). */
export class CommitFailed extends Error {
  override readonly name = "CommitFailed";
}

/** A welcome that could not be delivered (§11.4): the device is a member that cannot read. */
export interface Undelivered {
  readonly did: string;
  readonly reason: string;
}

/** The outcome of an intent. */
export type Committed =
  | { readonly kind: "accepted"; readonly seq: number; readonly attempts: number; readonly undelivered: Undelivered[] }
  /** Nothing left to do on the current epoch (e.g. the devices are already in). */
  | { readonly kind: "unchanged" };

/** A commit to send and the devices it adds. */
interface Built {
  readonly pending: PendingCommit;
  readonly invitees: readonly Candidate[];
  readonly describe: string;
}

const newReport = (): SyncReport => ({ joined: [], joinedLastResort: [], refusedWelcomes: [], deferredWelcomes: [], envelopes: 0 });

/**
 * Builds `intent` on the group's epoch and sends it until accepted (at most
 * `maxCommitAttempts`); `intent` answers undefined (or throws NothingToDo) when nothing is left.
 */
export async function commitIntent(ctx: Context, id: string, intent: (g: GroupRecord) => Promise<Built | undefined>): Promise<Committed> {
  const max = ctx.config.maxCommitAttempts ?? 16;
  for (let attempt = 1; attempt <= max; attempt++) {
    const g = await loadGroup(ctx, id);
    if (g.removed) throw new CommitFailed("this device is no longer in the group");
    let built: Built | undefined;
    try {
      built = await intent(g);
    } catch (e) {
      if (e instanceof NothingToDo) return { kind: "unchanged" };
      throw e;
    }
    if (built === undefined) return { kind: "unchanged" };
    const result = await sendCommit(ctx, g, built);
    if (result === "conflict") {
      await syncGroup(ctx, id, newReport());
      continue;
    }
    return { kind: "accepted", seq: result.seq, attempts: attempt, undelivered: await sendWelcomes(ctx, g, built, result.seq) };
  }
  throw new CommitFailed(`not accepted after ${max} attempts`);
}

async function sendCommit(ctx: Context, g: GroupRecord, built: Built): Promise<{ seq: number } | "conflict"> {
  const payload = pad(built.pending.message, ctx.limits.maxEnvelopeBytes);
  const digest = await digestHex(payload);
  // Recorded before sending: an unknown outcome is settled when the mailbox is read (§11.8).
  const used: WriteOp[] = built.invitees.filter((c) => !c.lastResort).map((c) => putOp(usedName(c.keyPackageRef), { expiresAt: c.expiresAt }));
  await ctx.storage.write([groupOp({ ...g, pending: { digest, state: built.pending.newState } }), ...used]);
  const ds = await dsOf(ctx, groupDataOf(g.state).ds);
  let seq: number;
  try {
    const res = await ds.sendEnvelopes(g.mailbox as never, await epochKey(g.state), [
      { kind: "commit", epoch: Number(built.pending.epoch), payload, nextKey: mailboxKeyPair(built.pending.nextMailboxSeed).publicKey },
    ]);
    seq = res.firstSeq;
  } catch (e) {
    if (e instanceof EpochConflictError || (e instanceof XrpcError && e.error === "KeyExpired")) {
      await ctx.storage.write([groupOp(g)]);
      return "conflict";
    }
    if (!(e instanceof NetworkError)) await ctx.storage.write([groupOp(g)]);
    throw e;
  }
  const next: GroupRecord = { ...g, state: built.pending.newState, own: [...g.own, digest], messageCount: g.messageCount + 1 };
  await ctx.storage.write([
    groupOp(next),
    messageOp(g.id, g.messageCount, { kind: "event", text: built.describe, at: new Date().toISOString(), seq, mine: true }),
  ]);
  ctx.emit({ kind: "group", group: g.id });
  return { seq };
}

async function sendWelcomes(ctx: Context, g: GroupRecord, built: Built, seq: number): Promise<Undelivered[]> {
  const welcome = built.pending.welcome;
  const undelivered: Undelivered[] = [];
  if (welcome === undefined) return undelivered;
  const data = groupDataOf(built.pending.newState);
  for (const c of built.invitees) {
    try {
      const sealed = await sealWelcome(
        { ds: data.ds, fromSeq: seq + 1, mailbox: g.mailbox as MailboxId, welcome: welcome.message },
        1,
        c.keyPackage.initKey,
      );
      const ds = await dsOf(ctx, c.inbox.service);
      await ds.sendWelcome(c.inbox.mailbox, pad(sealed, ctx.limits.maxEnvelopeBytes));
    } catch (e) {
      undelivered.push({ did: c.did, reason: e instanceof Error ? e.name : "failed" });
    }
  }
  return undelivered;
}

/** The devices of `dids` not yet in the group (this device excepted), verified and chosen. */
async function addIntent(ctx: Context, g: GroupRecord, dids: readonly string[], describe: string): Promise<Built | undefined> {
  const present = new Set(members(g.state).map((m) => `${m.did ?? ""} ${m.deviceId ?? ""}`));
  const used = new Set((await ctx.storage.list("used/")).map((n) => n.slice("used/".length)));
  const { candidates } = await gatherCandidates({
    ds: ctx.ds,
    dids,
    resolver: ctx.config.resolver,
    revs: ctx.revs,
    used,
    own: ctx.device.did,
    wanted: (did, deviceId) => !present.has(`${did} ${deviceId}`) && !(did === ctx.device.did && deviceId === ctx.device.deviceId),
  });
  if (candidates.length === 0) return undefined;
  // Inline tree unless the sealed welcome could exceed the DS's limit (§11.4); this device
  // does not upload out-of-band trees: a welcome that does not fit is refused here.
  const pending = await addMembers(g.state, candidates, { ratchetTreeInline: true });
  return { pending, invitees: candidates, describe };
}

/** Adds every device of these accounts (§11.9 gathering, §11.13 proofs). */
export function addAccounts(ctx: Context, id: string, dids: readonly string[]): Promise<Committed> {
  return commitIntent(ctx, id, (g) => addIntent(ctx, g, dids, `added ${dids.join(", ")}`));
}

/** Removes every device of these accounts (admins; or one's own account's other devices). */
export function removeFromGroup(ctx: Context, id: string, dids: readonly string[]): Promise<Committed> {
  return commitIntent(ctx, id, async (g) => ({ pending: await removeAccounts(g.state, dids), invitees: [], describe: `removed ${dids.join(", ")}` }));
}

/** Commits pending proposals (a member's leave) with an update of this leaf (admins, §11.2). */
export function commitPending(ctx: Context, id: string): Promise<Committed> {
  return commitIntent(ctx, id, async (g) =>
    Object.keys(g.state.unappliedProposals).length === 0 ? undefined : { pending: await selfUpdate(g.state), invitees: [], describe: "committed a leave" },
  );
}

/** Rotates this leaf's signature key (TBD-5: at once after joining through the last-resort package). */
export function rotateKey(ctx: Context, id: string): Promise<Committed> {
  return commitIntent(ctx, id, async (g) => ({
    pending: await rotateSignatureKey(g.state, identityOf(ctx.device), await newSignatureKeyPair()),
    invitees: [],
    describe: "rotated this device's signature key",
  }));
}

/**
 * §11.10: every verified device of this account that is not in a group is added to it.
 * Answers how many groups changed.
 */
export async function addOwnDevices(ctx: Context, ids: readonly string[]): Promise<number> {
  let changed = 0;
  for (const id of ids) {
    const g = await loadGroup(ctx, id);
    if (g.removed) continue;
    const out = await commitIntent(ctx, id, (gr) => addIntent(ctx, gr, [ctx.device.did], "added a device of yours"));
    if (out.kind === "accepted") changed++;
  }
  return changed;
}

/** Creates a group on this device's DS (§11.3), then adds the accounts. */
export async function createGroup(ctx: Context, name: string, dids: readonly string[]): Promise<{ id: string; added: Committed }> {
  const session = sessionOf(ctx);
  const created = await mlsCreateGroup({
    device: identityOf(ctx.device),
    signatureKey: await newSignatureKeyPair(),
    ds: ctx.device.dsDid,
    name,
    now: Date.now(),
  });
  const key0 = mailboxKeyPair(created.mailboxSeed);
  const token = await session.serviceAuth(ctx.device.dsDid as Did, NSID.createMailbox);
  const mailbox = await ctx.ds.createMailbox({ kind: "group", key: key0.publicKey, epoch: 0 }, token);
  const id = hex(created.state.groupContext.groupId);
  const first: GroupRecord = { id, state: created.state, mailbox: mailbox.mailbox, cursor: 0, own: [], removed: false, messageCount: 0 };
  await ctx.storage.write([groupOp(first)]);
  const set = await commitIntent(ctx, id, async (g) =>
    g.state.groupContext.epoch === 0n
      ? { pending: await setMailbox(g.state, mailboxIdBytes(g.mailbox as MailboxId)), invitees: [], describe: `created "${name}"` }
      : undefined,
  );
  if (set.kind !== "accepted") throw new CommitFailed("the group's first commit was not accepted");
  ctx.emit({ kind: "groups" });
  const added = dids.length === 0 ? ({ kind: "unchanged" } as const) : await addAccounts(ctx, id, dids);
  return { id, added };
}

async function sendPayload(ctx: Context, g: GroupRecord, built: { message: Uint8Array; newState: ClientState }, line: string | undefined): Promise<void> {
  const payload = pad(built.message, ctx.limits.maxEnvelopeBytes);
  const digest = await digestHex(payload);
  // The advanced ratchet is kept before sending, so a generation is never used twice.
  const next: GroupRecord = { ...g, state: built.newState, own: [...g.own, digest], messageCount: g.messageCount + (line === undefined ? 0 : 1) };
  const ops: WriteOp[] = [groupOp(next)];
  if (line !== undefined) ops.push(messageOp(g.id, g.messageCount, { kind: "text", text: line, at: new Date().toISOString(), seq: 0, mine: true, from: ctx.device.did, fromDevice: ctx.device.deviceId }));
  await ctx.storage.write(ops);
  ctx.emit({ kind: "group", group: g.id });
  const ds = await dsOf(ctx, groupDataOf(g.state).ds);
  await ds.sendEnvelopes(g.mailbox as never, await epochKey(g.state), [{ kind: "message", payload }]);
}

/** Sends a text message (a `chat.mls.content` object, §5, §11.6) in the group's current epoch. */
export async function sendText(ctx: Context, id: string, text: string): Promise<void> {
  await syncGroup(ctx, id, newReport());
  const g = await loadGroup(ctx, id);
  if (g.removed) throw new CommitFailed("this device is no longer in the group");
  const plaintext = encodeContent({ id: newMessageId(), sentAt: new Date().toISOString(), body: { kind: "text", text } });
  await sendPayload(ctx, g, await sendMessage(g.state, plaintext), text);
}

/** Asks to leave: a Remove proposal of this leaf, committed by an admin (§11.2). */
export async function leaveGroup(ctx: Context, id: string): Promise<void> {
  await syncGroup(ctx, id, newReport());
  const g = await loadGroup(ctx, id);
  const own = members(g.state).find((m) => m.leafIndex === ownLeafIndex(g.state));
  if (own === undefined) throw new CommitFailed("no own leaf");
  await sendPayload(ctx, g, await proposeLeave(g.state), undefined);
}
