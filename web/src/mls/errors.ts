// Typed failures of this device's own group operations (peer-caused refusals are values:
// see receive.ts and join.ts).
import type { PolicyViolation } from "./policy.js";

/** This device may not make this change (§11.2): it would be refused by every member. */
export class NotAllowed extends Error {
  override readonly name = "NotAllowed";
  constructor(readonly violation: PolicyViolation) {
    super(`not allowed: ${violation.kind}`);
  }
}

/** The operation makes no sense for this group (e.g. removing an account that has no leaf). */
export class NothingToDo extends Error {
  override readonly name = "NothingToDo";
}
