//! Kernel IPVS in kernel terms: the objects the generic-netlink family carries (`types`), their
//! byte-level encoding and decoding (`codec`), the connection table as `/proc` lists it (`conns`),
//! and the desired-vs-kernel diff (`reconcile`). Everything here is pure; the socket lives in the
//! director.

pub mod codec;
pub mod conns;
pub mod reconcile;
pub mod types;

pub use types::*;
