// The out-of-band ratchet tree of a welcome (docs/spec.md §11.4, §11.7) against a loopback
// did:web "PDS" serving blobs: an honest blob opens to the tree; each check of §11.4 refuses
// a blob that breaks it (length, digest, decryption, padding), and a missing blob is a refusal.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { TreeRefused, fetchTree } from "../../src/device/tree.js";
import { paddedLength } from "../../src/proto/padding.js";
import type { RatchetTreeRef } from "../../src/proto/welcome.js";

let server: Server;
let did = "";
const blobs = new Map<string, Uint8Array>();

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/.well-known/did.json") {
      const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: did, service: [{ id: "#atproto_pds", type: "AtprotoPersonalDataServer", serviceEndpoint: origin }] }));
      return;
    }
    const blob = url.pathname === "/xrpc/com.atproto.sync.getBlob" && url.searchParams.get("did") === did ? blobs.get(url.searchParams.get("cid") ?? "") : undefined;
    if (blob === undefined) {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "BlobNotFound", message: "no such blob" }));
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" });
    res.end(blob);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  did = `did:web:127.0.0.1%3A${(server.address() as { port: number }).port}`;
});

after(() => new Promise<void>((r) => server.close(() => r())));

const resolver = () => ({ plcUrl: "http://127.0.0.1:9", allowHttpLoopback: true });

/** Seals `tree` as §11.7 says: zero padding to the bucket, AES-256-GCM, empty AAD. */
async function sealTree(tree: Uint8Array, padByte = 0): Promise<{ blob: Uint8Array; ref: Omit<RatchetTreeRef, "cid" | "did"> }> {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const padded = new Uint8Array(paddedLength(tree.length)).fill(padByte);
  padded.set(tree);
  const k = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
  const blob = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce }, k, padded));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", blob));
  return { blob, ref: { key, nonce, digest, size: tree.length } };
}

function publish(cid: string, blob: Uint8Array): string {
  blobs.set(cid, blob);
  return cid;
}

test("an honest blob opens to the tree", async () => {
  const tree = crypto.getRandomValues(new Uint8Array(700));
  const { blob, ref } = await sealTree(tree);
  const got = await fetchTree({ ...ref, did, cid: publish("good", blob) }, resolver());
  assert.deepEqual(got, tree);
});

test("each broken blob is refused", async () => {
  const tree = crypto.getRandomValues(new Uint8Array(700));
  tree[699] = 0xff; // so that a size one short leaves a non-zero byte in the padding
  const { blob, ref } = await sealTree(tree);
  const cases: [string, RatchetTreeRef, RegExp][] = [];
  cases.push(["length", { ...ref, did, cid: publish("short", blob.slice(0, -1)) }, /length/]);
  const flipped = blob.slice();
  flipped[10]! ^= 1;
  cases.push(["digest", { ...ref, did, cid: publish("flipped", flipped) }, /digest/]);
  const otherKey = { ...ref, key: crypto.getRandomValues(new Uint8Array(32)) };
  cases.push(["key", { ...otherKey, did, cid: publish("good2", blob) }, /decrypt/]);
  const dirty = await sealTree(tree, 7);
  cases.push(["padding", { ...dirty.ref, did, cid: publish("dirty", dirty.blob) }, /padding/]);
  cases.push(["size", { ...ref, size: 699, did, cid: publish("good3", blob) }, /length|padding/]);
  cases.push(["absent", { ...ref, did, cid: "nothing" }, /refuses the blob/]);
  for (const [name, r, why] of cases) {
    const e = await fetchTree(r, resolver()).catch((x: unknown) => x);
    assert.ok(e instanceof TreeRefused, `${name}: ${e instanceof Error ? e.name : typeof e}`);
    assert.match(e.message, why, name);
  }
});
