// Mailbox keys (docs/spec.md §11.3, §9.3): the Ed25519 key pair of a group mailbox in epoch
// e has the secret seed MLS-Exporter("chat.mls mailbox", mailbox_e, 32), where mailbox_e is
// the 32 raw bytes of the group's mailbox id, and 32 zero bytes in epoch 0 (before the
// mailbox exists). The exporter is ts-mls's (RFC 9420 §8.5); this module only fixes its
// inputs and turns its output into the key pair.
import { ed25519 } from "@noble/curves/ed25519.js";
import { type CiphersuiteImpl, getCiphersuiteFromName, getCiphersuiteImpl, mlsExporter } from "ts-mls";
import { type MailboxId, mailboxIdBytes } from "./mailbox-id.js";
import { SUITE_X25519_AES128GCM, SUITE_XWING_CHACHA20, UnsupportedSuiteError } from "./sealed.js";

/** The exporter label of mailbox keys. */
export const MAILBOX_KEY_LABEL = "chat.mls mailbox";
/** The length of the exported seed. */
export const MAILBOX_KEY_SEED_BYTES = 32;

/** An epoch's mailbox key pair: the RFC 8032 secret seed and its public key. */
export interface MailboxKeyPair {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** The exporter context: the mailbox id's 32 raw bytes, or 32 zero bytes in epoch 0 (`null`). */
export function mailboxKeyContext(mailbox: MailboxId | null): Uint8Array {
  return mailbox === null ? new Uint8Array(32) : mailboxIdBytes(mailbox);
}

/** The key pair whose secret seed is `seed` (RFC 8032 §5.1.5). */
export function mailboxKeyPair(seed: Uint8Array): MailboxKeyPair {
  if (seed.length !== MAILBOX_KEY_SEED_BYTES) throw new RangeError("a mailbox key seed is 32 bytes");
  return { seed, publicKey: ed25519.getPublicKey(seed) };
}

/**
 * The mailbox key pair of an epoch from its exporter secret (ts-mls: `state.keySchedule.
 * exporterSecret`, of the current or the staged next epoch) and the group's cipher suite.
 */
export async function mailboxKeyFromExporterSecret(
  exporterSecret: Uint8Array,
  cs: CiphersuiteImpl,
  mailbox: MailboxId | null,
): Promise<MailboxKeyPair> {
  const seed = await mlsExporter(exporterSecret, MAILBOX_KEY_LABEL, mailboxKeyContext(mailbox), MAILBOX_KEY_SEED_BYTES, cs);
  return mailboxKeyPair(seed);
}

/**
 * A ts-mls suite whose exporter computes MLS-Exporter for the group suite `suite`: the
 * exporter depends only on the suite's KDF and hash, which are HKDF-SHA256 and SHA-256 in
 * both 0x0001 and 0x004D (spec §11.19), so suite 0x0001's implementation serves both.
 */
export async function exporterSuiteImpl(suite: number): Promise<CiphersuiteImpl> {
  if (suite !== SUITE_X25519_AES128GCM && suite !== SUITE_XWING_CHACHA20) throw new UnsupportedSuiteError(suite);
  return getCiphersuiteImpl(getCiphersuiteFromName("MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"));
}
