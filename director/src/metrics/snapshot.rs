//! What one scrape shows, as plain values: Raft, VIPs, real servers, the reconciler, the kernel
//! table and the agents. Built by `gather`, encoded by the family modules.

use cluster_core::effective::{self, Overlay};
use cluster_core::health::HealthView;

use crate::api::kernel_view::{KernelReadError, KernelTable};
use crate::ipvs::reconciler::IpvsStatus;
use crate::vip::VipStatus;

/// This node's Raft view.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RaftSnap {
    pub node_id: u64,
    pub term: u64,
    pub state: &'static str,
    pub is_leader: bool,
    pub leader: Option<u64>,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// Milliseconds since a quorum last acknowledged this leader (leader only).
    pub quorum_ack_ms: Option<u64>,
    pub voters: usize,
    pub learners: usize,
}

/// VIP watchdog counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VipCounts {
    pub garp_sent: u64,
    pub na_sent: u64,
    pub acquired: u64,
    pub released: u64,
}

/// A configured real server as this director programs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealSnap {
    pub service: String,
    pub real: String,
    pub configured_weight: u32,
    /// The weight this director programs (config with the leader's overlay laid over it); 0
    /// when a failed check took the real server out of the kernel table.
    pub effective_weight: u32,
    /// The health check's verdict; `None` when the real server is not checked here.
    pub health_up: Option<bool>,
}

/// The agent registry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentsSnap {
    pub connected: u64,
    pub reports_total: u64,
    pub reports_rejected: u64,
    /// Seconds since each agent's last accepted report (filled on the leader only).
    pub report_age_s: Vec<(String, f64)>,
}

/// Everything one scrape shows.
pub struct Snapshot {
    pub version: &'static str,
    pub raft: RaftSnap,
    pub config_revision: u64,
    pub vips: Vec<VipStatus>,
    pub vip_counts: VipCounts,
    pub reals: Vec<RealSnap>,
    pub reconciler: IpvsStatus,
    /// The kernel table; `None` with `[ipvs] enabled = false`, `Err` when it could not be read.
    pub kernel: Option<Result<KernelTable, KernelReadError>>,
    pub agents: AgentsSnap,
}

/// The reals of `config` with their effective weights and health.
pub fn reals_snapshot(
    config: &cluster_core::model::Config,
    overlay: &Overlay,
    health: &HealthView,
) -> Vec<RealSnap> {
    let mut out = Vec::new();
    for s in config.services.values() {
        for r in &s.reals {
            let p = effective::programmed(s, r, overlay.get(&s.key, r));
            out.push(RealSnap {
                service: s.key.to_string(),
                real: r.endpoint(),
                configured_weight: r.weight,
                effective_weight: if p.in_kernel { p.weight } else { 0 },
                health_up: health.get(&s.key, &r.address, r.port).map(|h| h.up),
            });
        }
    }
    out
}

/// A flag as a gauge value.
pub fn flag(b: bool) -> i64 {
    i64::from(b)
}
