//! The client library: device state, KeyPackage lifecycle in the user's repo, verified lookup of other users' KeyPackages, MLS groups (openmls) over the delivery service, messages, multi-device.
//!
//! Status: skeleton. Built by issue 7.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
