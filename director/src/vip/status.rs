//! What the VIP watchdog reports: per-VIP status for the APIs and counters for metrics.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One configured VIP as this director sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    pub group: String,
    pub address: IpNet,
    pub interface: String,
    pub held: bool,
    /// Unix milliseconds of the last change of `held`.
    pub since_ms: u64,
    pub error: Option<String>,
}

/// What the watchdog did, counted since start (for metrics).
#[derive(Debug, Default)]
pub struct VipCounters {
    /// Gratuitous ARPs (IPv4) and unsolicited neighbour advertisements (IPv6) sent.
    pub garp_sent: AtomicU64,
    pub na_sent: AtomicU64,
    /// VIPs added to an interface, and removed from one.
    pub acquired: AtomicU64,
    pub released: AtomicU64,
}

impl VipCounters {
    pub(super) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Read access to the watchdog's view, for the APIs.
#[derive(Clone, Default)]
pub struct VipStatusReader(pub(super) Arc<Mutex<Vec<VipStatus>>>);

impl VipStatusReader {
    pub fn get(&self) -> Vec<VipStatus> {
        self.0.lock().expect("vip status").clone()
    }

    /// "INTERFACE ADDRESS/PREFIX" for every VIP held now.
    pub fn held(&self) -> Vec<String> {
        self.get()
            .into_iter()
            .filter(|v| v.held)
            .map(|v| format!("{} {}", v.interface, v.address))
            .collect()
    }
}

/// The key of a VIP: interface and address.
pub(super) type VipKey = (String, IpAddr);
