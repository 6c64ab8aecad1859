// The DID syntax atmls accepts in credentials and group data (AT Protocol's DID rules:
// `did:<method>:<id>`, ASCII, at most 2048 bytes). Resolution is not done here.

/** A syntactically valid DID (a branded string: only `parseDid` makes one). */
export type Did = string & { readonly __did: unique symbol };

const DID = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;

/** The DID, or undefined when `text` is not a syntactically valid DID. */
export function parseDid(text: string): Did | undefined {
  return text.length <= 2048 && DID.test(text) ? (text as Did) : undefined;
}
