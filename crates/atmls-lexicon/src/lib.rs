//! chat.mls lexicon types and run-time lexicon validation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
