//! The client's decisions: what an incoming envelope comes to, the commit an intent
//! needs, what a welcome opens to. Synchronous code without a transport, a clock or a
//! random source of its own: time comes in as an argument (the instant the DS accepted
//! an envelope), randomness from the openmls provider where openmls draws it. Each
//! decision changes only the MLS state (through the provider, in the caller's
//! transaction) and returns an outcome saying what the device records, sends and
//! shows; the async device layer ([`crate::device`]) fetches, calls these, performs the
//! outcome, and retries.
//!
//! - [`envelope`]: a group envelope → message, merged commit, leave proposal, ignored,
//!   refused (with its kind), or the DID documents needed first; and the fate of this
//!   device's pending commit.
//! - [`commit`]: an intent → the commit, its welcome plan, the next mailbox key, and the
//!   pending commit to record.
//! - [`welcome`]: a sealed welcome → opened and joined, or a typed refusal.
//! - [`policy`]: the group policy a commit must meet.

pub(crate) mod commit;
pub(crate) mod envelope;
pub(crate) mod policy;
pub(crate) mod welcome;

#[cfg(test)]
mod tests;
