// atmls browser device: the library's public surface (docs/spec.md §11, §11.20).
export const SPEC = "docs/spec.md";
export * from "./device/index.js";
