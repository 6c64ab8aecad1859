// The out-of-band ratchet tree of a welcome (docs/spec.md §11.4, §11.7): fetched from the
// committer's PDS with com.atproto.sync.getBlob and opened as an attachment is. Every check
// failing is a refusal of the welcome (TreeRefused); a network failure is transient.
import { type ResolverConfig, resolveDid } from "../net/did.js";
import * as J from "../net/json.js";
import { paddedLength } from "../proto/padding.js";
import type { RatchetTreeRef } from "../proto/welcome.js";

/** The tree cannot be used: the welcome is refused (`Error::RatchetTree`). */
export class TreeRefused extends Error {
  override readonly name = "TreeRefused";
}

/** Largest blob fetched (a 1,000-member tree with bindings is well under this). */
const MAX_TREE_BLOB = 32 * 1024 * 1024;

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Fetches, checks and opens an out-of-band tree: the TLS-encoded `ratchet_tree`. */
export async function fetchTree(ref: RatchetTreeRef, resolver: ResolverConfig): Promise<Uint8Array> {
  const doc = await resolveDid(J.did(ref.did, "ratchetTree.did"), resolver);
  if (doc.pds === undefined) throw new TreeRefused("the committer's DID names no PDS");
  const url = `${doc.pds.replace(/\/+$/, "")}/xrpc/com.atproto.sync.getBlob?did=${encodeURIComponent(ref.did)}&cid=${encodeURIComponent(ref.cid)}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  if (res.status >= 400 && res.status < 500) throw new TreeRefused(`the PDS refuses the blob (${res.status})`);
  if (!res.ok) throw new Error(`getBlob: HTTP ${res.status}`);
  const blob = new Uint8Array(await res.arrayBuffer());
  if (blob.length > MAX_TREE_BLOB || blob.length !== paddedLength(ref.size) + 16) throw new TreeRefused("the blob's length is not padded_len(size) + 16");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", blob.slice()));
  if (!equal(digest, ref.digest)) throw new TreeRefused("the blob's digest differs");
  let plain: Uint8Array;
  try {
    const key = await crypto.subtle.importKey("raw", ref.key.slice(), "AES-GCM", false, ["decrypt"]);
    plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: ref.nonce.slice() }, key, blob));
  } catch {
    throw new TreeRefused("the blob does not decrypt");
  }
  if (plain.subarray(ref.size).some((b) => b !== 0)) throw new TreeRefused("the padding is not zeros");
  return plain.slice(0, ref.size);
}
