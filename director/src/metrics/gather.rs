//! Gathering a scrape: reads the Raft metrics, the VIP watchdog, the reconciler, the agent
//! registry, the weight overlay, the health view and (with `[ipvs] enabled`) the kernel's IPVS
//! table into a [`Snapshot`]. Nothing is polled in the background.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cluster_core::effective::Overlay;
use cluster_core::health::HealthView;
use cluster_core::store::LogStore;
use openraft::ServerState;
use tokio::sync::watch;
use tracing::debug;

use super::snapshot::{reals_snapshot, AgentsSnap, RaftSnap, Snapshot, VipCounts};
use crate::api::kernel_view::{self, KernelReadError, KernelTable};
use crate::raft::{known_leader, role_name, RaftHandle};
use crate::views::Views;
use crate::vip::VipCounters;

/// A kernel read that takes longer is abandoned for this scrape (the IPVS families are absent).
const KERNEL_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// What a scrape reads.
pub struct Sources {
    pub raft: Arc<RaftHandle>,
    pub views: Arc<Views>,
    /// A clone of the Raft log store, for the commit index.
    pub log: LogStore,
    pub vip_counters: Arc<VipCounters>,
    pub overlay: watch::Receiver<Arc<Overlay>>,
    pub health: watch::Receiver<Arc<HealthView>>,
    pub ipvs_enabled: bool,
    /// One kernel read at a time (held by the read itself, even one a scrape gave up on): a
    /// scrape arriving during another read skips the kernel.
    pub kernel_busy: Arc<tokio::sync::Mutex<()>>,
}

impl Sources {
    async fn kernel(&self) -> Option<Result<KernelTable, KernelReadError>> {
        if !self.ipvs_enabled {
            return None;
        }
        let Ok(busy) = self.kernel_busy.clone().try_lock_owned() else {
            return Some(Err(KernelReadError::Busy));
        };
        let read = tokio::task::spawn_blocking(move || {
            let r = kernel_view::read_kernel();
            drop(busy);
            r
        });
        Some(
            match tokio::time::timeout(KERNEL_READ_TIMEOUT, read).await {
                Err(_) => Err(KernelReadError::TimedOut(KERNEL_READ_TIMEOUT)),
                Ok(Err(e)) => Err(KernelReadError::Task(e.to_string())),
                Ok(Ok(r)) => r,
            },
        )
    }

    pub async fn snapshot(&self) -> Snapshot {
        let kernel = self.kernel().await;
        if let Some(Err(e)) = &kernel {
            debug!(error = %e, "metrics: no IPVS counters this scrape");
        }
        let m = self.raft.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters = membership.voter_ids().count();
        let members = membership.nodes().count();
        let is_leader = m.state == ServerState::Leader && m.current_leader == Some(m.id);
        let raft = RaftSnap {
            node_id: m.id,
            term: m.current_term,
            state: role_name(m.state),
            is_leader,
            leader: known_leader(&m),
            last_log_index: m.last_log_index,
            commit_index: self.log.committed_index(),
            applied_index: m.last_applied.map(|l| l.index),
            quorum_ack_ms: if is_leader {
                m.millis_since_quorum_ack
            } else {
                None
            },
            voters,
            learners: members.saturating_sub(voters),
        };
        let (config, config_revision) = self.raft.state.read(|s| (s.config.clone(), s.revision));
        let overlay = self.overlay.borrow().clone();
        let health = self.health.borrow().clone();
        let agents = {
            let g = self.views.agents.lock();
            AgentsSnap {
                connected: g.agents.values().filter(|a| a.streams > 0).count() as u64,
                reports_total: g.reports_total,
                reports_rejected: g.reports_rejected,
                report_age_s: if is_leader {
                    let mut v: Vec<(String, f64)> = g
                        .agents
                        .iter()
                        .filter_map(|(n, a)| {
                            a.last_at.map(|t| (n.clone(), t.elapsed().as_secs_f64()))
                        })
                        .collect();
                    v.sort_by(|a, b| a.0.cmp(&b.0));
                    v
                } else {
                    Vec::new()
                },
            }
        };
        let c = &self.vip_counters;
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            raft,
            config_revision,
            vips: self.views.vips.get(),
            vip_counts: VipCounts {
                garp_sent: c.garp_sent.load(Ordering::Relaxed),
                na_sent: c.na_sent.load(Ordering::Relaxed),
                acquired: c.acquired.load(Ordering::Relaxed),
                released: c.released.load(Ordering::Relaxed),
            },
            reals: reals_snapshot(&config, &overlay, &health),
            reconciler: self.views.ipvs.get(),
            kernel,
            agents,
        }
    }
}
