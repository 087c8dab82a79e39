//! The IPVS lab scenarios: a three-director cluster, two DR real servers and a client on the netns
//! topology, on a kernel with IPVS (inside the VM from `tests/lab/run.sh`, or a host that has
//! IPVS). Every claim is checked against `ipvsadm` (an independent reader of the kernel table) or
//! real traffic from the client namespace.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cluster_core::model::{
    Config, Forward, Persistence, RealServer, SchedFlag, Scheduler, Service, ServiceKey, SyncMode,
    SyncSettings, TunnelCsum, TunnelType, VipGroup,
};

use crate::bin;
use crate::netns::Host;
use crate::traffic::{self, Held};
use crate::vip_cluster::NetCluster;

/// Raft timing for the emulated VM: everything runs many times slower than on hardware, so
/// elections get more slack than the default profile.
pub const LAB_RAFT: &str =
    "heartbeat_ms = 250\nelection_min_ms = 1500\nelection_max_ms = 3000\nvip_release_ms = 1200\n";

/// Resync period the lab directors use (drift must be repaired within it).
pub const RESYNC_MS: u64 = 2000;

/// Service port served by the real servers (DR keeps the port).
pub const PORT: u16 = 80;
/// NAT service: VIP port 8080 mapped to the real servers' port 8081.
pub const NAT_PORT: u16 = 8080;
pub const NAT_REAL_PORT: u16 = 8081;
pub const UDP_PORT: u16 = 53;
/// Where each lab director serves `/metrics` (on every address of its namespace).
pub const METRICS_PORT: u16 = 9100;

/// The lab: directors d1..d3, client, real servers rs1 and rs2.
pub struct Lab {
    pub c: NetCluster,
    pub reals: Vec<Host>,
    /// Gateway address (held by the leader with the VIPs) the real servers route NAT replies to.
    pub gw4: IpAddr,
    servers: Vec<std::process::Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

fn ipvs_section() -> String {
    format!("[ipvs]\nresync_ms = {RESYNC_MS}\n\n[metrics]\nlisten = \"0.0.0.0:{METRICS_PORT}\"\n")
}

impl Lab {
    /// Starts the cluster and the real servers; VIPs are configured, services are not.
    pub fn start() -> Result<Lab> {
        let mut c = NetCluster::start_custom(3, LAB_RAFT, &ipvs_section());
        let reals = vec![c.topo.add_host("rs1"), c.topo.add_host("rs2")];
        let gw4 = IpAddr::V4(c.topo.ipv4_for(254));
        for d in &c.nodes {
            // NAT replies come back through the holder and leave on the same interface.
            for (k, v) in [
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv4.conf.all.send_redirects", "0"),
                ("net.ipv4.conf.eth0.send_redirects", "0"),
                ("net.ipv6.conf.all.forwarding", "1"),
            ] {
                d.host.set_sysctl(k, v)?;
            }
        }
        let mut servers = Vec::new();
        for r in &reals {
            prepare_dr_real(r, &c)?;
            // NAT replies (from the real server's own address) go back through the director
            // holding the gateway address; DR replies (from the VIP) go straight to the client.
            let own = r.ipv4.to_string();
            let client = format!("{}/32", c.client.ipv4);
            let gw = gw4.to_string();
            r.run(&["ip", "rule", "add", "from", &own, "table", "100"])?;
            r.run(&["ip", "route", "add", &client, "via", &gw, "table", "100"])?;
            let tool = bin("lab-tool");
            servers.push(r.spawn(&[
                tool.to_str().expect("utf-8 path"),
                "serve",
                "--name",
                &r.name,
                "--tcp",
                &format!("{PORT},{NAT_REAL_PORT}"),
                "--udp",
                &UDP_PORT.to_string(),
            ]));
        }
        let leader = c.wait_leader(Duration::from_secs(60));
        let v4 = format!("{}/24", c.vip4);
        let v6 = format!("{}/64", c.vip6);
        let gw = format!("{gw4}/24");
        c.lvsctl_ok(&["vip", "set", "web", "--interface", "eth0", &v4, &v6, &gw]);
        c.wait_holder(leader, Duration::from_secs(30));
        Ok(Lab {
            c,
            reals,
            gw4,
            servers,
        })
    }

    /// `ipvsadm ARGS` in director `id`'s namespace.
    pub fn ipvsadm(&self, id: u64, args: &[&str]) -> Result<String> {
        let mut a = vec!["ipvsadm"];
        a.extend_from_slice(args);
        self.c.node(id).host.run(&a)
    }

    /// Director `id`'s kernel table as `ipvsadm -Ln` shows it.
    pub fn table(&self, id: u64) -> Result<IpvsadmTable> {
        let text = self.ipvsadm(id, &["-Ln"])?;
        Ok(IpvsadmTable::parse(&text))
    }

    /// Applies `config` with `lvsctl apply -f`, plus the lab's VIP group (apply replaces the
    /// whole configuration).
    pub fn apply(&self, config: &Config) -> Result<()> {
        let mut config = config.clone();
        config.vip_groups = vec![VipGroup {
            name: "web".into(),
            interface: "eth0".into(),
            addresses: vec![
                format!("{}/24", self.c.vip4).parse()?,
                format!("{}/64", self.c.vip6).parse()?,
                format!("{}/24", self.gw4).parse()?,
            ],
        }];
        let path = self.c.dir.path().join("desired.toml");
        fs::write(&path, config.to_toml())?;
        let out = self
            .c
            .lvsctl(&["apply", "-f", path.to_str().expect("utf-8 path")]);
        if !out.status.success() {
            bail!(
                "lvsctl apply failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Waits until every running director's kernel shows `want` (as ipvsadm reads it).
    pub fn wait_tables(&mut self, want: &IpvsadmTable, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let mut diffs = Vec::new();
            for id in self.c.running_ids() {
                let have = self.table(id)?;
                let d = want.diff(&have);
                if !d.is_empty() {
                    diffs.push(format!("director {id}: {}", d.join("; ")));
                }
            }
            if diffs.is_empty() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!(
                    "kernel tables differ from the config after {timeout:?}: {}",
                    diffs.join(" | ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn vip_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.c.vip4), port)
    }

    pub fn vip6_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(self.c.vip6), port)
    }
}

/// DR real server: the VIPs on `lo`, no ARP answers or announcements for them.
fn prepare_dr_real(r: &Host, c: &NetCluster) -> Result<()> {
    for (k, v) in [
        ("net.ipv4.conf.all.arp_ignore", "1"),
        ("net.ipv4.conf.all.arp_announce", "2"),
        ("net.ipv4.conf.eth0.arp_ignore", "1"),
        ("net.ipv4.conf.eth0.arp_announce", "2"),
        ("net.ipv4.conf.all.accept_redirects", "0"),
        ("net.ipv4.conf.eth0.accept_redirects", "0"),
    ] {
        r.set_sysctl(k, v)?;
    }
    r.run(&["ip", "addr", "add", &format!("{}/32", c.vip4), "dev", "lo"])?;
    r.run(&["ip", "addr", "add", &format!("{}/128", c.vip6), "dev", "lo"])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ipvsadm -Ln as an independent reader

/// One destination line of `ipvsadm -Ln`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsadmDest {
    pub forward: String,
    pub weight: u32,
}

/// One service block of `ipvsadm -Ln`: the text after the address (scheduler and flags, spaces
/// normalised) and its destinations by `addr:port` text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsadmService {
    pub settings: String,
    pub dests: BTreeMap<String, IpvsadmDest>,
}

/// `ipvsadm -Ln` parsed, keyed by `PROT ADDR:PORT` (`FWM 5`, `FWM 5 IPv6`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpvsadmTable {
    pub services: BTreeMap<String, IpvsadmService>,
}

impl IpvsadmTable {
    pub fn parse(text: &str) -> IpvsadmTable {
        let mut t = IpvsadmTable::default();
        let mut current: Option<String> = None;
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first().copied() {
                Some("TCP") | Some("UDP") | Some("SCTP") if words.len() >= 2 => {
                    let key = format!("{} {}", words[0], words[1]);
                    t.services.insert(
                        key.clone(),
                        IpvsadmService {
                            settings: words[2..].join(" "),
                            dests: BTreeMap::new(),
                        },
                    );
                    current = Some(key);
                }
                Some("FWM") if words.len() >= 2 => {
                    let v6 = words.get(2) == Some(&"IPv6");
                    let key = if v6 {
                        format!("FWM {} IPv6", words[1])
                    } else {
                        format!("FWM {}", words[1])
                    };
                    let rest = if v6 { &words[3..] } else { &words[2..] };
                    t.services.insert(
                        key.clone(),
                        IpvsadmService {
                            settings: rest.join(" "),
                            dests: BTreeMap::new(),
                        },
                    );
                    current = Some(key);
                }
                Some("->") if words.len() >= 4 && words[1] != "RemoteAddress:Port" => {
                    if let Some(k) = &current {
                        let d = IpvsadmDest {
                            forward: words[2].to_string(),
                            weight: words[3].parse().unwrap_or(u32::MAX),
                        };
                        if let Some(s) = t.services.get_mut(k) {
                            s.dests.insert(words[1].to_string(), d);
                        }
                    }
                }
                _ => {}
            }
        }
        t
    }

