// The MLS content of a chat.mls.keyPackage record (docs/spec.md §3.3 step 8, §11.1, §11.9):
// the KeyPackage bytes are the canonical encoding of one MLSMessage (mls_key_package) and
// agree with the record and the account: cipher suite, KeyPackageRef, BasicCredential
// identity = DID, the capabilities groups require (0xF0A7, proposal 0xF0A8), both
// signatures; and, as writers must make them (records.json), application_id = deviceId and
// last_resort iff lastResort, listed in the capabilities. The repo proof (steps 1-7), expiry
// and the device binding (step 9) are checked elsewhere.
import {
  type CiphersuiteImpl,
  type KeyPackage,
  ciphersuites,
  decodeMlsMessage,
  encodeMlsMessage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
} from "ts-mls";
import { makeKeyPackageRef, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import { extensionTypeToNumber } from "ts-mls/extension.js";
import { equal, utf8, vl } from "./bytes.js";
import type { KeyPackageRecord } from "./records.js";
import { SUITE_X25519_AES128GCM, UnsupportedSuiteError } from "./sealed.js";

/** The application_id leaf extension (RFC 9420 §5.3.3). */
export const APPLICATION_ID = 0x0001;
/** The last_resort KeyPackage extension (RFC 9420 §17.3). */
export const LAST_RESORT = 0x000a;
/** The group data extension, which every member's capabilities list (§11.2). */
export const GROUP_DATA = 0xf0a7;
/** The leaf-proofs proposal, which every member's capabilities list (§11.13). */
export const LEAF_PROOFS = 0xf0a8;

/** Why a KeyPackage record's content was refused (named as in spec §11.9). */
export type KeyPackageRefusalReason =
  | "Malformed"
  | "Invalid"
  | "RefMismatch"
  | "WrongIdentity"
  | "Ciphersuite"
  | "DeviceIdMismatch"
  | "LastResortMismatch"
  | "MissingCapability";

/** A KeyPackage record whose content does not hold. */
export class KeyPackageRefusal extends Error {
  override readonly name = "KeyPackageRefusal";
  constructor(readonly reason: KeyPackageRefusalReason, message: string) {
    super(`${reason}: ${message}`);
  }
}

/**
 * The application_id extension data of a device id: the ApplicationId struct of RFC 9420
 * §5.3.3, i.e. the id's UTF-8 bytes with their variable-length prefix.
 */
export function applicationIdData(deviceId: string): Uint8Array {
  return vl(utf8(deviceId));
}

/** The ts-mls implementation of an MLS cipher suite this device implements (0x0001 only). */
export async function suiteImpl(suite: number): Promise<CiphersuiteImpl> {
  if (suite !== SUITE_X25519_AES128GCM) throw new UnsupportedSuiteError(suite);
  return getCiphersuiteImpl(getCiphersuiteFromName("MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"));
}

/** Checks a parsed KeyPackage record's KeyPackage against the record and `did`; returns it. */
export async function readKeyPackage(record: KeyPackageRecord, did: string): Promise<KeyPackage> {
  let cs: CiphersuiteImpl;
  try {
    cs = await suiteImpl(record.ciphersuite);
  } catch (e) {
    throw new KeyPackageRefusal("Ciphersuite", e instanceof Error ? e.message : "unsupported");
  }
  let decoded: ReturnType<typeof decodeMlsMessage>;
  try {
    decoded = decodeMlsMessage(record.keyPackage, 0);
  } catch {
    decoded = undefined;
  }
  if (decoded === undefined || decoded[1] !== record.keyPackage.length) throw new KeyPackageRefusal("Malformed", "not one MLSMessage");
  const [message] = decoded;
  if (message.version !== "mls10" || message.wireformat !== "mls_key_package") {
    throw new KeyPackageRefusal("Malformed", "not an mls10 KeyPackage message");
  }
  // Members compare the record's bytes with the KeyPackage as a commit carries it (§11.13).
  if (!equal(encodeMlsMessage(message), record.keyPackage)) throw new KeyPackageRefusal("Malformed", "not the canonical encoding");
  const kp = message.keyPackage;
  if (kp.version !== "mls10") throw new KeyPackageRefusal("Malformed", "not an mls10 KeyPackage");
  if (ciphersuites[kp.cipherSuite] !== record.ciphersuite) throw new KeyPackageRefusal("Ciphersuite", "differs from the record's");
  if (!equal(await makeKeyPackageRef(kp, cs.hash), record.keyPackageRef)) {
    throw new KeyPackageRefusal("RefMismatch", "keyPackageRef is not the KeyPackage's reference");
  }
  const leaf = kp.leafNode;
  if (leaf.credential.credentialType !== "basic" || !equal(leaf.credential.identity, utf8(did))) {
    throw new KeyPackageRefusal("WrongIdentity", "the credential is not a BasicCredential of the DID");
  }
  const appId = leaf.extensions.filter((e) => extensionTypeToNumber(e.extensionType) === APPLICATION_ID);
  if (appId.length !== 1 || !equal(appId[0]?.extensionData ?? new Uint8Array(0), applicationIdData(record.deviceId))) {
    throw new KeyPackageRefusal("DeviceIdMismatch", "the leaf's application_id is not the record's deviceId");
  }
  const lastResort = kp.extensions.some((e) => extensionTypeToNumber(e.extensionType) === LAST_RESORT);
  if (lastResort !== record.lastResort) throw new KeyPackageRefusal("LastResortMismatch", "last_resort and lastResort differ");
  const caps = leaf.capabilities;
  if (!caps.extensions.includes(GROUP_DATA) || !caps.proposals.includes(LEAF_PROOFS)) {
    throw new KeyPackageRefusal("MissingCapability", "the capabilities lack extension 0xF0A7 or proposal 0xF0A8");
  }
  if (lastResort && !caps.extensions.includes(LAST_RESORT)) {
    throw new KeyPackageRefusal("MissingCapability", "a last_resort KeyPackage whose capabilities lack last_resort");
  }
  if (!(await verifyLeafNodeSignatureKeyPackage(leaf, cs.signature)) || !(await verifyKeyPackage(kp, cs.signature))) {
    throw new KeyPackageRefusal("Invalid", "a signature does not verify");
  }
  return kp;
}
