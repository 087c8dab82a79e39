//! What the reconciler reports: per-object errors, pass counters and the pass-duration
//! histogram, shared with the API and metrics through [`IpvsStatusReader`].

use std::sync::{Arc, Mutex, MutexGuard};

use cluster_core::ipvs::KDaemon;
use serde::{Deserialize, Serialize};

/// A kernel operation that failed, by object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectError {
    /// `service[tcp/10.0.0.1:80]` or `service[...].real[10.0.1.1:80]`, or `sync[master]`.
    pub object: String,
    pub op: String,
    pub message: String,
    pub since_ms: u64,
}

/// What the reconciler last did, for the API and `lvsctl`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IpvsStatus {
    pub enabled: bool,
    /// Set while the kernel cannot be programmed at all (no IPVS, no permission).
    pub unavailable: Option<String>,
    /// Config revision the kernel was last reconciled to.
    pub revision: u64,
    pub full_passes: u64,
    pub incremental_passes: u64,
    pub last_pass_ms: u64,
    pub last_pass_us: u64,
    /// Operations applied by the last pass and in total.
    pub last_ops: u64,
    pub total_ops: u64,
    /// For the last pass triggered by a config change: microseconds from this director applying
    /// the change to the kernel acknowledging the last operation.
    pub last_change_us: u64,
    pub errors: Vec<ObjectError>,
    /// Services in the kernel left alone because this director does not own them.
    pub foreign: Vec<String>,
    /// Sync daemons running now, e.g. `backup eth1 syncid 7`.
    pub daemons: Vec<String>,
    pub sync_mode: String,
    /// Whether this director holds the VIPs (and so runs the master daemon).
    pub holder: bool,
    /// Failed kernel operations and failed reads of the kernel table, in total.
    pub errors_total: u64,
    /// Unix milliseconds of the end of the last pass in which every operation succeeded.
    pub last_ok_pass_ms: u64,
    /// Pass durations: how many fell in each bucket of `PASS_BUCKETS_S` (not cumulative; the
    /// last slot counts the ones above the largest bound), and their sum.
    pub pass_buckets: Vec<u64>,
    pub pass_us_sum: u64,
}

/// Upper bounds, in seconds, of the pass-duration histogram's buckets.
pub const PASS_BUCKETS_S: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Read access to the status.
#[derive(Clone, Default)]
pub struct IpvsStatusReader(Arc<Mutex<IpvsStatus>>);

impl IpvsStatusReader {
    pub fn get(&self) -> IpvsStatus {
        self.lock().clone()
    }

    /// The writer's side, for the reconciler.
    pub(super) fn lock(&self) -> MutexGuard<'_, IpvsStatus> {
        self.0.lock().expect("ipvs status")
    }
}

/// `master eth1 syncid 7 group 224.0.0.81:8848 ttl 1`.
pub fn describe_daemon(d: &KDaemon) -> String {
    let mut s = format!("{} {} syncid {}", d.state.as_str(), d.interface, d.syncid);
    if let Some(g) = d.group {
        s.push_str(&format!(" group {g}:{}", d.port.unwrap_or(8848)));
    }
    if let Some(t) = d.ttl {
        s.push_str(&format!(" ttl {t}"));
    }
    s
}
