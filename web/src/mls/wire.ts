// MLSMessage framing of payloads (docs/spec.md §11.5): a payload is one MLSMessage
// followed only by zero bytes (the size-bucket padding).
import { type MLSMessage, decodeMlsMessage } from "ts-mls";

/** A payload that is not one MLSMessage followed by zeros. */
export class NotAnMlsMessage extends Error {
  override readonly name = "NotAnMlsMessage";
}

/** Parses one MLSMessage and refuses a remainder that is not all zeros. */
export function parsePayload(payload: Uint8Array): MLSMessage {
  let decoded: [MLSMessage, number] | undefined;
  try {
    decoded = decodeMlsMessage(payload, 0);
  } catch {
    decoded = undefined;
  }
  if (decoded === undefined) throw new NotAnMlsMessage("does not parse as an MLSMessage");
  const [message, end] = decoded;
  for (let i = end; i < payload.length; i++) if (payload[i] !== 0) throw new NotAnMlsMessage("padding is not zeros");
  return message;
}