    /// What `ipvsadm -Ln` shows for `config` (ipvsadm 1.31 formatting).
    pub fn expected(config: &Config) -> IpvsadmTable {
        let mut t = IpvsadmTable::default();
        for s in config.services.values() {
            let key = match s.key {
                ServiceKey::Addr {
                    protocol,
                    address,
                    port,
                } => format!(
                    "{} {}",
                    protocol.as_str().to_ascii_uppercase(),
                    cluster_core::model::fmt_endpoint(&address, port)
                ),
                ServiceKey::Fwmark { family, mark } => match family {
                    cluster_core::model::Family::Ipv4 => format!("FWM {mark}"),
                    cluster_core::model::Family::Ipv6 => format!("FWM {mark} IPv6"),
                },
            };
            let mut settings = s.scheduler.as_str().to_string();
            if !s.sched_flags.is_empty() {
                let prefix = match s.scheduler {
                    Scheduler::Sh => "sh",
                    _ => "mh",
                };
                let mut names: Vec<String> = Vec::new();
                for f in [SchedFlag::Fallback, SchedFlag::Port] {
                    if s.sched_flags.contains(&f) {
                        names.push(format!("{prefix}-{}", f.as_str()));
                    }
                }
                let _ = write!(settings, " ({})", names.join(","));
            }
            if let Some(p) = &s.persistence {
                let _ = write!(settings, " persistent {}", p.timeout);
                let family = s.key.family();
                let mask = p.netmask.clone().unwrap_or_else(|| match family {
                    cluster_core::model::Family::Ipv4 => "255.255.255.255".into(),
                    cluster_core::model::Family::Ipv6 => "128".into(),
                });
                if mask != "255.255.255.255" && mask != "128" {
                    let _ = write!(settings, " mask {mask}");
                }
            }
            if s.one_packet {
                settings.push_str(" ops");
            }
            let dests = s
                .reals
                .iter()
                .map(|r| {
                    let forward = match r.forward {
                        Forward::Masq => "Masq",
                        Forward::Dr => "Route",
                        Forward::Tunnel => "Tunnel",
                    };
                    (
                        r.endpoint(),
                        IpvsadmDest {
                            forward: forward.into(),
                            weight: r.weight,
                        },
                    )
                })
                .collect();
            t.services.insert(key, IpvsadmService { settings, dests });
        }
        t
    }

