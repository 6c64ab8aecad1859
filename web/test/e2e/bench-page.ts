// The bench page (test/e2e/bench.ts): the device library in Chromium, driven by page.evaluate.
import { Device } from "../../src/device/index.js";
import { PdsSession } from "../../src/net/pds.js";
import { openStore } from "../../src/store/index.js";

let device: Device | undefined;

const bench = {
  /** Log in, become a device, create a group with `withDid`, send a message: the milliseconds of each part. */
  async firstMessage(pds: string, plc: string, handle: string, password: string, withDid: string): Promise<Record<string, number>> {
    const resolver = { plcUrl: plc, allowHttpLoopback: true };
    const t0 = performance.now();
    const session = await PdsSession.login(pds, handle, password, { resolver });
    const t1 = performance.now();
    device = await Device.create(session, await openStore(`bench-${handle}`), { resolver, dsEndpoint: pds, ownDeviceCheckIntervalMs: 1e12 });
    const t2 = performance.now();
    const { id } = await device.createGroup("first", [withDid]);
    const t3 = performance.now();
    await device.send(id, "first message");
    const t4 = performance.now();
    return { login: t1 - t0, device: t2 - t1, group: t3 - t2, send: t4 - t3, total: t4 - t0 };
  },
  /** One sync (the join from a waiting welcome): milliseconds and groups joined. */
  async sync(): Promise<{ ms: number; joined: number; refused: string[] }> {
    const t0 = performance.now();
    const r = await device!.sync();
    return { ms: performance.now() - t0, joined: r.joined.length, refused: [...r.refusedWelcomes, ...r.deferredWelcomes] };
  },
};

(globalThis as unknown as { bench: typeof bench }).bench = bench;
