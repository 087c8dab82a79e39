//! The daemon's wiring and shutdown order. At start: the store and Raft, then the subsystems that
//! follow the applied config (VIP watchdog, IPVS reconciler, health checks, weight engine), then
//! the servers; a new cluster is bootstrapped last. At SIGTERM/SIGINT: report not serving,
//! release the VIPs first (so a new leader can take them once the lease runs out), stop the
//! checks and the reconciler, then Raft and the servers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use cluster_core::effective::Overlay;
use cluster_core::store::{self, DirectorNode, LogStore, Raft, StateHandle};
use lvs_proto::raft::raft_server::RaftServer;
use lvs_proto::v1::admin_server::AdminServer;
use lvs_proto::v1::agent_reports_server::AgentReportsServer;
use lvs_proto::v1::cluster_server::ClusterServer;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::agents::engine::Transition;
use crate::api::authz::Authz;
use crate::api::leader::LeaderApi;
use crate::api::{admin, cluster};
use crate::config::DirectorConfig;
use crate::health::HealthHandle;
use crate::raft::forward::Forwarder;
use crate::raft::network::{Network, Peers, MAX_MESSAGE};
use crate::raft::service::RaftService;
use crate::raft::RaftHandle;
use crate::server::{self, ServerTask};
use crate::views::Views;
use crate::{agents, health, ipvs, metrics, vip};

/// What the command line adds to the configuration file.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Initialise a new cluster unless the store already belongs to one.
    pub bootstrap: bool,
    /// Serve and dial plaintext gRPC instead of mTLS.
    pub insecure: bool,
}

/// The running subsystems, in the order they stop.
struct Subsystems {
    vips: vip::VipHandle,
    health: HealthHandle,
    ipvs: ipvs::reconciler::IpvsHandle,
    overlay: watch::Receiver<Arc<Overlay>>,
    registry: Arc<agents::Registry>,
    views: Arc<Views>,
}

