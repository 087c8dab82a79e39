//! Command-line grammar: global flags, verbs and their ipvsadm-style flags (clap derive).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use ipnet::IpNet;

use crate::flags::{parse_endpoint as endpoint, Endpoint, OutputFormat};

/// The `--output json` documents, kept in step with `output/json.rs`.
const JSON_HELP: &str = "\
Service flags work as in ipvsadm: -t/-u/--sctp-service ADDR:PORT or -f MARK [-6].
IPv6 addresses are written [2001:db8::1]:80. Any director answers; writes reach the leader.
The kernel views (list --stats/--rate, conns, ipvs) show the director that answers: the first
reachable one of --endpoints.

--output json documents (field names are stable):
  list, export      {revision, node_id, config}  config = the TOML model: service[], vip_group[], sync
  list --stats|--rate, ipvs
                    {endpoint, node_id, config_revision, unavailable, version, conn_tab_size,
                     timeouts, services[], daemons[], reconciler, read_ms}  service = {key, scheduler,
                     sched_flags[], persistent, timeout, netmask, one_packet, pe_name, managed, stats,
                     dests[]}  dest = {address, port, forward, weight, config_weight, upper_threshold,
                     lower_threshold, active_conns, inactive_conns, persist_conns, stats, tunnel_type,
                     tunnel_port, tunnel_csum}  stats = {conns, inpkts, outpkts, inbytes, outbytes,
                     cps, inpps, outpps, inbps, outbps}  reconciler = {enabled, unavailable, revision,
                     full_passes, incremental_passes, last_pass_ms, last_pass_us, last_ops,
                     total_ops, errors[], foreign[], daemons[], sync_mode, holder}
                     error = {object, op, message, since_ms}
  conns             {endpoint, node_id, file, truncated, conns[]}  conn = {protocol, client,
                     virtual, real, state, expires_s, origin, pe_name, pe_data}
  vip list          {revision, node_id, vip_groups[]}
  agents            {leader, agents[], stats}  agent = {agent, addresses[], peer, connected, age_ms,
                     reports, rejected, last_error, draining, cpu_busy, cpu_steal, load1,
                     mem_available_bytes, probes[], app}  probe = {port, kind, ok, latency_ms, error}
                     stats = {period_ms, reports_total, reports_rejected, steps, weight_writes,
                     report_to_weight_p50_ms, report_to_weight_p99_ms, report_to_weight_max_ms}
  weights           {leader, reals[], sorry[]}  real = {service, real, policy, configured_weight,
                     effective_weight, in_kernel, phase, capacity, health, health_detail,
                     health_since_ms, draining, agent}  sorry = [service, sorry_server]
  writes            {revision, changes[]}  change = {op: add|remove|modify, object, detail}
  apply             {revision, applied, dry_run, changes[]}
  history           {revision, entries[]}  entry = {revision, time_ms, time, principal, command, changes[]}
  watch             one entry per line
  cluster status    {endpoint, node_id, state, leader_id, leader_api_addr, term, last_log_index,
                     commit_index, applied_index, revision, millis_since_quorum_ack, members[]}
  cluster add|remove {members[]}  member = {id, raft_addr, api_addr, voter, reachable,
                     matched_index, probe_ms}
Absent optional values are null.

Errors: one line on stderr, `lvsctl: error: CODE: FIELD.PATH: message`, exit status 1;
usage errors exit with status 2.";

#[derive(Debug, Parser)]
#[command(
    name = "lvsctl",
    version,
    about = "Administer an LVS (IPVS) director cluster with ipvsadm habits",
    after_help = "Service flags work as in ipvsadm: -t/-u/--sctp-service ADDR:PORT or -f MARK [-6].\n\
                  IPv6 addresses are written [2001:db8::1]:80. Any director answers; writes reach the leader.",
    after_long_help = JSON_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Director API addresses, tried in order
    #[arg(
        long,
        global = true,
        env = "LVSCTL_ENDPOINTS",
        value_name = "HOST:PORT,...",
        default_value = "127.0.0.1:7001"
    )]
    pub endpoints: String,
    /// Output format (long only: -o is ipvsadm's one-packet flag)
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Seconds allowed for each connection attempt and each call
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        default_value = "10",
        value_parser = crate::flags::parse_secs
    )]
    pub timeout: Duration,
    /// Who is making the change, as recorded in history [default: $USER@hostname]
    #[arg(long, global = true, value_name = "NAME")]
    pub principal: Option<String>,
    /// Let the director asked answer reads from its own, possibly stale, copy
    #[arg(long, global = true)]
    pub stale: bool,
    /// PEM file of the cluster CA (mTLS)
    #[arg(long, global = true, env = "LVSCTL_CA", value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// PEM file of your operator certificate (mTLS; `lvsctl pki issue operator`)
    #[arg(long, global = true, env = "LVSCTL_CERT", value_name = "FILE")]
    pub cert: Option<std::path::PathBuf>,
    /// PEM file of your operator certificate's private key
    #[arg(long, global = true, env = "LVSCTL_KEY", value_name = "FILE")]
    pub key: Option<std::path::PathBuf>,
    /// Talk plaintext gRPC to directors started with --insecure (no certificates)
    #[arg(long, global = true, env = "LVSCTL_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,
}

