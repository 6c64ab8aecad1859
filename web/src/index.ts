// atmls browser device: the library's public surface. Modules are added under src/.
export const SPEC = "docs/spec.md";