/// Runs the director until SIGTERM or SIGINT.
pub async fn run(opts: Options, cfg: DirectorConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("data_dir: creating {}", cfg.data_dir.display()))?;
    let (log_store, sm) = store::open(&cfg.data_dir).context("data_dir: opening the store")?;
    let log_for_metrics = log_store.clone();
    let state = sm.handle();
    let tls = transport_security(opts.insecure, &cfg)?;
    let peers = Peers::new(tls.clone());
    let network = Network {
        self_id: cfg.node_id,
        peers: peers.clone(),
    };
    let raft = Raft::new(
        cfg.node_id,
        Arc::new(cfg.openraft_config()?),
        network,
        log_store,
        sm,
    )
    .await
    .context("starting raft")?;
    let subs = start_subsystems(&cfg, &raft, &state)?;
    let handle = Arc::new(RaftHandle {
        id: cfg.node_id,
        raft: raft.clone(),
        state,
        forward: Forwarder::new(peers),
        request_timeout: Duration::from_millis(cfg.request_timeout_ms),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let servers = start_servers(&cfg, tls.as_ref(), &handle, &subs, &stop_rx).await?;
    started(&cfg, tls.is_some());
    tokio::spawn(log_role_changes(raft.clone()));
    start_metrics(&cfg, &handle, &subs, log_for_metrics, &stop_rx).await?;
    if opts.bootstrap || cfg.bootstrap {
        bootstrap(&raft, &cfg).await?;
    }
    let why = shutdown_signal().await;
    shutdown(why, subs, servers, &raft, stop_tx).await
}

/// The VIP watchdog, the IPVS reconciler, the health checks and the weight engine.
fn start_subsystems(cfg: &DirectorConfig, raft: &Raft, state: &StateHandle) -> Result<Subsystems> {
    let vips = vip::spawn(
        raft.clone(),
        state.clone(),
        vip::Settings {
            node_id: cfg.node_id,
            profile: cfg.raft.profile()?,
            announce: cfg.vip,
            held_file: cfg.data_dir.join("vips-held.json"),
        },
    )
    .context("starting the VIP manager")?;
    let (overlay_tx, overlay_rx) = watch::channel(Arc::new(Overlay::default()));
    let ipvs = ipvs::reconciler::spawn(
        state.clone(),
        vips.holding(),
        overlay_rx.clone(),
        ipvs::reconciler::Settings {
            config: cfg.ipvs.clone(),
            owned_file: cfg.data_dir.join("ipvs-owned.json"),
        },
    )
    .context("starting the IPVS reconciler")?;
    let health = health::spawn(state.clone(), vips.holding());
    let registry = agents::Registry::new();
    let engine = agents::engine::spawn(
        state.clone(),
        registry.clone(),
        vips.holding(),
        health.view(),
        overlay_tx,
        cfg.weights.clone(),
        cfg.ipvs.enabled,
    );
    forward_health_events(&health, &engine.transitions);
    let views = Arc::new(Views::new(
        vips.reader(),
        ipvs.reader(),
        registry.clone(),
        engine.snapshot.clone(),
        engine.transitions.clone(),
    ));
    Ok(Subsystems {
        vips,
        health,
        ipvs,
        overlay: overlay_rx,
        registry,
        views,
    })
}

/// The Raft and API servers, serving until `stop` turns true.
async fn start_servers(
    cfg: &DirectorConfig,
    tls: Option<&lvs_proto::tls::Tls>,
    raft: &Arc<RaftHandle>,
    subs: &Subsystems,
    stop: &watch::Receiver<bool>,
) -> Result<Servers> {
    let raft_incoming = server::bind("raft_addr", &cfg.raft_addr).await?;
    let api_incoming = server::bind("api_addr", &cfg.api_addr).await?;
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let authz = |server| Authz {
        server,
        tls: tls.is_some(),
    };
    let leader = Arc::new(LeaderApi {
        raft: raft.clone(),
        views: subs.views.clone(),
    });
    let vips = subs.views.vips.clone();
    let raft_svc = RaftServer::new(RaftService {
        raft: raft.clone(),
        held_vips: Box::new(move || vips.held()),
        leader_calls: leader.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let raft_server = server::serve(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .layer(authz("raft"))
            .add_service(raft_svc),
        raft_incoming,
        tls,
        "raft",
        stopped(stop.clone()),
    );
    let (health_reporter, health_service) = server::health_service().await;
    let api_server = server::serve(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .layer(authz("api"))
            .add_service(health_service)
            .add_service(server::reflection_service()?)
            .add_service(AdminServer::new(admin::AdminService {
                raft: raft.clone(),
                views: subs.views.clone(),
                leader: leader.clone(),
                shutdown: stop.clone(),
            }))
            .add_service(ClusterServer::new(cluster::ClusterService {
                raft: raft.clone(),
                views: subs.views.clone(),
                leader,
            }))
            .add_service(AgentReportsServer::new(agents::service::AgentService::new(
                raft.clone(),
                subs.registry.clone(),
            ))),
        api_incoming,
        tls,
        "api",
        stopped(stop.clone()),
    );
    Ok(Servers {
        raft: raft_server,
        api: api_server,
        health: health_reporter,
    })
}

struct Servers {
    raft: ServerTask,
    api: ServerTask,
    health: tonic_health::server::HealthReporter,
}

/// `/metrics`, when `[metrics] listen` is set.
async fn start_metrics(
    cfg: &DirectorConfig,
    raft: &Arc<RaftHandle>,
    subs: &Subsystems,
    log: LogStore,
    stop: &watch::Receiver<bool>,
) -> Result<()> {
    let Some(addr) = cfg.metrics.listen_addr()? else {
        return Ok(());
    };
    let sources = Arc::new(metrics::Sources {
        raft: raft.clone(),
        views: subs.views.clone(),
        log,
        vip_counters: subs.vips.counters(),
        overlay: subs.overlay.clone(),
        health: subs.health.view(),
        ipvs_enabled: cfg.ipvs.enabled,
        kernel_busy: Default::default(),
    });
    let listener = metrics::bind(addr).await?;
    tokio::spawn(metrics::serve(listener, sources, stop.clone()));
    Ok(())
}

fn started(cfg: &DirectorConfig, tls: bool) {
    info!(
        node_id = cfg.node_id,
        raft = %cfg.raft_addr,
        api = %cfg.api_addr,
        data_dir = %cfg.data_dir.display(),
        tls,
        "director started"
    );
    lvs_ops::notify::ready(&format!(
        "node {}: raft {}, api {}",
        cfg.node_id, cfg.raft_addr, cfg.api_addr
    ));
    lvs_ops::notify::spawn_watchdog();
}

/// Stops everything in order; see the module doc.
async fn shutdown(
    why: &str,
    subs: Subsystems,
    servers: Servers,
    raft: &Raft,
    stop: watch::Sender<bool>,
) -> Result<()> {
    info!(signal = why, "shutting down");
    lvs_ops::notify::stopping(&format!("{why}: releasing VIPs, shutting down"));
    server::set_health(&servers.health, tonic_health::ServingStatus::NotServing).await;
    // VIPs go first: openraft 0.9 cannot hand leadership over, so the others elect a new leader
    // once the lease runs out, and by then this node must hold nothing.
    let Subsystems {
        vips, health, ipvs, ..
    } = subs;
    tokio::task::spawn_blocking(move || vips.shutdown())
        .await
        .context("stopping the VIP manager")?;
    health.shutdown();
    tokio::task::spawn_blocking(move || ipvs.shutdown())
        .await
        .context("stopping the IPVS reconciler")?;
    let _ = stop.send(true);
    if let Err(e) = raft.shutdown().await {
        warn!(error = %e, "raft shutdown");
    }
    server::join("raft", servers.raft).await;
    server::join("api", servers.api).await;
    info!("stopped");
    Ok(())
}

/// The key material to serve and dial with, or plaintext when the operator asked for it.
fn transport_security(insecure: bool, cfg: &DirectorConfig) -> Result<Option<lvs_proto::tls::Tls>> {
    match (cfg.load_tls()?, insecure) {
        (Some(_), true) => anyhow::bail!(
            "--insecure: the configuration has a [tls] section; remove one of the two"
        ),
        (Some(t), false) => Ok(Some(t)),
        (None, true) => {
            warn!(
                "--insecure: the Raft and API ports speak plaintext gRPC with no authentication; \
                 anyone who can reach them can change the configuration and join the cluster"
            );
            Ok(None)
        }
        (None, false) => anyhow::bail!(
            "tls: the configuration has no [tls] section (ca, cert, key); create them with \
             `lvsctl pki`, or pass --insecure to run without TLS (labs only)"
        ),
    }
}

async fn bootstrap(raft: &Raft, cfg: &DirectorConfig) -> Result<()> {
    if raft.is_initialized().await? {
        info!("store already belongs to a cluster; --bootstrap ignored");
        return Ok(());
    }
    let mut members = BTreeMap::new();
    members.insert(
        cfg.node_id,
        DirectorNode {
            raft_addr: cfg.raft_addr.clone(),
            api_addr: cfg.api_addr.clone(),
        },
    );
    for p in &cfg.peers {
        members.insert(
            p.id,
            DirectorNode {
                raft_addr: p.raft_addr.clone(),
                api_addr: p.api_addr.clone(),
            },
        );
    }
    let ids: Vec<u64> = members.keys().copied().collect();
    raft.initialize(members)
        .await
        .context("initialising the cluster")?;
    info!(?ids, "bootstrapped a new cluster");
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

/// Health-check transitions go to the watch stream with the other derived-state transitions.
fn forward_health_events(health: &HealthHandle, out: &broadcast::Sender<Transition>) {
    let mut rx = health.events();
    let out = out.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let verdict = if e.up { "up" } else { "down" };
                    let _ = out.send(Transition {
                        object: format!(
                            "real {} {}",
                            e.service,
                            cluster_core::model::fmt_endpoint(&e.address, e.port)
                        ),
                        detail: format!("health: {verdict} ({})", e.detail),
                    });
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Logs this node's Raft role and the leader whenever either changes.
async fn log_role_changes(raft: Raft) {
    let mut rx = raft.metrics();
    let mut seen = None;
    loop {
        let (state, leader, term) = {
            let m = rx.borrow_and_update();
            (m.state, m.current_leader, m.current_term)
        };
        if seen != Some((state, leader)) {
            seen = Some((state, leader));
            info!(role = ?state, leader = ?leader, term, "raft role");
            let l = leader.map_or_else(|| "none".to_string(), |l| l.to_string());
            lvs_ops::notify::status(&format!("raft {state:?}, leader {l}, term {term}"));
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
