//! `director`: one member of the replicated IPVS director cluster. Starts the Raft node on sled
//! storage, the internal Raft service and the admin/cluster API, bootstraps a new cluster when
//! asked, and shuts down cleanly on SIGTERM/SIGINT.

mod agents;
mod api;
mod authz;
mod cluster_api;
mod config;
mod ipvs_view;
mod metrics;
mod node;
mod raft_net;
mod raft_service;
mod vip;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use cluster_core::store::{self, DirectorNode, Raft};
use lvs_proto::raft::raft_server::RaftServer;
use lvs_proto::v1::admin_server::AdminServer;
use lvs_proto::v1::agent_reports_server::AgentReportsServer;
use lvs_proto::v1::cluster_server::ClusterServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{error, info, warn};

use crate::config::DirectorConfig;
use crate::node::Node;
use crate::raft_net::{Network, Peers, MAX_MESSAGE};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A director of the LVS cluster.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Director configuration file (TOML).
    #[arg(long, short = 'c', env = "DIRECTOR_CONFIG")]
    config: PathBuf,
    /// Initialise a new cluster made of this node and the configured peers, unless this node's
    /// store already belongs to a cluster (then it is a no-op, so it is safe to repeat).
    #[arg(long)]
    bootstrap: bool,
    /// Log format; the filter comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value = "text", env = "DIRECTOR_LOG_FORMAT")]
    log_format: LogFormat,
    /// Check the configuration file and exit.
    #[arg(long)]
    check: bool,
    /// Remove the VIPs that DATA_DIR/vips-held.json still lists (left by a director killed
    /// together with its guard) and exit: for systemd's ExecStopPost. Touches no other address;
    /// refuses while a director runs on DATA_DIR; exits 1 if a listed VIP is still present.
    #[arg(long, conflicts_with_all = ["bootstrap", "check"])]
    release_vips: bool,
    /// Serve and dial gRPC in plaintext with no client authentication, instead of the mTLS the
    /// `[tls]` section configures. For labs only: anyone who reaches the ports controls the
    /// cluster.
    #[arg(long, env = "DIRECTOR_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
    insecure: bool,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,openraft=warn,sled=warn,h2=warn,tower=warn")
    });
    // Colour only on a terminal: journald and log files get plain text.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
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

async fn bind(what: &str, addr: &str) -> Result<TcpListener> {
    let a: SocketAddr = addr.parse().with_context(|| format!("{what}: {addr:?}"))?;
    TcpListener::bind(a)
        .await
        .with_context(|| format!("{what}: cannot listen on {addr}"))
}

/// Serves `router` on `listener` until `stop`: behind the TLS acceptor when `tls` is given.
fn serve<L>(
    router: tonic::transport::server::Router<L>,
    listener: TcpListener,
    tls: Option<&lvs_proto::tls::Tls>,
    server: &'static str,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<Result<(), tonic::transport::Error>>
where
    L: tower::Layer<tonic::service::Routes> + Send + 'static,
    L::Service: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    <L::Service as tower::Service<http::Request<tonic::body::Body>>>::Future: Send + 'static,
    <L::Service as tower::Service<http::Request<tonic::body::Body>>>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    match tls {
        Some(t) => tokio::spawn(router.serve_with_incoming_shutdown(
            lvs_proto::tls::incoming(listener, t.server_config(), server),
            stop,
        )),
        None => tokio::spawn(
            router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop),
        ),
    }
}

