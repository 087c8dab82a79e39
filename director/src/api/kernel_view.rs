//! Per-director IPVS reads for the admin API: the kernel table read live over generic netlink,
//! set next to the replicated config and the reconciler's status (`GetIpvs`), and the connection
//! entries from /proc (`ListConns`). The reads block and run on tokio's blocking pool. They are
//! never forwarded: each director answers for its own kernel (the process runs wholly inside its
//! network namespace, so /proc/net is that namespace's).

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::Ipv4Addr;
use std::path::Path;

use crate::ipvs::client::{IpvsClient, IpvsError};
use crate::ipvs::reconciler::{describe_daemon, IpvsStatus};
use cluster_core::ipvs::conns::{self, Conn, Origin};
use cluster_core::ipvs::{
    flags, tun_flags, tun_type, KDaemon, KDest, KDestEntry, KForward, KInfo, KService,
    KServiceEntry, KTimeouts,
};
use cluster_core::model::{Config, Family};
use lvs_proto::v1 as pb;

/// Where the kernel lists connections.
pub const PROC_NET: &str = "/proc/net";
/// Most connection entries one `ListConns` answer carries.
pub const CONN_CAP: usize = 500_000;
/// The reason given when the kernel has no IPVS (the client's wording).
const NO_IPVS: &str = "IPVS is not available: modprobe ip_vs";

/// One live read of the kernel table.
pub struct KernelTable {
    pub info: KInfo,
    pub timeouts: KTimeouts,
    /// Services in the kernel's order, each with its destinations.
    pub services: Vec<(KServiceEntry, Vec<KDestEntry>)>,
    pub daemons: Vec<KDaemon>,
}

/// Why the kernel table could not be read: the step that failed and the kernel's answer.
#[derive(Debug, thiserror::Error)]
pub enum KernelReadError {
    #[error("{0}")]
    Open(IpvsError),
    #[error("reading the IPVS {what}: {error}")]
    Read {
        what: &'static str,
        error: IpvsError,
    },
    #[error("reading the real servers of {service}: {error}")]
    Dests { service: String, error: IpvsError },
    /// Another read of the table is still running (metrics scrapes take turns).
    #[error("an earlier read of the kernel table is still running")]
    Busy,
    #[error("reading the kernel table took over {0:?}")]
    TimedOut(std::time::Duration),
    #[error("kernel read task: {0}")]
    Task(String),
}

/// Reads the whole kernel table over netlink (blocking).
pub fn read_kernel() -> Result<KernelTable, KernelReadError> {
    let read = |what| move |error| KernelReadError::Read { what, error };
    let mut c = IpvsClient::open().map_err(KernelReadError::Open)?;
    let info = c.info().map_err(read("version"))?;
    let timeouts = c.timeouts().map_err(read("timeouts"))?;
    let mut services = Vec::new();
    for s in c.services().map_err(read("services"))? {
        match c.dests(&s.service.key) {
            Ok(d) => services.push((s, d)),
            // Deleted between the two dumps: it is simply gone.
            Err(e) if e.errno() == Some(libc::ESRCH) => {}
            Err(error) => {
                return Err(KernelReadError::Dests {
                    service: s.service.key.to_string(),
                    error,
                })
            }
        }
    }
    let daemons = c.daemons().map_err(read("sync daemons"))?;
    Ok(KernelTable {
        info,
        timeouts,
        services,
        daemons,
    })
}

/// ipvsadm's words for the scheduler flags (its `print_sched_flags`).
fn sched_flag_words(s: &KService) -> Vec<String> {
    let named = |prefix: &str| {
        let mut v = Vec::new();
        if s.flags & flags::SCHED1 != 0 {
            v.push(format!("{prefix}-fallback"));
        }
        if s.flags & flags::SCHED2 != 0 {
            v.push(format!("{prefix}-port"));
        }
        v
    };
    match s.scheduler.as_str() {
        "sh" => named("sh"),
        "mh" => named("mh"),
        _ => [
            (flags::SCHED1, "flag-1"),
            (flags::SCHED2, "flag-2"),
            (flags::SCHED3, "flag-3"),
        ]
        .iter()
        .filter(|(f, _)| s.flags & f != 0)
        .map(|(_, w)| w.to_string())
        .collect(),
    }
}

