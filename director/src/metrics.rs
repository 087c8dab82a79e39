//! `GET /metrics`: this director's state in the OpenMetrics text format (prefix `lvs_director_`),
//! on its own plain-HTTP address (`[metrics] listen`). Nothing is polled in the background: each
//! scrape reads the Raft metrics, the VIP watchdog, the reconciler, the agent registry, the
//! weight overlay, the health view and (with `[ipvs] enabled`) the kernel's IPVS table and its
//! STATS64 counters, into a plain [`Snapshot`] that [`encode`] turns into text.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cluster_core::effective::{self, Overlay};
use cluster_core::health::HealthView;
use cluster_core::ipvs::Stats64;
use cluster_core::model::fmt_endpoint;
use cluster_core::store::LogStore;
use director::ipvs::reconciler::{IpvsStatus, PASS_BUCKETS_S};
use lvs_ops::openmetrics::{counter, counters, gauge, gauges, Labels};
use openraft::ServerState;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use serde::Deserialize;
use tokio::sync::watch;
use tracing::debug;

use crate::ipvs_view::{self, KernelTable};
use crate::node::{known_leader, Node};
use crate::vip::{VipCounters, VipStatus};

/// A kernel read that takes longer is abandoned for this scrape (the IPVS families are absent).
const KERNEL_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The `[metrics]` section of the director config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `/metrics` is served (plain HTTP); no endpoint when absent.
    pub listen: Option<String>,
}

