// Runs the two vector checks of the network layer on tests/vectors/ in Node, and shows that
// each fails when an expected value is changed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { check as checkRequests } from "../vectors/checks/request-signature.js";
import { check as checkEnvelopes } from "../vectors/checks/envelopes.js";

const root = new URL("../../../tests/vectors/", import.meta.url);
const load = (stem: string): { vectors: Record<string, unknown>[] } =>
  JSON.parse(readFileSync(new URL(`${stem}.json`, root), "utf8"));

test("request-signature.json: every case recomputed", async () => {
  const v = load("request-signature");
  assert.equal(await checkRequests(v), v.vectors.length);
  assert.equal(v.vectors.length, 6);
});

test("request-signature check fails on a changed token, nonce or signed query", async () => {
  for (const [field, change] of [
    ["token", (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1)],
    ["nonce", (s: string) => (s[0] === "0" ? "1" : "0") + s.slice(1)],
    ["signingBytes", (s: string) => s.slice(0, -1) + (s.endsWith("0") ? "1" : "0")],
  ] as const) {
    const v = load("request-signature");
    const c = v.vectors[1]!;
    c[field] = change(c[field] as string);
    await assert.rejects(checkRequests(v), /query getEnvelopes/);
  }
  const v = load("request-signature");
  const sub = v.vectors[5]!;
  sub["signedContent"] = `${sub["signedContent"] as string}&auth=x`;
  await assert.rejects(checkRequests(v), /signedContent differs/);
});

test("envelopes.json: every case decoded and re-encoded", async () => {
  const v = load("envelopes");
  assert.equal(await checkEnvelopes(v), v.vectors.length);
});

test("envelopes check fails on a changed frame byte, epoch or payload", async () => {
  let v = load("envelopes");
  const f = v.vectors[1]!["frame"] as string;
  v.vectors[1]!["frame"] = f.slice(0, -2) + (f.endsWith("00") ? "01" : "00");
  await assert.rejects(checkEnvelopes(v), /group commit/);
  v = load("envelopes");
  v.vectors[1]!["epoch"] = 4;
  await assert.rejects(checkEnvelopes(v), /group commit/);
  v = load("envelopes");
  (v.vectors[0]!["json"] as { payload: { $bytes: string } }).payload.$bytes = "AAAA";
  await assert.rejects(checkEnvelopes(v), /group message/);
});