fn netmask_text(s: &KService) -> String {
    match s.key.family() {
        Family::Ipv4 => Ipv4Addr::from(s.netmask).to_string(),
        Family::Ipv6 => s.netmask.to_string(),
    }
}

fn forward_word(f: KForward) -> &'static str {
    match f {
        KForward::Masq => "masq",
        KForward::Local => "local",
        KForward::Tunnel => "tunnel",
        KForward::Route => "route",
        KForward::Bypass => "bypass",
    }
}

/// Tunnel type, GUE port and checksum words, as far as they apply to the tunnel type.
fn tunnel_fields(d: &KDest) -> (String, u32, String) {
    if d.forward != KForward::Tunnel {
        return (String::new(), 0, String::new());
    }
    let csum = || {
        match d.tun_flags {
            tun_flags::NOCSUM => "none",
            tun_flags::CSUM => "csum",
            tun_flags::REMCSUM => "remcsum",
            _ => "unknown",
        }
        .to_string()
    };
    match d.tun_type {
        tun_type::IPIP => ("ipip".into(), 0, String::new()),
        tun_type::GUE => ("gue".into(), d.tun_port.into(), csum()),
        tun_type::GRE => ("gre".into(), 0, csum()),
        other => (format!("type-{other}"), 0, String::new()),
    }
}

fn service_pb(config: &Config, s: &KServiceEntry, dests: &[KDestEntry]) -> pb::IpvsService {
    let k = &s.service;
    let configured = config.services.get(&k.key);
    let persistent = k.flags & flags::PERSISTENT != 0;
    pb::IpvsService {
        key: k.key.to_string(),
        scheduler: k.scheduler.clone(),
        sched_flags: sched_flag_words(k),
        persistent,
        timeout: k.timeout,
        netmask: if persistent {
            netmask_text(k)
        } else {
            String::new()
        },
        one_packet: k.flags & flags::ONEPACKET != 0,
        pe_name: k.pe_name.clone().unwrap_or_default(),
        managed: configured.is_some(),
        stats: Some(lvs_proto::convert::stats_to_pb(&s.stats)),
        dests: dests
            .iter()
            .map(|e| {
                let d = &e.dest;
                let (tunnel_type, tunnel_port, tunnel_csum) = tunnel_fields(d);
                pb::IpvsDest {
                    address: d.address.to_string(),
                    port: d.port.into(),
                    forward: forward_word(d.forward).into(),
                    weight: d.weight,
                    config_weight: configured
                        .and_then(|c| c.real(&d.address, d.port))
                        .map(|r| r.weight),
                    upper_threshold: d.upper_threshold,
                    lower_threshold: d.lower_threshold,
                    active_conns: e.active_conns,
                    inactive_conns: e.inactive_conns,
                    persist_conns: e.persist_conns,
                    stats: Some(lvs_proto::convert::stats_to_pb(&e.stats)),
                    tunnel_type,
                    tunnel_port,
                    tunnel_csum,
                }
            })
            .collect(),
    }
}

pub fn reconciler_pb(st: &IpvsStatus) -> pb::IpvsReconcilerStatus {
    pb::IpvsReconcilerStatus {
        enabled: st.enabled,
        unavailable: st.unavailable.clone().unwrap_or_default(),
        revision: st.revision,
        full_passes: st.full_passes,
        incremental_passes: st.incremental_passes,
        last_pass_ms: st.last_pass_ms,
        last_pass_us: st.last_pass_us,
        last_ops: st.last_ops,
        total_ops: st.total_ops,
        last_change_us: st.last_change_us,
        errors: st
            .errors
            .iter()
            .map(|e| pb::IpvsObjectError {
                object: e.object.clone(),
                op: e.op.clone(),
                message: e.message.clone(),
                since_ms: e.since_ms,
            })
            .collect(),
        foreign: st.foreign.clone(),
        daemons: st.daemons.clone(),
        sync_mode: st.sync_mode.clone(),
        holder: st.holder,
    }
}

