//! VIP ownership on the director.
//!
//! - `config`: the `[vip]` section; `status`: per-VIP status and counters.
//! - `watchdog`: applies the lease rule from `cluster_core::vip::lease` (take, announce, watch
//!   for conflicts, release), reading Raft through `RaftView` and the kernel through
//!   `kernel::VipKernel`; `fake`: an in-memory `VipKernel` for tests.
//! - `netlink` (rtnetlink addresses) and `packet` (raw-socket announcements and ARP listening):
//!   the real `VipKernel`.
//! - `manager`: the watchdog's own thread and runtime, and its handle.
//! - `held`: the held-VIPs file; `guard` and `release`: remove what it lists after a crash.
//!
//! Uses go one way: manager → watchdog → {held, kernel, status, config} → netlink/packet.

mod config;
#[cfg(test)]
mod fake;
pub mod guard;
mod held;
mod kernel;
mod manager;
mod netlink;
mod packet;
pub mod release;
mod status;
mod watchdog;

pub use config::VipConfig;
pub use manager::{spawn, VipHandle};
pub use status::{VipCounters, VipStatus, VipStatusReader};
pub use watchdog::Settings;
