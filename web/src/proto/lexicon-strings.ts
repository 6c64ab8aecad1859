// String rules of the atproto lexicon language used by the chat.mls lexicons: lengths in
// UTF-8 bytes, graphemes, datetimes, DIDs, message ids (docs/spec.md §2, §5).
import { toBase32, utf8 } from "./bytes.js";

/** A value that breaks a lexicon rule; `path` names the field. */
export class LexiconError extends Error {
  override readonly name = "LexiconError";
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
  }
}

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** The number of grapheme clusters of a string. */
export function graphemes(text: string): number {
  let n = 0;
  for (const _ of segmenter.segment(text)) n++;
  return n;
}

/** Limits of a lexicon string: lengths in UTF-8 bytes, graphemes. */
export interface StringLimits {
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly maxGraphemes?: number;
}

/** `value` as a string within `limits`, else a LexiconError naming `path`. */
export function str(path: string, value: unknown, limits: StringLimits = {}): string {
  if (typeof value !== "string") throw new LexiconError(path, "not a string");
  const bytes = utf8(value).length;
  if (limits.minLength !== undefined && bytes < limits.minLength) throw new LexiconError(path, `shorter than ${limits.minLength} bytes`);
  if (limits.maxLength !== undefined && bytes > limits.maxLength) throw new LexiconError(path, `longer than ${limits.maxLength} bytes`);
  if (limits.maxGraphemes !== undefined && graphemes(value) > limits.maxGraphemes) {
    throw new LexiconError(path, `more than ${limits.maxGraphemes} graphemes`);
  }
  return value;
}

/** An integer within [min, max]. */
export function int(path: string, value: unknown, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) throw new LexiconError(path, "not an integer");
  if (value < min || value > max) throw new LexiconError(path, `not within ${min}..${max}`);
  return value;
}

/** A boolean. */
export function bool(path: string, value: unknown): boolean {
  if (typeof value !== "boolean") throw new LexiconError(path, "not a boolean");
  return value;
}

/** A byte string of min..max bytes. */
export function bytes(path: string, value: unknown, min: number, max: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new LexiconError(path, "not bytes");
  if (value.length < min || value.length > max) throw new LexiconError(path, `not ${min}..${max} bytes`);
  return value;
}

/** An object (a map with string keys). */
export function obj(path: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new LexiconError(path, "not an object");
  }
  return value as Record<string, unknown>;
}

/** An array of min..max items. */
export function arr(path: string, value: unknown, min: number, max: number): unknown[] {
  if (!Array.isArray(value)) throw new LexiconError(path, "not an array");
  if (value.length < min || value.length > max) throw new LexiconError(path, `not ${min}..${max} items`);
  return value;
}

// RFC 3339 with `T`, seconds, optional fraction, and a zone (atproto datetime).
const DATETIME = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$/;

/** An atproto datetime (e.g. 2026-11-24T12:00:00.000Z). */
export function datetime(path: string, value: unknown): string {
  const s = str(path, value, { maxLength: 64 });
  if (!DATETIME.test(s) || Number.isNaN(Date.parse(s))) throw new LexiconError(path, "not an atproto datetime");
  return s;
}

// did:method:identifier (atproto DID syntax).
const DID = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;

/** A DID in atproto syntax. */
export function did(path: string, value: unknown): string {
  const s = str(path, value, { maxLength: 2048 });
  if (!DID.test(s)) throw new LexiconError(path, "not a DID");
  return s;
}

/**
 * A message id as the lexicon bounds it: 26 characters. Senders make it from 16 random bytes
 * in lowercase base32 (spec §2, `newMessageId`); readers check only the lexicon's length, as
 * the reference client does, since the id is opaque to them.
 */
export function messageId(path: string, value: unknown): string {
  return str(path, value, { minLength: 26, maxLength: 26 });
}

/** A fresh message id: 16 random bytes as lowercase base32 without padding (26 characters). */
export function newMessageId(): string {
  return toBase32(crypto.getRandomValues(new Uint8Array(16)));
}
