// Application content (docs/spec.md §5, §11.6): every application message's plaintext is
// one `chat.mls.content` object in canonical DAG-CBOR. `decodeContent` parses untrusted
// plaintext (canonical DAG-CBOR, `$type`, the lexicon's rules) into typed values;
// `encodeContent` is its inverse. An unknown body `$type` (open union) is kept as is.
import { CID } from "multiformats/cid";
import { type Ipld, DataModelError, decodeDagCbor, encodeDagCbor } from "./data-model.js";
import { LexiconError, arr, bool, bytes, did, int, messageId, obj, str, datetime } from "./lexicon-strings.js";

/** The `$type` of content objects. */
export const CONTENT_TYPE = "chat.mls.content";

const TEXT = { minLength: 1, maxLength: 40000, maxGraphemes: 10000 } as const;

/** `chat.mls.content#text`. */
export interface TextBody { readonly kind: "text"; readonly text: string; readonly langs?: readonly string[] }
/** `chat.mls.content#reply`. */
export interface ReplyBody { readonly kind: "reply"; readonly parent: string; readonly text: string; readonly langs?: readonly string[] }
/** `chat.mls.content#reaction`; `remove` is kept as sent (absent means false). */
export interface ReactionBody { readonly kind: "reaction"; readonly target: string; readonly value: string; readonly remove?: boolean }
/** `chat.mls.content#readReceipt`. */
export interface ReadReceiptBody { readonly kind: "readReceipt"; readonly messages: readonly string[] }
/** `chat.mls.content#edit`. */
export interface EditBody { readonly kind: "edit"; readonly target: string; readonly text: string }
/** `chat.mls.content#delete`. */
export interface DeleteBody { readonly kind: "delete"; readonly target: string }
/** `chat.mls.content#attachment` (the file itself: attachment.ts). */
export interface AttachmentBody {
  readonly kind: "attachment";
  readonly cipher: string;
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
  readonly digest: Uint8Array;
  readonly size: number;
  readonly mimeType: string;
  readonly name?: string;
  readonly alt?: string;
  readonly location: { readonly did: string; readonly cid: CID };
}
/** A body of a `$type` this implementation does not know: the whole map, `$type` included. */
export interface UnknownBody { readonly kind: "unknown"; readonly type: string; readonly data: { readonly [key: string]: Ipld } }

/** The open union of bodies. */
export type Body = TextBody | ReplyBody | ReactionBody | ReadReceiptBody | EditBody | DeleteBody | AttachmentBody | UnknownBody;

/** One `chat.mls.content` object. */
export interface Content {
  readonly id: string;
  readonly sentAt: string;
  readonly body: Body;
  readonly fallbackText?: string;
}

/** Plaintext that is not a valid content object. */
export class ContentError extends Error {
  override readonly name = "ContentError";
}

const KNOWN = ["text", "reply", "reaction", "readReceipt", "edit", "delete", "attachment"] as const;

function langs(path: string, value: unknown): string[] {
  return arr(path, value, 0, 3).map((l, i) => str(`${path}[${i}]`, l, { minLength: 1, maxLength: 128 }));
}

