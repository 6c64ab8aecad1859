//! Delivery-service core: group and inbox mailboxes, gap-free ordering, commit compare-and-swap on the epoch, mailbox-key capability checks and storage. It has no HTTP in it: time and requests come in as arguments.
//!
//! Status: skeleton. Built by issue 6.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
