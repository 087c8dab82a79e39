//! VIP ownership on the director: rtnetlink addresses, raw-socket announcements and the watchdog
//! that applies the lease rule from `cluster_core::vip::lease`.

pub mod guard;
mod held;
mod manager;
mod netlink;
mod packet;
pub mod release;

pub use manager::{spawn, Settings, VipConfig, VipCounters, VipHandle, VipStatus, VipStatusReader};