    /// Differences, `self` being the expectation.
    pub fn diff(&self, have: &IpvsadmTable) -> Vec<String> {
        let mut out = Vec::new();
        for (k, want) in &self.services {
            match have.services.get(k) {
                None => out.push(format!("{k} missing")),
                Some(h) => {
                    if h.settings != want.settings {
                        out.push(format!(
                            "{k}: shows {:?}, expected {:?}",
                            h.settings, want.settings
                        ));
                    }
                    for (a, d) in &want.dests {
                        match h.dests.get(a) {
                            None => out.push(format!("{k} -> {a} missing")),
                            Some(hd) if hd != d => {
                                out.push(format!("{k} -> {a}: shows {hd:?}, expected {d:?}"))
                            }
                            Some(_) => {}
                        }
                    }
                    for a in h.dests.keys() {
                        if !want.dests.contains_key(a) {
                            out.push(format!("{k} -> {a} unexpected"));
                        }
                    }
                }
            }
        }
        for k in have.services.keys() {
            if !self.services.contains_key(k) {
                out.push(format!("{k} unexpected"));
            }
        }
        out
    }
}

/// Schedulers whose modules this kernel ships (all of ours when modules are built in).
pub fn kernel_schedulers() -> Vec<Scheduler> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dir = format!("/lib/modules/{}/kernel/net/netfilter/ipvs", release.trim());
    let Ok(entries) = fs::read_dir(&dir) else {
        return Scheduler::ALL
            .into_iter()
            .filter(|s| *s != Scheduler::Twos)
            .collect();
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    Scheduler::ALL
        .into_iter()
        .filter(|s| {
            let m = format!("ip_vs_{}.ko", s.as_str());
            names.iter().any(|n| n.starts_with(&m))
        })
        .collect()
}

fn real(addr: &str, port: u16, weight: u32, forward: Forward) -> RealServer {
    let mut r = RealServer::new(addr.parse().expect("address"), port);
    r.weight = weight;
    r.forward = forward;
    r
}

fn key(s: &str) -> ServiceKey {
    s.parse().expect("service key")
}

/// Scenario 1's configuration: every protocol and family, fwmark, persistence with netmask, every
/// scheduler the kernel ships, every forwarding method and tunnel type.
pub fn coverage_config(schedulers: &[Scheduler]) -> Config {
    let mut c = Config::default();
    let mut add = |s: Service| {
        c.services.insert(s.key, s);
    };
    for (i, sch) in schedulers.iter().enumerate() {
        let mut s = Service::new(key(&format!("tcp/10.10.0.{}:80", i + 1)));
        s.scheduler = *sch;
        if matches!(sch, Scheduler::Sh | Scheduler::Mh) {
            s.sched_flags = vec![SchedFlag::Fallback, SchedFlag::Port];
        }
        s.reals = vec![
            real("10.20.0.1", 80, i as u32 + 1, Forward::Dr),
            real("10.20.0.2", 80, i as u32 + 2, Forward::Dr),
        ];
        add(s);
    }
    let mut udp = Service::new(key("udp/10.10.1.1:53"));
    udp.scheduler = Scheduler::Rr;
    udp.reals = vec![
        real("10.20.0.1", 5353, 1, Forward::Masq),
        real("10.20.0.2", 5353, 0, Forward::Masq),
    ];
    add(udp);
    let mut ops = Service::new(key("udp/10.10.1.4:53"));
    ops.one_packet = true;
    ops.reals = vec![real("10.20.0.1", 53, 1, Forward::Dr)];
    add(ops);
    let mut sctp = Service::new(key("sctp/10.10.1.2:9"));
    sctp.reals = vec![real("10.20.0.1", 9, 1, Forward::Dr)];
    add(sctp);
    let mut v6 = Service::new(key("tcp/[fd00:10::1]:443"));
    v6.persistence = Some(Persistence {
        timeout: 600,
        netmask: Some("64".into()),
    });
    v6.reals = vec![
        real("fd00:20::1", 443, 2, Forward::Dr),
        real("fd00:20::2", 8443, 3, Forward::Masq),
    ];
    add(v6);
    let mut persist = Service::new(key("tcp/10.10.1.3:80"));
    persist.scheduler = Scheduler::Wrr;
    persist.persistence = Some(Persistence {
        timeout: 300,
        netmask: Some("255.255.255.0".into()),
    });
    persist.reals = vec![real("10.20.0.3", 80, 4, Forward::Dr)];
    add(persist);
    let mut fw = Service::new(key("fwmark/5"));
    fw.reals = vec![
        real("10.20.0.1", 0, 1, Forward::Dr),
        real("10.20.0.2", 0, 2, Forward::Dr),
    ];
    add(fw);
    let mut fw6 = Service::new(key("fwmark6/6"));
    fw6.scheduler = Scheduler::Rr;
    fw6.reals = vec![real("fd00:20::1", 0, 1, Forward::Dr)];
    add(fw6);
    let mut tun = Service::new(key("tcp/10.10.1.5:80"));
    let mut ipip = real("10.20.0.1", 80, 1, Forward::Tunnel);
    ipip.tunnel_type = Some(TunnelType::Ipip);
    let mut gue = real("10.20.0.2", 80, 2, Forward::Tunnel);
    gue.tunnel_type = Some(TunnelType::Gue);
    gue.tunnel_port = Some(6080);
    gue.tunnel_csum = Some(TunnelCsum::Csum);
    let mut gre = real("10.20.0.3", 80, 3, Forward::Tunnel);
    gre.tunnel_type = Some(TunnelType::Gre);
    gre.tunnel_csum = Some(TunnelCsum::Csum);
    let mut thresholds = real("10.20.0.4", 80, 5, Forward::Dr);
    thresholds.upper_threshold = 100;
    thresholds.lower_threshold = 50;
    tun.reals = vec![ipip, gue, gre, thresholds];
    add(tun);
    c
}

/// The traffic services: DR on the VIPs (TCP and UDP, IPv4 and IPv6) and NAT on VIP:8080.
pub fn traffic_config(lab: &Lab, scheduler: Scheduler, weights: [u32; 2]) -> Config {
    let mut c = Config::default();
    let rs: Vec<IpAddr> = lab.reals.iter().map(|h| IpAddr::V4(h.ipv4)).collect();
    let rs6: Vec<IpAddr> = lab.reals.iter().map(|h| IpAddr::V6(h.ipv6)).collect();
    let mk = |k: ServiceKey, addrs: &[IpAddr], port: u16, fwd: Forward| {
        let mut s = Service::new(k);
        s.scheduler = scheduler;
        s.reals = addrs
            .iter()
            .zip(weights)
            .map(|(a, w)| {
                let mut r = RealServer::new(*a, port);
                r.weight = w;
                r.forward = fwd;
                r
            })
            .collect();
        s
    };
    let v4 = IpAddr::V4(lab.c.vip4);
    let v6 = IpAddr::V6(lab.c.vip6);
    use cluster_core::model::Protocol::*;
    for s in [
        mk(
            ServiceKey::Addr {
                protocol: Tcp,
                address: v4,
                port: PORT,
            },
            &rs,
            PORT,
            Forward::Dr,
        ),
        mk(
            ServiceKey::Addr {
                protocol: Udp,
                address: v4,
                port: UDP_PORT,
            },
            &rs,
            UDP_PORT,
            Forward::Dr,
        ),
        mk(
            ServiceKey::Addr {
                protocol: Tcp,
                address: v6,
                port: PORT,
            },
            &rs6,
            PORT,
            Forward::Dr,
        ),
        mk(
            ServiceKey::Addr {
                protocol: Tcp,
                address: v4,
                port: NAT_PORT,
            },
            &rs,
            NAT_REAL_PORT,
            Forward::Masq,
        ),
    ] {
        c.services.insert(s.key, s);
    }
    c
}

fn sync_settings(mode: SyncMode) -> SyncSettings {
    SyncSettings {
        mode,
        interface: if mode == SyncMode::Multicast {
            "eth0".into()
        } else {
            String::new()
        },
        syncid: 7,
        group: None,
        port: 8848,
        ttl: 1,
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios. Each returns a one-line report, or an error saying what was wrong.

/// Scenario 1: the config applied through lvsctl is in every director's kernel, as ipvsadm shows it.
pub fn scenario_config(lab: &mut Lab) -> Result<String> {
    let schedulers = kernel_schedulers();
    let config = coverage_config(&schedulers);
    lab.apply(&config)?;
    let want = IpvsadmTable::expected(&config);
    let took = lab.wait_tables(&want, Duration::from_secs(60))?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    println!(
        "--- ipvsadm -Ln in director {leader}'s namespace ---\n{}",
        lab.ipvsadm(leader, &["-Ln"])?
    );
    // Tunnel details and thresholds are not in the plain listing.
    for id in lab.c.running_ids() {
        let tun = lab.ipvsadm(id, &["-Ln", "-t", "10.10.1.5:80", "--tun-info"])?;
        check_tun_info(&tun).with_context(|| format!("director {id}: --tun-info"))?;
        let th = lab.ipvsadm(id, &["-Ln", "-t", "10.10.1.5:80", "--thresholds"])?;
        if !th
            .lines()
            .any(|l| l.contains("10.20.0.4:80") && l.contains("100") && l.contains("50"))
        {
            bail!("director {id}: thresholds 100/50 of 10.20.0.4:80 not shown:\n{th}");
        }
    }
    Ok(format!(
        "{} services ({} schedulers: {}), all 3 directors match ipvsadm -Ln within {:.1} s",
        config.services.len(),
        schedulers.len(),
        schedulers
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        took.as_secs_f64()
    ))
}

fn check_tun_info(text: &str) -> Result<()> {
    let find = |addr: &str| {
        text.lines()
            .find(|l| l.contains(addr))
            .map(|l| l.to_ascii_lowercase())
            .ok_or_else(|| anyhow!("{addr} not listed:\n{text}"))
    };
    let ipip = find("10.20.0.1:80")?;
    let gue = find("10.20.0.2:80")?;
    let gre = find("10.20.0.3:80")?;
    if !ipip.contains("ipip") {
        bail!("10.20.0.1 is not shown as ipip: {ipip}");
    }
    if !(gue.contains("gue") && gue.contains("6080")) {
        bail!("10.20.0.2 is not shown as gue port 6080: {gue}");
    }
    if !gre.contains("gre") {
        bail!("10.20.0.3 is not shown as gre: {gre}");
    }
    Ok(())
}

/// Scenario 2: `ipvsadm -C` and a weight changed by hand are repaired within the resync period; a
/// service someone else added is left alone and reported.
pub fn scenario_drift(lab: &mut Lab) -> Result<String> {
    let config = lab.c.lvsctl_ok(&["export"]);
    let config = Config::from_toml(&config).map_err(|e| anyhow!("export: {e}"))?;
    let want = IpvsadmTable::expected(&config);
    let victim = lab.c.running_ids()[1];
    // Clear and read back in one go: the reconciler may repair it any moment after.
    let left = lab.c.node(victim).host.run(&[
        "sh",
        "-c",
        "ipvsadm -C && ipvsadm -Ln | grep -cE '^(TCP|UDP|SCTP|FWM) ' || true",
    ])?;
    let left: usize = left.trim().parse().unwrap_or(usize::MAX);
    if left >= want.services.len() {
        bail!("ipvsadm -C did not clear director {victim} ({left} services left)");
    }
    let took_clear = lab.wait_tables(&want, Duration::from_millis(RESYNC_MS * 3))?;
    lab.ipvsadm(
        victim,
        &[
            "-e",
            "-t",
            "10.10.1.3:80",
            "-r",
            "10.20.0.3:80",
            "-g",
            "-w",
            "77",
        ],
    )?;
    lab.ipvsadm(victim, &["-A", "-t", "192.0.2.99:22", "-s", "rr"])?;
    let mut with_foreign = want.clone();
    with_foreign.services.insert(
        "TCP 192.0.2.99:22".into(),
        IpvsadmService {
            settings: "rr".into(),
            dests: BTreeMap::new(),
        },
    );
    let took_edit = {
        let start = Instant::now();
        loop {
            let d = with_foreign.diff(&lab.table(victim)?);
            if d.is_empty() {
                break start.elapsed();
            }
            if start.elapsed() > Duration::from_millis(RESYNC_MS * 3) {
                bail!("director {victim}: drift not repaired: {}", d.join("; "));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Reported as foreign by the next full pass.
    let start = Instant::now();
    loop {
        let status = lab
            .c
            .lvsctl_json(victim, &["ipvs"])
            .map_err(|e| anyhow!(e))?;
        let foreign = status["reconciler"]["foreign"]
            .as_array()
            .is_some_and(|a| a.iter().any(|k| k.as_str() == Some("tcp/192.0.2.99:22")));
        if foreign {
            break;
        }
        if start.elapsed() > Duration::from_millis(RESYNC_MS * 3) {
            bail!(
                "the foreign service is not reported by lvsctl ipvs: {}",
                status["reconciler"]
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.ipvsadm(victim, &["-D", "-t", "192.0.2.99:22"])?;
    let missing = missing_scheduler(lab, &want)?;
    Ok(format!(
        "ipvsadm -C repaired in {:.1} s, a hand-edited weight in {:.1} s (resync {} ms); the foreign service was left alone and reported; {missing}",
        took_clear.as_secs_f64(),
        took_edit.as_secs_f64(),
        RESYNC_MS
    ))
}

/// A service whose scheduler module the kernel lacks (twos, before 6.7) fails on its own: the
/// error is reported per object by every director, the other services stay as they are, and the
/// error clears when the service goes.
fn missing_scheduler(lab: &mut Lab, want: &IpvsadmTable) -> Result<String> {
    if kernel_schedulers().contains(&Scheduler::Twos) {
        return Ok("(this kernel ships every scheduler: no missing-module check)".into());
    }
    lab.c
        .lvsctl_ok(&["service", "add", "-t", "10.10.9.9:80", "-s", "twos"]);
    let object = "service[tcp/10.10.9.9:80]";
    let start = Instant::now();
    let mut seen: BTreeMap<u64, String> = BTreeMap::new();
    let ids = lab.c.running_ids();
    while seen.len() < ids.len() {
        for id in &ids {
            let v = lab.c.lvsctl_json(*id, &["ipvs"]).unwrap_or_default();
            let hit = v["reconciler"]["errors"].as_array().and_then(|a| {
                a.iter()
                    .find(|e| e["object"].as_str() == Some(object))
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            });
            if let Some(m) = hit {
                seen.insert(*id, m);
            }
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("the twos service's error is not reported by every director: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let message = seen.values().next().cloned().unwrap_or_default();
    if !message.contains("ip_vs_twos") {
        bail!("the error does not name the missing module: {message}");
    }
    // Everything else is still programmed.
    lab.wait_tables(want, Duration::from_secs(10))?;
    lab.c.lvsctl_ok(&["service", "del", "-t", "10.10.9.9:80"]);
    let start = Instant::now();
    loop {
        let v = lab.c.lvsctl_json(ids[0], &["ipvs"]).unwrap_or_default();
        let still = v["reconciler"]["errors"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["object"].as_str() == Some(object)));
        if !still {
            break;
        }
        if start.elapsed() > Duration::from_millis(RESYNC_MS * 3) {
            bail!("the twos error did not clear after the service was deleted: {v}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(format!(
        "a twos service (no module in this kernel) failed alone, reported by all {} directors as \"{message}\", and cleared when deleted",
        ids.len()
    ))
}

/// Scenario 3: the client reaches the real servers through the VIP in DR (TCP, UDP, IPv6) and NAT, spread
/// as wrr with weights 1:3 says.
pub fn scenario_traffic(lab: &mut Lab) -> Result<String> {
    let config = traffic_config(lab, Scheduler::Wrr, [1, 3]);
    lab.apply(&config)?;
    lab.wait_tables(&IpvsadmTable::expected(&config), Duration::from_secs(30))?;
    let mut report = Vec::new();
    let n = 40;
    for (what, to, udp) in [
        ("DR tcp", lab.vip_addr(PORT), false),
        ("DR udp", lab.vip_addr(UDP_PORT), true),
        ("DR tcp6", lab.vip6_addr(PORT), false),
        ("NAT tcp", lab.vip_addr(NAT_PORT), false),
    ] {
        let (seen, failed) = lab.c.client.in_ns(move || traffic::spread(to, n, udp))?;
        let a = seen.get("rs1").copied().unwrap_or(0);
        let b = seen.get("rs2").copied().unwrap_or(0);
        if failed > 0 || a + b != n {
            bail!("{what} via {to}: {failed} of {n} failed, answers {seen:?}");
        }
        // wrr 1:3 is deterministic: exactly a quarter to rs1 (within one round).
        if a.abs_diff(n / 4) > 1 {
            bail!(
                "{what} via {to}: rs1 {a}, rs2 {b}; wrr 1:3 should give rs1 {}",
                n / 4
            );
        }
        report.push(format!("{what} rs1:rs2 = {a}:{b}"));
    }
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    let counted = wait_stats(
        lab,
        leader,
        &format!("tcp/{}", lab.vip_addr(PORT)),
        n as u64,
    )?;
    let scraped = metrics_during_traffic(lab, leader, n)?;
    Ok(format!(
        "{n} connections each, wrr weights 1:3: {}; lvsctl list --stats on director {leader}: {counted}; {scraped}",
        report.join(", ")
    ))
}

/// The leader's `/metrics`, scraped from the client namespace before, during and after a second
/// batch of `n` DR TCP connections through the VIP: the per-real-server connection and byte
/// counters grow by that batch (1:3, as wrr says), and equal `ipvsadm -Ln --stats --exact` once
/// the kernel has folded its per-CPU counters. A follower's scrape reads its own kernel table.
fn metrics_during_traffic(lab: &Lab, leader: u64, n: usize) -> Result<String> {
    use crate::metrics::{scrape, Metrics};
    let service = format!("tcp/{}", lab.vip_addr(PORT));
    let reals: Vec<String> = lab
        .reals
        .iter()
        .map(|r| format!("{}:{PORT}", r.ipv4))
        .collect();
    let at = |id: u64| SocketAddr::new(IpAddr::V4(lab.c.node(id).host.ipv4), METRICS_PORT);
    let get = |id: u64| -> Result<Metrics> {
        let a = at(id);
        lab.c
            .client
            .in_ns(move || scrape(a))?
            .map_err(|e| anyhow!("director {id}: {e}"))
    };
    // [conns, inpkts, outpkts, inbytes, outbytes] per real server, as the metrics say.
    let counters = |m: &Metrics| -> Result<Vec<[u64; 5]>> {
        reals
            .iter()
            .map(|r| {
                let mut row = [0; 5];
                for (i, f) in [
                    "connections",
                    "packets_in",
                    "packets_out",
                    "bytes_in",
                    "bytes_out",
                ]
                .iter()
                .enumerate()
                {
                    let name = format!("lvs_director_ipvs_real_{f}_total");
                    row[i] = m
                        .get(&name, &[("service", &service), ("real", r)])
                        .ok_or_else(|| anyhow!("{name} for {r} missing"))?
                        as u64;
                }
                Ok(row)
            })
            .collect()
    };
    let before = get(leader)?;
    if before.get("lvs_director_ipvs_kernel_read_ok", &[]) != Some(1.0) {
        bail!("director {leader}: /metrics did not read the kernel table");
    }
    let c0 = counters(&before)?;
    let to = lab.vip_addr(PORT);
    // The second batch runs while the leader is scraped.
    let (batch, during) = std::thread::scope(|s| {
        let t = s.spawn(|| lab.c.client.in_ns(move || traffic::spread(to, n, false)));
        let mut during = Vec::new();
        while !t.is_finished() {
            during.push(get(leader));
            std::thread::sleep(Duration::from_millis(100));
        }
        (t.join().expect("traffic thread"), during)
    });
    let (seen, failed) = batch?;
    if failed > 0 {
        bail!("second batch via {to}: {failed} of {n} failed ({seen:?})");
    }
    let scrapes_during = during.len();
    for d in during {
        counters(&d?)?;
    }
    let start = Instant::now();
    let (after, c1) = loop {
        let m = get(leader)?;
        let c = counters(&m)?;
        let grew: u64 = c.iter().zip(&c0).map(|(a, b)| a[0] - b[0]).sum();
        if grew >= n as u64 {
            break (m, c);
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!(
                "/metrics connections grew by {grew} after {n} more connections: {c0:?} -> {c:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let delta: Vec<[u64; 5]> = c1
        .iter()
        .zip(&c0)
        .map(|(a, b)| std::array::from_fn(|i| a[i] - b[i]))
        .collect();
    if delta[0][0].abs_diff(n as u64 / 4) > 1 || delta[0][0] + delta[1][0] != n as u64 {
        bail!(
            "/metrics connections grew {}:{} for {n} connections at wrr 1:3",
            delta[0][0],
            delta[1][0]
        );
    }
    for (r, d) in reals.iter().zip(&delta) {
        // At least a SYN (60 bytes) and an ACK per connection arrive at the director (DR: the
        // replies bypass it).
        if d[1] < 2 * d[0] || d[3] < 100 * d[0] {
            bail!(
                "{r}: {} connections but only {} packets / {} bytes in",
                d[0],
                d[1],
                d[3]
            );
        }
    }
    for (i, (r, w)) in reals.iter().zip([1.0, 3.0]).enumerate() {
        let l = [("service", service.as_str()), ("real", r.as_str())];
        for name in [
            "lvs_director_ipvs_real_weight",
            "lvs_director_real_configured_weight",
            "lvs_director_real_effective_weight",
        ] {
            if after.get(name, &l) != Some(w) {
                bail!(
                    "{name} of real {i} {r}: {:?}, expected {w}",
                    after.get(name, &l)
                );
            }
        }
    }
    if after
        .get("lvs_director_reconcile_last_success_timestamp_seconds", &[])
        .is_none()
        || after.get("lvs_director_reconcile_runs_total", &[("kind", "full")]) < Some(1.0)
    {
        bail!("the reconciler's metrics show no successful full pass");
    }

    // The same counters as ipvsadm reads them (polled: the kernel folds per-CPU counters every 2 s).
    let ipvsadm = |id: u64| -> Result<Vec<[u64; 5]>> {
        let text = lab.ipvsadm(
            id,
            &[
                "-Ln",
                "--stats",
                "--exact",
                "-t",
                &lab.vip_addr(PORT).to_string(),
            ],
        )?;
        reals
            .iter()
            .map(|r| {
                let line = text
                    .lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>())
                    .find(|t| t.len() == 7 && t[0] == "->" && t[1] == r)
                    .ok_or_else(|| anyhow!("no line for {r} in ipvsadm --stats:\n{text}"))?;
                let mut row = [0u64; 5];
                for (i, v) in line[2..].iter().enumerate() {
                    row[i] = v
                        .parse()
                        .map_err(|_| anyhow!("ipvsadm --stats: {v:?} in {line:?}"))?;
                }
                Ok(row)
            })
            .collect()
    };
    let start = Instant::now();
    let kernel = loop {
        let m = counters(&get(leader)?)?;
        let k = ipvsadm(leader)?;
        if m == k {
            break k;
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("/metrics {m:?} and ipvsadm --stats --exact {k:?} differ for {reals:?} ([conns, inpkts, outpkts, inbytes, outbytes])");
        }
        std::thread::sleep(Duration::from_millis(300));
    };

    let follower = lab
        .c
        .nodes
        .iter()
        .map(|d| d.id)
        .find(|id| *id != leader)
        .expect("a follower");
    let fm = get(follower)?;
    if fm.get("lvs_director_ipvs_kernel_read_ok", &[]) != Some(1.0)
        || fm.get("lvs_director_raft_is_leader", &[]) != Some(0.0)
    {
        bail!("director {follower}: no kernel read or claims to lead in /metrics");
    }
    // The VIP holder's watchdog: every VIP held and announced (GARP for IPv4, NA for IPv6).
    let vip4 = format!("{}/24", lab.c.vip4);
    let vip_held = |m: &Metrics| {
        m.get(
            "lvs_director_vip_held",
            &[("name", "web"), ("address", &vip4), ("interface", "eth0")],
        )
    };
    let announced = |kind: &str| {
        after
            .get("lvs_director_vip_announcements_total", &[("kind", kind)])
            .unwrap_or(0.0)
    };
    if vip_held(&after) != Some(1.0)
        || vip_held(&fm) != Some(0.0)
        || announced("gratuitous_arp") < 2.0
        || announced("unsolicited_na") < 1.0
        || after.get("lvs_director_vip_acquisitions_total", &[]) < Some(3.0)
    {
        bail!(
            "VIP metrics: held {:?} on the leader, {:?} on director {follower}; announcements {} GARP, {} NA; acquisitions {:?}",
            vip_held(&after),
            vip_held(&fm),
            announced("gratuitous_arp"),
            announced("unsolicited_na"),
            after.get("lvs_director_vip_acquisitions_total", &[])
        );
    }
    counters(&fm).context("the follower's /metrics")?;
    Ok(format!(
        "leader /metrics scraped {} times during {n} more connections: connections +{}:+{}, bytes in +{}:+{}, equal to ipvsadm --stats --exact (connections {}:{}, bytes in {}:{}); VIPs held, {} GARP and {} NA sent; follower {follower} reads its own kernel",
        scrapes_during,
        delta[0][0],
        delta[1][0],
        delta[0][3],
        delta[1][3],
        kernel[0][0],
        kernel[1][0],
        kernel[0][3],
        kernel[1][3],
        announced("gratuitous_arp"),
        announced("unsolicited_na"),
    ))
}

/// Waits until director `id`'s STATS64 counters (through `lvsctl list --stats`) show `n`
/// connections for `service`, split 1:3 between its two real servers. The kernel folds its per-CPU
/// counters into these every 2 s.
fn wait_stats(lab: &Lab, id: u64, service: &str, n: u64) -> Result<String> {
    let start = Instant::now();
    loop {
        let v = lab
            .c
            .lvsctl_json(id, &["list", "--stats"])
            .map_err(|e| anyhow!(e))?;
        let svc = v["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["key"].as_str() == Some(service)))
            .cloned()
            .unwrap_or_default();
        let conns = svc["stats"]["conns"].as_u64().unwrap_or(0);
        let per_dest: Vec<u64> = svc["dests"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| d["stats"]["conns"].as_u64().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default();
        if conns >= n {
            let inpkts = svc["stats"]["inpkts"].as_u64().unwrap_or(0);
            if per_dest.len() != 2 || per_dest.iter().sum::<u64>() != conns || inpkts == 0 {
                bail!("{service}: {conns} connections, per real server {per_dest:?}, {inpkts} packets in: {svc}");
            }
            return Ok(format!(
                "{conns} connections ({}:{}), {inpkts} packets in",
                per_dest[0], per_dest[1]
            ));
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("{service}: the counters show {conns} connections, expected {n}: {svc}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Scenarios 4 and 5: the client holds 20 connections through the VIP (DR), the leader is killed, and the
/// connections are used again through the new VIP holder; fails unless all 20 survive.
pub fn scenario_failover(lab: &mut Lab, mode: SyncMode) -> Result<String> {
    let scheduler = match mode {
        SyncMode::Multicast => Scheduler::Wlc,
        SyncMode::Stateless => Scheduler::Mh,
    };
    let mut config = traffic_config(lab, scheduler, [1, 1]);
    config.sync = Some(sync_settings(mode));
    lab.apply(&config)?;
    lab.wait_tables(&IpvsadmTable::expected(&config), Duration::from_secs(30))?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    lab.c.wait_holder(leader, Duration::from_secs(30));
    if mode == SyncMode::Multicast {
        wait_daemons(lab, leader)?;
    }
    let to = lab.vip_addr(PORT);
    let mut conns: Vec<Held> = lab.c.client.in_ns(move || {
        (0..20)
            .map(|_| Held::open(to, Duration::from_secs(5)))
            .collect::<Result<Vec<_>>>()
    })??;
    // Let the master sync the established connections (sync_threshold: after 3 packets).
    for _ in 0..5 {
        for c in conns.iter_mut() {
            c.ping(Duration::from_secs(5))?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let others: Vec<u64> = lab
        .c
        .running_ids()
        .into_iter()
        .filter(|i| *i != leader)
        .collect();
    // The backups must have the 20 entries by sync before the leader dies (the master sends
    // when its buffer fills or every couple of seconds).
    let mut synced_before = Vec::new();
    if mode == SyncMode::Multicast {
        for id in &others {
            synced_before.push((*id, wait_synced(lab, *id, conns.len())?));
        }
    }
    let killed_at = Instant::now();
    lab.c.kill(leader);
    let mut new_holder = None;
    let vip = lab.c.vip4;
    let hosts: Vec<(u64, Host)> = others
        .iter()
        .map(|i| (*i, lab.c.node(*i).host.clone()))
        .collect();
    let report = traffic::hold_through(
        &mut conns,
        Duration::from_secs(20),
        Duration::from_secs(2),
        || {
            if new_holder.is_none() {
                new_holder = hosts
                    .iter()
                    .find(|(_, h)| h.has_addr(vip))
                    .map(|(i, _)| (*i, killed_at.elapsed()));
            }
            new_holder.is_some()
        },
    );
    let (holder, vip_moved) = new_holder.ok_or_else(|| anyhow!("no director took the VIP over"))?;
    let line = format!(
        "{} of {} connections survived the kill of leader {leader} (VIP on director {holder} after {:.2} s, longest pause {:.2} s; {}){}",
        report.survived,
        report.total,
        vip_moved.as_secs_f64(),
        report.max_pause.as_secs_f64(),
        if synced_before.is_empty() {
            "no sync daemons".to_string()
        } else {
            synced_before
                .iter()
                .map(|(id, n)| format!("director {id} had {n} entries by sync"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        if report.errors.is_empty() {
            String::new()
        } else {
            format!("; first failure: {}", report.errors[0])
        }
    );
    // Restart the killed director so the next scenario has three.
    lab.c.start_node(leader);
    if report.survived < report.total {
        bail!("{line}");
    }
    Ok(line)
}

/// Waits until director `id` reports (through `lvsctl conns --sync`) at least `n` established
/// entries to the VIP that arrived by sync; returns how many.
fn wait_synced(lab: &Lab, id: u64, n: usize) -> Result<usize> {
    let start = Instant::now();
    let vip = lab.vip_addr(PORT).to_string();
    loop {
        let v = lab
            .c
            .lvsctl_json(id, &["conns", "--sync"])
            .map_err(|e| anyhow!(e))?;
        let count = v["conns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|c| {
                        c["virtual"].as_str() == Some(vip.as_str())
                            && c["state"].as_str() == Some("ESTABLISHED")
                    })
                    .count()
            })
            .unwrap_or(0);
        if count >= n {
            return Ok(count);
        }
        if start.elapsed() > Duration::from_secs(15) {
            bail!("director {id} has {count} synced entries for {vip}, expected {n}: {v}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_daemons(lab: &mut Lab, leader: u64) -> Result<()> {
    let start = Instant::now();
    loop {
        let mut missing = Vec::new();
        for id in lab.c.running_ids() {
            let d = lab.ipvsadm(id, &["-L", "--daemon"])?;
            let backup = d.contains("backup sync daemon");
            let master = d.contains("master sync daemon");
            if !backup || master != (id == leader) {
                missing.push(format!("director {id}: {}", d.trim().replace('\n', "; ")));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!(
                "sync daemons not as expected (backup everywhere, master on {leader}): {}",
                missing.join(" | ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `f`, turning a panic (the cluster helpers panic with the directors' logs) into an error.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(anyhow!("{what}: {msg}"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 6: agents, load-informed weights, health checks and drain, read back with ipvsadm.

/// HTTP port the lab's agent scenario serves (lab-tool http, with a switchable slow handler).
pub const HTTP_PORT: u16 = 8000;
/// Health-check timing of the agent scenario's HTTP service.
const CHECK_INTERVAL_MS: u32 = 500;
const CHECK_RISE: u32 = 2;
const CHECK_FALL: u32 = 3;

/// Processes the agent scenario started on the real servers, stopped when it ends.
struct RealProcs {
    agents: Vec<Option<std::process::Child>>,
    http: Vec<Option<std::process::Child>>,
}

impl Drop for RealProcs {
    fn drop(&mut self) {
        for c in self.agents.iter_mut().chain(self.http.iter_mut()).flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn stop(c: &mut Option<std::process::Child>) {
    if let Some(mut c) = c.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Lab {
    fn agent_dir(&self, i: usize) -> std::path::PathBuf {
        self.c
            .dir
            .path()
            .join(format!("agent-{}", self.reals[i].name))
    }

    fn delay_file(&self, i: usize) -> std::path::PathBuf {
        self.agent_dir(i).join("delay-ms")
    }

    fn socket(&self, i: usize) -> String {
        self.agent_dir(i)
            .join("agent.sock")
            .to_str()
            .expect("utf-8 path")
            .to_string()
    }

    fn start_http(&self, i: usize) -> std::process::Child {
        let tool = bin("lab-tool");
        self.reals[i].spawn(&[
            tool.to_str().expect("utf-8 path"),
            "http",
            "--name",
            &self.reals[i].name,
            "--port",
            &HTTP_PORT.to_string(),
            "--delay-file",
            self.delay_file(i).to_str().expect("utf-8 path"),
        ])
    }

    /// Starts real server `i`'s agent: reports every second to all three directors, probing the
    /// HTTP service.
    fn start_agent(&self, i: usize) -> Result<std::process::Child> {
        let dir = self.agent_dir(i);
        fs::create_dir_all(&dir)?;
        let directors: Vec<String> = self
            .c
            .nodes
            .iter()
            .map(|n| format!("{:?}", n.api_addr()))
            .collect();
        let config = format!(
            "name = {:?}\ndirectors = [{}]\naddresses = [\"{}\"]\ninterval_ms = 1000\nports = [{PORT}, {HTTP_PORT}]\ncontrol_socket = {:?}\nstate_dir = {:?}\n\n[[probe]]\nkind = \"http\"\nport = {HTTP_PORT}\npath = \"/\"\ntimeout_ms = 900\n",
            self.reals[i].name,
            directors.join(", "),
            self.reals[i].ipv4,
            self.socket(i),
            dir.to_str().expect("utf-8 path"),
        );
        let path = dir.join("agent.toml");
        fs::write(&path, config)?;
        let agent = bin("realserver-agent");
        Ok(self.reals[i].spawn(&[
            agent.to_str().expect("utf-8 path"),
            "run",
            "--insecure",
            "--config",
            path.to_str().expect("utf-8 path"),
        ]))
    }

    /// Director `id`'s kernel weight for real server `i` of `service` (`TCP ADDR:PORT`), as
    /// `ipvsadm -Ln` shows it.
    fn kernel_weight(&self, id: u64, service: &str, i: usize, port: u16) -> Result<Option<u32>> {
        let t = self.table(id)?;
        Ok(t.services.get(service).and_then(|s| {
            s.dests
                .get(&format!("{}:{port}", self.reals[i].ipv4))
                .map(|d| d.weight)
        }))
    }

    /// Polls `ipvsadm -Ln` on director `id` until `ok(rs1 weight, rs2 weight)`; returns the time
    /// taken and the weights, and the lowest weight either had meanwhile.
    fn wait_weights(
        &self,
        id: u64,
        service: &str,
        port: u16,
        what: &str,
        timeout: Duration,
        ok: impl Fn(Option<u32>, Option<u32>) -> bool,
    ) -> Result<(Duration, Option<u32>, Option<u32>, u32)> {
        let start = Instant::now();
        let mut lowest = u32::MAX;
        loop {
            let a = self.kernel_weight(id, service, 0, port)?;
            let b = self.kernel_weight(id, service, 1, port)?;
            lowest = lowest.min(a.unwrap_or(0)).min(b.unwrap_or(0));
            if ok(a, b) {
                return Ok((start.elapsed(), a, b, lowest));
            }
            if start.elapsed() > timeout {
                let st = self
                    .c
                    .lvsctl_json(id, &["weights"])
                    .map(|v| v.to_string())
                    .unwrap_or_else(|e| e);
                bail!("{what}: not within {timeout:?}; ipvsadm weights rs1 {a:?} rs2 {b:?}; lvsctl weights: {st}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// `realserver-agent setup --mode tun` on a fresh real server (this kernel has ipip): the VIPs on
/// tunl0/ip6tnl0 with the ARP and rp_filter sysctls, idempotent, and `teardown` undoes it.
fn tun_setup(lab: &mut Lab) -> Result<String> {
    let h = lab.c.topo.add_host("rs3");
    let agent = bin("realserver-agent");
    let agent = agent.to_str().expect("utf-8 path");
    let state = lab.c.dir.path().join("rs3-setup.json");
    let state = state.to_str().expect("utf-8 path");
    let (v4, v6) = (lab.c.vip4.to_string(), lab.c.vip6.to_string());
    let setup = [
        agent,
        "setup",
        "--mode",
        "tun",
        "--vip",
        &v4,
        "--vip",
        &v6,
        "--state-file",
        state,
    ];
    let sysctl = |k: &str| -> Result<String> {
        Ok(h.run(&["cat", &format!("/proc/sys/net/ipv4/conf/{k}")])?
            .trim()
            .to_string())
    };
    let before = sysctl("all/arp_ignore")?;
    let first = h.run(&setup)?;
    let tunl0 = h.run(&["ip", "-o", "addr", "show", "dev", "tunl0"])?;
    let ip6tnl0 = h.run(&["ip", "-o", "addr", "show", "dev", "ip6tnl0"])?;
    let got = [
        sysctl("all/arp_ignore")?,
        sysctl("all/arp_announce")?,
        sysctl("tunl0/arp_ignore")?,
        sysctl("tunl0/rp_filter")?,
        sysctl("all/rp_filter")?,
    ];
    if !tunl0.contains(&format!("{v4}/32"))
        || !ip6tnl0.contains(&format!("{v6}/128"))
        || got != ["1", "2", "1", "0", "0"]
    {
        bail!("setup --mode tun left tunl0: {tunl0:?} ip6tnl0: {ip6tnl0:?} sysctls (arp_ignore, arp_announce, tunl0 arp_ignore, tunl0 rp_filter, all rp_filter) {got:?}; it said:\n{first}");
    }
    let again = h.run(&setup)?;
    if !again.trim_start().starts_with("unchanged") {
        bail!("a second setup changed something:\n{again}");
    }
    let down = h.run(&[agent, "teardown", "--state-file", state])?;
    let tunl0 = h.run(&["ip", "-o", "addr", "show", "dev", "tunl0"])?;
    if tunl0.contains(&v4) || sysctl("all/arp_ignore")? != before {
        bail!(
            "teardown left tunl0: {tunl0:?}, arp_ignore {}; it said:\n{down}",
            sysctl("all/arp_ignore")?
        );
    }
    Ok(format!(
        "setup --mode tun: {} changes, second run unchanged, teardown undid {}",
        first.lines().count(),
        down.lines().count()
    ))
}

/// The agent scenario's config: the HTTP service under the latency policy with an HTTP health
/// check (wlc, DR, configured weights 100:100), and a static TCP service on port 80 (weights 1:1)
/// for the long-lived connections of the drain check.
pub fn agents_config(lab: &Lab) -> Config {
    use cluster_core::model::{CheckKind, HealthCheck, Protocol, WeightPolicy};
    let mut c = Config::default();
    let v4 = IpAddr::V4(lab.c.vip4);
    let mut http = Service::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        address: v4,
        port: HTTP_PORT,
    });
    http.scheduler = Scheduler::Wlc;
    http.weight_policy = WeightPolicy::Latency;
    let mut hc = HealthCheck::new(CheckKind::Http);
    hc.interval_ms = CHECK_INTERVAL_MS;
    hc.timeout_ms = 2000;
    hc.rise = CHECK_RISE;
    hc.fall = CHECK_FALL;
    hc.path = Some("/".into());
    http.health_check = Some(hc);
    let mut tcp = Service::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        address: v4,
        port: PORT,
    });
    tcp.scheduler = Scheduler::Wlc;
    for r in &lab.reals {
        http.reals
            .push(real(&r.ipv4.to_string(), HTTP_PORT, 100, Forward::Dr));
        tcp.reals
            .push(real(&r.ipv4.to_string(), PORT, 1, Forward::Dr));
    }
    c.services.insert(http.key, http);
    c.services.insert(tcp.key, tcp);
    c
}

/// Scenario 6, with agents on both real servers:
/// - rs1's handler turns slow: its kernel weight falls within a few control periods and new
///   connections shift to rs2;
/// - rs1's agent is killed: its weight climbs back toward the static weight, never through 0;
/// - rs1's HTTP service stops: the health check quiesces it (weight 0) within fall × interval,
///   and restores it after rise × interval once it is back;
/// - `realserver-agent drain` on rs2: weight 0 in both services, its held connections keep
///   working and new ones go to rs1; `ready` brings it back.
///
/// It starts with `realserver-agent setup --mode tun` on a fresh host. With `show`, prints `lvsctl agents`, `lvsctl weights` and `ipvsadm -Ln` at the end, while the
/// agents and services still run (the demo).
pub fn scenario_agents(lab: &mut Lab, show: bool) -> Result<String> {
    let mut report = vec![tun_setup(lab)?];
    for i in 0..lab.reals.len() {
        fs::create_dir_all(lab.agent_dir(i))?;
        fs::write(lab.delay_file(i), "0")?;
    }
    let mut procs = RealProcs {
        agents: Vec::new(),
        http: Vec::new(),
    };
    for i in 0..lab.reals.len() {
        procs.http.push(Some(lab.start_http(i)));
        procs.agents.push(Some(lab.start_agent(i)?));
    }
    let config = agents_config(lab);
    lab.apply(&config)?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    let svc = format!("TCP {}:{HTTP_PORT}", lab.c.vip4);
    let tcp_svc = format!("TCP {}:{PORT}", lab.c.vip4);

    // Both agents report and their weights leave the blackout with equal latency.
    let start = Instant::now();
    loop {
        let v = lab
            .c
            .lvsctl_json(leader, &["weights"])
            .map_err(|e| anyhow!(e))?;
        let phases: Vec<String> = v["reals"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["policy"] == "latency")
                    .map(|r| r["phase"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        if phases.len() == 2 && phases.iter().all(|p| p == "fresh") {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("agents did not both report within 60 s: phases {phases:?}: {v}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, a, b, _) = lab.wait_weights(
        leader,
        &svc,
        HTTP_PORT,
        "initial weights",
        Duration::from_secs(30),
        |a, b| a.is_some() && b.is_some(),
    )?;
    report.push(format!(
        "agents reporting after {:.1} s, weights rs1 {} rs2 {}",
        start.elapsed().as_secs_f64(),
        a.unwrap_or(0),
        b.unwrap_or(0)
    ));

    // 1. A slow handler on rs1.
    fs::write(lab.delay_file(0), "300")?;
    let (took, a, b, _) = lab.wait_weights(
        leader,
        &svc,
        HTTP_PORT,
        "rs1's weight falling below half of rs2's after its handler slowed to 300 ms",
        Duration::from_secs(60),
        |a, b| matches!((a, b), (Some(a), Some(b)) if a > 0 && a * 2 <= b),
    )?;
    let (w1, w2) = (a.unwrap_or(0), b.unwrap_or(0));
    let to = lab.vip_addr(HTTP_PORT);
    let n = 30;
    let seen = lab.c.client.in_ns(move || {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..n {
            let who = traffic::http_name(to, Duration::from_secs(5))
                .unwrap_or_else(|e| format!("error: {e:#}"));
            *seen.entry(who).or_default() += 1;
        }
        seen
    })?;
    let (c1, c2) = (
        seen.get("rs1").copied().unwrap_or(0),
        seen.get("rs2").copied().unwrap_or(0),
    );
    if c1 + c2 != n || c1 * 2 > c2 {
        bail!("after rs1 slowed (weights {w1}:{w2}), {n} new connections went {seen:?}; expected at least two thirds to rs2");
    }
    report.push(format!(
        "rs1 slowed to 300 ms: weight {w1} vs rs2 {w2} after {:.1} s, new connections rs1:rs2 = {c1}:{c2}",
        took.as_secs_f64()
    ));

    // 2. rs1's agent dies: its weight returns toward the static weight, never to 0.
    stop(&mut procs.agents[0]);
    // Equal configured weights: the static share is rs2's weight. The decay (τ 60 s after a
    // 5 s hold) must close at least half of the gap.
    let (took, a, b, lowest) = lab.wait_weights(
        leader,
        &svc,
        HTTP_PORT,
        "rs1's weight climbing back toward the static share after its agent died",
        Duration::from_secs(150),
        |a, b| matches!((a, b), (Some(a), Some(b)) if a * 2 >= w1 + b),
    )?;
    if lowest == 0 {
        bail!("a weight went to 0 while rs1's agent was gone");
    }
    report.push(format!(
        "rs1's agent killed: weight back to {} (rs2 {}) after {:.1} s, lowest {lowest}",
        a.unwrap_or(0),
        b.unwrap_or(0),
        took.as_secs_f64()
    ));
    fs::write(lab.delay_file(0), "0")?;
    procs.agents[0] = Some(lab.start_agent(0)?);

    // 3. rs1's service stops: quiesced by the health check, restored when it is back.
    stop(&mut procs.http[0]);
    let fall_bound =
        Duration::from_millis((CHECK_FALL * CHECK_INTERVAL_MS) as u64) + Duration::from_secs(3);
    let (down_took, _, _, _) = lab.wait_weights(
        leader,
        &svc,
        HTTP_PORT,
        "rs1 quiesced by its health check",
        fall_bound,
        |a, _| a == Some(0),
    )?;
    procs.http[0] = Some(lab.start_http(0));
    let rise_bound =
        Duration::from_millis((CHECK_RISE * CHECK_INTERVAL_MS) as u64) + Duration::from_secs(3);
    let (up_took, a, _, _) = lab.wait_weights(
        leader,
        &svc,
        HTTP_PORT,
        "rs1 restored by its health check",
        rise_bound,
        |a, _| a.is_some_and(|a| a > 0),
    )?;
    report.push(format!(
        "rs1's service stopped: weight 0 after {:.1} s (fall {CHECK_FALL} × {CHECK_INTERVAL_MS} ms), restored to {} {:.1} s after it came back (rise {CHECK_RISE})",
        down_took.as_secs_f64(),
        a.unwrap_or(0),
        up_took.as_secs_f64()
    ));

    // 4. Drain rs2: existing connections continue, new ones go to rs1; then ready.
    let to80 = lab.vip_addr(PORT);
    let mut held: Vec<Held> = lab.c.client.in_ns(move || {
        (0..10)
            .map(|_| Held::open(to80, Duration::from_secs(5)))
            .collect::<Result<Vec<_>>>()
    })??;
    let on_rs2 = held.iter().filter(|h| h.server == "rs2").count();
    if on_rs2 == 0 {
        bail!("none of 10 held connections went to rs2 before the drain");
    }
    let agent = bin("realserver-agent");
    let sock = lab.socket(1);
    let out = lab.reals[1].run(&[
        agent.to_str().expect("utf-8 path"),
        "drain",
        "--socket",
        &sock,
    ])?;
    let (drain_took, _, _, _) = lab.wait_weights(
        leader,
        &tcp_svc,
        PORT,
        "rs2 drained to weight 0",
        Duration::from_secs(10),
        |_, b| b == Some(0),
    )?;
    if lab.kernel_weight(leader, &svc, 1, HTTP_PORT)? != Some(0) {
        bail!("rs2 drained but still weighted in {svc}");
    }
    // New connections come from an address of the client's that no earlier scenario used: the
    // kernel keeps sending a reused client port to the real server of its old, closing entry.
    let fresh_src = lab.c.topo.ipv4_for(77);
    lab.c.client.run(&[
        "ip",
        "addr",
        "replace",
        &format!("{fresh_src}/24"),
        "dev",
        "eth0",
    ])?;
    let IpAddr::V4(vip4) = to80.ip() else {
        unreachable!("the lab's VIP is IPv4")
    };
    let to80v4 = std::net::SocketAddrV4::new(vip4, PORT);
    let fresh: Vec<String> = lab.c.client.in_ns(move || {
        (0..10)
            .map(|_| traffic::tcp_hello_from(fresh_src, to80v4, Duration::from_secs(5)))
            .collect::<Result<Vec<_>>>()
    })??;
    if fresh.iter().any(|n| n != "rs1") {
        bail!("new connections during the drain went to {fresh:?}; expected only rs1");
    }
    for h in held.iter_mut() {
        h.ping(Duration::from_secs(5))
            .with_context(|| format!("held connection to {} during the drain", h.server))?;
    }
    lab.reals[1].run(&[
        agent.to_str().expect("utf-8 path"),
        "ready",
        "--socket",
        &sock,
    ])?;
    lab.wait_weights(
        leader,
        &tcp_svc,
        PORT,
        "rs2 ready again",
        Duration::from_secs(10),
        |_, b| b.is_some_and(|b| b > 0),
    )?;
    report.push(format!(
        "rs2 drained ({}): weight 0 after {:.1} s, {on_rs2} held connections kept working, 10 new ones all to rs1; ready restored it",
        out.trim().lines().last().unwrap_or("").replace("; ", ", "),
        drain_took.as_secs_f64()
    ));
    if show {
        println!("\n==> lvsctl agents and lvsctl weights (configured beside effective weights, health, agent)");
        print!("{}", lab.c.lvsctl_ok(&["agents"]));
        print!("{}", lab.c.lvsctl_ok(&["weights"]));
        println!(
            "\n==> ipvsadm -Ln in director {leader}'s namespace: the weights the leader programmed"
        );
        print!("{}", lab.ipvsadm(leader, &["-Ln"])?);
    }
    drop(procs);
    Ok(report.join("; "))
}

// ---------------------------------------------------------------------------------------------
// Scenario 7: migration. A keepalived.conf and an ipvsadm-save text, both with the lab's addresses,
// through `lvsctl import` and `lvsctl apply`, read back with ipvsadm.

/// The import scenario's keepalived.conf and its included file, and what `ipvsadm -Ln` must show
/// for them: written out by hand from the keepalived text, not derived from the import.
fn import_keepalived_files(lab: &Lab) -> (String, String, String) {
    let (v4, v6, gw) = (lab.c.vip4, lab.c.vip6, lab.gw4);
    let (r1, r2) = (lab.reals[0].ipv4, lab.reals[1].ipv4);
    let (r16, r26) = (lab.reals[0].ipv6, lab.reals[1].ipv6);
    let main = format!(
        r#"! keepalived.conf of the lab, as a keepalived site would have it
global_defs {{
    router_id lab-lb1
    lvs_sync_daemon eth0 web id 7
}}

vrrp_instance web {{
    state MASTER
    interface eth0
    virtual_router_id 7
    priority 150
    virtual_ipaddress {{
        {v4}/24
        {v6}/64
        {gw}/24
    }}
}}

virtual_server {v4} {PORT} {{
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server {r1} {PORT} {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server {r2} {PORT} {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}

include services.d/*.conf
"#
    );
    let included = format!(
        r#"virtual_server {v4} {UDP_PORT} {{
    lb_algo rr
    lb_kind DR
    protocol UDP
    ops
    real_server {r1} {UDP_PORT} {{
        weight 2
    }}
    real_server {r2} {UDP_PORT} {{
        weight 2
    }}
}}

virtual_server {v6} {PORT}
{{
    lb_algo sh
    sh-port
    sh-fallback
    lb_kind DR
    persistence_timeout 120
    persistence_granularity 64
    real_server {r16} {PORT} {{
        weight 1
    }}
    real_server {r26} {PORT} {{
        weight 1
    }}
}}

virtual_server {v4} {NAT_PORT} {{
    lb_algo wlc
    lb_kind NAT
    sorry_server {r2} {PORT}
    real_server {r1} {NAT_REAL_PORT} {{
        weight 4
    }}
    real_server {r2} {NAT_REAL_PORT} {{
        weight 1
    }}
}}

virtual_server fwmark 5 {{
    lb_algo lc
    lb_kind DR
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    real_server {r1} 0 {{
        weight 1
    }}
    real_server {r2} 0 {{
        weight 2
    }}
}}
"#
    );
    // The sorry server is not in the table while real servers are available.
    let listing = format!(
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  {v4}:{PORT} wrr
  -> {r1}:{PORT}            Route   1      0          0
  -> {r2}:{PORT}            Route   3      0          0
TCP  {v4}:{NAT_PORT} wlc
  -> {r1}:{NAT_REAL_PORT}          Masq    4      0          0
  -> {r2}:{NAT_REAL_PORT}          Masq    1      0          0
TCP  [{v6}]:{PORT} sh (sh-fallback,sh-port) persistent 120 mask 64
  -> [{r16}]:{PORT}         Route   1      0          0
  -> [{r26}]:{PORT}         Route   1      0          0
UDP  {v4}:{UDP_PORT} rr ops
  -> {r1}:{UDP_PORT}            Route   2      0          0
  -> {r2}:{UDP_PORT}            Route   2      0          0
FWM  5 lc persistent 300 mask 255.255.255.0
  -> {r1}:0             Route   1      0          0
  -> {r2}:0             Route   2      0          0
"
    );
    (main, included, listing)
}

/// `lvsctl import KIND FILE`: the config it prints and its warnings (without the `lvsctl:
/// warning: ` prefix).
fn lvsctl_import(lab: &Lab, kind: &str, file: &std::path::Path) -> Result<(Config, Vec<String>)> {
    let path = file.to_str().expect("utf-8 path");
    let out = lab.c.lvsctl(&["import", kind, path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("lvsctl import {kind} {path} failed: {stderr}");
    }
    let config = Config::from_toml(&stdout).map_err(|e| {
        anyhow!("lvsctl import {kind} printed TOML that does not parse: {e}\n{stdout}")
    })?;
    let warnings = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("lvsctl: warning: "))
        .map(str::to_string)
        .collect();
    Ok((config, warnings))
}

/// Waits until the leader reports every real server of `service` up after a probe that connected.
fn wait_checks_connected(lab: &mut Lab, service: &str, reals: usize) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let leader = lab.c.wait_leader(Duration::from_secs(30));
        let last = lab.c.lvsctl_json(leader, &["weights", service]);
        if let Ok(v) = &last {
            let rows = v["reals"].as_array().cloned().unwrap_or_default();
            if rows.len() == reals
                && rows
                    .iter()
                    .all(|r| r["health"] == "up" && r["health_detail"] == "connected")
            {
                return Ok(start.elapsed());
            }
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the imported TCP_CHECK of {service} did not report its real servers up and connected: {last:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Scenario 7: migrating to the cluster.
/// - A keepalived.conf with the lab's addresses (a DR service with TCP_CHECKs, UDP with ops, IPv6
///   with sh flags and persistence, NAT with a sorry server, fwmark with persistence, a
///   vrrp_instance holding the lab's VIPs, lvs_sync_daemon; part of it in an included file) goes
///   through `lvsctl import keepalived` and `lvsctl apply`: every director's `ipvsadm -Ln` equals
///   the table written out by hand for it, `lvsctl export` equals what was imported, the imported
///   checks run and connect, and the VIP group is the lab's own (the VIPs stay where they are).
/// - ipvsadm rules loaded with `ipvsadm -R` into the client's namespace, saved with `ipvsadm -Sn`,
///   go through `lvsctl import ipvsadm` and `lvsctl apply`: every director's `ipvsadm -Ln` equals
///   the client's, and the leader's `ipvsadm -Sn` is line for line the saved rules.
pub fn scenario_import(lab: &mut Lab) -> Result<String> {
    let dir = lab.c.dir.path().join("import");
    fs::create_dir_all(dir.join("services.d"))?;
    let (main, included, listing) = import_keepalived_files(lab);
    let conf = dir.join("keepalived.conf");
    fs::write(&conf, &main)?;
    fs::write(dir.join("services.d/10-lab.conf"), &included)?;
    // An editor's backup beside it: not matched by *.conf.
    fs::write(dir.join("services.d/10-lab.conf~"), "bogus {\n")?;

    let (config, warnings) = lvsctl_import(lab, "keepalived", &conf)?;
    let line_of = |needle: &str| {
        main.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("line in the generated keepalived.conf")
    };
    let at = conf.display();
    let (v4, v6, gw) = (lab.c.vip4, lab.c.vip6, lab.gw4);
    let expected_warnings = [
        format!(
            "{at}:{}: global_defs router_id is not mapped; left out",
            line_of("router_id")
        ),
        format!(
            "{at}:{}: vrrp_instance web is not mapped: the leader director holds the VIPs (no VRRP); its addresses are in [[vip_group]] (lvsctl vip set web --interface eth0 {v4}/24 {v6}/64 {gw}/24)",
            line_of("vrrp_instance")
        ),
    ];
    if warnings != expected_warnings {
        bail!("lvsctl import keepalived warned {warnings:#?}, expected {expected_warnings:#?}");
    }
    // The lab's own VIP group (Lab::start), so applying it leaves the VIPs where they are.
    let web = VipGroup {
        name: "web".into(),
        interface: "eth0".into(),
        addresses: vec![
            format!("{v4}/24").parse()?,
            format!("{v6}/64").parse()?,
            format!("{gw}/24").parse()?,
        ],
    };
    if config.vip_groups != [web] {
        bail!(
            "the vrrp_instance was imported as {:?}, expected the lab's VIP group web",
            config.vip_groups
        );
    }
    if config.sync != Some(sync_settings(SyncMode::Multicast)) {
        bail!(
            "lvs_sync_daemon eth0 web id 7 was imported as {:?}",
            config.sync
        );
    }
    let imported = dir.join("keepalived.toml");
    fs::write(&imported, config.to_toml())?;
    let out = lab
        .c
        .lvsctl(&["apply", "-f", imported.to_str().expect("utf-8 path")]);
    if !out.status.success() {
        bail!(
            "lvsctl apply of the imported keepalived.conf failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let want = IpvsadmTable::parse(&listing);
    if want.services.len() != 5 {
        bail!(
            "the hand-written listing parses to {} services, not 5",
            want.services.len()
        );
    }
    let took = lab.wait_tables(&want, Duration::from_secs(60))?;
    let exported = Config::from_toml(&lab.c.lvsctl_ok(&["export"]))
        .map_err(|e| anyhow!("lvsctl export: {e}"))?;
    if exported != config {
        bail!("lvsctl export differs from the imported config:\nexported {exported:#?}\nimported {config:#?}");
    }
    let service = format!("tcp/{}", lab.vip_addr(PORT));
    let checks = wait_checks_connected(lab, &service, 2)?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    println!(
        "--- keepalived.conf imported and applied: ipvsadm -Ln in director {leader}'s namespace ---\n{}",
        lab.ipvsadm(leader, &["-Ln"])?
    );
    let keepalived_report = format!(
        "keepalived.conf (5 virtual servers, 4 of them in an included file, TCP_CHECKs, vrrp_instance, lvs_sync_daemon) imported with the 2 expected warnings and applied: all directors match the hand-written ipvsadm -Ln within {:.1} s, export equals the import, the checks connected within {:.1} s",
        took.as_secs_f64(),
        checks.as_secs_f64()
    );

    // ipvsadm: the rules as ipvsadm itself loads and saves them, in the client's namespace.
    let (r1, r2) = (lab.reals[0].ipv4, lab.reals[1].ipv4);
    let (r16, r26) = (lab.reals[0].ipv6, lab.reals[1].ipv6);
    let rules = format!(
        "-A -t {v4}:{PORT} -s wlc
-a -t {v4}:{PORT} -r {r1}:{PORT} -g -w 2
-a -t {v4}:{PORT} -r {r2}:{PORT} -g -w 5
-A -t {v4}:{NAT_PORT} -s rr
-a -t {v4}:{NAT_PORT} -r {r1}:{NAT_REAL_PORT} -m -w 1
-a -t {v4}:{NAT_PORT} -r {r2}:{NAT_REAL_PORT} -m -w 3
-A -u {v4}:{UDP_PORT} -s sh -b sh-port -o
-a -u {v4}:{UDP_PORT} -r {r1}:{UDP_PORT} -g -w 1
-a -u {v4}:{UDP_PORT} -r {r2}:{UDP_PORT} -g -w 1
-A -t [{v6}]:{PORT} -s lc -p 60
-a -t [{v6}]:{PORT} -r [{r16}]:{PORT} -g -w 1
-a -t [{v6}]:{PORT} -r [{r26}]:{PORT} -g -w 4
-A -f 9 -s wrr -p 300 -M 255.255.255.0
-a -f 9 -r {r1}:0 -g -w 1
-a -f 9 -r {r2}:0 -g -w 1
"
    );
    let rules_file = dir.join("rules.ipvsadm");
    fs::write(&rules_file, &rules)?;
    let client = lab.c.client.clone();
    let loaded = (|| -> Result<(String, String)> {
        let out = client
            .cmd("sh")
            .arg("-c")
            .arg(format!("ipvsadm -R < {}", rules_file.display()))
            .output()?;
        if !out.status.success() {
            bail!(
                "ipvsadm -R in the client's namespace: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok((
            client.run(&["ipvsadm", "-Sn"])?,
            client.run(&["ipvsadm", "-Ln"])?,
        ))
    })();
    // The client must not keep virtual services of its own (they would take its connections).
    let cleared = client.run(&["ipvsadm", "-C"]);
    let (saved, listed) = loaded?;
    cleared?;
    let saved_file = dir.join("rules.saved");
    fs::write(&saved_file, &saved)?;
    let (config, warnings) = lvsctl_import(lab, "ipvsadm", &saved_file)?;
    if !warnings.is_empty() {
        bail!("lvsctl import ipvsadm warned about ipvsadm's own -Sn output: {warnings:#?}");
    }
    if config.services.len() != 5 {
        bail!(
            "lvsctl import ipvsadm read {} services from {saved}",
            config.services.len()
        );
    }
    lab.apply(&config)?;
    let want = IpvsadmTable::parse(&listed);
    let took = lab.wait_tables(&want, Duration::from_secs(60))?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    let sorted = |text: &str| {
        let mut l: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
        l.sort();
        l
    };
    let on_leader = lab.ipvsadm(leader, &["-Sn"])?;
    if sorted(&on_leader) != sorted(&saved) {
        bail!("director {leader}'s ipvsadm -Sn differs from the rules:\n{on_leader}\nrules (ipvsadm -R then -Sn):\n{saved}");
    }
    Ok(format!(
        "{keepalived_report}; ipvsadm -R rules (5 services, 10 real servers) saved with -Sn, imported without warnings and applied: all directors match the client's ipvsadm -Ln within {:.1} s and director {leader}'s ipvsadm -Sn is line for line the saved rules",
        took.as_secs_f64()
    ))
}