impl Global {
    /// The operator's key material, or `None` for plaintext when --insecure was given.
    pub fn tls(&self) -> anyhow::Result<Option<lvs_proto::tls::Tls>> {
        match (&self.ca, &self.cert, &self.key, self.insecure) {
            (None, None, None, true) => Ok(None),
            (Some(_), _, _, true) | (_, Some(_), _, true) | (_, _, Some(_), true) => {
                anyhow::bail!("--insecure: cannot be combined with --ca/--cert/--key")
            }
            (Some(ca), Some(cert), Some(key), false) => lvs_proto::tls::TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }
            .load()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{}", e.to_string().replacen("tls.", "--", 1))),
            (None, None, None, false) => anyhow::bail!(
                "no client certificate: give --ca, --cert and --key (or LVSCTL_CA, LVSCTL_CERT, \
                 LVSCTL_KEY), or --insecure for directors started with --insecure"
            ),
            (ca, cert, key, false) => {
                let missing: Vec<&str> = [("--ca", ca), ("--cert", cert), ("--key", key)]
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(n, _)| *n)
                    .collect();
                anyhow::bail!(
                    "{}: missing; mTLS needs --ca, --cert and --key",
                    missing.join(", ")
                )
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Add, edit or delete a virtual service (ipvsadm -A/-E/-D)
    #[command(subcommand)]
    Service(ServiceVerb),
    /// Add, edit or delete a real server (ipvsadm -a/-e/-d)
    #[command(subcommand)]
    Real(RealVerb),
    /// List virtual services and real servers (ipvsadm -Ln); --stats/--rate show the answering
    /// director's kernel table
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// List the answering director's IPVS connection entries (ipvsadm -Lnc)
    Conns(ConnsArgs),
    /// The answering director's kernel IPVS status: reconciler passes, errors, sync daemons
    Ipvs,
    /// Real-server agents as the leader sees them: last report, its age, drain state
    Agents,
    /// Each real server's configured weight beside the weight the leader programs, with its
    /// weight-policy phase, health and agent
    Weights {
        /// Only this service (e.g. tcp/10.0.0.10:80)
        service: Option<String>,
    },
    /// Replace the whole configuration with a TOML file
    Apply(ApplyArgs),
    /// Print the current configuration as TOML that `apply` accepts
    Export,
    /// Show recent configuration changes
    History(HistoryArgs),
    /// Follow configuration changes as they are applied
    Watch(WatchArgs),
    /// Manage the VIP groups the leader holds
    #[command(subcommand)]
    Vip(VipVerb),
    /// Set or clear a service's health check
    #[command(subcommand, name = "healthcheck", visible_alias = "hc")]
    HealthCheck(HealthCheckVerb),
    /// Set or clear the IPVS connection-sync daemon settings
    #[command(subcommand)]
    Sync(SyncVerb),
    /// Create the cluster CA and issue director, agent and operator certificates (local)
    #[command(subcommand)]
    Pki(crate::pki::PkiVerb),
    /// Cluster status and membership
    #[command(subcommand)]
    Cluster(ClusterVerb),
    /// Convert another tool's rules into the TOML `apply` takes (local, no director):
    /// `import ipvsadm FILE` reads ipvsadm-save / ipvsadm -Sn output, `import keepalived FILE` a
    /// keepalived.conf with its includes ("-" = stdin); what is left out is warned about on stderr
    Import {
        /// What the file is: ipvsadm or keepalived
        kind: String,
        /// The file to read, or - for standard input
        file: String,
    },
    /// Simulate the schedulers and the load-informed weight policy (local, no director)
    Simulate(crate::simulate::SimulateArgs),
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Exactly one way of naming a virtual service.
#[derive(Debug, Clone, Default, Args)]
#[group(id = "service", required = true, multiple = false)]
pub struct ServiceSel {
    /// TCP virtual service
    #[arg(short = 't', long = "tcp-service", value_name = "ADDR:PORT", value_parser = endpoint)]
    pub tcp: Option<Endpoint>,
    /// UDP virtual service
    #[arg(short = 'u', long = "udp-service", value_name = "ADDR:PORT", value_parser = endpoint)]
    pub udp: Option<Endpoint>,
    /// SCTP virtual service
    #[arg(
        long = "sctp-service",
        visible_alias = "sctp",
        value_name = "ADDR:PORT",
        value_parser = endpoint
    )]
    pub sctp: Option<Endpoint>,
    /// Firewall-mark virtual service
    #[arg(short = 'f', long = "fwmark-service", value_name = "MARK", value_parser = crate::flags::parse_fwmark)]
    pub fwmark: Option<u32>,
}

