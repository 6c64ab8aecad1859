// `chat.mls.ds.subscribeEnvelopes` over WebSocket (docs/spec.md §2a "Event streams", §9.4.2,
// §10.5): the signed `auth` parameters, typed frames, per-mailbox cursors, and reconnection
// from the last cursor with fresh tokens after a transient failure.
import { MailboxKey, signRequest } from "../proto/request.js";
import { kindOfStreamError, LocalFailure, MalformedAnswerError, NetworkError, XrpcError, type NetFailure } from "./errors.js";
import { decodeFrame } from "./frames.js";
import { NSID, type Envelope } from "./lexicon.js";
import type { MailboxId } from "./mailbox-id.js";
import { buildQuery } from "./xrpc.js";

/** One mailbox of a subscription. */
export interface SubscribedMailbox {
  readonly mailbox: MailboxId;
  /** Its current key: the group's epoch key, or the inbox owner key. */
  readonly key: MailboxKey;
  /** Stream envelopes with `seq > cursor`; absent: live only from the current head (§10.5). */
  readonly cursor?: number;
}

/** What a subscription reports, in order of arrival. */
export interface SubscriptionHandlers {
  /** An envelope of a subscribed mailbox, never one at or below its cursor. */
  envelope(mailbox: MailboxId, envelope: Envelope): void;
  heartbeat?(time: string): void;
  info?(name: string, message: string | undefined): void;
  /** The socket opened (its authorisation may still fail with an error frame). */
  open?(): void;
  /**
   * A failure; `retrying` says whether the subscription reconnects by itself (transient)
   * or has stopped (permanent, e.g. `KeyExpired`: give the new key with
   * {@link EnvelopeSubscription.setKey} and call {@link EnvelopeSubscription.start} again).
   */
  failure?(error: NetFailure, retrying: boolean): void;
}

/** Reconnection settings. */
export interface SubscriptionConfig {
  /** First back-off, ms (default 500); doubled per failed attempt up to `maxBackoffMs`. */
  readonly backoffMs?: number;
  /** Longest back-off, ms (default 30 000). */
  readonly maxBackoffMs?: number;
  /** Consecutive failed connections before stopping (default: unbounded). */
  readonly maxAttempts?: number;
  /** The WebSocket class (default: the global one). */
  readonly WebSocket?: typeof WebSocket;
}

