// Event-stream frames (docs/spec.md §2a "Event streams", §10.5): one binary WebSocket
// message = DAG-CBOR header ++ DAG-CBOR body.
import * as dagCbor from "@ipld/dag-cbor";
import * as J from "./json.js";
import { MAX_PAYLOAD, type Envelope, type StreamMessage } from "./lexicon.js";

/** Thrown for a frame that is not two well-formed DAG-CBOR values of the expected shape. */
export class FrameError extends Error {
  override readonly name = "FrameError";
}

const MAX_DEPTH = 32;

/** Byte length of the first CBOR item of `b` (definite lengths only, as DAG-CBOR requires). */
export function cborItemLength(b: Uint8Array, at = 0, depth = 0): number {
  if (depth > MAX_DEPTH) throw new FrameError("CBOR nested too deeply");
  const first = b[at];
  if (first === undefined) throw new FrameError("CBOR truncated");
  const major = first >> 5;
  const info = first & 31;
  let pos = at + 1;
  let arg: number;
  if (info < 24) arg = info;
  else if (info <= 27) {
    const n = 1 << (info - 24);
    if (pos + n > b.length) throw new FrameError("CBOR truncated");
    arg = 0;
    for (let i = 0; i < n; i++) arg = arg * 256 + (b[pos + i] ?? 0);
    pos += n;
  } else throw new FrameError("CBOR indefinite or reserved length");
  switch (major) {
    case 0:
    case 1:
      return pos - at;
    case 2:
    case 3:
      if (pos + arg > b.length) throw new FrameError("CBOR truncated");
      return pos + arg - at;
    case 4:
    case 5: {
      const items = major === 4 ? arg : arg * 2;
      if (items > b.length) throw new FrameError("CBOR length beyond the frame");
      for (let i = 0; i < items; i++) pos += cborItemLength(b, pos, depth + 1);
      return pos - at;
    }
    case 6:
      return pos + cborItemLength(b, pos, depth + 1) - at;
    default:
      // major 7: simple values and floats; the argument bytes were already skipped.
      return pos - at;
  }
}

/** Splits a frame into its header and body values (strict DAG-CBOR, nothing after the body). */
export function splitFrame(frame: Uint8Array): { header: unknown; body: unknown } {
  const n = cborItemLength(frame);
  try {
    return { header: dagCbor.decode(frame.subarray(0, n)), body: dagCbor.decode(frame.subarray(n)) };
  } catch (e) {
    throw new FrameError(`not DAG-CBOR: ${e instanceof Error ? e.message : "?"}`);
  }
}

function parseCborEnvelope(v: unknown, path: string): Envelope {
  const o = J.obj(v, path);
  const payload = o["payload"];
  if (!(payload instanceof Uint8Array) || payload.length < 1 || payload.length > MAX_PAYLOAD) {
    throw new J.ShapeError(`${path}/payload`, "not a byte string of 1..4194304 bytes");
  }
  const base: Envelope = {
    seq: J.int(o["seq"], `${path}/seq`, 1),
    kind: J.str(o["kind"], `${path}/kind`, 32),
    payload,
    receivedAt: J.datetime(o["receivedAt"], `${path}/receivedAt`),
  };
  const epoch = J.optInt(o, "epoch", path);
  return epoch === undefined ? base : { ...base, epoch };
}

/** Decodes one `subscribeEnvelopes` frame into a typed message (an unknown `t` is kept, not refused). */
export function decodeFrame(frame: Uint8Array): StreamMessage {
  const { header, body } = splitFrame(frame);
  const h = J.obj(header, "header");
  const op = J.int(h["op"], "header/op", -1, 1);
  const b = J.obj(body, "body");
  if (op === -1) {
    const error = J.str(b["error"], "body/error", 1024);
    return b["message"] === undefined
      ? { type: "error", error }
      : { type: "error", error, message: J.str(b["message"], "body/message") };
  }
  if (op !== 1) throw new J.ShapeError("header/op", "neither 1 nor -1");
  const t = J.str(h["t"], "header/t", 256);
  switch (t) {
    case "#envelope":
      return { type: "envelope", mailbox: J.mailboxId(b["mailbox"], "body/mailbox"), envelope: parseCborEnvelope(b["envelope"], "body/envelope") };
    case "#heartbeat":
      return { type: "heartbeat", time: J.datetime(b["time"], "body/time") };
    case "#info": {
      const name = J.str(b["name"], "body/name", 64);
      return b["message"] === undefined ? { type: "info", name } : { type: "info", name, message: J.str(b["message"], "body/message", 1024) };
    }
    default:
      return { type: "unknown", t };
  }
}

/** Encodes a frame (the server's side; used by tests and fakes). */
export function encodeFrame(header: { op: 1; t: string } | { op: -1 }, body: object): Uint8Array {
  const h = dagCbor.encode(header);
  const b = dagCbor.encode(body);
  const out = new Uint8Array(h.length + b.length);
  out.set(h, 0);
  out.set(b, h.length);
  return out;
}