/// Like `ServiceSel` but optional (`list` shows everything without one).
#[derive(Debug, Clone, Default, Args)]
#[group(id = "service_filter", required = false, multiple = false)]
pub struct OptServiceSel {
    /// TCP virtual service
    #[arg(short = 't', long = "tcp-service", value_name = "ADDR:PORT", value_parser = endpoint)]
    pub tcp: Option<Endpoint>,
    /// UDP virtual service
    #[arg(short = 'u', long = "udp-service", value_name = "ADDR:PORT", value_parser = endpoint)]
    pub udp: Option<Endpoint>,
    /// SCTP virtual service
    #[arg(
        long = "sctp-service",
        visible_alias = "sctp",
        value_name = "ADDR:PORT",
        value_parser = endpoint
    )]
    pub sctp: Option<Endpoint>,
    /// Firewall-mark virtual service
    #[arg(short = 'f', long = "fwmark-service", value_name = "MARK", value_parser = crate::flags::parse_fwmark)]
    pub fwmark: Option<u32>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServiceRef {
    #[command(flatten)]
    pub sel: ServiceSel,
    /// The fwmark service is IPv6
    // `requires = "fwmark"` would be satisfied by any member of the service group, so the
    // address-based flags are excluded explicitly.
    #[arg(short = '6', long = "ipv6", conflicts_with_all = ["tcp", "udp", "sctp"])]
    pub ipv6: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServiceAttrs {
    /// Scheduler: rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf twos [add default: wlc]
    #[arg(short = 's', long = "scheduler", value_name = "NAME")]
    pub scheduler: Option<String>,
    /// Persistent service, with timeout in seconds
    #[arg(
        short = 'p',
        long = "persistent",
        value_name = "TIMEOUT",
        num_args = 0..=1,
        default_missing_value = "300"
    )]
    pub persistent: Option<u32>,
    /// Make the service non-persistent (edit)
    #[arg(long = "no-persistent", conflicts_with_all = ["persistent", "netmask"])]
    pub no_persistent: bool,
    /// Persistence granularity: dotted mask (IPv4) or prefix length (IPv6)
    #[arg(short = 'M', long = "netmask", value_name = "NETMASK")]
    pub netmask: Option<String>,
    /// Scheduler flags, comma separated: sh-fallback,sh-port,mh-fallback,mh-port (or none)
    #[arg(short = 'b', long = "sched-flags", value_name = "FLAGS")]
    pub sched_flags: Option<String>,
    /// One-packet scheduling (UDP)
    #[arg(short = 'o', long = "ops")]
    pub ops: bool,
    /// Turn one-packet scheduling off (edit)
    #[arg(long = "no-ops", conflicts_with = "ops")]
    pub no_ops: bool,
    /// How the leader derives real-server weights: static, load or latency
    #[arg(long = "weight-policy", value_name = "POLICY")]
    pub weight_policy: Option<String>,
    /// Sorry server, used while no real server is available (all down or drained)
    #[arg(long = "sorry-server", value_name = "ADDR[:PORT]", value_parser = endpoint)]
    pub sorry_server: Option<Endpoint>,
    /// How packets reach the sorry server: dr, masq or tunnel [default: dr]
    #[arg(long = "sorry-forward", value_name = "MODE", requires = "sorry_server")]
    pub sorry_forward: Option<String>,
    /// Remove the sorry server (edit)
    #[arg(long = "no-sorry-server", conflicts_with = "sorry_server")]
    pub no_sorry_server: bool,
}

#[derive(Debug, Args)]
pub struct ServiceWrite {
    #[command(flatten)]
    pub svc: ServiceRef,
    #[command(flatten)]
    pub attrs: ServiceAttrs,
}