/// The `GetIpvs` answer: the kernel read (or why there is none) beside this director's config.
pub fn ipvs_state(
    node_id: u64,
    config: &Config,
    config_revision: u64,
    status: &IpvsStatus,
    kernel: Result<KernelTable, KernelReadError>,
) -> pb::IpvsState {
    let mut out = pb::IpvsState {
        node_id,
        config_revision,
        reconciler: Some(reconciler_pb(status)),
        read_ms: lvs_ops::clock::unix_ms(),
        ..Default::default()
    };
    match kernel {
        Err(why) => out.unavailable = why.to_string(),
        Ok(k) => {
            out.version = k.info.version_string();
            out.conn_tab_size = k.info.conn_tab_size;
            out.timeouts = Some(pb::IpvsTimeouts {
                tcp: k.timeouts.tcp,
                tcp_fin: k.timeouts.tcp_fin,
                udp: k.timeouts.udp,
            });
            out.services = k
                .services
                .iter()
                .map(|(s, d)| service_pb(config, s, d))
                .collect();
            out.daemons = k.daemons.iter().map(describe_daemon).collect();
        }
    }
    out
}

fn conn_pb(c: &Conn) -> pb::Conn {
    pb::Conn {
        protocol: c.protocol.clone(),
        client_addr: c.client.to_string(),
        virtual_addr: c.virtual_.to_string(),
        real_addr: c.real.to_string(),
        state: c.state.clone(),
        expires_s: c.expires_s,
        origin: match c.origin {
            Some(Origin::Local) => "local".into(),
            Some(Origin::Sync) => "sync".into(),
            None => String::new(),
        },
        pe_name: c.pe_name.clone().unwrap_or_default(),
        pe_data: c.pe_data.clone().unwrap_or_default(),
    }
}

/// Why `ListConns` cannot answer with entries.
#[derive(Debug, PartialEq, Eq)]
pub enum ConnsError {
    /// Synced entries cannot be told apart (no ip_vs_conn_sync).
    NoOrigin(String),
}