impl MetricsConfig {
    /// The listen address, checked: a numeric IP and a port other than 0.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, String> {
        let Some(v) = &self.listen else {
            return Ok(None);
        };
        let a: SocketAddr = v.parse().map_err(|_| {
            format!("metrics.listen: {v:?} is not HOST:PORT with a numeric IP address")
        })?;
        if a.port() == 0 {
            return Err(format!(
                "metrics.listen: {v:?} has port 0; give a fixed port"
            ));
        }
        Ok(Some(a))
    }

    /// Checks the section; `taken` are the other listen addresses of this director.
    pub fn validate(&self, taken: &[(&str, &str)]) -> Result<(), String> {
        let Some(a) = self.listen_addr()? else {
            return Ok(());
        };
        for (key, other) in taken {
            if other.parse::<SocketAddr>().ok() == Some(a) {
                return Err(format!(
                    "metrics.listen: {:?} is already {key}",
                    self.listen.as_deref().unwrap_or_default()
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The snapshot: plain values read at scrape time.

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
    pub kernel: Option<Result<KernelTable, String>>,
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

// ---------------------------------------------------------------------------------------------
// Encoding.

fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// The kernel's STATS64 counters of services or real servers, one family per counter.
fn stats_families(
    enc: &mut DescriptorEncoder,
    what: &str,
    rows: &[(Labels, Stats64)],
) -> fmt::Result {
    type Pick = fn(&Stats64) -> u64;
    let fields: [(&str, &str, Pick); 5] = [
        ("connections", "connections scheduled", |s| s.conns),
        ("packets_in", "packets received", |s| s.inpkts),
        ("packets_out", "packets sent", |s| s.outpkts),
        ("bytes_in", "bytes received", |s| s.inbytes),
        ("bytes_out", "bytes sent", |s| s.outbytes),
    ];
    for (name, help, pick) in fields {
        counters(
            enc,
            &format!("ipvs_{what}_{name}"),
            &format!("IPVS {help} per {what}, from the kernel's counters (STATS64)"),
            rows.iter().map(|(l, s)| (l.clone(), pick(s))).collect(),
        )?;
    }
    Ok(())
}

/// Every family of one scrape.
fn families(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    gauges(
        e,
        "build_info",
        "The director's version",
        None,
        vec![(vec![("version", s.version.to_string())], 1i64)],
    )?;

    // Raft.
    let r = &s.raft;
    gauge(
        e,
        "raft_node_id",
        "This director's Raft node id",
        None,
        r.node_id as i64,
    )?;
    gauge(e, "raft_term", "Current Raft term", None, r.term as i64)?;
    gauge(
        e,
        "raft_is_leader",
        "1 while this director is the Raft leader",
        None,
        flag(r.is_leader),
    )?;
    gauge(
        e,
        "raft_leader_id",
        "Node id of the leader as this director knows it; -1 when unknown",
        None,
        r.leader.map_or(-1, |l| l as i64),
    )?;
    gauges(
        e,
        "raft_state",
        "This director's Raft role (1 for the current one)",
        None,
        ["leader", "follower", "candidate", "learner", "shutdown"]
            .into_iter()
            .map(|st| (vec![("state", st.to_string())], flag(st == r.state)))
            .collect(),
    )?;
    for (name, help, v) in [
        (
            "raft_last_log_index",
            "Index of the last entry in this director's log",
            r.last_log_index,
        ),
        (
            "raft_commit_index",
            "Index of the last entry known committed",
            r.commit_index,
        ),
        (
            "raft_applied_index",
            "Index of the last entry applied to the state machine",
            r.applied_index,
        ),
    ] {
        gauge(e, name, help, None, v.map_or(-1, |i| i as i64))?;
    }
    if let Some(ms) = r.quorum_ack_ms {
        gauge(
            e,
            "raft_quorum_ack_age",
            "Time since a quorum last acknowledged this leader (leader only)",
            Some(&Unit::Seconds),
            ms as f64 / 1000.0,
        )?;
    }
    gauges(
        e,
        "raft_members",
        "Members of the cluster by role",
        None,
        vec![
            (vec![("role", "voter".to_string())], r.voters as i64),
            (vec![("role", "learner".to_string())], r.learners as i64),
        ],
    )?;
    gauge(
        e,
        "config_revision",
        "Revision of the replicated configuration this director has applied",
        None,
        s.config_revision as i64,
    )?;

    // VIPs.
    gauges(
        e,
        "vip_held",
        "1 while this director holds the VIP",
        None,
        s.vips
            .iter()
            .map(|v| {
                (
                    vec![
                        ("name", v.group.clone()),
                        ("address", v.address.to_string()),
                        ("interface", v.interface.clone()),
                    ],
                    flag(v.held),
                )
            })
            .collect(),
    )?;
    counters(
            e,
            "vip_announcements",
            "VIP announcements sent: gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6)",
            vec![
                (vec![("kind", "gratuitous_arp".to_string())], s.vip_counts.garp_sent),
                (vec![("kind", "unsolicited_na".to_string())], s.vip_counts.na_sent),
            ],
        )?;
    counter(
        e,
        "vip_acquisitions",
        "VIPs added to an interface",
        s.vip_counts.acquired,
    )?;
    counter(
        e,
        "vip_releases",
        "VIPs removed from an interface",
        s.vip_counts.released,
    )?;

    // Real servers: config, overlay, health.
    let rl = |x: &RealSnap| vec![("service", x.service.clone()), ("real", x.real.clone())];
    gauges(
        e,
        "real_configured_weight",
        "Weight of the real server in the replicated config",
        None,
        s.reals
            .iter()
            .map(|x| (rl(x), x.configured_weight as i64))
            .collect(),
    )?;
    gauges(
            e,
            "real_effective_weight",
            "Weight this director programs: the config with the leader's computed weights, health and drains laid over it",
            None,
            s.reals
                .iter()
                .map(|x| (rl(x), x.effective_weight as i64))
                .collect(),
        )?;
    gauges(
        e,
        "real_health_up",
        "Health check verdict: 1 up, 0 down (checked real servers, on the leader)",
        None,
        s.reals
            .iter()
            .filter_map(|x| x.health_up.map(|u| (rl(x), flag(u))))
            .collect(),
    )?;

    // Kernel IPVS.
    if let Some(k) = &s.kernel {
        gauge(
            e,
            "ipvs_kernel_read_ok",
            "1 when this scrape read the kernel's IPVS table",
            None,
            flag(k.is_ok()),
        )?;
        if let Ok(t) = k {
            let svc: Vec<(Labels, Stats64)> = t
                .services
                .iter()
                .map(|(sv, _)| (vec![("service", sv.service.key.to_string())], sv.stats))
                .collect();
            stats_families(e, "service", &svc)?;
            let dests: Vec<(Labels, &cluster_core::ipvs::KDestEntry)> = t
                .services
                .iter()
                .flat_map(|(sv, ds)| {
                    ds.iter().map(move |d| {
                        (
                            vec![
                                ("service", sv.service.key.to_string()),
                                ("real", fmt_endpoint(&d.dest.address, d.dest.port)),
                            ],
                            d,
                        )
                    })
                })
                .collect();
            let real_stats: Vec<(Labels, Stats64)> =
                dests.iter().map(|(l, d)| (l.clone(), d.stats)).collect();
            stats_families(e, "real", &real_stats)?;
            gauges(
                e,
                "ipvs_real_active_connections",
                "Active connections per real server (kernel)",
                None,
                dests
                    .iter()
                    .map(|(l, d)| (l.clone(), d.active_conns as i64))
                    .collect(),
            )?;
            gauges(
                e,
                "ipvs_real_inactive_connections",
                "Inactive connections per real server (kernel)",
                None,
                dests
                    .iter()
                    .map(|(l, d)| (l.clone(), d.inactive_conns as i64))
                    .collect(),
            )?;
            gauges(
                e,
                "ipvs_real_weight",
                "Weight of the real server in the kernel table",
                None,
                dests
                    .iter()
                    .map(|(l, d)| (l.clone(), d.dest.weight as i64))
                    .collect(),
            )?;
        }
    }

    // Reconciler.
    let st = &s.reconciler;
    gauge(
        e,
        "reconcile_enabled",
        "1 when this director programs its kernel's IPVS table",
        None,
        flag(st.enabled),
    )?;
    if st.enabled {
        gauge(
            e,
            "ipvs_available",
            "1 while the kernel's IPVS can be programmed",
            None,
            flag(st.unavailable.is_none()),
        )?;
    }
    counters(
            e,
            "reconcile_runs",
            "Reconciler passes: full (kernel dump and diff) and incremental (services a change touched)",
            vec![
                (vec![("kind", "full".to_string())], st.full_passes),
                (vec![("kind", "incremental".to_string())], st.incremental_passes),
            ],
        )?;
    counter(
        e,
        "reconcile_errors",
        "Failed kernel operations and failed reads of the kernel table",
        st.errors_total,
    )?;
    counter(
        e,
        "reconcile_operations",
        "Kernel operations applied",
        st.total_ops,
    )?;
    gauge(
        e,
        "reconcile_object_errors",
        "Objects whose last kernel operation failed",
        None,
        st.errors.len() as i64,
    )?;
    gauge(
        e,
        "reconcile_revision",
        "Config revision the kernel was last reconciled to",
        None,
        st.revision as i64,
    )?;
    if st.last_pass_ms > 0 {
        gauge(
            e,
            "reconcile_last_duration",
            "Duration of the last reconciler pass",
            Some(&Unit::Seconds),
            st.last_pass_us as f64 / 1e6,
        )?;
    }
    if st.last_ok_pass_ms > 0 {
        gauge(
            e,
            "reconcile_last_success_timestamp",
            "When the last pass in which every kernel operation succeeded ended (Unix time)",
            Some(&Unit::Seconds),
            st.last_ok_pass_ms as f64 / 1000.0,
        )?;
    }
    let mut buckets: Vec<(f64, u64)> = PASS_BUCKETS_S
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .enumerate()
        .map(|(i, b)| (b, st.pass_buckets.get(i).copied().unwrap_or(0)))
        .collect();
    if buckets.is_empty() {
        buckets.push((f64::INFINITY, 0));
    }
    let count: u64 = buckets.iter().map(|(_, n)| n).sum();
    let mut m = e.encode_descriptor(
        "reconcile_duration",
        "Duration of reconciler passes",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    m.encode_histogram::<NoLabelSet>(st.pass_us_sum as f64 / 1e6, count, &buckets, None)?;

    // Agents.
    let a = &s.agents;
    gauge(
        e,
        "agents_connected",
        "Agents with an open report stream to this director",
        None,
        a.connected as i64,
    )?;
    counter(
        e,
        "agent_reports",
        "Agent reports received",
        a.reports_total,
    )?;
    counter(
        e,
        "agent_reports_rejected",
        "Agent reports rejected",
        a.reports_rejected,
    )?;
    gauges(
        e,
        "agent_report_age",
        "Time since the agent's last accepted report (leader only)",
        Some(&Unit::Seconds),
        a.report_age_s
            .iter()
            .map(|(n, age)| (vec![("agent", n.clone())], *age))
            .collect(),
    )?;
    Ok(())
}

/// The OpenMetrics text of `s`.
pub fn encode(s: Snapshot) -> String {
    lvs_ops::openmetrics::encode("lvs_director", move |e| families(e, &s))
}

// ---------------------------------------------------------------------------------------------
// Gathering.

/// What a scrape reads.
pub struct Sources {
    pub node: Arc<Node>,
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
    async fn kernel(&self) -> Option<Result<KernelTable, String>> {
        if !self.ipvs_enabled {
            return None;
        }
        let Ok(busy) = self.kernel_busy.clone().try_lock_owned() else {
            return Some(Err(
                "an earlier read of the kernel table is still running".into()
            ));
        };
        let read = tokio::task::spawn_blocking(move || {
            let r = ipvs_view::read_kernel();
            drop(busy);
            r
        });
        Some(
            match tokio::time::timeout(KERNEL_READ_TIMEOUT, read).await {
                Err(_) => Err(format!(
                    "reading the kernel table took over {KERNEL_READ_TIMEOUT:?}"
                )),
                Ok(Err(e)) => Err(format!("kernel read task: {e}")),
                Ok(Ok(r)) => r,
            },
        )
    }

    pub async fn snapshot(&self) -> Snapshot {
        let kernel = self.kernel().await;
        if let Some(Err(e)) = &kernel {
            debug!(error = %e, "metrics: no IPVS counters this scrape");
        }
        let node = &self.node;
        let m = node.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters = membership.voter_ids().count();
        let members = membership.nodes().count();
        let is_leader = m.state == ServerState::Leader && m.current_leader == Some(m.id);
        let raft = RaftSnap {
            node_id: m.id,
            term: m.current_term,
            state: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
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
        let (config, config_revision) = node.state.read(|s| (s.config.clone(), s.revision));
        let overlay = self.overlay.borrow().clone();
        let health = self.health.borrow().clone();
        let agents = {
            let g = node.agents.lock();
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
            vips: node.vips.get(),
            vip_counts: VipCounts {
                garp_sent: c.garp_sent.load(Ordering::Relaxed),
                na_sent: c.na_sent.load(Ordering::Relaxed),
                acquired: c.acquired.load(Ordering::Relaxed),
                released: c.released.load(Ordering::Relaxed),
            },
            reals: reals_snapshot(&config, &overlay, &health),
            reconciler: node.ipvs.get(),
            kernel,
            agents,
        }
    }
}

/// Binds the metrics address (the error names `metrics.listen`).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    lvs_ops::metrics_http::bind(addr)
        .await
        .map_err(anyhow::Error::msg)
}

/// Serves `/metrics` on `listener` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sources: Arc<Sources>,
    mut stop: watch::Receiver<bool>,
) {
    let render = move || {
        let sources = sources.clone();
        async move { encode(sources.snapshot().await) }
    };
    lvs_ops::metrics_http::serve(listener, render, async move {
        let _ = stop.wait_for(|v| *v).await;
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_core::health::RealHealth;
    use cluster_core::ipvs::{KDest, KDestEntry, KForward, KInfo, KServiceEntry, KTimeouts};
    use cluster_core::model::{Config, FailureAction};

    fn config() -> Config {
        Config::from_toml(
            r#"
[[service]]
key = "tcp/10.0.0.1:80"
scheduler = "wrr"

[[service.reals]]
address = "10.0.1.1"
port = 80
weight = 5

[[service.reals]]
address = "10.0.1.2"
port = 80
weight = 3

[[service]]
key = "tcp/[2001:db8::1]:443"
scheduler = "wlc"

[[service.reals]]
address = "2001:db8::21"
port = 443
weight = 10
"#,
        )
        .unwrap()
    }

    fn kernel(cfg: &Config) -> KernelTable {
        let svc = cfg.services.values().next().unwrap();
        let dest = |addr: &str, weight: u32, conns: u64, inbytes: u64| KDestEntry {
            dest: KDest {
                address: addr.parse().unwrap(),
                port: 80,
                forward: KForward::Route,
                weight,
                upper_threshold: 0,
                lower_threshold: 0,
                tun_type: 0,
                tun_port: 0,
                tun_flags: 0,
            },
            active_conns: 2,
            inactive_conns: 7,
            persist_conns: 0,
            stats: Stats64 {
                conns,
                inpkts: conns * 3,
                outpkts: 0,
                inbytes,
                outbytes: 0,
                ..Default::default()
            },
        };
        KernelTable {
            info: KInfo {
                version: 0x010201,
                conn_tab_size: 4096,
            },
            timeouts: KTimeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300,
            },
            services: vec![(
                KServiceEntry {
                    service: cluster_core::ipvs::reconcile::kernel_service(svc),
                    stats: Stats64 {
                        conns: 40,
                        inpkts: 120,
                        inbytes: 9000,
                        ..Default::default()
                    },
                },
                vec![dest("10.0.1.1", 5, 10, 2000), dest("10.0.1.2", 0, 30, 7000)],
            )],
            daemons: vec![],
        }
    }

    fn snapshot(kernel_read: Option<Result<KernelTable, String>>) -> Snapshot {
        let cfg = config();
        let key = *cfg.services.keys().next().unwrap();
        let mut overlay = Overlay::default();
        overlay.services.entry(key).or_default().insert(
            ("10.0.1.2".parse().unwrap(), 80),
            cluster_core::effective::RealOverride {
                drained: true,
                ..Default::default()
            },
        );
        let mut health = HealthView::default();
        health.reals.insert(
            (key, "10.0.1.1".parse().unwrap(), 80),
            RealHealth {
                up: false,
                since_ms: 1,
                detail: "connection refused".into(),
                last_latency_us: 0,
                checks: 3,
                failures: 3,
                action: FailureAction::Remove,
            },
        );
        overlay.services.entry(key).or_default().insert(
            ("10.0.1.1".parse().unwrap(), 80),
            cluster_core::effective::RealOverride {
                down: Some(FailureAction::Remove),
                ..Default::default()
            },
        );
        Snapshot {
            version: "9.9.9",
            raft: RaftSnap {
                node_id: 2,
                term: 7,
                state: "leader",
                is_leader: true,
                leader: Some(2),
                last_log_index: Some(41),
                commit_index: Some(40),
                applied_index: Some(39),
                quorum_ack_ms: Some(1500),
                voters: 3,
                learners: 1,
            },
            config_revision: 12,
            vips: vec![VipStatus {
                group: "web".into(),
                address: "192.0.2.10/24".parse().unwrap(),
                interface: "eth0".into(),
                held: true,
                since_ms: 5,
                error: None,
            }],
            vip_counts: VipCounts {
                garp_sent: 6,
                na_sent: 5,
                acquired: 2,
                released: 1,
            },
            reals: reals_snapshot(&cfg, &overlay, &health),
            reconciler: IpvsStatus {
                enabled: true,
                full_passes: 4,
                incremental_passes: 9,
                errors_total: 2,
                total_ops: 17,
                last_pass_ms: 1_700_000_000_000,
                last_pass_us: 1500,
                last_ok_pass_ms: 1_700_000_000_500,
                pass_buckets: {
                    let mut b = vec![0; PASS_BUCKETS_S.len() + 1];
                    b[3] = 10; // <= 1 ms
                    b[4] = 2; // <= 2.5 ms
                    b[PASS_BUCKETS_S.len()] = 1; // above every bound
                    b
                },
                pass_us_sum: 20_000,
                ..Default::default()
            },
            kernel: kernel_read,
            agents: AgentsSnap {
                connected: 1,
                reports_total: 30,
                reports_rejected: 2,
                report_age_s: vec![("web-1".into(), 0.25)],
            },
        }
    }

    fn has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in:\n{text}"
        );
    }

    #[test]
    fn every_family_from_a_snapshot() {
        let cfg = config();
        let t = encode(snapshot(Some(Ok(kernel(&cfg)))));
        assert!(t.ends_with("# EOF\n"), "{t}");
        has(&t, "lvs_director_build_info{version=\"9.9.9\"} 1");
        has(&t, "# TYPE lvs_director_raft_term gauge");
        has(&t, "lvs_director_raft_term 7");
        has(&t, "lvs_director_raft_is_leader 1");
        has(&t, "lvs_director_raft_leader_id 2");
        has(&t, "lvs_director_raft_state{state=\"leader\"} 1");
        has(&t, "lvs_director_raft_state{state=\"follower\"} 0");
        has(&t, "lvs_director_raft_last_log_index 41");
        has(&t, "lvs_director_raft_commit_index 40");
        has(&t, "lvs_director_raft_applied_index 39");
        has(
            &t,
            "# UNIT lvs_director_raft_quorum_ack_age_seconds seconds",
        );
        has(&t, "lvs_director_raft_quorum_ack_age_seconds 1.5");
        has(&t, "lvs_director_raft_members{role=\"voter\"} 3");
        has(&t, "lvs_director_raft_members{role=\"learner\"} 1");
        has(&t, "lvs_director_config_revision 12");
        has(
            &t,
            "lvs_director_vip_held{name=\"web\",address=\"192.0.2.10/24\",interface=\"eth0\"} 1",
        );
        has(&t, "# TYPE lvs_director_vip_announcements counter");
        has(
            &t,
            "lvs_director_vip_announcements_total{kind=\"gratuitous_arp\"} 6",
        );
        has(
            &t,
            "lvs_director_vip_announcements_total{kind=\"unsolicited_na\"} 5",
        );
        has(&t, "lvs_director_vip_acquisitions_total 2");
        has(&t, "lvs_director_vip_releases_total 1");
        // Configured vs effective: 10.0.1.1 failed its check (removed), 10.0.1.2 is drained.
        let r1 = "{service=\"tcp/10.0.0.1:80\",real=\"10.0.1.1:80\"}";
        let r2 = "{service=\"tcp/10.0.0.1:80\",real=\"10.0.1.2:80\"}";
        let r6 = "{service=\"tcp/[2001:db8::1]:443\",real=\"[2001:db8::21]:443\"}";
        has(&t, &format!("lvs_director_real_configured_weight{r1} 5"));
        has(&t, &format!("lvs_director_real_effective_weight{r1} 0"));
        has(&t, &format!("lvs_director_real_configured_weight{r2} 3"));
        has(&t, &format!("lvs_director_real_effective_weight{r2} 0"));
        has(&t, &format!("lvs_director_real_effective_weight{r6} 10"));
        has(&t, &format!("lvs_director_real_health_up{r1} 0"));
        assert!(
            !t.contains(&format!("lvs_director_real_health_up{r2}")),
            "{t}"
        );
        // Kernel counters and gauges.
        has(&t, "lvs_director_ipvs_kernel_read_ok 1");
        has(&t, "# TYPE lvs_director_ipvs_real_connections counter");
        has(
            &t,
            "lvs_director_ipvs_service_connections_total{service=\"tcp/10.0.0.1:80\"} 40",
        );
        has(
            &t,
            "lvs_director_ipvs_service_bytes_in_total{service=\"tcp/10.0.0.1:80\"} 9000",
        );
        has(
            &t,
            &format!("lvs_director_ipvs_real_connections_total{r1} 10"),
        );
        has(
            &t,
            &format!("lvs_director_ipvs_real_connections_total{r2} 30"),
        );
        has(
            &t,
            &format!("lvs_director_ipvs_real_packets_in_total{r2} 90"),
        );
        has(
            &t,
            &format!("lvs_director_ipvs_real_bytes_in_total{r2} 7000"),
        );
        has(&t, &format!("lvs_director_ipvs_real_bytes_out_total{r2} 0"));
        has(
            &t,
            &format!("lvs_director_ipvs_real_active_connections{r1} 2"),
        );
        has(
            &t,
            &format!("lvs_director_ipvs_real_inactive_connections{r1} 7"),
        );
        has(&t, &format!("lvs_director_ipvs_real_weight{r2} 0"));
        // Reconciler.
        has(&t, "lvs_director_reconcile_runs_total{kind=\"full\"} 4");
        has(
            &t,
            "lvs_director_reconcile_runs_total{kind=\"incremental\"} 9",
        );
        has(&t, "lvs_director_reconcile_errors_total 2");
        has(&t, "lvs_director_reconcile_operations_total 17");
        has(&t, "lvs_director_ipvs_available 1");
        has(&t, "lvs_director_reconcile_last_duration_seconds 0.0015");
        has(
            &t,
            "lvs_director_reconcile_last_success_timestamp_seconds 1700000000.5",
        );
        has(
            &t,
            "# TYPE lvs_director_reconcile_duration_seconds histogram",
        );
        has(&t, "lvs_director_reconcile_duration_seconds_count 13");
        has(&t, "lvs_director_reconcile_duration_seconds_sum 0.02");
        has(
            &t,
            "lvs_director_reconcile_duration_seconds_bucket{le=\"0.0005\"} 0",
        );
        has(
            &t,
            "lvs_director_reconcile_duration_seconds_bucket{le=\"0.001\"} 10",
        );
        has(
            &t,
            "lvs_director_reconcile_duration_seconds_bucket{le=\"0.0025\"} 12",
        );
        has(
            &t,
            "lvs_director_reconcile_duration_seconds_bucket{le=\"2.5\"} 12",
        );
        has(
            &t,
            "lvs_director_reconcile_duration_seconds_bucket{le=\"+Inf\"} 13",
        );
        // Agents.
        has(&t, "lvs_director_agents_connected 1");
        has(&t, "lvs_director_agent_reports_total 30");
        has(&t, "lvs_director_agent_reports_rejected_total 2");
        has(
            &t,
            "lvs_director_agent_report_age_seconds{agent=\"web-1\"} 0.25",
        );
    }

    #[test]
    fn absent_values_and_unreadable_kernel() {
        let mut s = snapshot(Some(Err("IPVS is not available".into())));
        s.raft = RaftSnap {
            node_id: 3,
            state: "follower",
            ..Default::default()
        };
        s.reconciler.last_ok_pass_ms = 0;
        s.reconciler.last_pass_ms = 0;
        s.reconciler.unavailable = Some("IPVS is not available".into());
        let t = encode(s);
        has(&t, "lvs_director_raft_is_leader 0");
        has(&t, "lvs_director_raft_leader_id -1");
        has(&t, "lvs_director_raft_commit_index -1");
        has(&t, "lvs_director_ipvs_kernel_read_ok 0");
        has(&t, "lvs_director_ipvs_available 0");
        for absent in [
            "lvs_director_raft_quorum_ack_age_seconds ",
            "lvs_director_ipvs_real_connections_total",
            "lvs_director_reconcile_last_success_timestamp_seconds ",
            "lvs_director_reconcile_last_duration_seconds ",
        ] {
            assert!(!t.contains(absent), "{absent} present in:\n{t}");
        }
        // IPVS disabled: no kernel families at all, not even the read flag.
        let t = encode(snapshot(None));
        assert!(!t.contains("ipvs_kernel_read_ok"), "{t}");
        assert!(!t.contains("ipvs_real_connections"), "{t}");
    }

    #[test]
    fn listen_address_is_checked() {
        let c = |v: &str| MetricsConfig {
            listen: Some(v.into()),
        };
        assert_eq!(MetricsConfig::default().listen_addr().unwrap(), None);
        assert_eq!(
            c("127.0.0.1:9100").listen_addr().unwrap(),
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert!(c("[::]:9100").validate(&[]).is_ok());
        let e = c("localhost:9100").validate(&[]).unwrap_err();
        assert!(
            e.contains("metrics.listen") && e.contains("\"localhost:9100\""),
            "{e}"
        );
        let e = c("10.0.0.1").validate(&[]).unwrap_err();
        assert!(e.contains("\"10.0.0.1\""), "{e}");
        let e = c("10.0.0.1:0").validate(&[]).unwrap_err();
        assert!(e.contains("port 0"), "{e}");
        let e = c("127.0.0.1:7001")
            .validate(&[("api_addr", "127.0.0.1:7001")])
            .unwrap_err();
        assert!(e.contains("api_addr"), "{e}");
    }
}