#[derive(Debug, Subcommand)]
pub enum ServiceVerb {
    /// Add a virtual service (ipvsadm -A)
    Add(ServiceWrite),
    /// Change the given attributes of a virtual service, keeping the rest (ipvsadm -E)
    Edit(ServiceWrite),
    /// Delete a virtual service and its real servers (ipvsadm -D)
    #[command(visible_alias = "delete")]
    Del(ServiceRef),
}

#[derive(Debug, Clone, Default, Args)]
#[group(id = "forward", multiple = false)]
pub struct ForwardSel {
    /// Direct routing (the default)
    #[arg(short = 'g', long = "gatewaying")]
    pub gatewaying: bool,
    /// NAT
    #[arg(short = 'm', long = "masquerading")]
    pub masquerading: bool,
    /// Tunnelling (IP-in-IP unless --tun-type says otherwise)
    #[arg(short = 'i', long = "ipip")]
    pub ipip: bool,
}

#[derive(Debug, Clone, Default, Args)]
#[group(id = "tun_csum", multiple = false)]
pub struct CsumSel {
    /// No tunnel checksum (gue/gre)
    #[arg(long = "tun-nocsum")]
    pub nocsum: bool,
    /// Tunnel checksum (gue/gre)
    #[arg(long = "tun-csum")]
    pub csum: bool,
    /// Remote tunnel checksum offload (gue)
    #[arg(long = "tun-remcsum")]
    pub remcsum: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RealAttrs {
    #[command(flatten)]
    pub forward: ForwardSel,
    /// Tunnel type: ipip, gue or gre
    #[arg(long = "tun-type", value_name = "TYPE")]
    pub tun_type: Option<String>,
    /// GUE destination port
    #[arg(long = "tun-port", value_name = "PORT")]
    pub tun_port: Option<u16>,
    #[command(flatten)]
    pub csum: CsumSel,
    /// Weight, 0..=65535 [add default: 1]
    #[arg(short = 'w', long = "weight", value_name = "N")]
    pub weight: Option<u32>,
    /// Upper connection threshold (0 = none)
    #[arg(short = 'x', long = "u-threshold", value_name = "N")]
    pub u_threshold: Option<u32>,
    /// Lower connection threshold (0 = none)
    #[arg(short = 'y', long = "l-threshold", value_name = "N")]
    pub l_threshold: Option<u32>,
}

#[derive(Debug, Clone, Args)]
pub struct RealRef {
    #[command(flatten)]
    pub svc: ServiceRef,
    /// Real server; the port defaults to the service's
    #[arg(short = 'r', long = "real-server", value_name = "ADDR[:PORT]", value_parser = endpoint)]
    pub real: Endpoint,
}

#[derive(Debug, Args)]
pub struct RealWrite {
    #[command(flatten)]
    pub real: RealRef,
    #[command(flatten)]
    pub attrs: RealAttrs,
}

#[derive(Debug, Subcommand)]
pub enum RealVerb {
    /// Add a real server to a service (ipvsadm -a)
    Add(RealWrite),
    /// Change the given attributes of a real server, keeping the rest (ipvsadm -e)
    Edit(RealWrite),
    /// Remove a real server from a service (ipvsadm -d)
    #[command(visible_alias = "delete")]
    Del(RealRef),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("kernel_view").args(["stats", "rate"]).multiple(false)))]
pub struct ListArgs {
    #[command(flatten)]
    pub sel: OptServiceSel,
    /// The fwmark service is IPv6
    // Without a service `-6` means nothing; with an address-based one it is a mistake.
    #[arg(
        short = '6',
        long = "ipv6",
        requires = "fwmark",
        conflicts_with_all = ["tcp", "udp", "sctp"]
    )]
    pub ipv6: bool,
    /// The answering director's kernel table with its traffic counters (ipvsadm -Ln --stats)
    #[arg(long)]
    pub stats: bool,
    /// The answering director's kernel table with its rate estimates (ipvsadm -Ln --rate)
    #[arg(long)]
    pub rate: bool,
    /// Exact numbers instead of K, M, G and T units (with --stats or --rate)
    #[arg(long, requires = "kernel_view")]
    pub exact: bool,
}

