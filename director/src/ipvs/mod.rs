//! Kernel IPVS on this host: the generic-netlink client (`client`), the reconciler that makes the
//! kernel table match the replicated config (`reconciler`), and the sync-daemon roles (`syncd`).

pub mod client;
pub mod reconciler;
