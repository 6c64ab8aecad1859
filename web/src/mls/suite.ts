// ts-mls configured as atmls's groups are (docs/spec.md §11.1, §11.2, §11.5, §11.8).
import {
  type CiphersuiteImpl,
  type ClientConfig,
  type Credential,
  defaultKeyPackageEqualityConfig,
  defaultLifetimeConfig,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
} from "ts-mls";
import { SUITE_NAME } from "./constants.js";
import { parseDid } from "./did.js";

let cached: Promise<CiphersuiteImpl> | undefined;

/** The ciphersuite 0x0001 implementation (WebCrypto: a secure context in browsers). */
export function cipherSuite(): Promise<CiphersuiteImpl> {
  cached ??= getCiphersuiteImpl(getCiphersuiteFromName(SUITE_NAME));
  return cached;
}

/** The DID a credential speaks for: a BasicCredential holding a DID in UTF-8 (§11.1). */
export function credentialDid(credential: Credential): string | undefined {
  if (credential.credentialType !== "basic") return undefined;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(credential.identity);
  } catch {
    return undefined;
  }
  return parseDid(text);
}

/**
 * The ts-mls client configuration of every atmls group: credentials must be basic DID
 * credentials; 4 past epochs kept for late messages, out-of-order tolerance 32, at most
 * 1000 steps forward (§11.8). MLS padding: ts-mls cannot pad to a multiple of 32 as the
 * reference client does; contents are padded to at least 32 bytes, and the size buckets
 * outside MLS (§11.5) hide the difference from the DS.
 */
export const clientConfig: ClientConfig = {
  keyRetentionConfig: { retainKeysForGenerations: 32, retainKeysForEpochs: 4, maximumForwardRatchetSteps: 1000 },
  lifetimeConfig: defaultLifetimeConfig,
  keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
  paddingConfig: { kind: "padUntilLength", padUntilLength: 32 },
  authService: {
    async validateCredential(credential: Credential): Promise<boolean> {
      return credentialDid(credential) !== undefined;
    },
  },
};