function parseBody(value: unknown): Body {
  const b = obj("body", value);
  const type = str("body.$type", b["$type"], { minLength: 1, maxLength: 512 });
  const short = type.startsWith(`${CONTENT_TYPE}#`) ? type.slice(CONTENT_TYPE.length + 1) : "";
  const kind = (KNOWN as readonly string[]).includes(short) ? (short as (typeof KNOWN)[number]) : undefined;
  const opt = <T>(key: string, parse: (path: string, v: unknown) => T): T | undefined =>
    b[key] === undefined ? undefined : parse(`body.${key}`, b[key]);
  switch (kind) {
    case "text": {
      const l = opt("langs", langs);
      return { kind, text: str("body.text", b["text"], TEXT), ...(l === undefined ? {} : { langs: l }) };
    }
    case "reply": {
      const l = opt("langs", langs);
      return {
        kind,
        parent: messageId("body.parent", b["parent"]),
        text: str("body.text", b["text"], TEXT),
        ...(l === undefined ? {} : { langs: l }),
      };
    }
    case "reaction": {
      const remove = opt("remove", bool);
      return {
        kind,
        target: messageId("body.target", b["target"]),
        value: str("body.value", b["value"], { minLength: 1, maxLength: 64, maxGraphemes: 1 }),
        ...(remove === undefined ? {} : { remove }),
      };
    }
    case "readReceipt":
      return { kind, messages: arr("body.messages", b["messages"], 1, 100).map((m, i) => messageId(`body.messages[${i}]`, m)) };
    case "edit":
      return { kind, target: messageId("body.target", b["target"]), text: str("body.text", b["text"], TEXT) };
    case "delete":
      return { kind, target: messageId("body.target", b["target"]) };
    case "attachment": {
      const location = obj("body.location", b["location"]);
      const cid = CID.asCID(location["cid"]);
      if (cid === null) throw new LexiconError("body.location.cid", "not a CID link");
      const name = opt("name", (p, v) => str(p, v, { maxLength: 1024, maxGraphemes: 256 }));
      const alt = opt("alt", (p, v) => str(p, v, { maxLength: 10000, maxGraphemes: 1000 }));
      return {
        kind,
        cipher: str("body.cipher", b["cipher"], { maxLength: 64 }),
        key: bytes("body.key", b["key"], 16, 64),
        nonce: bytes("body.nonce", b["nonce"], 12, 32),
        digest: bytes("body.digest", b["digest"], 32, 32),
        size: int("body.size", b["size"], 0),
        mimeType: str("body.mimeType", b["mimeType"], { maxLength: 256 }),
        ...(name === undefined ? {} : { name }),
        ...(alt === undefined ? {} : { alt }),
        location: { did: did("body.location.did", location["did"]), cid },
      };
    }
    case undefined:
      return { kind: "unknown", type, data: b as { [key: string]: Ipld } };
  }
}

/** Parses untrusted plaintext: canonical DAG-CBOR, `$type` chat.mls.content, the lexicon. */
export function decodeContent(plaintext: Uint8Array): Content {
  try {
    return parseContent(decodeDagCbor(plaintext));
  } catch (e) {
    if (e instanceof DataModelError || e instanceof LexiconError) throw new ContentError(e.message);
    throw e;
  }
}

/** Parses a content object already decoded to the data model (e.g. from its JSON form). */
export function parseContent(value: Ipld): Content {
  const c = obj("content", value);
  if (c["$type"] !== CONTENT_TYPE) throw new LexiconError("$type", `not ${CONTENT_TYPE}`);
  const fallbackText = c["fallbackText"] === undefined ? undefined : str("fallbackText", c["fallbackText"], { maxLength: 3000, maxGraphemes: 300 });
  return {
    id: messageId("id", c["id"]),
    sentAt: datetime("sentAt", c["sentAt"]),
    body: parseBody(c["body"]),
    ...(fallbackText === undefined ? {} : { fallbackText }),
  };
}

function bodyValue(body: Body): { [key: string]: Ipld } {
  const type = `${CONTENT_TYPE}#${body.kind}`;
  switch (body.kind) {
    case "text":
      return { $type: type, text: body.text, ...(body.langs === undefined ? {} : { langs: [...body.langs] }) };
    case "reply":
      return { $type: type, parent: body.parent, text: body.text, ...(body.langs === undefined ? {} : { langs: [...body.langs] }) };
    case "reaction":
      return { $type: type, target: body.target, value: body.value, ...(body.remove === undefined ? {} : { remove: body.remove }) };
    case "readReceipt":
      return { $type: type, messages: [...body.messages] };
    case "edit":
      return { $type: type, target: body.target, text: body.text };
    case "delete":
      return { $type: type, target: body.target };
    case "attachment":
      return {
        $type: type,
        cipher: body.cipher,
        key: body.key,
        nonce: body.nonce,
        digest: body.digest,
        size: body.size,
        mimeType: body.mimeType,
        ...(body.name === undefined ? {} : { name: body.name }),
        ...(body.alt === undefined ? {} : { alt: body.alt }),
        location: { did: body.location.did, cid: body.location.cid },
      };
    case "unknown":
      return { ...body.data };
  }
}

/** The data-model value of a content object, `$type` included. */
export function contentValue(content: Content): { [key: string]: Ipld } {
  return {
    $type: CONTENT_TYPE,
    id: content.id,
    sentAt: content.sentAt,
    body: bodyValue(content.body),
    ...(content.fallbackText === undefined ? {} : { fallbackText: content.fallbackText }),
  };
}

/** The plaintext of an application message: canonical DAG-CBOR of the content object. */
export function encodeContent(content: Content): Uint8Array {
  return encodeDagCbor(contentValue(content));
}