/// Reads the connection entries under `dir` (normally /proc/net), preferring ip_vs_conn_sync
/// for its Origin column (blocking). A missing or unreadable file is reported in `unavailable`.
pub fn read_conns(dir: &Path, sync_only: bool, limit: u32) -> Result<pb::ConnList, ConnsError> {
    let limit = match limit as usize {
        0 => CONN_CAP,
        n => n.min(CONN_CAP),
    };
    let mut out = pb::ConnList::default();
    let mut opened = None;
    for name in ["ip_vs_conn_sync", "ip_vs_conn"] {
        let path = dir.join(name);
        match File::open(&path) {
            Ok(f) => {
                opened = Some((path, f, name == "ip_vs_conn_sync"));
                break;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                out.file = path.display().to_string();
                out.unavailable = format!("cannot read {}: {e}", path.display());
                return Ok(out);
            }
        }
    }
    let Some((path, file, has_origin)) = opened else {
        out.unavailable = format!("{NO_IPVS} (no {})", dir.join("ip_vs_conn").display());
        return Ok(out);
    };
    out.file = path.display().to_string();
    if sync_only && !has_origin {
        return Err(ConnsError::NoOrigin(format!(
            "this kernel has no {}, so entries received by sync cannot be told apart",
            dir.join("ip_vs_conn_sync").display()
        )));
    }
    for line in BufReader::new(file).lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                out.unavailable = format!("reading {}: {e}", path.display());
                out.conns.clear();
                return Ok(out);
            }
        };
        let Some(c) = conns::parse_line(&line) else {
            continue;
        };
        if sync_only && c.origin != Some(Origin::Sync) {
            continue;
        }
        if out.conns.len() == limit {
            out.truncated = true;
            break;
        }
        out.conns.push(conn_pb(&c));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::reconciler::ObjectError;
    use cluster_core::ipvs::reconcile::kernel_service;
    use cluster_core::ipvs::Stats64;
    use cluster_core::model::ServiceKey;

    fn config() -> Config {
        Config::from_toml(
            r#"
[[service]]
key = "tcp/10.0.0.1:80"
scheduler = "sh"
sched_flags = ["fallback"]
persistence = { timeout = 300, netmask = "255.255.255.0" }

[[service.reals]]
address = "10.0.1.1"
port = 80
weight = 5
"#,
        )
        .unwrap()
    }

    fn dest(addr: &str, weight: u32, forward: KForward) -> KDestEntry {
        KDestEntry {
            dest: KDest {
                address: addr.parse().unwrap(),
                port: 80,
                forward,
                weight,
                upper_threshold: 0,
                lower_threshold: 0,
                tun_type: tun_type::GUE,
                tun_port: 6080,
                tun_flags: tun_flags::CSUM,
            },
            active_conns: 3,
            inactive_conns: 4,
            persist_conns: 1,
            stats: Stats64 {
                conns: 10,
                cps: 2,
                ..Default::default()
            },
        }
    }

    #[test]
    fn kernel_table_beside_the_config() {
        let cfg = config();
        let managed = kernel_service(cfg.services.values().next().unwrap());
        let foreign = KService {
            key: "udp/10.0.0.9:53".parse::<ServiceKey>().unwrap(),
            scheduler: "rr".into(),
            flags: flags::ONEPACKET | flags::SCHED1,
            timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: None,
        };
        let table = KernelTable {
            info: KInfo {
                version: 0x010201,
                conn_tab_size: 4096,
            },
            timeouts: KTimeouts {
                tcp: 900,
                tcp_fin: 120,
                udp: 300,
            },
            services: vec![
                (
                    KServiceEntry {
                        service: managed,
                        stats: Stats64::default(),
                    },
                    vec![
                        dest("10.0.1.1", 0, KForward::Route),
                        dest("10.0.1.9", 7, KForward::Tunnel),
                    ],
                ),
                (
                    KServiceEntry {
                        service: foreign,
                        stats: Stats64 {
                            inbytes: 99,
                            ..Default::default()
                        },
                    },
                    vec![],
                ),
            ],
            daemons: vec![],
        };
        let status = IpvsStatus {
            enabled: true,
            revision: 3,
            errors: vec![ObjectError {
                object: "service[tcp/10.0.0.1:80]".into(),
                op: "add service".into(),
                message: "No such file or directory".into(),
                since_ms: 5,
            }],
            ..Default::default()
        };
        let s = ipvs_state(2, &cfg, 4, &status, Ok(table));
        assert_eq!(s.node_id, 2);
        assert_eq!(s.config_revision, 4);
        assert_eq!(s.version, "1.2.1");
        assert_eq!(s.conn_tab_size, 4096);
        assert_eq!(s.timeouts.unwrap().tcp_fin, 120);
        assert!(s.unavailable.is_empty());
        let m = &s.services[0];
        assert_eq!(m.key, "tcp/10.0.0.1:80");
        assert!(m.managed && m.persistent);
        assert_eq!(m.sched_flags, vec!["sh-fallback"]);
        assert_eq!((m.timeout, m.netmask.as_str()), (300, "255.255.255.0"));
        assert_eq!(m.dests[0].weight, 0);
        assert_eq!(m.dests[0].config_weight, Some(5));
        assert_eq!(m.dests[0].forward, "route");
        assert_eq!(m.dests[0].tunnel_type, "");
        assert_eq!(m.dests[0].stats.unwrap().conns, 10);
        assert_eq!(
            (
                m.dests[0].active_conns,
                m.dests[0].inactive_conns,
                m.dests[0].persist_conns
            ),
            (3, 4, 1)
        );
        assert_eq!(m.dests[1].config_weight, None);
        assert_eq!(
            (
                m.dests[1].tunnel_type.as_str(),
                m.dests[1].tunnel_port,
                m.dests[1].tunnel_csum.as_str()
            ),
            ("gue", 6080, "csum")
        );
        let f = &s.services[1];
        assert!(!f.managed && !f.persistent && f.one_packet);
        assert_eq!(f.sched_flags, vec!["flag-1"]);
        assert_eq!(f.netmask, "");
        assert_eq!(f.stats.unwrap().inbytes, 99);
        let r = s.reconciler.unwrap();
        assert!(r.enabled);
        assert_eq!(r.revision, 3);
        assert_eq!(r.errors[0].op, "add service");
    }

    #[test]
    fn unavailable_kernel_is_an_answer() {
        let status = IpvsStatus {
            enabled: true,
            unavailable: Some(NO_IPVS.into()),
            ..Default::default()
        };
        let no_ipvs = KernelReadError::Open(IpvsError::Unavailable);
        let s = ipvs_state(1, &Config::default(), 0, &status, Err(no_ipvs));
        assert_eq!(s.unavailable, NO_IPVS);
        assert!(s.services.is_empty() && s.timeouts.is_none());
        assert_eq!(s.reconciler.unwrap().unavailable, NO_IPVS);
    }

    fn dir(files: &[(&str, &str)]) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ipvs-view-{}-{}",
            std::process::id(),
            files.iter().map(|(n, _)| *n).collect::<Vec<_>>().join("-")
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (name, text) in files {
            std::fs::write(d.join(name), text).unwrap();
        }
        d
    }

    const SYNC: &str = "\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED LOCAL      898
