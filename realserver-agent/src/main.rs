//! `realserver-agent`: runs on each LVS real server. Prepares the host for direct routing or
//! tunnelling (`setup`/`teardown`, `check`), reports load to the leader director (`run`), and
//! drains the host for maintenance (`drain`/`ready`/`status`/`metric` over the control socket).

mod agent;
mod atomic_file;
mod check;
mod client;
mod collect;
mod config;
mod control;
mod host;
mod metrics;
mod prepare;
mod probe;
mod procfs;
mod sample;
mod setup;
mod shared;
mod status;

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::control::Request;
use crate::setup::{Mode, Wanted};

#[derive(Parser, Debug)]
#[command(version, about = "Agent on an LVS real server")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Debug)]
struct SocketArg {
    /// The agent's control socket.
    #[arg(
        long,
        env = "REALSERVER_AGENT_SOCKET",
        default_value = config::DEFAULT_CONTROL_SOCKET
    )]
    socket: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Report whether the ARP sysctls are set for DR/TUN (arp_ignore=1, arp_announce=2).
    /// Exits 1 when they are not.
    Check {
        /// Root of the sysctl tree (for tests).
        #[arg(long, default_value = "/proc/sys/net/ipv4/conf", hide = true)]
        sysctl_root: PathBuf,
    },
    /// Prepare this host for DR or TUN: VIPs on lo (DR) or tunl0/ip6tnl0 (TUN), ARP sysctls,
    /// rp_filter off for TUN. Idempotent; records what it changed for `teardown`.
    Setup {
        /// Read mode and VIPs from this config's [setup] section (flags override it).
        #[arg(long, short = 'c', env = "REALSERVER_AGENT_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        /// A VIP (repeat for several).
        #[arg(long = "vip", value_name = "ADDR", value_parser = parse_vip_arg)]
        vips: Vec<IpAddr>,
        /// Where setup records what it changed [default: STATE_DIR/setup.json].
        #[arg(long)]
        state_file: Option<PathBuf>,
        /// Print the changes without making them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Undo what `setup` recorded: remove the VIPs it added, restore the sysctls it changed.
    Teardown {
        #[arg(long, short = 'c', env = "REALSERVER_AGENT_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        state_file: Option<PathBuf>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Report load to the leader director every interval and serve the control socket.
    Run {
        #[arg(long, short = 'c', env = "REALSERVER_AGENT_CONFIG")]
        config: PathBuf,
        /// Validate the config and exit.
        #[arg(long)]
        check: bool,
        /// Report over plaintext gRPC without a certificate, to directors started with
        /// --insecure (labs only), instead of the mTLS of the [tls] section.
        #[arg(long, env = "REALSERVER_AGENT_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
        insecure: bool,
    },
    /// Stop new connections to this host: report draining until `ready`. Waits until a director
    /// has acknowledged it (exit 1 on timeout; draining stays set). Survives agent restarts.
    Drain {
        #[command(flatten)]
        socket: SocketArg,
        /// Return as soon as the agent has set draining.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the acknowledgement.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Take new connections again (ends a drain).
    Ready {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Show the agent's state: directors, connection, last ack, draining, last report.
    Status {
        #[command(flatten)]
        socket: SocketArg,
        /// Print the raw JSON reply.
        #[arg(long)]
        json: bool,
    },
    /// Post an application metric (e.g. busy 0.42); it expires unless posted again within three
    /// report intervals.
    Metric {
        #[command(flatten)]
        socket: SocketArg,
        name: String,
        #[arg(allow_hyphen_values = true)]
        value: f64,
    },
}

fn parse_vip_arg(s: &str) -> Result<IpAddr, config::VipError> {
    config::parse_vip(s)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,h2=warn,tower=warn,hyper=warn")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn current_thread() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn load_optional(config: &Option<PathBuf>) -> Result<Option<Config>> {
    config.as_deref().map(Config::load).transpose()
}

fn state_file(explicit: Option<PathBuf>, cfg: &Option<Config>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        cfg.as_ref()
            .map(|c| c.state_dir.clone())
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_STATE_DIR))
            .join("setup.json")
    })
}

