// Mailbox ids (docs/spec.md §9.1): the spec's examples and what a parser must refuse.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MailboxIdError, mailboxIdBytes, mailboxIdOf, parseMailboxId } from "../../src/proto/mailbox-id.js";

test("the spec's examples", () => {
  assert.equal(mailboxIdOf(new Uint8Array(32).fill(1)), "aeaqcaib".repeat(6) + "aeaq");
  assert.equal(mailboxIdOf(new Uint8Array(32)), "a".repeat(52));
  assert.equal(mailboxIdOf(new Uint8Array(32).fill(0xff)), "7".repeat(51) + "q");
  assert.deepEqual(mailboxIdBytes(parseMailboxId("7".repeat(51) + "q")), new Uint8Array(32).fill(0xff));
});

test("a wrong length, a character outside a-z2-7 or non-zero spare bits is refused", () => {
  assert.throws(() => parseMailboxId("a".repeat(51)), MailboxIdError);
  assert.throws(() => parseMailboxId("a".repeat(53)), MailboxIdError);
  assert.throws(() => parseMailboxId("A" + "a".repeat(51)), MailboxIdError);
  assert.throws(() => parseMailboxId("=" + "a".repeat(51)), MailboxIdError);
  assert.throws(() => parseMailboxId("7".repeat(51) + "r"), MailboxIdError);
  assert.throws(() => parseMailboxId("a".repeat(51) + "b"), MailboxIdError);
});
