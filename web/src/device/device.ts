// A browser device of an atmls account (docs/spec.md §11): created once for a logged-in
// account or reopened from its stored state; reads (sync) and changes (commits, messages) run
// one at a time; live updates come from the DS subscription and trigger a sync.
import { groupDataOf, members, ownLeafIndex, type Member } from "../mls/state.js";
import { isAdmin } from "../mls/groupData.js";
import { DsClient } from "../net/ds.js";
import type { PdsSession } from "../net/pds.js";
import { RevTracker } from "../net/proof/verify.js";
import { EnvelopeSubscription, type SubscribedMailbox } from "../net/subscribe.js";
import type { MailboxId } from "../net/mailbox-id.js";
import { MailboxKey } from "../proto/request.js";
import * as C from "./commits.js";
import { type Context, type DeviceConfig, type DeviceEvent, epochKey, groupIds, loadDevice, loadGroup } from "./context.js";
import { type SetupOptions, becomeDevice } from "./identity.js";
import { type DeviceState, type MessageRecord, deviceOp, kpOp, parseMessage } from "./records.js";
import { type DeviceStorage, readValue } from "./storage.js";
import { type SyncReport, syncAll } from "./sync.js";

/** A group as a page shows it. */
export interface GroupSummary {
  readonly id: string;
  readonly name: string;
  readonly epoch: bigint;
  readonly members: readonly Member[];
  readonly admins: readonly string[];
  readonly isAdmin: boolean;
  readonly removed: boolean;
}

/** The stored device belongs to another account than the session's. */
export class OtherAccount extends Error {
  override readonly name = "OtherAccount";
}

/** A device: its context, an operation queue, the live subscription. */
export class Device {
  readonly #ctx: Context;
  #queue: Promise<unknown> = Promise.resolve();
  #listeners = new Set<(e: DeviceEvent) => void>();
  #live: EnvelopeSubscription | undefined;
  #liveKeys = "";
  #liveTimer: ReturnType<typeof setTimeout> | undefined;
  #liveOn = false;