/// Prints a reply's warning (drain state not persisted) on stderr.
fn warn_from(reply: &serde_json::Value) {
    if let Some(w) = reply.get("warning").and_then(|w| w.as_str()) {
        eprintln!("warning: {w}");
    }
}

fn main_inner(args: Args) -> Result<i32> {
    match args.cmd {
        Cmd::Check { sysctl_root } => {
            let (lines, ok) = check::check(&sysctl_root)?;
            for l in lines {
                println!("{l}");
            }
            Ok(if ok { 0 } else { 1 })
        }
        Cmd::Setup {
            config,
            mode,
            vips,
            state_file: sf,
            dry_run,
        } => {
            let cfg = load_optional(&config)?;
            let section = cfg.as_ref().and_then(|c| c.setup.clone());
            let mode = mode.or(section.as_ref().map(|s| s.mode)).ok_or_else(|| {
                anyhow!("setup: give --mode dr|tun (or `mode` in the config's [setup] section)")
            })?;
            let vips = if vips.is_empty() {
                section.map(|s| s.vips).unwrap_or_default()
            } else {
                vips
            };
            let want = Wanted { mode, vips };
            let path = state_file(sf, &cfg);
            current_thread()?.block_on(prepare::setup(&want, &path, dry_run))?;
            Ok(0)
        }
        Cmd::Teardown {
            config,
            state_file: sf,
            dry_run,
        } => {
            let cfg = load_optional(&config)?;
            let path = state_file(sf, &cfg);
            current_thread()?.block_on(prepare::teardown(&path, dry_run))?;
            Ok(0)
        }
        Cmd::Run {
            config,
            check,
            insecure,
        } => {
            let cfg = Config::load(&config)?;
            cfg.require_directors()
                .map_err(|e| anyhow!("config {}: {e}", config.display()))?;
            let tls = cfg
                .transport(insecure)
                .map_err(|e| anyhow!("config {}: {e}", config.display()))?;
            if check {
                println!("config {} is valid", config.display());
                return Ok(0);
            }
            init_logging();
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("starting the runtime")?
                .block_on(agent::run(cfg, tls))?;
            Ok(0)
        }
        Cmd::Drain {
            socket,
            no_wait,
            timeout,
        } => {
            let req = Request::Drain {
                wait: !no_wait,
                timeout_ms: Some(timeout.as_millis() as u64),
            };
            let reply = control::request(&socket.socket, &req, timeout + Duration::from_secs(5))?;
            warn_from(&reply);
            match reply.get("director").and_then(|d| d.as_str()) {
                Some(d) => println!(
                    "draining; acknowledged by director {d} (report seq {})",
                    reply["acked_seq"]
                ),
                None => println!("draining (not waiting for an acknowledgement)"),
            }
            Ok(0)
        }
        Cmd::Ready { socket } => {
            let reply =
                control::request(&socket.socket, &Request::Ready {}, Duration::from_secs(10))?;
            warn_from(&reply);
            println!("ready: taking new connections once the next report is acknowledged");
            Ok(0)
        }
        Cmd::Status { socket, json } => {
            let reply =
                control::request(&socket.socket, &Request::Status {}, Duration::from_secs(10))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reply["status"])?);
            } else {
                let s: shared::StatusView = serde_json::from_value(reply["status"].clone())
                    .context("the agent's status reply has an unexpected shape")?;
                print!("{}", status::render(&s));
            }
            Ok(0)
        }
        Cmd::Metric {
            socket,
            name,
            value,
        } => {
            shared::validate_metric(&name, value)?;
            control::request(
                &socket.socket,
                &Request::Metric { name, value },
                Duration::from_secs(10),
            )?;
            Ok(0)
        }
    }
}

fn main() {
    if let Some(code) = lvs_ops::docs::from_args(<Args as clap::CommandFactory>::command) {
        std::process::exit(code);
    }
    let args = Args::parse();
    match main_inner(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("realserver-agent: error: {e:#}");
            std::process::exit(1);
        }
    }
}
