// Typed failures of the network layer (docs/spec.md §2a Errors, §7, §11.14): every failure has
// a kind, `transient` (back off, retry) or `permanent` (refuse that item, move on).

/** How a failure is handled (§11.14). */
export type FailureKind = "transient" | "permanent";

/** The DS error names of §7 and §2a (an answer may carry another name; it is kept as a string). */
export type KnownXrpcErrorName =
  | "InvalidRequest" | "AuthRequired" | "InvalidToken" | "ExpiredToken" | "UpstreamFailure"
  | "ServiceUnavailable" | "BadToken" | "BadSignature" | "KeyExpired" | "RequestExpired"
  | "ReplayedRequest" | "NotOwner" | "AccountNotServed" | "MailboxNotFound" | "NotAnInbox"
  | "UnsupportedKind" | "InvalidKey" | "InvalidEnvelope" | "FutureCursor" | "EpochConflict"
  | "EnvelopeTooLarge" | "BatchTooLarge" | "QuotaExceeded" | "RateLimitExceeded" | "MailboxFull"
  | "ConsumerTooSlow" | "PayloadTooLarge" | "InternalServerError" | "MethodNotImplemented"
  | "RequestTimeout" | "NotFound" | "ServerShuttingDown";

/** The kind of an XRPC answer's status (§11.14): 408, 425, 429, 5xx but 501/505 are transient. */
export function kindOfStatus(status: number): FailureKind {
  if (status === 408 || status === 425 || status === 429) return "transient";
  if (status >= 500 && status !== 501 && status !== 505) return "transient";
  return "permanent";
}

/**
 * The kind of a subscription error frame, which has no status: the kind of the status its
 * name has over HTTP (§10.3), `ConsumerTooSlow` and `ServerShuttingDown` being transient.
 */
export function kindOfStreamError(name: string): FailureKind {
  switch (name) {
    case "ConsumerTooSlow":
    case "ServerShuttingDown":
    case "InternalServerError":
    case "ServiceUnavailable":
    case "UpstreamFailure":
    case "RequestTimeout":
    case "RateLimitExceeded":
    case "QuotaExceeded":
    case "MailboxFull":
      return "transient";
    default:
      return "permanent";
  }
}

/** An error answer of an XRPC service: `{"error": name, "message"}` with its HTTP status. */
export class XrpcError extends Error {
  override readonly name: string = "XrpcError";
  /** HTTP status (0 for a subscription error frame). */
  readonly status: number;
  /** The `error` field: dispatch on this, never on `message`. */
  readonly error: KnownXrpcErrorName | (string & {});
  readonly kind: FailureKind;
  /** The `method` NSID that answered. */
  readonly method: string;

  constructor(method: string, status: number, error: string, message: string, kind?: FailureKind) {
    super(`${method}: ${status || "stream"} ${error}${message ? `: ${message}` : ""}`);
    this.method = method;
    this.status = status;
    this.error = error;
    this.kind = kind ?? (error === "EpochConflict" ? "transient" : kindOfStatus(status));
  }
}

/** `409 EpochConflict` of `sendEnvelopes` (§6): the mailbox's epoch and head. Transient (§11.8). */
export class EpochConflictError extends XrpcError {
  override readonly name = "EpochConflictError";
  readonly currentEpoch: number;
  readonly currentSeq: number;

  constructor(method: string, status: number, message: string, currentEpoch: number, currentSeq: number) {
    super(method, status, "EpochConflict", message, "transient");
    this.currentEpoch = currentEpoch;
    this.currentSeq = currentSeq;
  }
}

/** The request did not get an answer: connection refused, reset, timed out. Transient. */
export class NetworkError extends Error {
  override readonly name = "NetworkError";
  readonly kind: FailureKind = "transient";
  constructor(readonly method: string, message: string) {
    super(`${method}: ${message}`);
  }
}

/** An answer that does not parse or breaks its lexicon (§2a: never substitute a default). Permanent. */
export class MalformedAnswerError extends Error {
  override readonly name = "MalformedAnswerError";
  readonly kind: FailureKind = "permanent";
  constructor(readonly method: string, message: string) {
    super(`${method}: malformed answer: ${message}`);
  }
}

/** A failure on this device before anything was sent (e.g. a request could not be signed). Permanent. */
export class LocalFailure extends Error {
  override readonly name = "LocalFailure";
  readonly kind: FailureKind = "permanent";
  constructor(readonly method: string, message: string) {
    super(`${method}: ${message}`);
  }
}

/** Any failure of the network layer. */
export type NetFailure = XrpcError | NetworkError | MalformedAnswerError | LocalFailure;

/** The kind of any failure; unknown failures are transient (§11.14). */
export function failureKind(e: unknown): FailureKind {
  if (e instanceof XrpcError || e instanceof NetworkError || e instanceof MalformedAnswerError || e instanceof LocalFailure) return e.kind;
  return "transient";
}