  private constructor(storage: DeviceStorage, config: DeviceConfig, device: DeviceState, session: PdsSession | undefined, ds: DsClient, limits: Context["limits"]) {
    this.#ctx = {
      storage,
      config,
      device,
      session,
      ds,
      inboxKey: MailboxKey.fromSeed(device.inboxSeed),
      limits,
      revs: new RevTracker(),
      dsClients: new Map(),
      emit: (e) => this.#emit(e),
    };
  }

  /** Makes this browser a new device of the session's account and stores it (one write). */
  static async create(session: PdsSession, storage: DeviceStorage, config: DeviceConfig & Omit<SetupOptions, "resolver">): Promise<Device> {
    const { device, keyPackages } = await becomeDevice(session, { resolver: config.resolver, dsEndpoint: config.dsEndpoint });
    await storage.write([deviceOp(device), ...keyPackages.map(kpOp)]);
    return Device.#start(storage, config, device, session);
  }

  /** Reopens the stored device (undefined if none); `session` enables what needs the PDS. */
  static async open(storage: DeviceStorage, config: DeviceConfig, session?: PdsSession): Promise<Device | undefined> {
    const device = await loadDevice(storage);
    if (device === undefined) return undefined;
    if (session !== undefined && session.did !== device.did) throw new OtherAccount("the stored device is of another account");
    return Device.#start(storage, config, device, session);
  }

  static async #start(storage: DeviceStorage, config: DeviceConfig, device: DeviceState, session: PdsSession | undefined): Promise<Device> {
    const ds = new DsClient(device.dsEndpoint);
    const described = await ds.describeServer();
    return new Device(storage, config, device, session, ds, described.limits);
  }

  /** The account's DID, handle, and this device's id. */
  get identity(): { did: string; handle: string; deviceId: string } {
    return { did: this.#ctx.device.did, handle: this.#ctx.device.handle, deviceId: this.#ctx.device.deviceId };
  }

  /** Gives the device a (new) PDS session, e.g. after a reload. */
  setSession(session: PdsSession): void {
    if (session.did !== this.#ctx.device.did) throw new OtherAccount("the session is of another account");
    this.#ctx.session = session;
  }

  get hasSession(): boolean {
    return this.#ctx.session !== undefined;
  }

  /** Calls `f` on every change. */
  subscribe(f: (e: DeviceEvent) => void): () => void {
    this.#listeners.add(f);
    return () => this.#listeners.delete(f);
  }

  #emit(e: DeviceEvent): void {
    for (const f of this.#listeners) {
      try {
        f(e);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /** Runs operations one at a time, in call order. */
  #run<T>(op: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(op, op);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** The groups, by name. */
  async groups(): Promise<GroupSummary[]> {
    const out: GroupSummary[] = [];
    for (const id of await groupIds(this.#ctx)) {
      const g = await loadGroup(this.#ctx, id);
      const data = groupDataOf(g.state);
      out.push({
        id,
        name: data.name,
        epoch: g.state.groupContext.epoch,
        members: members(g.state),
        admins: data.admins,
        isAdmin: isAdmin(data, this.#ctx.device.did),
        removed: g.removed,
      });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** A group's lines, in order. */
  async messages(id: string): Promise<MessageRecord[]> {
    const out: MessageRecord[] = [];
    for (const name of await this.#ctx.storage.list(`msg/${id}/`)) {
      const m = await readValue(this.#ctx.storage, name, parseMessage);
      if (m !== undefined) out.push(m);
    }
    return out;
  }

  /**
   * Reads the inbox and every group; then the duties: rotate after a last-resort join (TBD-5),
   * commit a member's leave (admins), add the account's other devices (§11.10, at most every
   * `ownDeviceCheckIntervalMs`).
   */
  sync(): Promise<SyncReport> {
    return this.#run(async () => {
      const ctx = this.#ctx;
      const report = await syncAll(ctx);
      for (const id of report.joinedLastResort) await C.rotateKey(ctx, id).catch(() => undefined);
      for (const id of await groupIds(ctx)) {
        const g = await loadGroup(ctx, id);
        if (!g.removed && Object.keys(g.state.unappliedProposals).length > 0 && isAdmin(groupDataOf(g.state), ctx.device.did)) {
          await C.commitPending(ctx, id).catch(() => undefined);
        }
      }
      const interval = ctx.config.ownDeviceCheckIntervalMs ?? 300_000;
      if (Date.now() - ctx.device.ownDevicesCheckedAt >= interval) {
        await C.addOwnDevices(ctx, await groupIds(ctx));
        ctx.device = { ...ctx.device, ownDevicesCheckedAt: Date.now() };
        await ctx.storage.write([deviceOp(ctx.device)]);
      }
      if (this.#liveOn) await this.#refreshLive();
      return report;
    });
  }

  /** Sends a text message. */
  send(id: string, text: string): Promise<void> {
    return this.#run(() => C.sendText(this.#ctx, id, text));
  }

  /** Creates a group with these accounts (DIDs). */
  createGroup(name: string, dids: readonly string[]): Promise<{ id: string; added: C.Committed }> {
    return this.#run(async () => {
      const out = await C.createGroup(this.#ctx, name, dids);
      if (this.#liveOn) await this.#refreshLive();
      return out;
    });
  }

  /** Adds every device of these accounts. */
  add(id: string, dids: readonly string[]): Promise<C.Committed> {
    return this.#run(() => C.addAccounts(this.#ctx, id, dids));
  }

  /** Removes every device of these accounts. */
  remove(id: string, dids: readonly string[]): Promise<C.Committed> {
    return this.#run(() => C.removeFromGroup(this.#ctx, id, dids));
  }

  /** Rotates this device's leaf signature key in a group (a self-update, TBD-5, §11.16.6). */
  rotate(id: string): Promise<C.Committed> {
    return this.#run(() => C.rotateKey(this.#ctx, id));
  }

  /** Asks the admins to remove this device. */
  leave(id: string): Promise<void> {
    return this.#run(() => C.leaveGroup(this.#ctx, id));
  }

  /** The current leaf index of this device in a group (tests, the page). */
  async ownLeaf(id: string): Promise<number> {
    return ownLeafIndex((await loadGroup(this.#ctx, id)).state);
  }

  /** Starts live updates: the subscription wakes a sync for every envelope (and the inbox). */
  async startLive(): Promise<void> {
    this.#liveOn = true;
    await this.#run(() => this.#refreshLive());
  }

  /** Stops live updates. */
  stopLive(): void {
    this.#liveOn = false;
    this.#live?.close();
    this.#live = undefined;
    this.#liveKeys = "";
    if (this.#liveTimer !== undefined) clearTimeout(this.#liveTimer);
  }

  async #refreshLive(): Promise<void> {
    const ctx = this.#ctx;
    const boxes: SubscribedMailbox[] = [{ mailbox: ctx.device.inbox as MailboxId, key: ctx.inboxKey }];
    for (const id of await groupIds(ctx)) {
      const g = await loadGroup(ctx, id);
      if (g.removed || groupDataOf(g.state).ds !== ctx.device.dsDid) continue;
      boxes.push({ mailbox: g.mailbox as MailboxId, key: await epochKey(g.state), cursor: g.cursor });
    }
    const keys = boxes.map((b) => `${b.mailbox}:${Array.from(b.key.publicKey).join(",")}`).join(";");
    if (keys === this.#liveKeys && this.#live !== undefined) return;
    this.#live?.close();
    this.#liveKeys = keys;
    const wake = () => {
      if (this.#liveTimer !== undefined) return;
      this.#liveTimer = setTimeout(() => {
        this.#liveTimer = undefined;
        this.sync().catch(() => undefined);
      }, 30);
    };
    this.#live = new EnvelopeSubscription(ctx.ds.endpoint, boxes.slice(0, 100), {
      envelope: wake,
      open: () => this.#emit({ kind: "live", connected: true }),
      failure: (_e, retrying) => {
        this.#emit({ kind: "live", connected: false });
        if (!retrying) {
          this.#liveKeys = "";
          wake();
        }
      },
    });
    this.#live.start();
  }
}
