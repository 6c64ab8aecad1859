// The byte encodings live in proto/encoding.ts (one implementation for the whole device).
export * from "../proto/encoding.js";