/// The key material to serve and dial with, or plaintext when the operator asked for it.
fn transport_security(args: &Args, cfg: &DirectorConfig) -> Result<Option<lvs_proto::tls::Tls>> {
    match (cfg.load_tls()?, args.insecure) {
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
    let mut members = std::collections::BTreeMap::new();
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

/// Names the gRPC health service answers for: the whole server ("") and each API service.
const API_SERVICES: [&str; 4] = ["", "lvs.v1.Admin", "lvs.v1.Cluster", "lvs.v1.AgentReports"];

/// Health-check transitions go to the watch stream with the other derived-state transitions.
fn forward_health_events(
    health: &director::health::HealthHandle,
    out: &tokio::sync::broadcast::Sender<agents::engine::Transition>,
) {
    let mut rx = health.events();
    let out = out.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let _ = out.send(agents::engine::Transition {
                        object: format!(
                            "real {} {}",
                            e.service,
                            cluster_core::model::fmt_endpoint(&e.address, e.port)
                        ),
                        detail: if e.up {
                            format!("health: up ({})", e.detail)
                        } else {
                            format!("health: down ({})", e.detail)
                        },
                    });
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
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

async fn run(args: Args, cfg: DirectorConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("data_dir: creating {}", cfg.data_dir.display()))?;
    let (log_store, sm) = store::open(&cfg.data_dir).context("data_dir: opening the store")?;
    let log_for_metrics = log_store.clone();
    let state = sm.handle();
    let tls = transport_security(&args, &cfg)?;
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
    let (overlay_tx, overlay_rx) =
        watch::channel(Arc::new(cluster_core::effective::Overlay::default()));
    let ipvs = director::ipvs::reconciler::spawn(
        state.clone(),
        vips.holding(),
        overlay_rx.clone(),
        director::ipvs::reconciler::Settings {
            config: cfg.ipvs.clone(),
            owned_file: cfg.data_dir.join("ipvs-owned.json"),
        },
    )
    .context("starting the IPVS reconciler")?;
    let health = director::health::spawn(state.clone(), vips.holding());
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
    let node = Arc::new(Node {
        id: cfg.node_id,
        raft: raft.clone(),
        state,
        peers,
        request_timeout: Duration::from_millis(cfg.request_timeout_ms),
        vips: vips.reader(),
        ipvs: ipvs.reader(),
        agents: registry.clone(),
        engine: engine.snapshot.clone(),
        transitions: engine.transitions.clone(),
    });

    let raft_incoming = bind("raft_addr", &cfg.raft_addr).await?;
    let api_incoming = bind("api_addr", &cfg.api_addr).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let raft_svc = RaftServer::new(raft_service::RaftService { node: node.clone() })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let authz = |server| authz::Authz {
        server,
        tls: tls.is_some(),
    };
    let raft_server = serve(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .layer(authz("raft"))
            .add_service(raft_svc),
        raft_incoming,
        tls.as_ref(),
        "raft",
        stopped(stop_rx.clone()),
    );
    // Standard gRPC health (grpc_health_probe, load-balancer checks) and server reflection
    // (grpcurl) on the API port. Serving while the director runs, not serving from shutdown on.
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    for name in API_SERVICES {
        health_reporter
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
    }
    // Only the API services are advertised: the Raft service listens on another port.
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(lvs_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in API_SERVICES.iter().filter(|n| !n.is_empty()) {
        reflection = reflection.with_service_name(*name);
    }
    let reflection = reflection
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .context("building the gRPC reflection service")?;
    let api_server = serve(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .layer(authz("api"))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(AdminServer::new(api::AdminService {
                node: node.clone(),
                shutdown: stop_rx.clone(),
            }))
            .add_service(ClusterServer::new(cluster_api::ClusterService {
                node: node.clone(),
            }))
            .add_service(AgentReportsServer::new(agents::service::AgentService::new(
                node.clone(),
                registry.clone(),
            ))),
        api_incoming,
        tls.as_ref(),
        "api",
        stopped(stop_rx.clone()),
    );
    info!(
        node_id = cfg.node_id,
        raft = %cfg.raft_addr,
        api = %cfg.api_addr,
        data_dir = %cfg.data_dir.display(),
        tls = tls.is_some(),
        "director started"
    );
    lvs_ops::notify::ready(&format!(
        "node {}: raft {}, api {}",
        cfg.node_id, cfg.raft_addr, cfg.api_addr
    ));
    lvs_ops::notify::spawn_watchdog();

    tokio::spawn(log_role_changes(raft.clone()));
    if let Some(addr) = cfg.metrics.listen_addr().map_err(anyhow::Error::msg)? {
        let sources = Arc::new(metrics::Sources {
            node: node.clone(),
            log: log_for_metrics,
            vip_counters: vips.counters(),
            overlay: overlay_rx,
            health: health.view(),
            ipvs_enabled: cfg.ipvs.enabled,
            kernel_busy: Default::default(),
        });
        let listener = metrics::bind(addr).await?;
        tokio::spawn(metrics::serve(listener, sources, stop_rx.clone()));
    }

    if args.bootstrap || cfg.bootstrap {
        bootstrap(&raft, &cfg).await?;
    }

    let why = shutdown_signal().await;
    info!(signal = why, "shutting down");
    lvs_ops::notify::stopping(&format!("{why}: releasing VIPs, shutting down"));
    for name in API_SERVICES {
        health_reporter
            .set_service_status(name, tonic_health::ServingStatus::NotServing)
            .await;
    }
    // VIPs go first: openraft 0.9 cannot hand leadership over, so the others elect a new leader
    // once the lease runs out, and by then this node must hold nothing.
    tokio::task::spawn_blocking(move || vips.shutdown())
        .await
        .context("stopping the VIP manager")?;
    health.shutdown();
    tokio::task::spawn_blocking(move || ipvs.shutdown())
        .await
        .context("stopping the IPVS reconciler")?;
    let _ = stop_tx.send(true);
    if let Err(e) = raft.shutdown().await {
        warn!(error = %e, "raft shutdown");
    }
    for (name, h) in [("raft", raft_server), ("api", api_server)] {
        match tokio::time::timeout(Duration::from_secs(3), h).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => warn!(server = name, error = %e, "server error at shutdown"),
            Ok(Err(e)) => warn!(server = name, error = %e, "server task failed"),
            Err(_) => warn!(server = name, "server did not stop within 3 s"),
        }
    }
    drop(node);
    info!("stopped");
    Ok(())
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(vip::guard::GUARD_ARG) {
        std::process::exit(vip::guard::run(&argv[2..]));
    }
    if let Some(code) = lvs_ops::docs::from_args(<Args as clap::CommandFactory>::command) {
        std::process::exit(code);
    }
    let args = Args::parse();
    init_logging(args.log_format);
    let cfg = match DirectorConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("director: error: {e:#}");
            std::process::exit(2);
        }
    };
    if args.release_vips {
        std::process::exit(vip::release::run(&cfg.data_dir));
    }
    if args.check {
        // The key material is read here and at start, not by every config load: --release-vips
        // must work even when the certificate files are gone.
        if let Err(e) = cfg.load_tls() {
            eprintln!("director: error: {}: {e:#}", args.config.display());
            std::process::exit(2);
        }
        println!("{}: ok", args.config.display());
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(args, cfg)) {
        error!("{e:#}");
        eprintln!("director: error: {e:#}");
        std::process::exit(1);
    }
}
