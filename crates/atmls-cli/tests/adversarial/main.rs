//! The attack suite (issue 14): each attack runs against the real `atmls serve` binary on
//! loopback **beside honest traffic**, and each test asserts that every honest request
//! succeeded, nothing acknowledged was lost (every honest mailbox is read back, gap-free,
//! byte for byte), the attacker got typed 4xx/429 errors and never a 5xx, the server's
//! memory stayed bounded, and no log line names a DID, a mailbox id, a token or a payload.
//!
//! Attackers connect from their own loopback addresses (`127.0.66.n`) so that
//! per-source shares apply to them and not to the honest principals (`127.0.0.1`).
//! Every loop is bounded by a deadline and a count.
#![cfg(target_os = "linux")]

mod ds;
mod harness;
mod host;