/** Builds the subscription URL: mailboxes with a cursor first, then `auth` tokens, one per mailbox (§9.4.2). */
export async function subscriptionUrl(endpoint: string, mailboxes: readonly SubscribedMailbox[]): Promise<string> {
  // Cursors go with mailboxes by position, so a mailbox without one must come after every
  // mailbox that has one.
  const ordered = [...mailboxes.filter((m) => m.cursor !== undefined), ...mailboxes.filter((m) => m.cursor === undefined)];
  const query = buildQuery([
    ...ordered.map((m) => ["mailbox", m.mailbox] as const),
    ...ordered.filter((m) => m.cursor !== undefined).map((m) => ["cursor", m.cursor] as const),
  ]);
  const auths: string[] = [];
  for (const m of ordered) {
    const signed = await signRequest({ key: m.key, method: NSID.subscribeEnvelopes, mailbox: m.mailbox, content: query });
    auths.push(`auth=${signed.token}`);
  }
  const ws = endpoint.replace(/\/+$/, "").replace(/^http(s?):\/\//, "ws$1://");
  return `${ws}/xrpc/${NSID.subscribeEnvelopes}?${[query, ...auths].join("&")}`;
}

type State = { key: MailboxKey; cursor: number | undefined };

/** A subscription to up to `maxSubscriptionMailboxes` mailboxes of one DS. */
export class EnvelopeSubscription {
  readonly #endpoint: string;
  readonly #handlers: SubscriptionHandlers;
  readonly #config: SubscriptionConfig;
  readonly #mailboxes = new Map<MailboxId, State>();
  #socket: WebSocket | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #attempts = 0;
  #running = false;

  constructor(endpoint: string, mailboxes: readonly SubscribedMailbox[], handlers: SubscriptionHandlers, config: SubscriptionConfig = {}) {
    if (mailboxes.length === 0 || mailboxes.length > 100) throw new RangeError("subscribe: 1-100 mailboxes");
    this.#endpoint = endpoint;
    this.#handlers = handlers;
    this.#config = config;
    for (const m of mailboxes) this.#mailboxes.set(m.mailbox, { key: m.key, cursor: m.cursor });
  }

  /** The last `seq` delivered per mailbox (what a reconnect resumes from). */
  cursors(): ReadonlyMap<MailboxId, number | undefined> {
    return new Map([...this.#mailboxes].map(([k, v]) => [k, v.cursor]));
  }

  /** Replaces a mailbox's key (after a commit moved its epoch); used from the next connection on. */
  setKey(mailbox: MailboxId, key: MailboxKey): void {
    const s = this.#mailboxes.get(mailbox);
    if (s) s.key = key;
  }

  /** Connects (or reconnects after a permanent stop). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#attempts = 0;
    void this.#connect();
  }

  /** Closes the socket and stops reconnecting. */
  close(): void {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#socket?.close(1000);
    this.#socket = undefined;
  }

  async #connect(): Promise<void> {
    if (!this.#running) return;
    const list = [...this.#mailboxes].map(([mailbox, s]) =>
      s.cursor === undefined ? { mailbox, key: s.key } : { mailbox, key: s.key, cursor: s.cursor },
    );
    let url: string;
    try {
      url = await subscriptionUrl(this.#endpoint, list);
    } catch (e) {
      // Signing failed (no WebCrypto, a bad key): nothing a reconnect would change.
      this.#attempts = Infinity;
      this.#ended(new LocalFailure(NSID.subscribeEnvelopes, `cannot sign: ${e instanceof Error ? e.message : "?"}`));
      return;
    }
    if (!this.#running) return;
    const Ws = this.#config.WebSocket ?? globalThis.WebSocket;
    let socket: WebSocket;
    try {
      socket = new Ws(url);
    } catch {
      this.#ended(new NetworkError(NSID.subscribeEnvelopes, "cannot open the WebSocket"));
      return;
    }
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    let failure: NetFailure | undefined;
    socket.onopen = () => {
      this.#attempts = 0;
      this.#handlers.open?.();
    };
    socket.onmessage = (ev: MessageEvent) => {
      if (socket !== this.#socket || failure !== undefined) return;
      if (!(ev.data instanceof ArrayBuffer)) {
        failure = new MalformedAnswerError(NSID.subscribeEnvelopes, "a text frame");
        socket.close(1002);
        return;
      }
      let msg;
      try {
        msg = decodeFrame(new Uint8Array(ev.data));
      } catch (e) {
        failure = new MalformedAnswerError(NSID.subscribeEnvelopes, e instanceof Error ? e.message : "bad frame");
        socket.close(1002);
        return;
      }
      switch (msg.type) {
        case "envelope": {
          const s = this.#mailboxes.get(msg.mailbox);
          if (s === undefined) {
            failure = new MalformedAnswerError(NSID.subscribeEnvelopes, "an envelope of a mailbox not subscribed");
            socket.close(1002);
            return;
          }
          if (s.cursor !== undefined && msg.envelope.seq <= s.cursor) return; // duplicate
          s.cursor = msg.envelope.seq;
          this.#handlers.envelope(msg.mailbox, msg.envelope);
          return;
        }
        case "heartbeat":
          this.#handlers.heartbeat?.(msg.time);
          return;
        case "info":
          this.#handlers.info?.(msg.name, msg.message);
          return;
        case "error":
          failure = new XrpcError(NSID.subscribeEnvelopes, 0, msg.error, msg.message ?? "", kindOfStreamError(msg.error));
          return;
        case "unknown":
          return; // open union: a later message type is ignored
      }
    };
    socket.onclose = () => {
      if (socket !== this.#socket) return;
      this.#socket = undefined;
      if (!this.#running) return;
      this.#ended(failure ?? new NetworkError(NSID.subscribeEnvelopes, "the stream closed"));
    };
  }

  #ended(failure: NetFailure): void {
    this.#attempts += 1;
    const max = this.#config.maxAttempts ?? Infinity;
    const retrying = failure.kind === "transient" && this.#attempts < max;
    this.#handlers.failure?.(failure, retrying);
    if (!retrying) {
      this.#running = false;
      return;
    }
    const base = this.#config.backoffMs ?? 500;
    const delay = Math.min(this.#config.maxBackoffMs ?? 30_000, base * 2 ** (this.#attempts - 1));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, delay);
  }
}
