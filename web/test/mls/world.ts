// A test world for web/src/mls: accounts with repos held in memory, and key material whose
// record "proofs" are checked against those repos. The CAR verification itself (§3.3
// steps 1–7) is the network layer's; here a proof names the record it proves
// (`did/collection/rkey`) and is accepted only with the DID's current key and only for a
// record that exists in that repo.
import { ed25519 } from "@noble/curves/ed25519.js";
import type { DeviceIdentity } from "../../src/mls/binding.js";
import { deviceKeyPublic } from "../../src/mls/binding.js";
import { type BuiltKeyPackage, type SignatureKeyPair, buildKeyPackage, newSignatureKeyPair } from "../../src/mls/keyPackage.js";
import type { KeyMaterial, RecordVerdict, ResolvedKey } from "../../src/mls/material.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

export class World {
  /** did -> its current repo key (an opaque label here). */
  readonly keys = new Map<string, string>();
  /** "did/collection/rkey" -> record value. */
  readonly records = new Map<string, unknown>();
  private next = 0;

  proof(did: string, collection: string, rkey: string): Uint8Array {
    return enc.encode(`${did}/${collection}/${rkey}`);
  }

  /** The key material of a step naming `dids` (every DID of the world when omitted). */
  material(dids?: readonly string[]): KeyMaterial<string> {
    const keys = new Map<string, ResolvedKey<string>>();
    for (const did of dids ?? [...this.keys.keys()]) {
      const key = this.keys.get(did);
      keys.set(did, key === undefined ? { kind: "refused", reason: "not found" } : { kind: "key", key });
    }
    return {
      keys,
      verifyRecord: async ({ did, collection, rkey, proof, key }): Promise<RecordVerdict> => {
        if (dec.decode(proof) !== `${did}/${collection}/${rkey}`) return { kind: "refused", reason: "Proof" };
        if (this.keys.get(did) !== key) return { kind: "refused", reason: "Signature" };
        const record = this.records.get(`${did}/${collection}/${rkey}`);
        return record === undefined ? { kind: "refused", reason: "Absent" } : { kind: "present", record };
      },
    };
  }

  /** A new account with one device (its device record published). */
  device(name: string): Device {
    const did = `did:plc:${name.padEnd(24, "a").slice(0, 24)}`;
    this.keys.set(did, `key-of-${name}`);
    const deviceId = `dev${(this.next++).toString().padStart(5, "0")}${name}`.slice(0, 16).padEnd(16, "x");
    const seed = ed25519.utils.randomSecretKey();
    this.records.set(`${did}/chat.mls.device/${deviceId}`, {
      $type: "chat.mls.device",
      deviceId,
      deviceKey: deviceKeyPublic(seed),
      createdAt: new Date().toISOString(),
    });
    return new Device(this, { did, deviceId, deviceKeySeed: seed, deviceRecordProof: this.proof(did, "chat.mls.device", deviceId) });
  }

  /** Another device of `of`'s account, with its own device key and record. */
  anotherDevice(of: Device, deviceId: string): Device {
    const seed = ed25519.utils.randomSecretKey();
    this.records.set(`${of.did}/chat.mls.device/${deviceId}`, { $type: "chat.mls.device", deviceId, deviceKey: deviceKeyPublic(seed) });
    return new Device(this, { did: of.did, deviceId, deviceKeySeed: seed, deviceRecordProof: this.proof(of.did, "chat.mls.device", deviceId) });
  }
}

export class Device {
  private rkeys = 0;
  signatureKey: SignatureKeyPair | undefined;

  constructor(
    readonly world: World,
    readonly identity: DeviceIdentity,
  ) {}

  get did(): string {
    return this.identity.did;
  }

  async key(): Promise<SignatureKeyPair> {
    this.signatureKey ??= await newSignatureKeyPair();
    return this.signatureKey;
  }

  /** Builds a KeyPackage and publishes its record; returns it with what an inviter verified. */
  async publish(options: { lastResort?: boolean; identity?: DeviceIdentity } = {}): Promise<Published> {
    const built = await buildKeyPackage({
      device: options.identity ?? this.identity,
      signatureKey: await this.key(),
      lastResort: options.lastResort ?? false,
      now: Date.now(),
    });
    const rkey = `3k${(this.rkeys++).toString().padStart(11, "a")}`;
    this.world.records.set(`${this.did}/chat.mls.keyPackage/${rkey}`, {
      $type: "chat.mls.keyPackage",
      keyPackage: built.message,
      keyPackageRef: built.keyPackageRef,
      ciphersuite: 1,
      deviceId: this.identity.deviceId,
      lastResort: built.lastResort,
      createdAt: new Date(built.createdAt).toISOString(),
      expiresAt: new Date(built.expiresAt).toISOString(),
    });
    return {
      built,
      invitee: {
        keyPackage: built.publicPackage,
        keyPackageRef: built.keyPackageRef,
        rkey,
        proof: this.world.proof(this.did, "chat.mls.keyPackage", rkey),
      },
    };
  }
}

export interface Published {
  readonly built: BuiltKeyPackage;
  readonly invitee: { keyPackage: BuiltKeyPackage["publicPackage"]; keyPackageRef: Uint8Array; rkey: string; proof: Uint8Array };
}
