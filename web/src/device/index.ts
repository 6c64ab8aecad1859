// web/src/device: a browser device of an atmls account (docs/spec.md §11) on web/src/{mls,net,proto,store}.
export { Device, OtherAccount, type GroupSummary } from "./device.js";
export { type DeviceConfig, type DeviceEvent, NeedsLogin } from "./context.js";
export { CommitFailed, type Committed, type Undelivered } from "./commits.js";
export { type DeviceStorage, MemoryStorage, StateCorrupt } from "./storage.js";
export type { MessageRecord } from "./records.js";
export type { SyncReport } from "./sync.js";