TCP C0A80A09 9C40 0A000001 0050 0A000102 0050 ESTABLISHED SYNC       900
UDP C0A80A0A 9C41 0A000002 0035 0A000103 0035 UDP         SYNC       100
";

    #[test]
    fn conns_from_the_sync_file() {
        let d = dir(&[("ip_vs_conn_sync", SYNC), ("ip_vs_conn", "Pro FromIP\n")]);
        let all = read_conns(&d, false, 0).unwrap();
        assert!(all.file.ends_with("ip_vs_conn_sync"), "{}", all.file);
        assert_eq!(all.conns.len(), 3);
        assert!(!all.truncated);
        assert_eq!(all.conns[0].origin, "local");
        assert_eq!(all.conns[0].client_addr, "192.168.10.5:54321");
        let synced = read_conns(&d, true, 0).unwrap();
        assert_eq!(synced.conns.len(), 2);
        assert!(synced.conns.iter().all(|c| c.origin == "sync"));
        let one = read_conns(&d, true, 1).unwrap();
        assert_eq!(one.conns.len(), 1);
        assert!(one.truncated);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn conns_without_the_sync_file_or_ipvs() {
        let d = dir(&[(
            "ip_vs_conn",
            "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n\
             TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED     898\n",
        )]);
        let all = read_conns(&d, false, 0).unwrap();
        assert!(all.file.ends_with("ip_vs_conn"));
        assert_eq!(all.conns.len(), 1);
        assert_eq!(all.conns[0].origin, "");
        assert!(matches!(
            read_conns(&d, true, 0),
            Err(ConnsError::NoOrigin(m)) if m.contains("ip_vs_conn_sync")
        ));
        let _ = std::fs::remove_dir_all(&d);
        let empty = dir(&[]);
        let none = read_conns(&empty, false, 0).unwrap();
        assert!(
            none.unavailable.starts_with(NO_IPVS),
            "{}",
            none.unavailable
        );
        assert!(none.conns.is_empty() && none.file.is_empty());
        let _ = std::fs::remove_dir_all(&empty);
    }
}