#[derive(Debug, Args)]
pub struct ConnsArgs {
    /// Only the entries received from the sync master
    #[arg(long)]
    pub sync: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Desired configuration (TOML); - reads standard input
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
    /// Show the changes without writing them
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse unless the configuration is still at this revision
    #[arg(long, value_name = "N")]
    pub expect_revision: Option<u64>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show only the last N entries (default: all kept)
    #[arg(short = 'n', long = "limit", value_name = "N")]
    pub limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Start after this revision (default: the current one)
    #[arg(long, value_name = "N")]
    pub from_revision: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum VipVerb {
    /// Add or replace a VIP group
    Set {
        name: String,
        /// Interface the leader adds the addresses to
        #[arg(long, value_name = "IF")]
        interface: String,
        /// Addresses with prefix length, e.g. 192.0.2.10/24
        #[arg(required = true, value_name = "ADDR/PREFIX", value_parser = crate::flags::parse_vip)]
        addresses: Vec<IpNet>,
    },
    /// Delete a VIP group
    #[command(visible_alias = "delete")]
    Del { name: String },
    /// List VIP groups
    #[command(visible_alias = "ls")]
    List,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Probe kind: tcp, http, https, udp, dns or exec
    #[arg(long, value_name = "KIND")]
    pub kind: String,
    #[arg(long, value_name = "MS")]
    pub interval_ms: Option<u32>,
    #[arg(long, value_name = "MS")]
    pub timeout_ms: Option<u32>,
    /// Successes before a real server counts as up
    #[arg(long, value_name = "N")]
    pub rise: Option<u32>,
    /// Failures before a real server counts as down
    #[arg(long, value_name = "N")]
    pub fall: Option<u32>,
    /// quiesce (weight 0) or remove
    #[arg(long, value_name = "ACTION")]
    pub on_failure: Option<String>,
    /// Port to probe (default: the real server's)
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// http/https: request path
    #[arg(long)]
    pub path: Option<String>,
    /// http/https: Host header
    #[arg(long)]
    pub host: Option<String>,
    /// http/https: accepted status, e.g. 200 or 200-399
    #[arg(long, value_name = "STATUS")]
    pub expect_status: Option<String>,
    /// http/https: text the body must contain
    #[arg(long, value_name = "TEXT")]
    pub body_contains: Option<String>,
    /// udp: payload to send
    #[arg(long, value_name = "TEXT")]
    pub send: Option<String>,
    /// udp: text the reply must contain
    #[arg(long, value_name = "TEXT")]
    pub expect: Option<String>,
    /// dns: name to query
    #[arg(long, value_name = "NAME")]
    pub query_name: Option<String>,
    /// dns: record type (A, AAAA, ...)
    #[arg(long, value_name = "TYPE")]
    pub query_type: Option<String>,
    /// exec: command and arguments (put this flag last; exit 0 = healthy)
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "ARG")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum HealthCheckVerb {
    /// Set (replace) a service's health check
    Set {
        #[command(flatten)]
        svc: ServiceRef,
        #[command(flatten)]
        check: Box<CheckArgs>,
    },
    /// Remove a service's health check
    Clear {
        #[command(flatten)]
        svc: ServiceRef,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncVerb {
    /// Set the sync-daemon settings
    Set {
        /// multicast: kernel sync daemons (backup everywhere, master on the VIP holder);
        /// stateless: no sync traffic, mh scheduling + sloppy_tcp (see the README)
        #[arg(long, value_name = "MODE", default_value = "multicast", value_parser = ["multicast", "stateless"])]
        mode: String,
        /// Interface the sync daemon uses (multicast mode)
        #[arg(long, value_name = "IF", default_value = "")]
        interface: String,
        #[arg(long, value_name = "N", default_value_t = 0)]
        syncid: u8,
        /// Multicast group (default: the kernel's, 224.0.0.81)
        #[arg(long, value_name = "ADDR", value_parser = crate::flags::parse_group)]
        group: Option<IpAddr>,
        #[arg(long, value_name = "PORT", default_value_t = 8848)]
        port: u16,
        #[arg(long, value_name = "TTL", default_value_t = 1)]
        ttl: u8,
    },
    /// Stop syncing connections
    Clear,
}

#[derive(Debug, Subcommand)]
pub enum ClusterVerb {
    /// The answering director's view of the cluster
    Status,
    /// Add a director (as a learner, then a voter once caught up)
    Add {
        id: u64,
        #[arg(long, value_name = "HOST:PORT")]
        raft_addr: String,
        #[arg(long, value_name = "HOST:PORT")]
        api_addr: String,
        /// Stop after adding it as a learner
        #[arg(long)]
        learner_only: bool,
    },
    /// Remove a director
    #[command(visible_alias = "rm")]
    Remove { id: u64 },
}
